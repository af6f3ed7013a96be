"""jinja2 (and markupsafe's C speedups): loops, filters, autoescape."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    import jinja2
    env = jinja2.Environment(autoescape=True)
    tpl = env.from_string("{% for u in users %}{{ u.name|upper }}:{{ u.note }}{% if not loop.last %}, {% endif %}{% endfor %}")
    return tpl.render(users=[{"name": "ada", "note": "<b>x</b>"}, {"name": "bob", "note": "a&b"}])

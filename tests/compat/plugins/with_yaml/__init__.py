"""PyYAML through its C loader (libyaml)."""
__deps_dir__ = "deps"

import plugbox

DOC = """
name: plugbox
layers: [seccomp, landlock]
limits: {memory: 1G, files: 256}
"""


@plugbox.export
def run():
    import yaml
    data = yaml.load(DOC, Loader=yaml.CSafeLoader)
    return {
        "with_libyaml": yaml.__with_libyaml__,
        "data": data,
        "dumped": yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=True),
    }

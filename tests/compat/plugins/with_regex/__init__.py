"""regex: Unicode properties, fuzzy matching, overlapped matches."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    import regex
    return {
        "greek": regex.findall(r"\p{Greek}+", "abc αβγ def δ"),
        "fuzzy": bool(regex.fullmatch(r"(?:sandbox){e<=1}", "sandbix")),
        "overlapped": regex.findall(r"\d\d", "12345", overlapped=True),
    }

"""myplugin's tests, run by its CI job with plugbox's pytest plugin:
    pytest -p plugbox.pytest --plugbox-plugin myplugin \
        --plugbox-policy policies/myplugin.policy tests/
Each plugbox_call runs in a sandboxed worker under that policy; a call the
policy refuses fails the test with the syscall and the rule."""


def test_summarize(plugbox_call):
    assert plugbox_call("summarize", "the quick brown fox") == {"words": 4, "longest": "quick"}


def test_as_json(plugbox_call):
    assert plugbox_call("as_json", {"b": 1, "a": [True, None]}) == '{"a": [true, null], "b": 1}'

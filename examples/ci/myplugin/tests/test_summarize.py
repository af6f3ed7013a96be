"""myplugin's own tests. plugbox's pytest plugin runs them inside a worker
of myplugin, under policies/myplugin.policy, as the CI jobs do:
    pytest -p plugbox.pytest --plugbox-plugin myplugin \
        --plugbox-policy policies/myplugin.policy myplugin/tests/
In there they import what the plugin imports (myplugin, its vendored
dependencies, the standard library), and a system call the policy kills
fails the test with the syscall, the rule and this file's stack."""

import socket

import myplugin


def test_counts_words():
    assert myplugin.summarize("the quick brown fox") == {"words": 4, "longest": "quick"}


def test_empty_text():
    assert myplugin.summarize("") == {"words": 0, "longest": ""}


def test_the_policy_lets_it_open_tcp_sockets():
    # policies/myplugin.policy allows outbound TCP for the metrics it reports
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()


def test_the_policy_refuses_unix_sockets():
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    except PermissionError:
        return
    raise AssertionError("an AF_UNIX socket was allowed")

"""The fork-server's rehearsal (worker/bootstrap.py's rehearse()).

Before it clones anything, the fork-server runs the plugin-independent part
of a child's start-up on the standard library's `urllib` package and a body
of its own, so that its children copy fewer of its pages (docs/performance.md,
"Idle PSS"), then undoes it. A worker cloned from it, or forked from a zygote
cloned from it, must find the interpreter as an exec'd worker does: no
`urllib` imported, no rehearsal export, the cache tag, meta path, path hooks,
sys.path and the glue's state its own.
"""

import pytest

from pbserve import serve, sockdir  # noqa: F401 (fixtures used by name)


def leftovers(serve, plugins, *options):
    d = serve(plugins, *options)
    conn = d.conn()
    conn.call(1, "slow", "leftovers")
    reply = conn.recv()
    d.stop()
    assert reply["body"] == "result", reply
    return reply["value"]


@pytest.fixture
def plugins(copy_plugins, paths):
    return copy_plugins(paths.plugins / "zygote")


@pytest.mark.parametrize("spawn", ["fork-server", "shared-zygote"])
def test_a_cloned_worker_finds_nothing_of_the_rehearsal(serve, plugins, spawn):
    exec_d = leftovers(serve, plugins)
    cloned = leftovers(serve, plugins, "--spawn", spawn)
    assert not exec_d["urllib"] and exec_d["state"] == "slow", exec_d
    assert "_plugbox_rehearsal" not in cloned["exports"], cloned
    assert cloned == exec_d, (cloned, exec_d)

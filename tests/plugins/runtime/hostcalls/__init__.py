"""hostcalls: calls from the plugin into the host (plugbox.host)."""

import threading

import plugbox


@plugbox.export
def ask(name, *args):
    return plugbox.host_call(name, *args)


@plugbox.export
def add_via_host(a, b):
    return plugbox.host.add(a, b)


@plugbox.export
def nested(n):
    # The host's "recurse" calls nested(n - 1) back in this worker.
    if n == 0:
        return "bottom"
    return plugbox.host.recurse(n)


@plugbox.export
def ungranted():
    try:
        plugbox.host.secret()
    except Exception as e:
        return [type(e).__name__, str(e)]
    return ["no exception", ""]


@plugbox.export
def from_thread():
    seen = []

    def target():
        try:
            plugbox.host.add(1, 2)
        except Exception as e:
            seen.append(type(e).__name__)
        else:
            seen.append("no exception")

    t = threading.Thread(target=target)
    t.start()
    t.join()
    return seen[0]


@plugbox.export
def depth_probe(n):
    return n

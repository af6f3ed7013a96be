"""Core dumps write the worker's memory to disk: RLIMIT_CORE must be 0, and
raising it must fail."""

import resource

import plugbox


@plugbox.export
def attack(ctx):
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    how = f"RLIMIT_CORE is ({soft}, {hard})"
    if soft != 0:
        return {"contained": False, "how": how}
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    except (OSError, ValueError) as e:
        return {"contained": True, "how": f"{how}; raising it -> {e}"}
    raised = resource.getrlimit(resource.RLIMIT_CORE)
    return {"contained": raised[0] == 0, "how": f"{how}; raising it to the hard limit worked: {raised}"}

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
    # Above the hard limit: only CAP_SYS_RESOURCE may (the soft one may rise
    # to the hard one, which is 0 too).
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError) as e:
        return {"contained": True, "how": f"{how}; raising it -> {e}"}
    raised = resource.getrlimit(resource.RLIMIT_CORE)
    return {"contained": raised[0] == 0, "how": f"{how}; raising it to unlimited worked: {raised}"}

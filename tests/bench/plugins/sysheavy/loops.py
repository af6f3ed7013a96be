"""loops.py - cheap syscalls in a tight loop, timed inside the process
(time.perf_counter around each loop, so no IPC is counted). Run by the
sysheavy plugin under plugbox's filter and by a bare python3.11 -I -S
without one. Returns the median nanoseconds per iteration of each loop:
  noop     abs(0): the loop and a builtin call, no syscall
  getppid  os.getppid(): a syscall the policy allows without conditions
           (the kernel's seccomp action cache can skip the filter)
  fcntl    os.get_inheritable(0), i.e. fcntl(0, F_GETFD): allowed only
           when its argument matches, so the filter runs every time
Neither syscall is one Landlock hooks. The loops are short and taken in
turns, many times: on a busy machine a loop that got preempted is an
outlier the median ignores."""

import os
import time


def _time(fn, arg, n):
    clock = time.perf_counter
    if arg is None:
        t = clock()
        for _ in range(n):
            fn()
        return clock() - t
    t = clock()
    for _ in range(n):
        fn(arg)
    return clock() - t


def measure(n, reps):
    loops = {"noop": (abs, 0), "getppid": (os.getppid, None), "fcntl": (os.get_inheritable, 0)}
    samples = {name: [] for name in loops}
    for name, (fn, arg) in loops.items():
        _time(fn, arg, n)
    for _ in range(reps):
        for name, (fn, arg) in loops.items():
            samples[name].append(_time(fn, arg, n))
    out = {}
    for name, v in samples.items():
        v.sort()
        out[name + "_ns"] = v[len(v) // 2] / n * 1e9
    return out

"""mp_pingpong.py - the bench's multiprocessing.Pipe baseline (tests/bench):
what a Python user reaches for to call into another process. A parent
sends an int over multiprocessing.Pipe, a child process sends it back.

  python3 mp_pingpong.py N WARMUP

prints one line of JSON: {"median_us": ..., "p99_us": ..., "n": N}."""

import json
import math
import multiprocessing
import sys
import time


def echo(conn):
    while True:
        x = conn.recv()
        if x is None:
            return
        conn.send(x)


def main():
    n, warmup = int(sys.argv[1]), int(sys.argv[2])
    ours, theirs = multiprocessing.Pipe()
    child = multiprocessing.Process(target=echo, args=(theirs,))
    child.start()
    for i in range(warmup):
        ours.send(i)
        ours.recv()
    clock = time.perf_counter_ns
    samples = [0] * n
    for i in range(n):
        t = clock()
        ours.send(i)
        ours.recv()
        samples[i] = clock() - t
    ours.send(None)
    child.join()
    samples.sort()
    mid = samples[n // 2] if n % 2 else (samples[n // 2 - 1] + samples[n // 2]) / 2
    p99 = samples[max(0, math.ceil(0.99 * n) - 1)]
    print(json.dumps({"median_us": mid / 1000, "p99_us": p99 / 1000, "n": n}))


if __name__ == "__main__":
    main()

"""n TCP connects to 127.0.0.1:port, each on a new socket: the median and
mean microseconds of connect() alone (socket and close are not timed)."""

import socket
import time


def measure(port, n):
    times = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t0 = time.perf_counter_ns()
        s.connect(("127.0.0.1", port))
        times.append(time.perf_counter_ns() - t0)
        s.close()
    times.sort()
    return {"median_us": times[len(times) // 2] / 1e3, "mean_us": sum(times) / len(times) / 1e3}

"""threads: plugins may start threads (clone with CLONE_THREAD)."""

import threading
from concurrent.futures import ThreadPoolExecutor

import plugbox


def _work(n):
    return sum(range(n))


@plugbox.export
def run(count, n):
    results = [None] * count

    def target(i):
        results[i] = [threading.get_ident() != main_ident, _work(n)]

    main_ident = threading.get_ident()
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with ThreadPoolExecutor(max_workers=2) as pool:
        pooled = list(pool.map(_work, [n] * count))
    return {"threads": results, "pool": pooled}

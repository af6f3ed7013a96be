"""A memory bomb: allocate and touch 64 MiB at a time, up to 4 GiB. A
memory limit must stop it first (MemoryError here, or the worker killed)."""

import plugbox

CHUNK = 64 << 20
CAP = 4 << 30


@plugbox.export
def attack(ctx):
    chunks, total = [], 0
    print(f"[about to allocate up to {CAP >> 20} MiB]", flush=True)
    try:
        while total < CAP:
            block = bytearray(CHUNK)
            block[::4096] = b"\1" * (CHUNK // 4096)   # touch every page: make it real memory
            chunks.append(block)
            total += CHUNK
    except MemoryError:
        chunks.clear()
        return {"contained": True, "how": f"MemoryError after {total >> 20} MiB"}
    chunks.clear()
    return {"contained": False, "how": f"allocated and touched {total >> 20} MiB, nothing stopped it"}

"""numpy through OpenBLAS (Debian reaches it through /etc/alternatives):
matmul, svd, fft, and a product large enough for OpenBLAS's threads."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    import numpy as np
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    b = np.array([[5.0, 6.0], [7.0, 8.0]])
    big = np.ones((600, 600))
    return {
        "version": np.__version__,
        "file": np.__file__,
        "matmul": (a @ b).tolist(),
        "svd": [round(s, 9) for s in np.linalg.svd(np.diag([3.0, 4.0, 2.0]), compute_uv=False).tolist()],
        "solve": np.linalg.solve(a, np.array([5.0, 11.0])).round(9).tolist(),
        "fft": np.fft.fft(np.array([1.0, 0.0, 0.0, 0.0])).real.tolist(),
        "rfft_peak": int(np.argmax(np.abs(np.fft.rfft(np.sin(2 * np.pi * 5 * np.arange(64) / 64))))),
        # OpenBLAS splits a product this size across its threads.
        "big_matmul": float((big @ big)[17, 42]),
        "big_trace": float(np.trace(big @ big)),
    }

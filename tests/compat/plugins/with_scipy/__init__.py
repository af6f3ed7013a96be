"""scipy: an optimiser (Fortran L-BFGS-B through LAPACK) and sparse algebra."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    import numpy as np
    from scipy import optimize, sparse
    from scipy.sparse.linalg import spsolve
    best = optimize.minimize(optimize.rosen, [1.3, 0.7, 0.8], method="L-BFGS-B")
    root = optimize.brentq(lambda x: x ** 3 - 2, 0, 2)
    m = sparse.csr_matrix(np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 0.0, 2.0]]))
    x = spsolve(m.tocsc(), np.array([1.0, 2.0, 4.0]))
    return {
        "minimum": [round(v, 4) for v in best.x.tolist()],
        "success": bool(best.success),
        "cbrt2": round(root, 9),
        "nnz": int(m.nnz),
        "matvec": (m @ np.array([1.0, 1.0, 1.0])).tolist(),
        "spsolve": [round(v, 9) for v in x.tolist()],
    }

"""EASE's N x N solve: torch's in-place Cholesky (what prismrec uses) vs scipy's LAPACK.

Each (solver, size) runs in its own process: the Gram matrix of a random binary user x item
matrix (20 items per user, 2N users) plus lam I, then the factor and the inverse. Reports wall
and CPU seconds and the peak RSS above the process's RSS with the Gram matrix built. Writes
the `ease` section of docs/benchmarks.md.

    python bench/ease_solver.py [--sizes 4000,8000] [--torch-sizes 20000] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _report import command, machine, markdown_table, write_section

SOLVERS = {
    "torch": "torch.linalg.cholesky_ex + cholesky_inverse, in place, float64 (prismrec)",
    "scipy": "scipy potrf + potri, OpenBLAS default threads",
    "scipy-1": "scipy potrf + potri, OpenBLAS pinned to 1 thread (threadpoolctl)",
}


def child(solver: str, n: int, threads: int) -> dict:
    import resource
    import time

    import numpy as np
    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x_rows = np.repeat(np.arange(2 * n), 20)
    x_cols = rng.integers(0, n, size=len(x_rows))
    import scipy.sparse as sp

    x = sp.csr_matrix((np.ones(len(x_rows)), (x_rows, x_cols)), shape=(2 * n, n))
    x.data[:] = 1.0
    g = np.ascontiguousarray((x.T @ x).toarray())
    g[np.diag_indices(n)] += 50.0
    from scipy.linalg import get_lapack_funcs
    from threadpoolctl import threadpool_limits

    from prismrec.models.item_item import ease_weights

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    if solver == "torch":
        g[np.diag_indices(n)] -= 50.0
        ease_weights(g, 50.0, overwrite=True)
    else:
        with threadpool_limits(1 if solver == "scipy-1" else None, user_api="blas"):
            potrf, potri = get_lapack_funcs(("potrf", "potri"), (g,))
            c, _ = potrf(g.T, lower=True, overwrite_a=True)
            potri(c, lower=True, overwrite_c=True)
    return {"wall s": time.perf_counter() - t0, "CPU s": time.process_time() - c0,
            "extra peak MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base,
            "Gram MB": 8 * n * n / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="4000,8000")
    ap.add_argument("--torch-sizes", default="")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], int(a.child[1]), a.threads)))
        return
    plan = [(s, int(n)) for n in a.sizes.split(",") if n for s in SOLVERS]
    plan += [("torch", int(n)) for n in a.torch_sizes.split(",") if n]
    rows = []
    for solver, n in plan:
        load0 = os.getloadavg()[0]
        done = subprocess.run([sys.executable, __file__, "--threads", str(a.threads), "--child",
                               solver, str(n)], capture_output=True, text=True)
        row = {"items": n, "solver": SOLVERS[solver]}
        if done.returncode != 0:
            row["result"] = f"process ended with code {done.returncode}"
        else:
            row.update({k: round(v, 1) for k, v in json.loads(done.stdout).items()})
            row["result"] = "ok"
        row["load avg"] = f"{load0:.1f}-{os.getloadavg()[0]:.1f}"
        rows.append(row)
        print(row, flush=True)
    body = "\n".join([
        "## EASE solver: torch in place vs scipy", "",
        f"`{command()}` on {machine()}. The machine was shared with other engineers' jobs "
        "('load avg' at start and end of each solve; above 2 means other work competed for "
        "the 2 cores), so compare CPU seconds and the rows of one run. Issue 16 reported "
        "scipy 1.17.1's OpenBLAS `potrf` crashing with SIGSEGV near 16,000 items with its "
        "default threads on this kind of machine; this run does not reproduce that size for "
        "scipy. prismrec solves with torch (MKL LAPACK in the CPU wheel), in the Gram "
        "matrix's own memory: 'extra peak MB' is the memory the solve adds on top of it.", "",
        markdown_table(rows, ["items", "solver", "wall s", "CPU s", "Gram MB", "extra peak MB",
                              "result", "load avg"])])
    if a.write:
        write_section("ease", body)
    print(body)


if __name__ == "__main__":
    main()

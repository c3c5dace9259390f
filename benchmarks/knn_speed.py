"""Nearest-neighbour search for ALVIN's anchor search: our tiled exact search against the
floor (one float32 GEMM of the whole query x pool product + argpartition), FAISS flat and
FAISS IVF (with its recall against exact), in one process, interleaved, median of repeats.

    .venv/bin/python benchmarks/knn_speed.py                       # N = 100k and 1M
    .venv/bin/python benchmarks/knn_speed.py --sizes 100000 --queries 1500

Workload: N pool points and Q anchor queries in d = 384 from a mixture of 50 Gaussian
clusters (structure like sentence embeddings have, so IVF's cells mean something), k = 10.
The floor materialises the full Q x N distance matrix (Q * N * 4 bytes) and is skipped
when that exceeds ``--floor-max-gb``. Prints seconds, the ratio to ours, and the peak
RSS of the process (cumulative: the largest so far).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from anchoral.index import exact_knn, faiss_flat_knn, faiss_ivf_knn, recall_at_k  # noqa: E402


def workload(n: int, n_queries: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.0, size=(50, d)).astype(np.float32)
    pool = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        pool[start:stop] = centres[rng.integers(50, size=stop - start)]
        pool[start:stop] += rng.normal(scale=0.5, size=(stop - start, d)).astype(np.float32)
    queries = pool[rng.choice(n, size=n_queries, replace=False)] + rng.normal(scale=0.3, size=(n_queries, d)).astype(np.float32)
    return pool, queries.astype(np.float32)


def floor(queries: np.ndarray, pool: np.ndarray, k: int):
    """GEMM of everything, then argpartition of every row: the issue's reference figure."""
    distances = queries @ pool.T
    distances *= -2
    distances += np.einsum("ij,ij->i", pool, pool)[None, :]
    return np.argpartition(distances, k - 1, axis=1)[:, :k]


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--queries", type=int, default=1500)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--floor-max-gb", type=float, default=2.5)
    parser.add_argument("--skip-flat-above", type=int, default=200_000, help="FAISS flat only up to this N")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    print(f"queries {args.queries}, d {args.dim}, k {args.k}, median of {args.repeats}")
    print(f"{'N':>9} {'method':<22} {'seconds':>8} {'vs ours':>8} {'recall@k':>9} {'peak RSS GB':>12}")
    for n in [int(s) for s in args.sizes.split(",")]:
        pool, queries = workload(n, args.queries, args.dim)
        methods = {"ours (tiled exact)": lambda: exact_knn(queries, pool, args.k)[1]}
        if args.queries * n * 4 / 2**30 <= args.floor_max_gb:
            methods["floor (GEMM+argpart)"] = lambda: floor(queries, pool, args.k)
        if n <= args.skip_flat_above:
            methods["faiss flat"] = lambda: faiss_flat_knn(queries, pool, args.k)[1]
        methods["faiss ivf (nprobe 32)"] = lambda: faiss_ivf_knn(queries, pool, args.k)[1]
        times: dict[str, list[float]] = {name: [] for name in methods}
        results = {}
        for _ in range(args.repeats):
            for name, run in methods.items():
                started = time.perf_counter()
                results[name] = run()
                times[name].append(time.perf_counter() - started)
        exact = results["ours (tiled exact)"]
        ours = statistics.median(times["ours (tiled exact)"])
        for name in methods:
            seconds = statistics.median(times[name])
            found = results[name]
            recall = recall_at_k(np.sort(found, axis=1), np.sort(exact, axis=1))
            print(f"{n:>9} {name:<22} {seconds:>8.3f} {seconds / ours:>7.2f}x {recall:>9.4f} {peak_rss_gb():>12.2f}")
        print(f"{n:>9} pool matrix {pool.nbytes / 2**30:.2f} GB")
        del pool, queries, results
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()

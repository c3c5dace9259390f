"""ALVIN on a memory-mapped pool of up to 1,000,000 points: selection time and peak memory.

Each pool size runs in a fresh child process, so its peak RSS (``ru_maxrss``, which counts
the pages of the memory-mapped feature file it reads) is its own. The workload is
``select_speed.py``'s (d = 384, two classes, 200 labeled examples, a real MLPHead trained
on labels a quarter of which are flipped, so ALVIN infers about 50 minority examples)
with K = 30 anchors per pair: about 1,500 anchors. The features are written to a .npy
file block by block and opened with ``mmap_mode="r"``, as the embedding cache hands
them out.

    .venv/bin/python benchmarks/alvin_scale.py                  # N = 100k and 1M
    .venv/bin/python benchmarks/alvin_scale.py --sizes 1000000

Prints, per N: model inference over the pool (predict_proba + embed, cached in the
RoundState), ALVIN's selection alone, the anchor count, peak RSS, the feature matrix's
size and their ratio (issue 6's target at 1M: selection <= 10 s, peak <= 2.5x the matrix).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

BLOCK = 100_000


def write_pool(path: Path, size: int, seed: int = 0) -> np.ndarray:
    """select_speed's two-Gaussian pool, written block by block; returns the labels."""
    from select_speed import CLASS_SHIFT, N_FEATURES

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size)
    direction = rng.normal(size=N_FEATURES)
    direction /= np.linalg.norm(direction)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, N_FEATURES))
    for start in range(0, size, BLOCK):
        stop = min(size, start + BLOCK)
        block = rng.normal(size=(stop - start, N_FEATURES)).astype(np.float32)
        block += ((2 * labels[start:stop] - 1)[:, None] * CLASS_SHIFT * direction).astype(np.float32)
        out[start:stop] = block
    out.flush()
    del out
    return labels


def child(path: str, labels_path: str) -> dict:
    from select_speed import FIT_EPOCHS, FIT_LEARNING_RATE, noisy_labels, stratified_labeled

    from anchoral.models import MLPHead
    from anchoral.strategies import RoundState, make_strategy

    features = np.load(path, mmap_mode="r")
    labels = np.load(labels_path)
    labeled = stratified_labeled(labels)
    noisy = noisy_labels(labels[labeled])
    model = MLPHead(2, seed=0, max_epochs=FIT_EPOCHS, learning_rate=FIT_LEARNING_RATE)
    report = model.fit(np.asarray(features[labeled]), noisy)
    state = RoundState(features=features, labeled_indices=labeled, labeled_labels=noisy, model=model,
                       fit_report=report, n_classes=2)
    started = time.perf_counter()
    state.pool_probabilities, state.pool_embeddings  # noqa: B018 (warm the per-round caches)
    inference = time.perf_counter() - started
    started = time.perf_counter()
    selection = make_strategy("alvin", n_anchors_per_pair=30).select(state, 100, np.random.default_rng(0))
    select_seconds = time.perf_counter() - started
    return {
        "n": int(features.shape[0]),
        "inference_seconds": inference,
        "select_seconds": select_seconds,
        "anchors": int(selection.diagnostics["n_anchors"]),
        "fallbacks": len(selection.diagnostics["fallbacks"]),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "feature_bytes": int(features.nbytes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    print(f"load average at start: {os.getloadavg()}")
    print(f"{'N':>9} {'inference s':>12} {'ALVIN select s':>15} {'anchors':>8} {'peak RSS GB':>12} "
          f"{'features GB':>12} {'peak/features':>14}")
    with tempfile.TemporaryDirectory() as directory:
        for size in [int(s) for s in args.sizes.split(",")]:
            path, labels_path = Path(directory) / f"pool-{size}.npy", Path(directory) / f"labels-{size}.npy"
            np.save(labels_path, write_pool(path, size))
            output = subprocess.run([sys.executable, __file__, "--child", str(path), str(labels_path)],
                                    check=True, capture_output=True, text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            print(f"{row['n']:>9} {row['inference_seconds']:>12.2f} {row['select_seconds']:>15.2f} "
                  f"{row['anchors']:>8} {row['peak_rss_bytes'] / 2**30:>12.2f} {row['feature_bytes'] / 2**30:>12.2f} "
                  f"{row['peak_rss_bytes'] / row['feature_bytes']:>13.2f}x"
                  + (f"  ({row['fallbacks']} fallback(s))" if row["fallbacks"] else ""))
            path.unlink()
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()

"""A 1M-pool selection through Ray next to the local path, on this machine.

The pool: N float32 rows of d = 384 (two overlapping Gaussian classes, the workload of
``select_speed.py``), written once in chunks to a temporary ``.npy`` file and opened
memory-mapped, as the embedding cache returns features. 200 labeled examples (a quarter
with flipped labels) fit a real MLPHead for 2 epochs, so ALVIN infers ~50 minority
examples and builds ~750 anchors from them. Then, in one fresh process per path:

- ``local``: ``RoundState(features, ...)``, everything in that process;
- ``ray``: the same with ``executor=RayExecutor(num_cpus=...)`` (a local instance):
  the fitted model and the pool are put in the object store once, predict_proba and
  embed run as one task per block of 65,536 rows, ALVIN's anchor search as one task
  per block of anchors over the unlabeled rows of the embeddings.

Each path times entropy and ALVIN selections of b = 100 on a fresh RoundState (so each
includes the pool-wide prediction it needs), checks that Ray picks the same indices,
and reports peak RSS:

- driver: ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the process that selects;
- Ray workers (ray path only): the largest and the sum of ``VmHWM`` (peak RSS) over the
  processes Ray started (``/proc/<pid>/status``, read before shutdown). A worker's RSS
  counts the object-store pages it reads in place (shared, zero-copy), so the sum
  counts shared pages once per worker that touched them and overstates real memory.

    .venv/bin/python benchmarks/ray_scale.py [--size 1000000] [--num-cpus 2] [--batch 100]
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

from select_speed import CLASS_SHIFT, FIT_EPOCHS, FIT_LEARNING_RATE, N_FEATURES, noisy_labels, stratified_labeled

CHUNK_ROWS = 100_000
STRATEGIES = ("entropy", "alvin")


def write_pool(path: Path, size: int, seed: int = 0) -> np.ndarray:
    """Write the pool's features to ``path`` (``.npy``) chunk by chunk; return the true labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size)
    direction = rng.normal(size=N_FEATURES)
    direction = (direction / np.linalg.norm(direction) * CLASS_SHIFT).astype(np.float32)
    features = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, N_FEATURES))
    for start in range(0, size, CHUNK_ROWS):
        chunk = rng.standard_normal((min(CHUNK_ROWS, size - start), N_FEATURES), dtype=np.float32)
        chunk += (2 * labels[start : start + len(chunk)] - 1)[:, None].astype(np.float32) * direction
        features[start : start + len(chunk)] = chunk
    features.flush()
    del features
    return labels


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def ray_process_peaks_mib() -> list[float]:
    """VmHWM (peak RSS) of every process below this one (Ray's GCS, raylet and workers), from /proc."""
    parents, peaks = {}, {}
    for status_file in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status_file.read_text().splitlines() if ":" in line)
        except OSError:  # the process ended meanwhile
            continue
        pid = int(status_file.parent.name)
        parents[pid] = int(fields["PPid"])
        if "VmHWM" in fields:
            peaks[pid] = int(fields["VmHWM"].split()[0]) / 1024

    def descends_from_here(pid: int) -> bool:
        while pid in parents and pid > 1:
            pid = parents[pid]
            if pid == os.getpid():
                return True
        return False

    return [peak for pid, peak in peaks.items() if descends_from_here(pid)]


def run_path(path: str, pool_file: Path, labels_file: Path, batch: int, num_cpus: int) -> dict:
    """Fit the head and time each strategy's selection on one path; runs in its own process."""
    from anchoral.execution import RayExecutor
    from anchoral.models import MLPHead
    from anchoral.strategies import RoundState, make_strategy

    features = np.load(pool_file, mmap_mode="r")
    labels = np.load(labels_file)
    labeled = stratified_labeled(labels)
    labeled_labels = noisy_labels(labels[labeled])
    model = MLPHead(2, max_epochs=FIT_EPOCHS, stop_loss_ratio=0, learning_rate=FIT_LEARNING_RATE)
    report = model.fit(np.asarray(features[labeled]), labeled_labels)
    result = {"path": path, "seconds": {}, "selected": {}, "diagnostics": {}}

    executor = None
    if path == "ray":
        started = time.perf_counter()
        executor = RayExecutor(num_cpus=num_cpus)
        executor.map(_import_torch, range(num_cpus))  # start the workers before timing
        result["seconds"]["ray start + worker warm-up"] = time.perf_counter() - started
    for name in STRATEGIES:
        state = RoundState(features, labeled, labeled_labels, model, report, 2, executor=executor)
        started = time.perf_counter()
        selection = make_strategy(name).select(state, batch, np.random.default_rng(0))
        result["seconds"][name] = time.perf_counter() - started
        result["selected"][name] = selection.indices.tolist()
        if name == "alvin":
            result["diagnostics"] = {key: selection.diagnostics[key] for key in ("n_anchors", "candidate_set_size")}
    result["driver_peak_rss_mib"] = peak_rss_mib()
    if executor is not None:
        peaks = ray_process_peaks_mib()
        result["ray_processes"] = len(peaks)
        result["ray_max_peak_rss_mib"] = max(peaks, default=0.0)
        result["ray_sum_peak_rss_mib"] = sum(peaks)
        executor.close()
    return result


def _import_torch(_):
    import torch

    return torch.get_num_threads()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000, help="pool size N")
    parser.add_argument("--batch", type=int, default=100, help="batch size b")
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count(), help="CPUs of the local Ray instance")
    parser.add_argument("--path", choices=("local", "ray"), help=argparse.SUPPRESS)  # one path, in a child process
    parser.add_argument("--pool", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.path:
        result = run_path(arguments.path, arguments.pool, arguments.pool.with_suffix(".labels.npy"),
                          arguments.batch, arguments.num_cpus)
        print(json.dumps(result))
        return

    with tempfile.TemporaryDirectory(prefix="ray-scale-") as directory:
        pool = Path(directory) / "pool.npy"
        started = time.perf_counter()
        np.save(pool.with_suffix(".labels.npy"), write_pool(pool, arguments.size))
        feature_mib = pool.stat().st_size / 2**20
        print(f"pool: {arguments.size:,} x {N_FEATURES} float32 = {feature_mib:,.0f} MiB, memory-mapped "
              f"(written in {time.perf_counter() - started:.1f} s); b = {arguments.batch}; "
              f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}", flush=True)
        results = {}
        for path in ("local", "ray"):
            command = [sys.executable, __file__, "--path", path, "--pool", str(pool), "--size", str(arguments.size),
                       "--batch", str(arguments.batch), "--num-cpus", str(arguments.num_cpus)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results[path] = json.loads(output.strip().splitlines()[-1])
            print(f"{path}: done (load average {os.getloadavg()[0]:.2f})", flush=True)

    local, distributed = results["local"], results["ray"]
    print(f"\nALVIN: {local['diagnostics']['n_anchors']} anchors, "
          f"{local['diagnostics']['candidate_set_size']} candidates")
    print(f"{'':<28} | {'local':>10} | {f'ray ({arguments.num_cpus} CPUs)':>14} | same picks")
    for name in ("ray start + worker warm-up", *STRATEGIES):
        same = "" if name not in STRATEGIES else str(local["selected"][name] == distributed["selected"][name])
        local_seconds = f"{local['seconds'][name]:.2f} s" if name in local["seconds"] else "-"
        print(f"{name:<28} | {local_seconds:>10} | {distributed['seconds'][name]:>12.2f} s | {same}")
    print(f"{'driver peak RSS':<28} | {local['driver_peak_rss_mib']:>6,.0f} MiB | "
          f"{distributed['driver_peak_rss_mib']:>10,.0f} MiB |")
    print(f"{'Ray processes peak RSS':<28} | {'-':>10} | max {distributed['ray_max_peak_rss_mib']:,.0f} MiB, "
          f"sum {distributed['ray_sum_peak_rss_mib']:,.0f} MiB over {distributed['ray_processes']} processes")
    print(f"(feature matrix: {feature_mib:,.0f} MiB)")


if __name__ == "__main__":
    main()

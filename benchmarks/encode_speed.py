"""Encoding throughput: our MiniLM encoder against raw sentence-transformers, and the int8 ONNX encoder.

On ``--n`` real VADER sentences (all four domains, drawn at random with ``--seed``) it
times, in one process and interleaved (the order rotates every repeat), the median of
``--repeats`` runs of:

- raw: ``SentenceTransformer(str(bundled_model_dir()), device="cpu").encode(texts, batch_size=64)``
  (sorts by length internally; torch's default intra-op thread count);
- ours: ``MiniLMEncoder().encode(texts)`` (defaults, progress bar included), and
  ``MiniLMEncoder(num_threads=k)`` for every ``k`` in ``--threads`` other than the
  default's (torch's own thread count);
- int8: ``MiniLMInt8Encoder(num_threads=k)`` for every ``k`` in ``--threads`` (skipped with
  a note when ``anchoral[onnx]`` is not installed).

It prints sentences/s, wall and process-CPU seconds, the thread count each used, the
ratio to raw, the int8 model's cosine similarity to the float model (min and mean over
the sentences), and the load average (as ``uptime`` shows it) before and after every
round, since on a shared machine the figures move with it.

    .venv/bin/python benchmarks/encode_speed.py [--n 2000] [--repeats 3] [--threads 1,2] [--seed 0]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time

import numpy as np
import torch

from anchoral.data.vader import load_vader
from anchoral.encoders.minilm import (
    MiniLMEncoder,
    _forbid_hub_access,
    bundled_model_dir,
)

BATCH_SIZE = 64


def load_average() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def sample_sentences(n: int, seed: int) -> list[str]:
    frame = load_vader()
    if not 0 < n <= len(frame):
        raise SystemExit(f"--n must be between 1 and {len(frame)} (the VADER sentences); got {n}")
    rows = np.random.default_rng(seed).choice(len(frame), n, replace=False)
    return frame["text"].to_numpy()[rows].tolist()


class Contender:
    """One way of encoding the sentences, with its timings."""

    def __init__(self, name: str, threads: str, run):
        self.name, self.threads, self.run = name, threads, run
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.output = None

    def time_once(self, texts: list[str]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        output = self.run(texts)
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)
        self.output = np.asarray(output, dtype=np.float32)


def build_contenders(thread_counts: list[int]) -> tuple[list[Contender], str | None]:
    _forbid_hub_access()
    from sentence_transformers import SentenceTransformer

    raw_model = SentenceTransformer(str(bundled_model_dir()), device="cpu")
    default_threads = torch.get_num_threads()

    def raw(texts):
        return raw_model.encode(texts, batch_size=BATCH_SIZE)

    ours = MiniLMEncoder()
    # The progress bar is part of what ``encode`` costs; its drawing goes to a buffer, not the table.
    def ours_default(texts):
        with contextlib.redirect_stdout(io.StringIO()):
            return ours.encode(texts)

    ours_threads = ours.num_threads or default_threads  # None: torch's own setting
    contenders = [
        Contender("raw sentence-transformers", f"torch {default_threads} (default)", raw),
        Contender("ours: MiniLMEncoder()", f"torch {ours_threads}" + (" (default)" if ours.num_threads is None else ""),
                  ours_default),
    ]
    for count in thread_counts:
        if count != ours_threads:
            other = MiniLMEncoder(num_threads=count)
            contenders.append(Contender(f"ours: MiniLMEncoder(num_threads={count})", f"torch {count}",
                                        lambda texts, other=other: other.encode(texts, progress=False)))
    try:
        from anchoral.encoders.minilm_int8 import MiniLMInt8Encoder

        for count in thread_counts:
            int8 = MiniLMInt8Encoder(num_threads=count)
            contenders.append(Contender(f"int8 ONNX: MiniLMInt8Encoder(num_threads={count})",
                                        f"onnxruntime {count} (torch unused)",
                                        lambda texts, int8=int8: int8.encode(texts, progress=False)))
        skipped = None
    except ImportError as exc:
        skipped = f"int8 encoder skipped: {exc}"
    return contenders, skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="number of VADER sentences (default 2000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per contender; the median is reported")
    parser.add_argument("--threads", default="1,2", help="thread counts to time for ours and int8, comma-separated")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sentence sample")
    args = parser.parse_args()
    thread_counts = [int(count) for count in args.threads.split(",")]

    texts = sample_sentences(args.n, args.seed)
    contenders, skipped = build_contenders(thread_counts)
    print(f"{len(texts)} VADER sentences, mean {np.mean([len(t) for t in texts]):.0f} characters; "
          f"{os.cpu_count()} CPUs; torch {torch.__version__}; load average at start {load_average()}", flush=True)
    if skipped:
        print(skipped, flush=True)
    for contender in contenders:  # warm-up: model loading and first-call costs stay out of the timings
        contender.run(texts[:BATCH_SIZE])

    for repeat in range(args.repeats):
        shift = repeat % len(contenders)
        before = load_average()
        for contender in contenders[shift:] + contenders[:shift]:
            contender.time_once(texts)
            print(f"  round {repeat + 1}: {contender.name}: {contender.wall[-1]:.1f} s", flush=True)
        print(f"round {repeat + 1} load average: before {before}, after {load_average()}", flush=True)

    raw = contenders[0]
    raw_rate = len(texts) / statistics.median(raw.wall)
    float_reference = contenders[1].output
    print()
    print(f"| encoder | threads | sentences/s | wall s (median of {args.repeats}) | CPU s | x raw | "
          "cosine to float: min / mean |")
    print("|---|---|---|---|---|---|---|")
    for contender in contenders:
        wall = statistics.median(contender.wall)
        rate = len(texts) / wall
        cosine = np.sum(contender.output * float_reference, axis=1)
        print(f"| {contender.name} | {contender.threads} | {rate:.1f} | {wall:.2f} | "
              f"{statistics.median(contender.cpu):.2f} | {rate / raw_rate:.2f}x | "
              f"{cosine.min():.5f} / {cosine.mean():.5f} |")
    print(f"\nload average at end {load_average()}")
    ours_rate = len(texts) / statistics.median(contenders[1].wall)
    print(f"ours / raw throughput: {ours_rate / raw_rate:.2f}x (target >= 0.9x)")
    for contender in contenders[1:]:
        per_round = [raw_wall / wall for raw_wall, wall in zip(raw.wall, contender.wall)]
        print(f"{contender.name} / raw, round by round: {', '.join(f'{ratio:.2f}x' for ratio in per_round)}")
    print(f"max |ours - raw| over all coordinates: {np.abs(float_reference - raw.output).max():.2e}")


if __name__ == "__main__":
    main()

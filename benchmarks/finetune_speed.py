"""Time of one active-learning round with the fully fine-tuned transformer (CPU by default).

A round is what the loop does with the model: ``fit`` on the labeled set (from the
pretrained weights, until Tamkin's rule or the epoch cap, with one scoring pass over
the labeled texts per epoch) and then the pool inference every strategy needs
(``predict_proba`` over the pool, then ``embed``, which reuses that pass). Labeled sets
of 100, 500 and 1,000 real VADER sentences (movie, Amazon, tweets) are drawn at random;
the pool is another ``--pool`` sentences. Wall seconds and this process's CPU seconds
are both printed: on a shared machine the wall time also counts waiting for a core.

Peer run in the same process: the fast default, an ``MLPHead`` over frozen MiniLM
features, doing the same round on the same texts (the pool is encoded once, timed apart).

    .venv/bin/python benchmarks/finetune_speed.py [--sizes 100,500,1000] [--pool 5000]
        [--max-epochs 20] [--threads 1] [--device cpu] [--seed 0]

On a GPU machine, ``--device cuda`` times the same rounds there (CPU columns then count
only the host's share).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from anchoral.data.vader import load_vader
from anchoral.encoders.minilm import MiniLMEncoder
from anchoral.models import FineTunedTransformer, MLPHead


class Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def one_round(model, train_inputs, train_labels, pool_inputs) -> dict:
    with Clock() as fit_clock:
        report = model.fit(train_inputs, train_labels)
    with Clock() as pool_clock:
        model.predict_proba(pool_inputs)
        model.embed(pool_inputs)
    return {
        "epochs": report.epochs, "steps": report.steps, "stop": report.stop_reason, "final_loss": report.final_loss,
        "fit_wall": fit_clock.wall, "fit_cpu": fit_clock.cpu, "pool_wall": pool_clock.wall, "pool_cpu": pool_clock.cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,500,1000", help="labeled-set sizes, comma-separated")
    parser.add_argument("--pool", type=int, default=5000, help="pool size (texts scored every round)")
    parser.add_argument("--max-epochs", type=int, default=None, help="epoch cap (default: the model's, 20)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the model's, torch's own setting)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    frame = load_vader(("movie", "amazon", "tweets"))
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(frame), max(sizes) + args.pool, replace=False)
    texts = frame["text"].to_numpy()[rows].tolist()
    labels = frame["label"].to_numpy()[rows]
    pool_texts = texts[max(sizes) :]

    params = {"progress": False, "device": args.device, "seed": args.seed}
    if args.max_epochs is not None:
        params["max_epochs"] = args.max_epochs
    if args.threads is not None:
        params["num_threads"] = args.threads
    finetuned = FineTunedTransformer(2, **params)
    with Clock() as load_clock:
        width = finetuned.hidden_size  # loads the checkpoint
    with Clock() as encode_clock:
        features = MiniLMEncoder().encode(texts, progress=False)
    pool_features = features[max(sizes) :]
    print(f"checkpoint {finetuned.checkpoint.name} ({width}-d) on {finetuned.device}: loaded in {load_clock.wall:.1f} s; "
          f"max_epochs={finetuned.max_epochs}, threads={finetuned.num_threads}, pool={args.pool}")
    print(f"peer setup: MiniLM features of {len(texts)} texts in {encode_clock.wall:.1f} s (once per pool, cached on disk)")
    print()
    header = (f"{'labeled':>7} {'epochs':>6} {'steps':>5} {'stop':>10} {'fit s':>8} {'fit cpu':>8} {'s/step':>6} "
              f"{'pool s':>7} {'round s':>8} {'round cpu':>9} {'mlp round s':>11} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for size in sizes:
        result = one_round(finetuned, texts[:size], labels[:size], pool_texts)
        peer = one_round(MLPHead(2, seed=args.seed), features[:size], labels[:size], pool_features)
        round_wall = result["fit_wall"] + result["pool_wall"]
        round_cpu = result["fit_cpu"] + result["pool_cpu"]
        peer_wall = peer["fit_wall"] + peer["pool_wall"]
        print(f"{size:>7} {result['epochs']:>6} {result['steps']:>5} {result['stop']:>10} {result['fit_wall']:>8.1f} "
              f"{result['fit_cpu']:>8.1f} {result['fit_wall'] / result['steps']:>6.2f} {result['pool_wall']:>7.1f} "
              f"{round_wall:>8.1f} {round_cpu:>9.1f} {peer_wall:>11.2f} {round_wall / peer_wall:>6.0f}x", flush=True)


if __name__ == "__main__":
    main()

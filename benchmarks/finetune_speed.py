"""One active-learning round with the fine-tuned transformer: full fine-tuning against its
cheaper options, timed and scored on the same rounds (CPU by default).

A round is what the loop does with the model: ``fit`` on the labeled set (from the
pretrained weights, until Tamkin's rule or the epoch cap, with one scoring pass over the
labeled texts per epoch) and then the pool inference every strategy needs
(``predict_proba`` over the pool, then ``embed``, which reuses that pass).

Data: ``vader-shortcut`` (real VADER sentences; pool of ``--pool``, rho = 0.95). For each
labeled-set size, one random draw from the pool is the labeled set of every option; the
pool pass covers the whole pool. After the round, each fitted model is scored on the
benchmark's ID test set and its group-balanced OOD test set (accuracy, OOD accuracy,
worst-group accuracy), outside the timed round.

Options (``--options``, comma-separated):

    full          every weight trained (the papers' setting): the peer every ratio is taken against
    top<k>        train_layers=k: the top k layers + head, over cached frozen lower-layer states
    lpft          LP-FT (head fitted on frozen features first), then full fine-tuning
    lpft-top<k>   LP-FT, then the top k layers
    head          train_layers=0: the head alone on frozen features (a linear probe)

Any option may end in ``@<learning rate>`` (``top1@1e-4``) to fine-tune at that rate instead
of the paper's 2e-5 (LP-FT's head-only phase keeps its own ``lp_learning_rate``).

For the cached options the frozen states of the pool (which holds the labeled set) are
computed once before the first round (``cache_frozen_states``, printed as "fill s"): every
round after a run's first finds them cached, as the MLP head finds its MiniLM features.
The last row is the fast default (``MLPHead`` over frozen MiniLM features) on the same round.

Wall seconds and this process's CPU seconds are both printed, with the load average before
and after: on a shared machine the wall time also counts waiting for a core. Ratios are
full fine-tuning's round / the option's round, both measured in this run.

    .venv/bin/python benchmarks/finetune_speed.py [--sizes 500] [--pool 5000]
        [--options full,top1,top2,lpft,lpft-top1] [--max-epochs 20] [--threads 1] [--device cpu] [--seed 0]

On a GPU machine, ``--device cuda`` times the same rounds there (CPU columns then count
only the host's share).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

import numpy as np

from anchoral.data.benchmarks import load_benchmark
from anchoral.errors import ValidationError
from anchoral.experiments.encoded import encode_benchmark
from anchoral.experiments.simulate import BenchmarkEvaluator
from anchoral.models import FineTunedTransformer, MLPHead

OPTION = re.compile(r"^(full|head|lpft|top(\d+)|lpft-top(\d+))(@([0-9.eE+-]+))?$")


class Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def option_params(option: str) -> dict:
    """The FineTunedTransformer parameters an option name stands for."""
    match = OPTION.match(option)
    if match is None:
        raise ValidationError(f"unknown option {option!r}; expected full, head, lpft, top<k> or lpft-top<k>, "
                              "each optionally followed by @<learning rate>")
    name, rate = match.group(1), match.group(5)
    params = {} if rate is None else {"learning_rate": float(rate)}
    if name == "head":
        return {**params, "train_layers": 0}
    if name.startswith("lpft"):
        params["lp_ft"] = True
    if name.startswith(("top", "lpft-top")):
        params["train_layers"] = int(match.group(2) or match.group(3))
    return params


def one_round(model, train_inputs, train_labels, pool_inputs) -> dict:
    with Clock() as fit_clock:
        report = model.fit(train_inputs, train_labels)
    with Clock() as pool_clock:
        model.predict_proba(pool_inputs)
        model.embed(pool_inputs)
    return {
        "epochs": report.epochs, "steps": report.steps, "stop": report.stop_reason,
        "fit_wall": fit_clock.wall, "fit_cpu": fit_clock.cpu, "pool_wall": pool_clock.wall, "pool_cpu": pool_clock.cpu,
        "round_wall": fit_clock.wall + pool_clock.wall, "round_cpu": fit_clock.cpu + pool_clock.cpu,
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="500", help="labeled-set sizes, comma-separated")
    parser.add_argument("--pool", type=int, default=5000, help="pool size (texts scored every round)")
    parser.add_argument("--options", default="full,top1,top2,lpft,lpft-top1", help="options to time, comma-separated")
    parser.add_argument("--max-epochs", type=int, default=None, help="epoch cap (default: the model's, 20)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: the model's, torch's own setting)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        sizes = [int(size) for size in args.sizes.split(",")]
        options = sorted((option.strip() for option in args.options.split(",")), key=lambda option: not option.startswith("full"))
        params = {"progress": False, "device": args.device, "seed": args.seed}
        if args.max_epochs is not None:
            params["max_epochs"] = args.max_epochs
        if args.threads is not None:
            params["num_threads"] = args.threads
        models = {option: FineTunedTransformer(2, **params, **option_params(option)) for option in options}
    except (ValueError, ValidationError) as exc:
        sys.exit(f"error: {exc}")

    print(f"load average at start: {load_average()}")
    benchmark = load_benchmark("vader-shortcut", pool_size=args.pool)
    encoded = encode_benchmark(benchmark, progress=False)  # frozen MiniLM features for the MLP peer (disk cache)
    pool_texts = list(benchmark.pool.texts)
    rng = np.random.default_rng(args.seed)
    draws = {size: np.sort(rng.choice(args.pool, size, replace=False)) for size in sizes}
    with Clock() as load_clock:
        widths = {model.hidden_size for model in models.values()}  # loads every checkpoint copy before timing
    any_model = next(iter(models.values()))
    print(f"checkpoint {any_model.checkpoint.name} ({widths.pop()}-d) on {any_model.device}, {len(models)} copies "
          f"loaded in {load_clock.wall:.1f} s; "
          f"max_epochs={any_model.max_epochs}, threads={any_model.num_threads}; vader-shortcut pool {args.pool}, "
          f"ID test {len(benchmark.id_test)}, OOD test {len(benchmark.ood_test)}")
    print()
    header = (f"{'option':>14} {'labeled':>7} {'epochs':>6} {'steps':>5} {'stop':>10} {'fill s':>6} {'fit s':>7} "
              f"{'fit cpu':>7} {'pool s':>6} {'round s':>7} {'round cpu':>9} {'x full':>6} {'x cpu':>6} "
              f"{'ID acc':>6} {'OOD acc':>7} {'worst':>5}")
    print(header)
    print("-" * len(header))
    for size in sizes:
        labeled = draws[size]
        train_texts = [pool_texts[i] for i in labeled]
        train_labels = benchmark.pool.labels[labeled]
        full = None
        for option, model in models.items():
            fill = Clock()
            if model.train_layers is not None:
                with fill:
                    model.cache_frozen_states(pool_texts)
            result = one_round(model, train_texts, train_labels, pool_texts)
            metrics = BenchmarkEvaluator(encoded, n_seed=size, input_kind="texts")(model, labeled)
            if option == "full":  # the peer: full fine-tuning at the paper's learning rate
                full = result
            ratios = ("", "") if full is None else (f"{full['round_wall'] / result['round_wall']:.1f}x",
                                                    f"{full['round_cpu'] / result['round_cpu']:.1f}x")
            fill_text = f"{fill.wall:.1f}" if model.train_layers is not None else "-"
            print(f"{option:>14} {size:>7} {result['epochs']:>6} {result['steps']:>5} {result['stop']:>10} "
                  f"{fill_text:>6} {result['fit_wall']:>7.1f} {result['fit_cpu']:>7.1f} {result['pool_wall']:>6.1f} "
                  f"{result['round_wall']:>7.1f} {result['round_cpu']:>9.1f} {ratios[0]:>6} {ratios[1]:>6} "
                  f"{metrics['id_accuracy']:>6.3f} {metrics['ood_accuracy']:>7.3f} "
                  f"{metrics['worst_group_accuracy']:>5.3f}", flush=True)
        peer = MLPHead(2, seed=args.seed)
        result = one_round(peer, encoded.pool_features[labeled], train_labels, encoded.pool_features)
        metrics = BenchmarkEvaluator(encoded, n_seed=size)(peer, labeled)
        print(f"{'mlp':>14} {size:>7} {result['epochs']:>6} {result['steps']:>5} {result['stop']:>10} {'-':>6} "
              f"{result['fit_wall']:>7.1f} {result['fit_cpu']:>7.1f} {result['pool_wall']:>6.1f} "
              f"{result['round_wall']:>7.1f} {result['round_cpu']:>9.1f} {'':>6} {'':>6} {metrics['id_accuracy']:>6.3f} "
              f"{metrics['ood_accuracy']:>7.3f} {metrics['worst_group_accuracy']:>5.3f}", flush=True)
    print()
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()

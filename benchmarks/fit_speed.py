"""Wall time of ``MLPHead.fit`` against the autograd loop it replaced, in one process.

Workload: random float32 features (d = 384, standard normal) with random labels of 2
classes, so the loss cannot fall 1000-fold and every fit runs its full 50 epochs
(``stop_loss_ratio=0`` makes sure): hidden 256, batch 16, Adam at 1e-3, ceil(n / 16)
steps per epoch and a pass over the whole training set after each epoch. Two workloads
per size n: one fit on n rows, and the 5-fold cross-fitted fit of the experiments'
reference entropies (5 fits on 4/5 of the rows, then 1 on all of them).

Reference (the "old" columns): the training loop ``MLPHead.fit`` ran before its passes
were written out by hand, kept here as it was: ``nn.Sequential`` under autograd,
``torch.optim.Adam`` and ``nn.CrossEntropyLoss``, one torch thread. Both sides start from
the same weights and see the same minibatch order; the last columns say how far apart
they end (largest absolute difference of any parameter after the single fit, and
whether every per-epoch correctness flag agrees). Old and new runs alternate, each cell
the median of ``--repeats``. For one fit, "floor s" is the arithmetic no exact loop can
skip, timed bare: per step the two 16 x 385 x 256 products (first layer forward and its
gradient) and the fused Adam kernel over all parameters, per epoch the first layer over
every training row. Process CPU seconds are printed next to wall seconds: on a
shared machine the wall time also counts waiting for a core.

    .venv/bin/python benchmarks/fit_speed.py [--sizes 300,500,2000] [--epochs 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from anchoral.models import MLPHead  # noqa: E402

N_FEATURES = 384
N_FOLDS = 5


def reference_fit(model: MLPHead, features: np.ndarray, labels: np.ndarray) -> tuple[nn.Sequential, np.ndarray]:
    """The autograd loop ``MLPHead.fit`` replaced: returns the trained network and the
    per-epoch correctness matrix."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(model.seed)
        network = nn.Sequential(
            nn.Linear(features.shape[1], model.hidden_dim), nn.ReLU(), nn.Linear(model.hidden_dim, model.n_classes)
        )
        inputs, targets = torch.from_numpy(features), torch.from_numpy(labels)
        optimizer = torch.optim.Adam(network.parameters(), lr=model.learning_rate)
        loss_function = nn.CrossEntropyLoss()
        order_generator = torch.Generator().manual_seed(model.seed)
        correctness, first_loss, stopped = [], None, False
        while len(correctness) < model.max_epochs and not stopped:
            permutation = torch.randperm(labels.size, generator=order_generator)
            for start in range(0, labels.size, model.batch_size):
                rows = permutation[start : start + model.batch_size]
                loss = loss_function(network(inputs[rows]), targets[rows])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                value = float(loss.detach())
                first_loss = value if first_loss is None else first_loss
                if model.stop_loss_ratio > 0 and value < model.stop_loss_ratio * first_loss:
                    stopped = True
                    break
            with torch.no_grad():
                correctness.append((network(inputs).argmax(dim=1) == targets).numpy())
        return network.eval(), np.stack(correctness)
    finally:
        torch.set_num_threads(previous_threads)


def arithmetic_floor(model: MLPHead, features: np.ndarray) -> None:
    """The big products and the Adam updates of one fit, with nothing around them."""
    n_rows = features.shape[0]
    inputs = np.ones((n_rows, features.shape[1] + 1), dtype=np.float32)
    inputs[:, :-1] = features
    hidden = np.empty((model.batch_size, model.hidden_dim), dtype=np.float32)
    all_hidden = np.empty((n_rows, model.hidden_dim), dtype=np.float32)
    first_size = inputs.shape[1] * model.hidden_dim
    size = first_size + (model.hidden_dim + 1) * model.n_classes
    parameters = np.random.default_rng(0).normal(scale=0.05, size=size).astype(np.float32)
    gradient, first_moment, second_moment = (np.zeros(size, dtype=np.float32) for _ in range(3))
    first = parameters[:first_size].reshape(inputs.shape[1], model.hidden_dim)
    first_gradient = gradient[:first_size].reshape(first.shape)
    adam_tensors = [[torch.from_numpy(array)] for array in (parameters, gradient, first_moment, second_moment)]
    step = torch.zeros(())
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1, user_api="blas"):
            for _ in range(model.max_epochs):
                for start in range(0, n_rows, model.batch_size):
                    batch = inputs[start : start + model.batch_size]
                    batch_hidden = np.matmul(batch, first, out=hidden[: batch.shape[0]])
                    np.matmul(batch.T, batch_hidden, out=first_gradient)
                    step += 1
                    torch._fused_adam_(
                        *adam_tensors, [], [step], lr=model.learning_rate, beta1=0.9, beta2=0.999,
                        weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False,
                    )
                np.matmul(inputs, first, out=all_hidden)
    finally:
        torch.set_num_threads(previous_threads)


def new_fit(model: MLPHead, features: np.ndarray, labels: np.ndarray) -> tuple[nn.Sequential, np.ndarray]:
    report = model.fit(features, labels)
    return model.network_, report.correctness


def folds(n_rows: int) -> np.ndarray:
    """The fold of every row: a seeded permutation dealt round-robin into ``N_FOLDS``."""
    return np.random.default_rng(0).permutation(n_rows) % N_FOLDS


def cross_fitted(fit, make_model, features: np.ndarray, labels: np.ndarray) -> None:
    """5 fits, each without one fold, then one on everything."""
    fold_of = folds(labels.size)
    for fold in range(N_FOLDS):
        kept = fold_of != fold
        fit(make_model(), features[kept], labels[kept])
    fit(make_model(), features, labels)


def timed(run) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def agreement(old_result, new_result) -> str:
    """Largest parameter difference after the fit, and whether the correctness matrices agree."""
    (old_network, old_correct), (new_network, new_correct) = old_result, new_result
    pairs = zip(old_network.state_dict().values(), new_network.state_dict().values())
    difference = max(float((old - new).abs().max()) for old, new in pairs)
    return f"{difference:>9.1e} {str(bool(np.array_equal(old_correct, new_correct))):>16}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="300,500,2000", help="training-set sizes, comma-separated")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    def make_model() -> MLPHead:
        return MLPHead(2, max_epochs=args.epochs, stop_loss_ratio=0)

    def steps(n_rows: int) -> int:
        return args.epochs * -(-n_rows // make_model().batch_size)

    print(f"load average at start: {os.getloadavg()}")
    print(f"2 classes, d {N_FEATURES}, hidden 256, batch 16, {args.epochs} epochs (stop_loss_ratio=0), "
          f"median of {args.repeats}; torch {torch.__version__}")
    header = (f"{'rows':>5} {'workload':<14} {'steps':>6} {'old s':>7} {'old cpu':>7} {'new s':>6} {'new cpu':>7} "
              f"{'old/new':>7} {'floor s':>7} {'max |dw|':>9} {'same correctness':>16}")
    print(header)
    print("-" * len(header))
    warm = np.random.default_rng(0).normal(size=(32, N_FEATURES)).astype(np.float32)
    for fit in (reference_fit, new_fit):
        fit(make_model(), warm, np.arange(32) % 2)
    for n in [int(size) for size in args.sizes.split(",")]:
        rng = np.random.default_rng(n)
        features = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
        labels = rng.integers(0, 2, size=n)
        held_out = np.bincount(folds(n), minlength=N_FOLDS)
        workloads = {
            "one fit": (lambda fit: fit(make_model(), features, labels), steps(n)),
            f"{N_FOLDS}-fold + full": (
                lambda fit: cross_fitted(fit, make_model, features, labels),
                steps(n) + sum(steps(n - size) for size in held_out),
            ),
        }
        for name, (workload, n_steps) in workloads.items():
            old, new, floor = [], [], []
            for _ in range(args.repeats):
                old.append(timed(lambda: workload(reference_fit)))
                new.append(timed(lambda: workload(new_fit)))
                if name == "one fit":
                    floor.append(timed(lambda: arithmetic_floor(make_model(), features)))
            old_wall, old_cpu, new_wall, new_cpu = (
                statistics.median(run[column] for run in runs) for runs in (old, new) for column in (0, 1)
            )
            floor_text = f"{statistics.median(run[0] for run in floor):>7.3f}" if floor else " " * 7
            agreement_text = agreement(old[-1][2], new[-1][2]) if name == "one fit" else ""
            print(f"{n:>5} {name:<14} {n_steps:>6} {old_wall:>7.3f} {old_cpu:>7.3f} {new_wall:>6.3f} {new_cpu:>7.3f} "
                  f"{old_wall / new_wall:>6.1f}x {floor_text} {agreement_text}", flush=True)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()

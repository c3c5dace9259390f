"""Analyses of a run directory's stored representations (``anchoral.experiments.probing``),
for ``anchoral report``:

- shortcut extractability (ALVIN §5.3, Table 5): the MDL online code of the shortcut
  attribute from each run's f_enc of the probing set, at every stored checkpoint, and
  from the reference panel's fits (``anchoral.metrics.mdl``);
- a map of what each strategy acquires (Tamkin et al. Appendix H; ALVIN's anchors): a 2-D
  embedding of the pool's frozen-encoder features (the space every strategy of the run
  directory shares), one panel per strategy for one seed and fraction: the pool coloured
  by group, the seed set, the strategy's acquisitions and, for ALVIN, where the anchors
  of its last selection fall (each anchor drawn at its nearest unlabeled pool example in
  f_enc, marker area by how many anchors landed there).

Both are cached in the run directory's ``cache/`` (written to a temporary name and
renamed, so a killed report never leaves half a file): a codelength per (run, checkpoint)
in a file per probe and probe settings, a 2-D embedding per (benchmark, method), each with
the seconds it took.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from anchoral.errors import AnchoralError, ValidationError
from anchoral.experiments.references import ERM_ALL, ORACLE_BALANCED, PANEL_LABELS
from anchoral.experiments.report import markdown_table
from anchoral.metrics.mdl import PROBES, online_codelength, probe_settings

MAP_METHODS = ("tsne", "umap")
MAP_PCA_DIMENSIONS = 50
CACHE_DIR = "cache"
NO_REPRESENTATIONS = ("written before anchoral kept representations, or by a run that stored none; rerun the "
                      "study into a new directory (--out) to have them")


class MissingRepresentations(AnchoralError):
    """The run directory lacks the stored representations an analysis needs."""


@dataclass(frozen=True)
class Cost:
    """What one analysis cost: ``seconds`` summed over ``count`` computations (``cached`` of them read
    back from the cache, with the seconds measured when they were computed)."""

    analysis: str
    count: int
    seconds: float
    cached: int
    detail: str


def benchmark_key_of(spec: str) -> str:
    """The benchmark key (``runner.benchmark_key``) of a stored run spec."""
    return json.dumps(json.loads(spec)["benchmark"], sort_keys=True, separators=(",", ":"))


def _write_atomically(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# -- shortcut extractability ---------------------------------------------------------------
def extractability(store, results: pd.DataFrame, *, probe: str = "linear") -> tuple[pd.DataFrame, dict, Cost | None]:
    """One row per (run or panel fit, checkpoint): benchmark, strategy, seed, fraction, n_labeled,
    codelength (bits), compression, accuracy; plus the one-line reason per benchmark label that
    has no probing set, and the cost. Empty when nothing is stored."""
    if probe not in PROBES:
        raise ValidationError(f"probe must be one of {', '.join(PROBES)}; got {probe!r}")
    settings = hashlib.sha256(probe_settings(probe).encode()).hexdigest()[:8]
    cache_path = store.run_dir / CACHE_DIR / f"mdl-{probe}-{settings}.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    rows, reasons, computed, cached, seconds = [], {}, 0, 0, 0.0
    runs = store.runs()
    strategy_of = dict(zip(results["run_id"], results["strategy_label"])) if not results.empty else {}
    targets = {}
    frozen_rows = []  # (benchmark key, label, the frozen encoder's features of the probing set)

    def code_of(key: str, representation: np.ndarray, attributes: np.ndarray) -> dict:
        nonlocal computed, cached, seconds
        if key not in cache:
            started = time.perf_counter()
            code = online_codelength(representation.astype(np.float32), attributes, probe=probe)
            cache[key] = {"codelength": code.codelength, "uniform": code.uniform_codelength,
                          "compression": code.compression, "accuracy": code.accuracy, "n": code.n_examples,
                          "seconds": time.perf_counter() - started}
            computed += 1
        else:
            cached += 1
        seconds += cache[key]["seconds"]
        return cache[key]

    def probing_targets(benchmark_key: str, benchmark_label: str):
        if benchmark_key not in targets:
            probing = store.benchmark_data(benchmark_key, "probing_set")
            pool = store.benchmark_data(benchmark_key, "pool")
            if probing is None:
                error = store.benchmark_data(benchmark_key, "probing_error")
                reasons[benchmark_label] = error or f"no probing set is stored ({NO_REPRESENTATIONS})"
                targets[benchmark_key] = None
            else:
                targets[benchmark_key] = (probing["attributes"].astype(np.int64), len(pool["labels"]))
                frozen = store.benchmark_data(benchmark_key, "probing_features")
                if frozen is not None and frozen.size:
                    frozen_rows.append((benchmark_key, benchmark_label, frozen))
        return targets[benchmark_key]

    for run in runs.itertuples():
        found = probing_targets(benchmark_key_of(run.spec), run.benchmark_label)
        snapshots = store.representations(run.run_id) if found else {}
        for n_labeled, representation in sorted(snapshots.items()):
            try:
                code = code_of(f"{run.run_id}:{n_labeled}", representation, found[0])
            except ValidationError as exc:
                reasons[run.benchmark_label] = str(exc)
                break
            rows.append({"benchmark": run.benchmark_label, "strategy": strategy_of.get(run.run_id, run.strategy_label),
                         "seed": run.seed, "n_labeled": n_labeled, "fraction": n_labeled / found[1],
                         "reference": False, **code})
    panel = store.load_panel()
    for fit in panel.itertuples() if not panel.empty else ():
        representation = store.panel_representation(fit.fit_id)
        found = probing_targets(benchmark_key_of(fit.spec), fit.benchmark_label)
        if representation is None or not found or fit.benchmark_label in reasons:
            continue
        code = code_of(f"panel:{fit.fit_id}", representation, found[0])
        fraction = float("nan") if fit.reference == ERM_ALL else float(fit.target_fraction)
        rows.append({"benchmark": fit.benchmark_label, "strategy": PANEL_LABELS[fit.reference], "seed": fit.seed,
                     "n_labeled": int(fit.n_labeled), "fraction": fraction, "reference": True, **code})
    for benchmark_key, benchmark_label, frozen in frozen_rows:
        if benchmark_label in reasons:
            continue
        code = code_of(f"frozen:{benchmark_key}", frozen, targets[benchmark_key][0])
        rows.append({"benchmark": benchmark_label, "strategy": FROZEN_LABEL, "seed": 0, "n_labeled": 0,
                     "fraction": 0.0, "reference": True, **code})
    if computed:
        _write_atomically(cache_path, lambda file: file.write(json.dumps(cache, sort_keys=True).encode()))
    frame = pd.DataFrame(rows)
    n_examples = sorted({int(row["n"]) for row in rows})
    cost = (Cost(f"MDL probing ({probe} probe)", computed + cached, seconds, cached,
                 f"online code over the probing set ({', '.join(map(str, n_examples))} examples), one per run and "
                 "checkpoint and per panel fit") if rows else None)
    return frame, reasons, cost


FROZEN_LABEL = "frozen encoder features (before any training)"
"""The extractability table's reference row: the probing set's features from the frozen encoder."""


def extractability_markdown(frame: pd.DataFrame, benchmark: str) -> str:
    """ALVIN Table 5's shape: compression (higher = the shortcut is easier to read from f_enc), codelength
    and probe accuracy per strategy and fraction labeled, mean ± std over seeds; the panel below."""
    rows = frame[frame["benchmark"] == benchmark]
    body = []
    for reference in (False, True):
        part = rows[rows["reference"] == reference]
        if reference and not part.empty:
            body.append(["*reference panel*", "", "", "", "", ""])
        for (strategy, n_labeled), group in part.groupby(["strategy", "n_labeled"], sort=False):
            fraction = group["fraction"].iloc[0]
            at = "all" if np.isnan(fraction) else "none" if n_labeled == 0 else f"{100 * fraction:g}%"
            body.append([strategy, f"{at} ({n_labeled})", _mean_std(group["compression"], 2),
                         _mean_std(group["codelength"] / 1000, 2), _mean_std(100 * group["accuracy"], 1),
                         str(len(group))])
    return markdown_table(["strategy", "labeled", "compression", "codelength (kbits)", "probe accuracy (%)", "seeds"],
                          body)


def _mean_std(values, digits: int) -> str:
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return f"{values.mean():.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


# -- map of acquisitions -------------------------------------------------------------------
def pool_map(store, benchmark_key: str, *, method: str = "tsne", seed: int = 0) -> tuple[np.ndarray, float, bool]:
    """2-D coordinates of the stored pool features (computed once per run directory and method,
    then read from the cache): (coordinates, seconds it took, read from the cache?)."""
    if method not in MAP_METHODS:
        raise ValidationError(f"map method must be one of {', '.join(MAP_METHODS)}; got {method!r}")
    digest = hashlib.sha256(benchmark_key.encode()).hexdigest()[:12]
    path = store.run_dir / CACHE_DIR / f"map-{method}-{digest}.npz"
    if path.exists():
        with np.load(path) as cached:
            return cached["coordinates"], float(cached["seconds"]), True
    features = store.benchmark_data(benchmark_key, "pool_features")
    if features is None:
        raise MissingRepresentations(f"{store.run_dir} holds no pool representations for this benchmark "
                                     f"({NO_REPRESENTATIONS})")
    started = time.perf_counter()
    coordinates = embed_2d(np.asarray(features, dtype=np.float32), method=method, seed=seed)
    seconds = time.perf_counter() - started
    _write_atomically(path, lambda file: np.savez(file, coordinates=coordinates, seconds=seconds))
    return coordinates, seconds, False


def embed_2d(features: np.ndarray, *, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """A 2-D embedding of ``features``: PCA to 50 dimensions, then t-SNE (scikit-learn, Barnes-Hut,
    perplexity 30, PCA initialisation) or UMAP (``umap-learn``, the optional ``map`` extra)."""
    from sklearn.decomposition import PCA

    reduced = features
    if features.shape[1] > MAP_PCA_DIMENSIONS and features.shape[0] > MAP_PCA_DIMENSIONS:
        reduced = PCA(n_components=MAP_PCA_DIMENSIONS, random_state=seed).fit_transform(features)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ValidationError("map method 'umap' needs umap-learn: pip install 'anchoral[map]'; "
                                  "or use the default 'tsne'") from None
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(reduced).astype(np.float32)
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, perplexity=30.0, init="pca", learning_rate="auto", random_state=seed,
                n_jobs=2).fit_transform(reduced).astype(np.float32)


@dataclass(frozen=True)
class MapPanel:
    strategy: str
    seed_indices: np.ndarray
    acquired: np.ndarray
    anchor_landing: np.ndarray


def map_panels(results: pd.DataFrame, benchmark: str, seed: int, n_labeled: int) -> list[MapPanel]:
    """Per strategy of ``benchmark`` run with ``seed``: its seed set, what it acquired up to ``n_labeled``
    labels and where the anchors of its last selection before that fell (empty for non-ALVIN)."""
    rows = results[(results["benchmark_label"] == benchmark) & (results["seed"] == seed)]
    panels = []
    for strategy, run in rows.groupby("strategy_label", sort=False):
        run = run.sort_values("round")
        if "seed_indices" not in run.columns or not isinstance(run["seed_indices"].iloc[0], list):
            raise MissingRepresentations(f"the runs of {benchmark!r} hold no seed set ({NO_REPRESENTATIONS})")
        if not (run["n_labeled"] == n_labeled).any():
            continue
        before = run[run["n_labeled"] < n_labeled]
        acquired = np.array([index for selected in before["selected"] for index in selected], dtype=np.int64)
        landing = np.empty(0, dtype=np.int64)
        if not before.empty:
            diagnostics = json.loads(before["diagnostics"].iloc[-1] or "{}")
            landing = np.asarray(diagnostics.get("anchor_nearest", []), dtype=np.int64)
        panels.append(MapPanel(strategy, np.asarray(run["seed_indices"].iloc[0], dtype=np.int64), acquired, landing))
    return panels


def plot_acquisition_map(coordinates: np.ndarray, groups: np.ndarray, group_names, minority_groups,
                         panels: list[MapPanel], path, *, title: str = "") -> Path:
    """One panel per strategy: the pool (small dots, colour = group), the seed set (black x), the
    acquisitions (large dots, colour = group, black edge) and ALVIN's anchor landing points (gold stars)."""
    from anchoral.experiments.plots import _pyplot, _save

    plt = _pyplot()
    n_groups = len(group_names)
    colours = plt.get_cmap("tab10" if n_groups <= 10 else "tab20" if n_groups <= 20 else "gist_ncar")
    colour_of = np.array([colours(g / max(1, n_groups - 1)) if n_groups > 20 else colours(g) for g in range(n_groups)])
    columns = min(4, len(panels))
    rows = int(np.ceil(len(panels) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4.2 * rows + 0.8), squeeze=False)
    minority = set(int(g) for g in minority_groups)
    for axis, panel in zip(axes.flat, panels):
        axis.scatter(*coordinates.T, s=4, c=colour_of[groups], alpha=0.35, linewidths=0)
        if panel.acquired.size:
            axis.scatter(*coordinates[panel.acquired].T, s=14, c=colour_of[groups[panel.acquired]],
                         edgecolors="black", linewidths=0.4)
        axis.scatter(*coordinates[panel.seed_indices].T, s=30, marker="x", c="black", linewidths=1.0)
        if panel.anchor_landing.size:
            points, counts = np.unique(panel.anchor_landing, return_counts=True)
            axis.scatter(*coordinates[points].T, s=20 + 10 * counts, marker="*", c="gold", edgecolors="black",
                         linewidths=0.5, alpha=0.9)
        share = np.isin(groups[panel.acquired], list(minority)).mean() if panel.acquired.size and minority else None
        detail = f"{panel.acquired.size} acquired" + ("" if share is None else f", {100 * share:.0f}% minority")
        if panel.anchor_landing.size:
            detail += f", {panel.anchor_landing.size} anchors"
        axis.set_title(f"{panel.strategy}\n{detail}", fontsize="small")
        axis.set_xticks([])
        axis.set_yticks([])
    for axis in list(axes.flat)[len(panels):]:
        axis.set_visible(False)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colour_of[g],
                          label=f"{name}{' (minority)' if g in minority else ''}")
               for g, name in enumerate(group_names)] if n_groups <= 10 else []
    handles += [plt.Line2D([], [], marker="x", linestyle="", color="black", label="seed set"),
                plt.Line2D([], [], marker="o", linestyle="", color="grey", markeredgecolor="black",
                           label="acquired (colour = group)")]
    if any(panel.anchor_landing.size for panel in panels):
        handles.append(plt.Line2D([], [], marker="*", linestyle="", color="gold", markeredgecolor="black",
                                  label="ALVIN anchor landing point"))
    figure.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize="small", frameon=False)
    figure.suptitle(title)
    legend_rows = int(np.ceil(len(handles) / 4))
    return _save(figure, path, rect=(0, 0.035 * legend_rows + 0.01, 1, 1))


UNCERTAINTY_MEASURES = ("least-confidence", "entropy", "margin")


def uncertainty_overlap(results: pd.DataFrame) -> pd.DataFrame:
    """Where least confidence, entropy and margin part ways: for every benchmark label and seed
    with at least two of them (default parameters, same model), how many of the first batch's
    picks each pair shares (the same seed set and model, so any difference is the measure's),
    and the range shared by the later batches. Empty when fewer than two are in the study."""
    if results.empty:
        return pd.DataFrame()
    rows = results[results["strategy_label"].isin(UNCERTAINTY_MEASURES)]
    out = []
    for (benchmark, model, seed), group in rows.groupby(["benchmark_label", "model_label", "seed"], sort=False):
        picks = {name: [set(map(int, selected)) for selected in runs.sort_values("round")["selected"]
                        if isinstance(selected, (list, tuple, np.ndarray)) and len(selected)]
                 for name, runs in group.groupby("strategy_label")}
        names = [name for name in UNCERTAINTY_MEASURES if picks.get(name)]
        for first, second in itertools.combinations(names, 2):
            a, b = picks[first], picks[second]
            later = [len(x & y) for x, y in zip(a[1:], b[1:])]
            out.append({"benchmark": benchmark, "model": model, "seed": int(seed), "pair": f"{first} & {second}",
                        "batch": len(a[0]), "first_batch": len(a[0] & b[0]),
                        "later_min": min(later) if later else None, "later_max": max(later) if later else None})
    return pd.DataFrame(out)


def uncertainty_overlap_markdown(frame: pd.DataFrame, benchmark: str) -> str:
    """One row per seed: shared picks of each pair in the first batch, and the range over later batches."""
    rows = frame[frame["benchmark"] == benchmark]
    pairs = list(dict.fromkeys(rows["pair"]))
    body = []
    for (model, seed), group in rows.groupby(["model", "seed"], sort=False):
        by_pair = {row.pair: row for row in group.itertuples()}
        cells = [str(seed) if rows["model"].nunique() == 1 else f"{model}, seed {seed}"]
        for pair in pairs:
            row = by_pair.get(pair)
            if row is None:
                cells.append("-")
                continue
            later = "" if pd.isna(row.later_min) else f" (later: {int(row.later_min)}-{int(row.later_max)})"
            cells.append(f"{row.first_batch} of {row.batch}{later}")
        body.append(cells)
    return markdown_table(["seed", *pairs], body)

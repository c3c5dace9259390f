"""A round: cold start until every label has two examples, then train + the project's strategy."""

import numpy as np
import pytest

from anchoral.errors import UnknownNameError, ValidationError
from anchoral.store import AnnotationQueue, Project, ProjectError
from anchoral.store.create import DataSpec, init_project
from anchoral.store.rounds import (
    COLD_START,
    coverage_problem,
    pool_probabilities,
    run_round,
)
from tests.store.fakes import write_pool

LABELS = ["positive", "negative"]


def label_batch(project, truth, session="s"):
    queue = AnnotationQueue(project)
    while (item := queue.next_item(session)) is not None:
        queue.label(session, item.position, LABELS.index(truth[item.id]), "ann")


def test_coverage_problem_names_every_short_label():
    assert coverage_problem({"positive": 3, "negative": 2}) is None
    assert coverage_problem({"positive": 1, "negative": 0, "neutral": 5}) == (
        "training needs at least 2 labeled examples of every label; 'positive' has 1, 'negative' has 0"
    )


def test_without_labels_the_first_batch_is_a_recorded_cold_start(tmp_path, encoder):
    write_pool(tmp_path / "pool.csv", 40)
    with init_project(tmp_path / "p", DataSpec(tmp_path / "pool.csv", "text", "id"), LABELS, batch_size=5) as project:
        result = run_round(project, encoder=encoder)
        assert result.strategy == COLD_START and len(set(result.selected_ids)) == 5
        assert "'positive' has 0, 'negative' has 0" in result.fallback and "instead of alvin" in result.fallback
        info = project.latest_round()
        assert (info.round, info.strategy, info.requested_strategy, info.n_labeled) == (1, COLD_START, "alvin", 0)
        assert info.metrics["fallback"] == result.fallback
        assert [item.id for item in project.batch()] == result.selected_ids


def test_with_every_label_covered_the_strategy_selects_unlabeled_items(project, encoder, truth):
    result = run_round(project, encoder=encoder)
    assert result.strategy == "alvin" and result.fallback is None
    labeled = {project.ids()[i] for i in project.current_labels()[0]}
    assert len(result.selected_ids) == 6 and not labeled & set(result.selected_ids)
    metrics = project.latest_round().metrics
    assert metrics["n_labeled"] == 4 and metrics["fit"]["epochs"] >= 2
    assert set(metrics["timings"]) == {"embed_seconds", "fit_seconds", "select_seconds", "total_seconds"}

    label_batch(project, truth)
    second = run_round(project, strategy="entropy", n=3, encoder=encoder)
    info = project.latest_round()
    assert (info.round, info.strategy, info.n_labeled, info.batch_size) == (2, "entropy", 10, 3)
    assert not set(second.selected_ids) & set(result.selected_ids)


def test_rounds_are_reproducible_from_the_seed(tmp_path, pool_csv, encoder):
    path, _ = pool_csv
    picks = []
    for name in ("a", "b"):
        with init_project(tmp_path / name, DataSpec(path, "text", "id", "label"), LABELS, batch_size=6, seed=3) as project:
            picks.append(run_round(project, encoder=encoder).selected_ids)
    assert picks[0] == picks[1]


def test_the_heldout_set_gives_each_round_an_accuracy(tmp_path, encoder):
    frame = write_pool(tmp_path / "pool.csv", 60, labeled=10)
    held = write_pool(tmp_path / "held.csv", 30, seed=5)
    held[["id", "text", "truth"]].rename(columns={"truth": "label"}).to_csv(tmp_path / "held.csv", index=False)
    spec = DataSpec(tmp_path / "pool.csv", "text", "id", "label")
    with init_project(tmp_path / "p", spec, LABELS, heldout=tmp_path / "held.csv", batch_size=10) as project:
        run_round(project, encoder=encoder)
        label_batch(project, dict(zip(frame["id"], frame["truth"])))
        run_round(project, encoder=encoder)
        curve = [(r.n_labeled, r.metrics["heldout"]["accuracy"]) for r in project.rounds()]
    assert [n for n, _ in curve] == [10, 20]
    assert all(0.0 <= accuracy <= 1.0 for _, accuracy in curve) and curve[-1][1] >= 0.8


def test_bad_requests_fail_before_any_work(project, encoder):
    with pytest.raises(UnknownNameError, match="'alvim'"):
        run_round(project, strategy="alvim", encoder=encoder)
    with pytest.raises(ValidationError, match="invalid parameters for strategy 'alvin'"):
        run_round(project, params={"bogus": 1}, encoder=encoder)
    with pytest.raises(ValidationError, match="positive integer"):
        run_round(project, n=0, encoder=encoder)
    assert encoder.calls == 0 and project.rounds() == []


def test_a_batch_never_asks_for_more_than_is_left_and_a_full_pool_is_an_error(tmp_path, encoder):
    frame = write_pool(tmp_path / "pool.csv", 12, labeled=9)
    with init_project(tmp_path / "p", DataSpec(tmp_path / "pool.csv", "text", "id", "label"), LABELS) as project:
        result = run_round(project, encoder=encoder)
        assert len(result.selected_ids) == 3
        label_batch(project, dict(zip(frame["id"], frame["truth"])))
        with pytest.raises(ProjectError, match="every item in the pool is labeled"):
            run_round(project, encoder=encoder)


def test_predictions_need_every_label_and_cover_the_pool(tmp_path, encoder, project):
    probabilities = pool_probabilities(project, encoder=encoder)
    assert probabilities.shape == (60, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    write_pool(tmp_path / "few.csv", 10, labeled=1)
    spec = DataSpec(tmp_path / "few.csv", "text", "id", "label")
    with init_project(tmp_path / "few", spec, LABELS) as few, pytest.raises(ProjectError, match="cannot train a model yet: .*'positive' has 1, 'negative' has 0"):
        pool_probabilities(few, encoder=encoder)


def test_embeddings_are_computed_once_and_then_read_from_the_cache(project, encoder, truth):
    run_round(project, encoder=encoder)
    calls = encoder.calls
    label_batch(project, truth)
    run_round(project, encoder=encoder)
    assert encoder.calls == calls


def test_a_project_trains_the_robust_head_its_model_parameters_name(tmp_path, pool_csv, encoder):
    path, _ = pool_csv
    spec = DataSpec(path, "text", "id", "label")
    with pytest.raises(ValidationError, match="unknown head 'magic'"):
        init_project(tmp_path / "bad", spec, LABELS, model="linear", model_params={"head": "magic"})
    with init_project(tmp_path / "p", spec, LABELS, batch_size=6, model="linear",
                      model_params={"head": "group-reweight", "groups": "clusters"}) as project:
        result = run_round(project, encoder=encoder)
        fit = project.latest_round().metrics["fit"]
        assert len(result.selected_ids) == 6
        assert fit["trained_head"] in {"group-reweight", "plain"}
        assert fit["trained_head"] == "group-reweight" or "fallback" in fit


def test_a_round_started_in_another_process_while_one_runs_is_refused_at_once(project, encoder):
    """A web next batch and `anchoral query` at once: the second is refused, naming who holds the lock."""
    import subprocess
    import sys

    other_process = (
        "import sys; from anchoral.store import Project; from anchoral.store.rounds import run_round; "
        "from tests.store.fakes import HashingEncoder; p = Project.open(sys.argv[1])\n"
        "try:\n    run_round(p, encoder=HashingEncoder())\nexcept Exception as exc:\n    print(exc)"
    )
    refusals = []

    def meanwhile(stage, done, total):
        if not refusals:  # this round holds the lock and is working: the other process tries now
            refusals.append(subprocess.run([sys.executable, "-c", other_process, str(project.directory)],
                                           capture_output=True, text=True, check=True, timeout=300).stdout.strip())

    assert run_round(project, encoder=encoder, progress=meanwhile, holder="the web app's next batch").round == 1
    assert refusals[0].startswith("a round is already being computed by the web app's next batch (pid ")
    assert [r.round for r in project.rounds()] == [1]
    assert run_round(project, encoder=encoder).round == 2  # the lock was released


def test_a_round_lock_left_by_a_killed_process_is_taken_over(project, encoder):
    import json
    import socket
    import time

    dead = {"holder": "anchoral query", "pid": 2**22 + 12345, "host": socket.gethostname(), "since": time.time(), "nonce": "x"}
    project.db.execute("INSERT INTO settings (key, value) VALUES ('round_lock', ?)", (json.dumps(dead),))
    assert run_round(project, encoder=encoder).round == 1
    assert project.db.execute("SELECT count(*) FROM settings WHERE key = 'round_lock'").fetchone()[0] == 0
    assert "round_lock" not in Project.open(project.directory).settings


def test_a_round_that_no_longer_follows_the_latest_one_is_not_recorded(project, encoder):
    """The last guard, in the transaction that writes a round: it must follow the round it started from."""
    run_round(project, encoder=encoder)
    fields = dict(strategy="random", requested_strategy="random", params={}, seed=0, batch_size=1, n_labeled=4,
                  last_event=0, metrics={}, started_at="t", selected=[10])
    with pytest.raises(ProjectError, match="round 1 was recorded by someone else .* this round was not recorded"):
        project.record_round(**fields, follows=None)
    assert project.record_round(**fields, follows=1) == 2

"""Overlap from the command line: set at init or with `anchoral overlap`, agreement in
`anchoral status` (plain and --json), resolved labels in `anchoral export`, and bad
settings refused in one line with exit code 2, leaving the project as it was."""

import json
import subprocess

import pandas as pd
import pytest

from anchoral.store import AnnotationQueue, Project
from anchoral.store.review import resolve
from tests.store.fakes import write_pool
from tests.store.test_commands import ANCHORAL, cli  # noqa: F401 - the fixture


def init_args(tmp_path, *extra):
    write_pool(tmp_path / "pool.csv", 40, labeled=4)
    return ("init", tmp_path / "p", "--data", tmp_path / "pool.csv", "--text-column", "text", "--id-column", "id",
            "--label-column", "label", "--labels", "positive,negative", "--batch-size", "4", *extra)


def test_overlap_set_at_init_measures_agreement_and_the_resolution_is_exported(tmp_path, cli):  # noqa: F811
    created = cli(*init_args(tmp_path, "--overlap", "0.5", "--overlap-k", "2")).output
    assert "overlap: 50% of each batch is shown to 2 labelers; disagreements are resolved by the owner" in created
    project = tmp_path / "p"
    cli("invite", project, "alice"), cli("invite", project, "bob")
    cli("query", project, "--no-progress")
    with Project.open(project) as opened:
        overlap = [row[0] for row in opened.db.execute("SELECT item FROM overlap_items ORDER BY item")]
        assert len(overlap) == 2
        queue = AnnotationQueue(opened)
        for name in ("alice", "bob"):
            while (item := queue.next_item(name, annotator=name)) is not None:
                disagree = name == "bob" and item.position == overlap[0]
                queue.label(name, item.position, 1 if disagree else 0, name)
        disputed = opened.item(overlap[0]).id

    status = json.loads(cli("status", project, "--json").output)
    assert status["overlap"] == {"fraction": 0.5, "k": 2, "review_by": "owner"}
    assert status["current_batch"] == {"round": 1, "labeled": 3, "in_review": 1, "total": 4}
    agreement = status["agreement"]
    # (alice, bob) = (positive, negative), (positive, positive): p_o = 1/2, p_e = 1 * 1/2 = 1/2, kappa = 0
    assert agreement["statistic"] == "cohen" and agreement["kappa"] == {"value": 0.0, "reason": None}
    assert agreement["percent_agreement"]["value"] == 0.5
    assert agreement["review"] == {"overlap_items": 2, "waiting": 0, "agreed": 1, "in_review": 1, "resolved": 0}
    plain = cli("status", project).output
    assert "Cohen's kappa 0.000, percent agreement 50.0%" in plain
    assert "Review: 1 disagreement(s) to resolve, 0 resolved, 1 agreed" in plain
    assert "4 of 4 labeled" not in plain and "3 of 4 labeled, 1 in review" in plain

    cli("export", project, "-o", tmp_path / "before.csv")
    before = pd.read_csv(tmp_path / "before.csv").set_index("id")
    assert pd.isna(before.loc[disputed, "label"])
    with Project.open(project) as opened:
        resolve(opened, overlap[0], 1, "owner")
    cli("export", project, "-o", tmp_path / "after.csv")
    after = pd.read_csv(tmp_path / "after.csv").set_index("id")
    assert (after.loc[disputed, "label"], after.loc[disputed, "annotator"]) == ("negative", "owner")


def test_the_overlap_command_shows_and_changes_the_setting(tmp_path, cli):  # noqa: F811
    cli(*init_args(tmp_path))
    project = tmp_path / "p"
    assert cli("overlap", project).output.startswith("Overlap: off")
    cli("invite", project, "alice"), cli("invite", project, "bob"), cli("invite", project, "carol")
    changed = cli("overlap", project, "0.1", "--k", "3", "--review-by", "labelers").output
    assert "10% of each batch is shown to 3 labelers; disagreements are resolved by any labeler" in changed
    with Project.open(project) as opened:
        assert (opened.overlap().fraction, opened.overlap().raters, opened.overlap().review_by) == (0.1, 3, "labelers")


def run(*args):
    return subprocess.run([ANCHORAL, *map(str, args)], capture_output=True, text=True, timeout=300, check=False)


def one_error_line(result) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--overlap", "1.5"), "error: overlap (the share of each batch shown to several labelers) must be in [0, 1]; got 1.5"),
        (("--overlap", "0.2", "--overlap-k", "1"), "error: overlap k (how many different labelers see an overlap item) must be an integer of at least 2; got 1"),
    ],
)
def test_a_bad_overlap_at_init_is_one_line_and_makes_no_project(tmp_path, option, message):
    assert one_error_line(run(*init_args(tmp_path, *option))) == message
    assert not (tmp_path / "p").exists()


def test_a_bad_overlap_change_is_one_line_and_leaves_the_setting_as_it_was(tmp_path):
    assert run(*init_args(tmp_path, "--overlap", "0.25")).returncode == 0
    assert run("invite", tmp_path / "p", "alice").returncode == 0
    assert run("invite", tmp_path / "p", "bob").returncode == 0
    too_many = one_error_line(run("overlap", tmp_path / "p", "--k", "3"))
    assert too_many == ("error: overlap k is 3 but the project knows 2 labeler(s) (alice, bob); "
                        "invite more with `anchoral invite PROJECT NAME` or choose a smaller k")
    assert "must be in [0, 1]; got 2.0" in one_error_line(run("overlap", tmp_path / "p", "2"))
    with Project.open(tmp_path / "p") as opened:
        assert (opened.overlap().fraction, opened.overlap().raters) == (0.25, 2)

"""Command-line errors that read right: printed as written (brackets kept), one line when
not on a terminal, exit code 2 and no traceback; the data-file and path problems a team
hits (a latin-1 CSV, a non-empty or unwritable directory, leftovers of a killed init)."""

import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from anchoral.store import Project
from anchoral.store.create import DataSpec, init_project, remove_leftovers
from tests.store.fakes import write_pool
from tests.store.test_commands import ANCHORAL

LABELS = ["positive", "negative"]


def anchoral(*args, columns="80"):
    """Run the installed entry point as a script or a log would: stdout/stderr are pipes, 80 columns."""
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    env["COLUMNS"] = columns
    return subprocess.run([ANCHORAL, *map(str, args)], capture_output=True, text=True, timeout=300, check=False, env=env)


def one_error_line(result) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture
def pool_csv(tmp_path):
    write_pool(tmp_path / "pool.csv", 12, labeled=4)
    return tmp_path / "pool.csv"


def test_an_error_listing_the_label_set_keeps_its_brackets_and_is_one_unwrapped_line(tmp_path, pool_csv):
    created = anchoral("init", tmp_path / "p", "--data", pool_csv, "--text-column", "text", "--id-column", "id",
                       "--labels", "positive,negative")
    assert created.returncode == 0, created.stderr
    pd.DataFrame({"id": ["doc-3"], "label": ["Positive"]}).to_csv(tmp_path / "labels.csv", index=False)
    line = one_error_line(anchoral("import-labels", tmp_path / "p", tmp_path / "labels.csv"))
    assert "outside the project's label set [positive, negative]: 'Positive' (row 1)" in line and len(line) > 80
    line = one_error_line(anchoral("init", tmp_path / "q", "--data", pool_csv, "--text-column", "text",
                                   "--label-column", "label", "--labels", "positive,neutral"))
    assert "outside the declared set [positive, neutral]" in line


def test_import_labels_reports_every_kind_of_problem_at_once(tmp_path, pool_csv):
    project = init_project(tmp_path / "p", DataSpec(pool_csv, "text", "id"), LABELS)
    project.close()
    rows = [("doc-1", "positive"), ("nope", "positive"), ("doc-2", "neutral"), ("doc-3", "positive"),
            ("doc-3", "negative"), ("doc-4", "")]
    pd.DataFrame(rows, columns=["id", "label"]).to_csv(tmp_path / "labels.csv", index=False)
    line = one_error_line(anchoral("import-labels", tmp_path / "p", tmp_path / "labels.csv"))
    for problem in ("1 row(s) with an empty id or label (row 6)", "1 id(s) are not in the project's pool: 'nope' (row 2)",
                    "1 label(s) outside the project's label set [positive, negative]: 'neutral' (row 3)",
                    "1 id(s) given two different labels: 'doc-3' ('positive' at row 4, 'negative' at row 5)"):
        assert problem in line
    with Project.open(tmp_path / "p") as opened:
        assert opened.history("doc-1") == []


def test_a_latin1_csv_names_the_byte_and_the_encoding_option_and_reads_with_it(tmp_path):
    (tmp_path / "latin.csv").write_bytes("id,text\n1,café au lait\n2,naïve\n".encode("latin-1"))
    line = one_error_line(anchoral("init", tmp_path / "p", "--data", tmp_path / "latin.csv", "--text-column", "text",
                                   "--labels", "a,b"))
    assert "latin.csv is not utf-8 text: the byte e9 at byte offset 13 does not decode" in line and "--encoding" in line
    assert not (tmp_path / "p").exists()
    made = anchoral("init", tmp_path / "p", "--data", tmp_path / "latin.csv", "--text-column", "text", "--labels", "a,b",
                    "--encoding", "latin-1")
    assert made.returncode == 0, made.stderr
    with Project.open(tmp_path / "p") as project:
        assert project.texts() == ["café au lait", "naïve"]
    unknown = one_error_line(anchoral("init", tmp_path / "q", "--data", tmp_path / "latin.csv", "--text-column", "text",
                                      "--labels", "a,b", "--encoding", "klingon"))
    assert "--encoding 'klingon' is not a text encoding" in unknown


def test_init_refuses_a_non_empty_directory_and_leaves_it_as_it_was(tmp_path, pool_csv):
    target = tmp_path / "notes"
    target.mkdir()
    (target / "todo.txt").write_text("keep me")
    line = one_error_line(anchoral("init", target, "--data", pool_csv, "--text-column", "text", "--labels", "a,b"))
    assert f"{target} is not empty (it holds todo.txt); give a new or empty directory" in line
    assert sorted(p.name for p in target.iterdir()) == ["todo.txt"]


def test_init_removes_the_leftovers_of_a_killed_init_but_not_a_running_ones(tmp_path, pool_csv):
    target = tmp_path / "p"
    target.mkdir()
    old = [target / ".project-abc123.sqlite.tmp", target / ".project-abc123.sqlite.tmp-journal"]
    for path in old:
        path.write_bytes(b"x" * 1000)
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    running = target / ".project-def456.sqlite.tmp"
    running.write_bytes(b"x")
    assert sorted(remove_leftovers(target)) == sorted(old)
    assert sorted(p.name for p in target.iterdir()) == [running.name]
    os.utime(running, (time.time() - 3600, time.time() - 3600))
    init_project(target, DataSpec(pool_csv, "text", "id", "label"), LABELS).close()
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith("project.sqlite")) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_unwritable_paths_are_one_error_line_not_a_traceback(tmp_path, pool_csv):
    line = one_error_line(anchoral("init", "/proc/anchoral-project", "--data", pool_csv, "--text-column", "text",
                                   "--labels", "a,b"))
    assert "cannot create the project in /proc/anchoral-project" in line
    made = anchoral("init", tmp_path / "p", "--data", pool_csv, "--text-column", "text", "--id-column", "id",
                    "--labels", "positive,negative")
    assert made.returncode == 0, made.stderr
    line = one_error_line(anchoral("export", tmp_path / "p", "-o", tmp_path))
    assert f"cannot write {tmp_path}: it is a directory" in line
    line = one_error_line(anchoral("export", tmp_path / "p", "-o", "/proc/self/anchoral.csv"))
    assert "cannot write /proc/self/anchoral.csv" in line


def test_a_failing_init_check_and_a_plain_export_do_not_import_the_model_stack(tmp_path, pool_csv):
    init_project(tmp_path / "p", DataSpec(pool_csv, "text", "id"), LABELS).close()
    script = (
        "import sys; from anchoral.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    failing_init = [str(tmp_path / "q"), "--data", str(pool_csv), "--text-column", "body", "--labels", "a,b"]
    for args in (["init", *failing_init], ["export", str(tmp_path / "p"), "-o", str(tmp_path / "out.csv")]):
        result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300)
        assert result.stderr.strip().splitlines()[-1] == "False", (args, result.stderr)

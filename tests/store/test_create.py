"""`init`: every kind of bad input is a clear error and writes nothing; good input makes a project."""

import json
import sqlite3

import pandas as pd
import pytest

from anchoral.errors import UnknownNameError, ValidationError
from anchoral.store import PROJECT_FILE, SCHEMA_VERSION, ProjectError
from anchoral.store.create import DataSpec, init_project
from tests.store.fakes import synthetic_pool, write_pool

LABELS = ["positive", "negative"]


def make(tmp_path, frame: pd.DataFrame, name="data.csv", **spec):
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    elif name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    elif name.endswith(".parquet"):
        frame.to_parquet(path)
    else:
        path.write_text(frame.to_csv(index=False))
    return DataSpec(path, **{"text_column": "text", **spec})


def assert_nothing_written(directory):
    assert not directory.exists() or not any(directory.iterdir())


@pytest.mark.parametrize("name", ["data.csv", "data.jsonl", "data.parquet"])
def test_init_reads_csv_jsonl_and_parquet_with_initial_labels(tmp_path, name):
    frame = synthetic_pool(20)
    frame["label"] = [t if i < 5 else None for i, t in enumerate(frame["truth"])]
    spec = make(tmp_path, frame[["id", "text", "label"]], name, id_column="id", label_column="label")
    with init_project(tmp_path / "proj", spec, LABELS) as project:
        assert project.pool_size == 20
        assert project.ids() == list(frame["id"])
        assert project.texts() == list(frame["text"])
        assert project.labels == ("positive", "negative")
        assert project.label_counts() == {"positive": 3, "negative": 2}
        history = project.history("doc-1")
        assert [(e.label, e.source, e.annotator) for e in history] == [("positive", "init", f"file:{name}")]
        assert project.settings["strategy"] == "alvin" and project.settings["batch_size"] == 50


def test_ids_default_to_row_numbers_and_stay_text(tmp_path):
    frame = pd.DataFrame({"text": ["a b", "c d", "e f"], "code": ["007", "008", "009"]})
    with init_project(tmp_path / "p1", make(tmp_path, frame), LABELS) as project:
        assert project.ids() == ["1", "2", "3"]
    with init_project(tmp_path / "p2", make(tmp_path, frame, id_column="code"), LABELS) as project:
        assert project.ids() == ["007", "008", "009"]


def test_the_database_is_wal_with_foreign_keys_and_a_schema_version(project):
    assert project.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert project.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert [tuple(row) for row in project.db.execute("SELECT version FROM schema_version")] == [(SCHEMA_VERSION,)]
    with pytest.raises(sqlite3.IntegrityError):
        project.set_labels([(0, 7)], annotator="x", source="test")  # class 7 is not in the label set
    assert project.label_counts() == {"positive": 2, "negative": 2}


@pytest.mark.parametrize(
    "change, spec, message",
    [
        (lambda f: f.rename(columns={"text": "body"}), {}, "--text-column 'text' is not a column of data.csv; its columns are: id, body, label"),
        (lambda f: f, {"id_column": "key"}, "--id-column 'key' is not a column"),
        (lambda f: f, {"label_column": "gold"}, "--label-column 'gold' is not a column"),
        (lambda f: f.assign(text=["", *f.text[1:]]), {}, "1 empty text(s) in column 'text' at row 1"),
        (lambda f: f.assign(id=[None, *f.id[1:]]), {"id_column": "id"}, "1 empty id(s) in column 'id' at row 1"),
        (lambda f: f.assign(id=["x", "x", *f.id[2:]]), {"id_column": "id"}, "duplicate id(s) in column 'id': 'x' at rows 1, 2"),
        (lambda f: f.assign(label=["neutral", *f.label[1:]]), {"label_column": "label"}, "label(s) outside the declared set [positive, negative]: 'neutral' at row 1"),
    ],
)
def test_bad_tables_are_rejected_naming_the_problem_and_nothing_is_written(tmp_path, change, spec, message):
    frame = synthetic_pool(10)
    frame["label"] = frame["truth"]
    data = make(tmp_path, change(frame[["id", "text", "label"]]), **spec)
    with pytest.raises(ValidationError) as caught:
        init_project(tmp_path / "proj", data, LABELS)
    assert message in str(caught.value)
    assert_nothing_written(tmp_path / "proj")


def test_an_unknown_format_is_rejected_listing_the_known_ones(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("whatever")
    with pytest.raises(ValidationError, match=r"unknown file format '.xlsx'.*\.csv.*\.jsonl.*\.parquet"):
        init_project(tmp_path / "proj", DataSpec(path, "text"), LABELS)
    assert_nothing_written(tmp_path / "proj")


def test_a_damaged_file_and_a_missing_file_are_named(tmp_path):
    broken = tmp_path / "data.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(ValidationError, match="could not read data.parquet as parquet"):
        init_project(tmp_path / "proj", DataSpec(broken, "text"), LABELS)
    with pytest.raises(ValidationError, match="does not exist"):
        init_project(tmp_path / "proj", DataSpec(tmp_path / "nope.csv", "text"), LABELS)
    assert_nothing_written(tmp_path / "proj")


@pytest.mark.parametrize(
    "labels, message",
    [(["positive"], "at least two labels"), (["a", "a"], "repeats 'a'"), (["a", ""], "empty name")],
)
def test_a_bad_label_set_is_rejected(tmp_path, labels, message):
    data = make(tmp_path, synthetic_pool(4)[["id", "text"]])
    with pytest.raises(ValidationError, match=message):
        init_project(tmp_path / "proj", data, labels)


def test_an_unknown_strategy_is_rejected_before_writing(tmp_path):
    data = make(tmp_path, synthetic_pool(4)[["id", "text"]])
    with pytest.raises(UnknownNameError, match="'alvinn'.*alvin"):
        init_project(tmp_path / "proj", data, LABELS, strategy="alvinn")
    assert_nothing_written(tmp_path / "proj")


def test_an_existing_project_is_not_overwritten(tmp_path, project):
    data = make(tmp_path, synthetic_pool(4)[["id", "text"]])
    with pytest.raises(ProjectError, match="already an anchoral project"):
        init_project(project.directory, data, LABELS)
    assert project.pool_size == 60


def test_a_non_empty_directory_is_refused_and_keeps_its_files(tmp_path):
    directory = tmp_path / "proj"
    directory.mkdir()
    (directory / "notes.txt").write_text("mine")
    write_pool(tmp_path / "pool.csv", 8)
    with pytest.raises(ProjectError, match="is not empty \\(it holds notes.txt\\)"):
        init_project(directory, DataSpec(tmp_path / "pool.csv", "text", "id"), LABELS)
    assert sorted(p.name for p in directory.iterdir()) == ["notes.txt"]


def test_an_existing_empty_directory_gets_the_project_and_no_temporary_file(tmp_path):
    directory = tmp_path / "proj"
    directory.mkdir()
    write_pool(tmp_path / "pool.csv", 8)
    init_project(directory, DataSpec(tmp_path / "pool.csv", "text", "id"), LABELS).close()
    assert [p.name for p in directory.iterdir() if not p.name.startswith(PROJECT_FILE)] == []


def test_a_heldout_file_needs_a_label_on_every_row(tmp_path):
    data = make(tmp_path, synthetic_pool(10)[["id", "text"]])
    held = synthetic_pool(6, seed=1).rename(columns={"truth": "label"})
    held.loc[2, "label"] = None
    held.to_csv(tmp_path / "held.csv", index=False)
    with pytest.raises(ValidationError, match="held.csv: 1 row.s. without a label in column 'label' at row 3"):
        init_project(tmp_path / "proj", data, LABELS, heldout=tmp_path / "held.csv")
    assert_nothing_written(tmp_path / "proj")
    held.loc[2, "label"] = "negative"
    held.to_csv(tmp_path / "held.csv", index=False)
    with init_project(tmp_path / "proj", data, LABELS, heldout=tmp_path / "held.csv") as project:
        texts, classes = project.heldout()
        assert texts == list(held["text"]) and classes.tolist() == [LABELS.index(x) for x in held["label"]]
        assert json.loads(project.db.execute("SELECT value FROM settings WHERE key='heldout_file'").fetchone()[0]) == "held.csv"

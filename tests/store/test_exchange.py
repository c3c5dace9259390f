"""import-labels and export: checked before writing, one transaction, faithful round trips."""

import json

import pandas as pd
import pytest

from anchoral.errors import ValidationError
from anchoral.store.exchange import (
    export_rows,
    import_labels,
    read_label_table,
    render,
    write_text,
)
from anchoral.store.rounds import pool_probabilities


def labels_file(tmp_path, rows, name="labels.csv"):
    path = tmp_path / name
    frame = pd.DataFrame(rows)
    if name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", ["labels.csv", "labels.jsonl"])
def test_import_adds_changes_and_skips_unchanged_labels(tmp_path, project, name):
    path = labels_file(tmp_path, [
        {"id": "doc-1", "label": "positive"},   # unchanged (init label)
        {"id": "doc-2", "label": "positive"},   # changed (was negative)
        {"id": "doc-9", "label": "positive"},   # new
        {"id": "doc-9", "label": "positive"},   # a repeat that agrees is fine
    ], name)
    report = import_labels(project, read_label_table(path), annotator="carol", source="import")
    assert (report.added, report.changed, report.unchanged) == (1, 1, 1)
    assert project.label_counts() == {"positive": 4, "negative": 1}
    assert [(e.label, e.annotator, e.source) for e in project.history("doc-2")] == [
        ("negative", "file:pool.csv", "init"), ("positive", "carol", "import")]
    assert len(project.history("doc-1")) == 1


def test_an_annotator_column_is_recorded_per_row(tmp_path, project):
    path = labels_file(tmp_path, [{"id": "doc-7", "label": "negative", "annotator": "dana"}])
    import_labels(project, read_label_table(path), annotator="fallback", source="import")
    assert project.history("doc-7")[-1].annotator == "dana"


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"id": "doc-7", "label": "positive"}, {"id": "nope", "label": "positive"}], "1 id(s) are not in the project's pool: 'nope' (row 2)"),
        ([{"id": "doc-7", "label": "neutral"}], "outside the project's label set [positive, negative]: 'neutral' (row 1)"),
        ([{"id": "doc-7", "label": "positive"}, {"id": "doc-7", "label": "negative"}], "1 id(s) given two different labels: 'doc-7' ('positive' at row 1, 'negative' at row 2)"),
        ([{"id": "doc-7", "label": None}], "1 row(s) with an empty id or label (row 1)"),
    ],
)
def test_a_bad_label_file_is_rejected_and_writes_nothing(tmp_path, project, rows, message):
    before = project.db.execute("SELECT count(*) FROM label_events").fetchone()[0]
    with pytest.raises(ValidationError) as caught:
        import_labels(project, read_label_table(labels_file(tmp_path, rows)), annotator="x", source="import")
    assert message in str(caught.value)
    assert project.db.execute("SELECT count(*) FROM label_events").fetchone()[0] == before


def test_a_missing_column_is_named(tmp_path):
    path = labels_file(tmp_path, [{"key": "doc-1", "label": "positive"}])
    with pytest.raises(ValidationError, match="--id-column 'id' is not a column of labels.csv; its columns are: key, label"):
        read_label_table(path)


def test_export_lists_every_item_with_its_current_label(project):
    rows = export_rows(project)
    assert len(rows) == 60 and [r["id"] for r in rows[:3]] == ["doc-1", "doc-2", "doc-3"]
    assert rows[0]["label"] == "positive" and rows[0]["annotator"] == "file:pool.csv" and rows[0]["labeled_at"]
    assert rows[10]["label"] is None
    csv_text = render(rows, "csv")
    frame = pd.read_csv(pd.io.common.StringIO(csv_text), keep_default_na=False)
    assert list(frame.columns) == ["id", "text", "label", "annotator", "labeled_at"] and frame["label"][10] == ""
    lines = render(rows, "jsonl").splitlines()
    assert json.loads(lines[10])["label"] is None and json.loads(lines[0])["text"] == rows[0]["text"]


def test_export_with_predictions_adds_a_probability_per_label(project, encoder):
    rows = export_rows(project, pool_probabilities(project, encoder=encoder))
    row = rows[5]
    assert set(row) >= {"predicted", "confidence", "prob_positive", "prob_negative"}
    assert row["prob_positive"] + row["prob_negative"] == pytest.approx(1, abs=1e-5)
    assert row["predicted"] == ("positive" if row["prob_positive"] >= 0.5 else "negative")


def test_write_text_replaces_the_file_whole(tmp_path):
    target = tmp_path / "out.csv"
    write_text("one\n", target)
    write_text("two\n", target)
    assert target.read_text() == "two\n" and [p.name for p in tmp_path.iterdir()] == ["out.csv"]
    with pytest.raises(ValidationError, match="does not exist"):
        write_text("x", tmp_path / "missing" / "out.csv")

"""Label Studio: batches out as import JSON, annotation exports back in."""

import json

import pytest

from anchoral.errors import ValidationError
from anchoral.store.exchange import import_labels
from anchoral.store.labelstudio import batch_tasks, labeling_config, read_export
from anchoral.store.rounds import run_round


def annotated(tasks, choices):
    """What Label Studio's JSON export looks like after annotating ``tasks`` (one choice each, or None)."""
    exported = []
    for number, (task, choice) in enumerate(zip(tasks, choices), start=1):
        annotations = []
        if choice is not None:
            annotations = [
                {"id": 100 + number, "completed_by": {"id": 1, "email": "ann@example.org"}, "was_cancelled": False,
                 "created_at": "2024-05-01T10:00:00Z", "updated_at": "2024-05-01T10:00:00Z",
                 "result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [choice]}}]},
            ]
        exported.append({"id": number, "data": task["data"], "annotations": annotations, "predictions": []})
    return exported


def test_a_batch_exports_as_tasks_carrying_the_pool_id(project, encoder):
    result = run_round(project, encoder=encoder)
    tasks = batch_tasks(project)
    assert [t["data"]["anchoral_id"] for t in tasks] == result.selected_ids
    assert tasks[0]["data"]["text"] == project.item(project.positions_of([result.selected_ids[0]])[result.selected_ids[0]]).text
    assert tasks[0]["meta"] == {"round": 1, "rank": 0}
    config = labeling_config(project.labels)
    assert '<Text name="text" value="$text"/>' in config and '<Choice value="negative"/>' in config


def test_no_batch_yet_is_a_clear_error(project):
    with pytest.raises(ValidationError, match="no batch yet; run `anchoral query` first"):
        batch_tasks(project)


def test_annotations_come_back_as_labels_with_their_annotator(tmp_path, project, encoder, truth):
    run_round(project, encoder=encoder)
    tasks = batch_tasks(project)
    choices = [truth[t["data"]["anchoral_id"]] for t in tasks]
    choices[-1] = None  # not annotated yet
    path = tmp_path / "export.json"
    exported = annotated(tasks, choices)
    exported[0]["annotations"].insert(0, {"was_cancelled": True, "result": [
        {"type": "choices", "value": {"choices": ["positive" if choices[0] == "negative" else "negative"]}}]})
    path.write_text(json.dumps(exported))
    rows, skipped = read_export(path)
    report = import_labels(project, rows, annotator="label-studio", source="label-studio", skipped=skipped)
    assert (report.added, report.skipped) == (5, 1)
    assert project.batch_progress().labeled == 5
    first = project.history(tasks[0]["data"]["anchoral_id"])[-1]
    assert (first.label, first.annotator, first.source) == (choices[0], "label-studio:ann@example.org", "label-studio")


def test_the_latest_annotation_wins(tmp_path, project, encoder):
    run_round(project, encoder=encoder)
    task = batch_tasks(project)[0]
    exported = annotated([task, task], ["positive", "negative"])
    merged = [{**exported[0], "annotations": exported[1]["annotations"] + exported[0]["annotations"]}]
    merged[0]["annotations"][0]["updated_at"] = "2024-06-01T00:00:00Z"
    (tmp_path / "e.json").write_text(json.dumps(merged))
    rows, _ = read_export(tmp_path / "e.json")
    assert [row.label for row in rows] == ["negative"]


@pytest.mark.parametrize(
    "payload, message",
    [
        ("{not json", "is not valid JSON"),
        ('{"tasks": []}', "expected a list of tasks"),
        ('[{"id": 7, "data": {"text": "hi"}, "annotations": []}]', "task 1 (Label Studio id 7) has no data.anchoral_id"),
        ('[{"data": {"anchoral_id": "doc-3"}, "annotations": [{"result": [{"type": "choices", "value": {"choices": ["a", "b"]}}]}]}]',
         "2 choices"),
    ],
)
def test_a_malformed_export_is_named(tmp_path, payload, message):
    (tmp_path / "e.json").write_text(payload)
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_export(tmp_path / "e.json")


def test_a_choice_outside_the_label_set_is_rejected_by_the_import(tmp_path, project, encoder):
    run_round(project, encoder=encoder)
    (tmp_path / "e.json").write_text(json.dumps(annotated(batch_tasks(project)[:1], ["neutral"])))
    rows, _ = read_export(tmp_path / "e.json")
    with pytest.raises(ValidationError, match="'neutral' \\(task 1 \\(Label Studio id 1\\)\\)"):
        import_labels(project, rows, annotator="x", source="label-studio")

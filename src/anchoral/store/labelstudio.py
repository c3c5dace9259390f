"""Label Studio interop: a batch as Label Studio import JSON, and Label Studio's JSON
export of annotations read back as labels.

Tasks carry the pool id in ``data.anchoral_id`` (Label Studio keeps ``data`` as
given and returns it in its export). The labeling interface is a single-choice
``Choices`` control over the ``text`` field; ``labeling_config`` writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.sax.saxutils import quoteattr

from anchoral.errors import ValidationError
from anchoral.store.exchange import LabelRow
from anchoral.store.project import Project

ID_FIELD = "anchoral_id"


def labeling_config(labels: tuple[str, ...]) -> str:
    """The Label Studio labeling config (XML) matching the exported tasks."""
    choices = "\n".join(f"    <Choice value={quoteattr(name)}/>" for name in labels)
    return (
        "<View>\n"
        '  <Text name="text" value="$text"/>\n'
        '  <Choices name="label" toName="text" choice="single" showInLine="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def batch_tasks(project: Project, round_number: int | None = None) -> list[dict]:
    """Label Studio import tasks for a round's batch (default: the latest), in selection order."""
    items = project.batch(round_number)
    if not items:
        raise ValidationError("the project has no batch yet; run `anchoral query` first")
    number = round_number if round_number is not None else project.latest_round().round
    return [
        {"data": {"text": item.text, ID_FIELD: item.id}, "meta": {"round": number, "rank": rank}}
        for rank, item in enumerate(items)
    ]


def read_export(path: str | Path) -> tuple[list[LabelRow], int]:
    """Labels from a Label Studio JSON export; returns (rows, tasks skipped for lack of an annotation).

    Per task, the latest annotation that was not cancelled and holds one choice
    wins; its annotator is the Label Studio user's email (or id).
    """
    path = Path(path)
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"Label Studio export {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path.name} is not valid JSON: {exc}") from exc
    if not isinstance(payload, list):
        raise ValidationError(f"{path.name} is not a Label Studio JSON export (expected a list of tasks)")
    rows, skipped = [], 0
    for index, task in enumerate(payload, start=1):
        where = f"task {index}" + (f" (Label Studio id {task['id']})" if isinstance(task, dict) and "id" in task else "")
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            raise ValidationError(f"{path.name}: {where} has no 'data' object; is this a Label Studio JSON export?")
        item_id = task["data"].get(ID_FIELD)
        if item_id is None:
            raise ValidationError(
                f"{path.name}: {where} has no data.{ID_FIELD}; import only tasks exported with "
                "`anchoral export --format label-studio`"
            )
        annotation = _latest_annotation(task, where, path.name)
        if annotation is None:
            skipped += 1
            continue
        label, annotator = annotation
        rows.append(LabelRow(where, str(item_id), label, annotator))
    return rows, skipped


def _latest_annotation(task: dict, where: str, source: str) -> tuple[str, str] | None:
    annotations = task.get("annotations", task.get("completions")) or []
    usable = []
    for order, annotation in enumerate(annotations):
        if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
            continue
        choices = [
            choice
            for result in annotation.get("result") or []
            if isinstance(result, dict) and result.get("type") == "choices"
            for choice in (result.get("value") or {}).get("choices") or []
        ]
        if not choices:
            continue
        if len(choices) > 1:
            raise ValidationError(f"{source}: {where} has an annotation with {len(choices)} choices {choices}; expected one")
        when = str(annotation.get("updated_at") or annotation.get("created_at") or "")
        usable.append((when, order, choices[0], _annotator(annotation)))
    if not usable:
        return None
    _, _, label, annotator = max(usable)
    return str(label), annotator


def _annotator(annotation: dict) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return f"label-studio:{who}" if who is not None else "label-studio"

"""Every ```python block of docs/api.md, run in order in one namespace in a temporary
directory, so the documentation of the Python API cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[str]:
    return [match.group(1) for match in BLOCK.finditer(text)]


def test_the_page_has_code_blocks_to_run():
    assert len(python_blocks(DOC.read_text())) >= 8


@pytest.mark.real_data
def test_every_python_block_of_docs_api_md_runs_in_order(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_api"}
    for number, block in enumerate(python_blocks(DOC.read_text()), start=1):
        try:
            exec(compile(block, f"docs/api.md block {number}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"docs/api.md block {number} failed: {type(exc).__name__}: {exc}\n{block}") from exc
    printed = capsys.readouterr().out
    assert "cold-start-kmeans" in printed and "held-out accuracy" in printed
    assert (tmp_path / "reviews-project" / "project.sqlite").exists()

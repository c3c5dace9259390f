"""Opening a project refuses, with a clear message, anything it cannot safely use."""

import shutil
import sqlite3

import pytest

from anchoral.store import PROJECT_FILE, SCHEMA_VERSION, Project, ProjectError


def test_a_missing_directory_and_a_directory_without_a_project_are_named(tmp_path):
    with pytest.raises(ProjectError, match="does not exist; create it with `anchoral init`"):
        Project.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProjectError, match="is not an anchoral project .it has no project.sqlite."):
        Project.open(tmp_path / "empty")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / PROJECT_FILE).write_text("id,text\n1,hello\n")
    with pytest.raises(ProjectError, match="is not a SQLite database"):
        Project.open(tmp_path / "p")


def test_another_applications_database_is_refused(tmp_path):
    (tmp_path / "p").mkdir()
    other = sqlite3.connect(tmp_path / "p" / PROJECT_FILE)
    other.execute("CREATE TABLE t (x)")
    other.commit()
    other.close()
    with pytest.raises(ProjectError, match="a SQLite database but not an anchoral project"):
        Project.open(tmp_path / "p")


def test_a_newer_schema_is_refused_with_what_to_do(project):
    directory = project.directory
    newer = SCHEMA_VERSION + 1
    project.db.execute("INSERT INTO schema_version VALUES (?, 'later')", (newer,))
    project.close()
    with pytest.raises(
        ProjectError,
        match=rf"written by a newer anchoral \(project schema {newer}; this version reads up to {SCHEMA_VERSION}\); upgrade",
    ):
        Project.open(directory)


def test_a_corrupted_file_gives_a_clear_error(project, tmp_path):
    directory = project.directory
    project.close()
    path = directory / PROJECT_FILE
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    for page in range(1, len(data) // page_size):  # scribble over every page but the header page
        data[page * page_size : page * page_size + 64] = b"\xa5" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(ProjectError, match="corrupted"):
        Project.open(directory)


def test_a_truncated_file_gives_a_clear_error(project):
    directory = project.directory
    project.close()
    path = directory / PROJECT_FILE
    path.write_bytes(path.read_bytes()[:6000])
    with pytest.raises(ProjectError, match="corrupted|not a SQLite database"):
        Project.open(directory)


def test_a_copied_project_opens_with_its_labels(project, tmp_path):
    counts = project.label_counts()
    project.close()
    shutil.copytree(project.directory, tmp_path / "copy")
    with Project.open(tmp_path / "copy") as copy:
        assert copy.label_counts() == counts

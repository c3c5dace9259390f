"""Pinned archives: cache location, verified download, and in-place member reads."""

import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from anchoral.data.archives import (
    VADER_SENTIMENT,
    PinnedArchive,
    cache_dir,
    fetch_archive,
    read_member,
)
from anchoral.errors import DownloadError, ValidationError

GOOD_BYTES = b"the pinned archive bytes"
FAKE_SDIST = PinnedArchive(
    name="fake",
    requirement="fake==1.0",
    filename="fake-1.0.tar.gz",
    sha256=hashlib.sha256(GOOD_BYTES).hexdigest(),
    binary=False,
)


class FakePip:
    """Stands in for ``pip download``: records commands and writes ``payload``."""

    def __init__(self, payload=GOOD_BYTES, returncode=0, stderr="", filename=FAKE_SDIST.filename):
        self.payload, self.returncode, self.stderr, self.filename = payload, returncode, stderr, filename
        self.commands = []

    def __call__(self, command, *, quiet):
        self.commands.append(command)
        destination = Path(command[command.index("-d") + 1])
        if self.payload is not None:
            (destination / self.filename).write_bytes(self.payload)
        return subprocess.CompletedProcess(command, self.returncode, stdout=None, stderr=self.stderr)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ANCHORAL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def leftovers(cache):
    """Everything in the archives directory other than completed archives."""
    return [path.name for path in (cache / "archives").iterdir() if path.name != FAKE_SDIST.filename]


def test_cache_dir_honours_environment_variable(cache):
    assert cache_dir() == cache


def test_fetch_downloads_verifies_and_moves_into_cache(cache):
    pip = FakePip()
    path = fetch_archive(FAKE_SDIST, runner=pip)
    assert path == cache / "archives" / FAKE_SDIST.filename
    assert path.read_bytes() == GOOD_BYTES
    (command,) = pip.commands
    assert command[-1] == "fake==1.0" and "--no-deps" in command and "--no-binary=:all:" in command
    assert leftovers(cache) == []


def test_fetch_asks_pip_for_a_wheel_when_archive_is_binary(cache):
    wheel = PinnedArchive("fakewheel", "fake==1.0", "fake-1.0-py3-none-any.whl", FAKE_SDIST.sha256, binary=True)
    pip = FakePip(filename=wheel.filename)
    fetch_archive(wheel, runner=pip)
    assert "--only-binary=:all:" in pip.commands[0]


def test_fetch_reuses_a_verified_cached_file_without_pip(cache):
    fetch_archive(FAKE_SDIST, runner=FakePip())
    never_called = FakePip(returncode=1)
    fetch_archive(FAKE_SDIST, runner=never_called)
    assert never_called.commands == []


def test_fetch_replaces_a_corrupted_cached_file(cache):
    path = fetch_archive(FAKE_SDIST, runner=FakePip())
    path.write_bytes(b"bit rot")
    pip = FakePip()
    assert fetch_archive(FAKE_SDIST, runner=pip).read_bytes() == GOOD_BYTES
    assert len(pip.commands) == 1


def test_failed_pip_raises_download_error_with_stderr_and_retry_hint(cache):
    pip = FakePip(payload=None, returncode=1, stderr="line 1\nERROR: No matching distribution found for fake==1.0")
    with pytest.raises(DownloadError) as raised:
        fetch_archive(FAKE_SDIST, runner=pip)
    message = str(raised.value)
    assert "'fake'" in message and "fake==1.0" in message and FAKE_SDIST.sha256 in message
    assert "No matching distribution" in message and "status 1" in message
    assert "anchoral datasets fetch" in message
    assert not (cache / "archives" / FAKE_SDIST.filename).exists()
    assert leftovers(cache) == []


def test_wrong_hash_download_is_discarded_and_reported(cache):
    corrupted = b"tampered bytes"
    with pytest.raises(DownloadError) as raised:
        fetch_archive(FAKE_SDIST, runner=FakePip(payload=corrupted))
    message = str(raised.value)
    assert FAKE_SDIST.sha256 in message and hashlib.sha256(corrupted).hexdigest() in message
    assert not (cache / "archives" / FAKE_SDIST.filename).exists()
    assert leftovers(cache) == []


def test_corrupted_cache_is_not_left_behind_when_redownload_fails(cache):
    path = fetch_archive(FAKE_SDIST, runner=FakePip())
    path.write_bytes(b"bit rot")
    with pytest.raises(DownloadError):
        fetch_archive(FAKE_SDIST, runner=FakePip(payload=None, returncode=2))
    assert not path.exists()


def test_pip_success_without_the_expected_file_is_a_download_error(cache):
    with pytest.raises(DownloadError, match="did not save fake-1.0.tar.gz; it saved \\['other.tar.gz'\\]"):
        fetch_archive(FAKE_SDIST, runner=FakePip(filename="other.tar.gz"))


def test_pip_that_cannot_run_or_times_out_is_a_download_error(cache):
    def timing_out(command, *, quiet):
        raise subprocess.TimeoutExpired(command, 600)

    with pytest.raises(DownloadError, match="pip could not run: .*timed out"):
        fetch_archive(FAKE_SDIST, runner=timing_out)
    assert leftovers(cache) == []


def test_fetch_rejects_a_non_archive_argument(cache):
    with pytest.raises(ValidationError, match="archive must be a PinnedArchive; got str"):
        fetch_archive("vaderSentiment")


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_read_member_reads_tar_gz_and_nested_tar_gz(tmp_path):
    inner = tar_gz_bytes({"inner/ratings.txt": b"1\t2.5\tgreat\r\n"})
    outer = tmp_path / "pkg-1.0.tar.gz"
    outer.write_bytes(tar_gz_bytes({"pkg-1.0/setup.py": b"setup()", "pkg-1.0/data/inner.tar.gz": inner}))
    assert read_member(outer, "pkg-1.0/setup.py") == b"setup()"
    assert read_member(outer, ("pkg-1.0/data/inner.tar.gz", "inner/ratings.txt")) == b"1\t2.5\tgreat\r\n"


def test_read_member_reads_a_wheel(tmp_path):
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/data/corpus.csv", "a,b\n1,2\n")
    assert read_member(wheel, "pkg/data/corpus.csv") == b"a,b\n1,2\n"


def test_read_member_names_a_missing_member_and_close_matches(tmp_path):
    outer = tmp_path / "pkg-1.0.tar.gz"
    outer.write_bytes(tar_gz_bytes({"pkg-1.0/data/ratings.txt": b""}))
    with pytest.raises(ValidationError, match=r"'pkg-1.0/data/rating.txt' is not in .*closest: pkg-1.0/data/ratings.txt"):
        read_member(outer, "pkg-1.0/data/rating.txt")


def test_read_member_rejects_a_file_that_is_not_an_archive(tmp_path):
    not_archive = tmp_path / "notes.txt"
    not_archive.write_text("plain text")
    with pytest.raises(ValidationError, match="not a readable tar or zip archive"):
        read_member(not_archive, "anything")


@pytest.mark.real_data
def test_real_fetch_of_vader_sdist_matches_pinned_hash(cache):
    path = fetch_archive(VADER_SENTIMENT)
    assert path.name == "vaderSentiment-3.3.2.tar.gz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == VADER_SENTIMENT.sha256
    assert fetch_archive(VADER_SENTIMENT, runner=FakePip(returncode=1)) == path
    ratings = read_member(
        path,
        (
            "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz",
            "hutto_ICWSM_2014/tweets_GroundTruth.txt",
        ),
    )
    assert ratings.startswith(b"1\t2.726315789\tSomehow I was blessed")

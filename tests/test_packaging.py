"""The package as a user installs it: a wheel and an sdist built from the project's files
(setuptools' PEP 517 hooks, what ``python -m build --no-isolation`` calls), the wheel
installed into a fresh virtual environment, and the installed command and the API
walk-through's first block run from there (issue "anchoral as a library", item 4).

The fresh environment gets anchoral only from the wheel; its dependencies are made visible
through a ``.pth`` line pointing at the test environment's site-packages (a ``.pth`` line
adds a path but does not run that directory's own ``.pth`` files, so the editable install
of the working tree stays out of it)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def first_python_block(markdown: Path) -> str:
    return re.search(r"```python\n(.*?)```", markdown.read_text(), flags=re.S).group(1)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    script = ("from setuptools import build_meta as hooks\n"
              "wheel, sdist = hooks.build_wheel('dist'), hooks.build_sdist('dist')\n"
              "print('BUILT', wheel, sdist)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=source, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel_name, sdist_name = next(line for line in done.stdout.splitlines() if line.startswith("BUILT ")).split()[1:]
    return source / "dist" / wheel_name, source / "dist" / sdist_name


def test_the_wheel_and_the_sdist_hold_the_package_and_its_data(built):
    wheel, sdist = built
    assert wheel.name.startswith("anchoral-") and wheel.suffix == ".whl"
    names = zipfile.ZipFile(wheel).namelist()
    assert "anchoral/cli.py" in names and "anchoral/api/__init__.py" in names
    assert any(name.startswith("anchoral/serve/templates/") and name.endswith(".html") for name in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert any(member.endswith("src/anchoral/cli.py") for member in members)
    assert any(member.endswith("pyproject.toml") for member in members)


@pytest.mark.real_data
def test_the_wheel_installs_into_a_fresh_environment_and_runs(built, tmp_path):
    wheel, _ = built
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(fresh)], check=True, timeout=300)
    python = fresh / "bin" / "python"
    fresh_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    (fresh_site / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-2000:]

    where = subprocess.run([str(python), "-c", "import anchoral; print(anchoral.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(fresh_site)), where  # the wheel's copy, not the working tree
    version = subprocess.run([str(fresh / "bin" / "anchoral"), "--version"], capture_output=True, text=True,
                             timeout=120)
    assert version.returncode == 0 and re.search(r"\d+\.\d+\.\d+", version.stdout), version.stdout + version.stderr

    block = subprocess.run([str(python), "-c", first_python_block(ROOT / "docs" / "api.md")], capture_output=True,
                           text=True, timeout=300, cwd=tmp_path)
    assert block.returncode == 0, block.stderr[-2000:]
    assert (tmp_path / "reviews.csv").exists() and "{" in block.stdout

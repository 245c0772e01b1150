"""The code stays as we want it: ruff and mypy --strict clean, layers pointing downward."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent


def run(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    exe = BIN / tool if (BIN / tool).exists() else shutil.which(tool)
    if exe is None:
        pytest.fail(f"{tool} is not installed; `pip install -e '.[dev]'` installs it")
    return subprocess.run([str(exe), *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_is_clean():
    """ruff finds nothing in the package, tests or benchmarks."""
    out = run("ruff", "check", "service", "tests", "bench")
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_is_the_format():
    """The tree is as `ruff format` writes it: one format, no style review."""
    out = run("ruff", "format", "--check", "service", "tests", "bench")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_strict_is_clean():
    """mypy --strict finds nothing in service/."""
    out = run("mypy")
    assert out.returncode == 0, out.stdout + out.stderr


def test_imports_point_down_the_layers():
    """import-linter's layers contract in pyproject.toml holds."""
    out = run("lint-imports")
    assert out.returncode == 0, out.stdout + out.stderr

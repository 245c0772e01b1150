"""The code stays as we want it: ruff and mypy --strict clean, layers pointing downward."""

from __future__ import annotations

import os
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


BREACHES = [
    # (module, the line added to it, the contract it must break)
    (
        "service/mail/render.py",
        "import asyncio",
        "Below net/, no mail protocol, no embedded server, no event loop",
    ),
    (
        "service/forms/intake.py",
        "import imap_tools",
        "Below net/, no mail protocol, no embedded server, no event loop",
    ),
    ("service/jobs/chase.py", "import sqlalchemy", "Only store/ speaks SQL"),
    ("service/app/wiring.py", "from sqlalchemy import make_url", "Only store/ speaks SQL"),
    ("service/web/views.py", "import aiosmtpd", "Only demo/ runs mail servers"),
    ("service/jobs/poll.py", "from service.cli import base", "Roles import only downward"),
    ("service/app/wiring.py", "from service.web import users", "Roles import only downward"),
]


@pytest.mark.parametrize(("module", "line", "contract"), BREACHES, ids=[f"{m}:{c}" for m, _, c in BREACHES])
def test_each_contract_catches_a_deliberate_breach(tmp_path, module, line, contract):
    """The contracts are not vacuous: one bad import in a copy of the tree breaks exactly the
    contract it should, and lint-imports fails."""
    shutil.copytree(ROOT / "service", tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    exe = BIN / "lint-imports" if (BIN / "lint-imports").exists() else shutil.which("lint-imports")
    assert exe is not None
    # the copy comes first on the path, ahead of the installed (editable) package
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [str(exe), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, check=False, env=env
    )
    assert out.returncode != 0, out.stdout
    broken = {m.strip() for m in out.stdout.splitlines() if m.strip().endswith(" BROKEN")}
    assert broken == {f"{contract} BROKEN"}, out.stdout

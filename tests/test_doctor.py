"""``pytest --dfvc-doctor`` (issue 32, item 8): what this machine offers and what the
matrices need, every missing thing with what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .helpers import offline_install, write_project


def _doctor(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--dfvc-doctor"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_doctor_says_what_is_missing_and_what_to_do(
    tmp_path: Path, wheelhouse: Path, tooling: Path
) -> None:
    write_project(tmp_path, {"tests/test_a.py": "def test_a():\n    pass\n"})
    (tmp_path / "matrices").mkdir()
    # 3.14 is no interpreter this project's machines have.
    (tmp_path / "matrices" / "m.toml").write_text(
        'python = ["3.11", "3.14"]\n[packages.fakeframe]\nversions = ["1.0.0", "1.1.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    done = _doctor(tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "Traceback" not in out + done.stderr
    assert "  ok  Python 3.11: " in out
    assert "  !!  Python 3.14: not found, and matrix m asks for it — install it" in out
    assert "  ok  uv: uv " in out and "  ok  nox: " in out
    assert "  ok  index: none (no-index): the cells install from find-links only" in out
    # The matrix's own wheels, read from the folder's file sizes.
    assert "for 2 runnable cells" in out
    assert "1 thing(s) to fix" in out


def test_the_doctor_without_matrices_points_at_init(tmp_path: Path) -> None:
    write_project(tmp_path, {})
    (tmp_path / "uv.toml").write_text("no-index = true\n")
    done = _doctor(tmp_path)
    assert done.returncode == 1
    assert "!!  matrices: none here — `pytest --dfvc-init` writes a first one" in done.stdout

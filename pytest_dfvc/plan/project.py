"""Which project the matrices test: the folder that declares a package, found from where the
matrix files are."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

from ..tomlcheck import tomllib
from .matrix import Matrix


def project_under_test(matrices: list[Matrix], rootdir: Path) -> Path:
    """The project that owns the matrix files: the nearest folder at or above them that
    declares a package (``declares_package``), not looking above pytest's rootdir
    (nor above where the files and the rootdir meet); the rootdir when none does. In a
    monorepo, ``mono/pkga/matrices/`` under ``mono/pytest.ini`` tests ``pkga``, not
    ``mono``."""
    if not matrices:
        return rootdir
    start = matrices[0].path.resolve().parent
    root = rootdir.resolve()
    limit = root if root == start or root in start.parents else _common_folder(start, root)
    for folder in (start, *start.parents):
        if declares_package(folder):
            return folder
        if folder == limit:
            break
    return rootdir


def _common_folder(a: Path, b: Path) -> Path:
    return Path(os.path.commonpath([a, b]))


def declares_package(project: Path) -> bool:
    """Whether the folder says it is a package: a ``setup.py``, a ``pyproject.toml`` with
    ``[project]`` or ``[build-system]``, or a ``setup.cfg`` with ``[metadata]``. Files that
    hold only tool settings (``[tool.pytest.ini_options]``, ``[tool:pytest]``) do not: built,
    setuptools would package whatever folders it finds, pytest-dfvc's ``matrices/`` among
    them. A pyproject.toml that cannot be read counts, so that the build says why."""
    if (project / "setup.py").exists():
        return True
    try:
        table = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
        if "project" in table or "build-system" in table:
            return True
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True
    setup_cfg = configparser.ConfigParser(interpolation=None)
    try:
        setup_cfg.read(project / "setup.cfg", encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return True
    return setup_cfg.has_section("metadata")

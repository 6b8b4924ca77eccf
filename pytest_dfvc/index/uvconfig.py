"""Where the cells' uv looks for packages, so that releases are listed from the same places.

The cells run ``uv pip install`` in their view of the project, with the matrix's
``[install]`` settings on the command line; uv adds its own configuration: environment
variables (``UV_DEFAULT_INDEX``, ``UV_INDEX``, ``UV_FIND_LINKS``, ``UV_NO_INDEX`` …), then the
nearest ``uv.toml`` or ``pyproject.toml`` ``[tool.uv]`` from the project upwards, the user's
``uv.toml`` and the system's. pip's settings (``PIP_INDEX_URL``, ``pip.conf``) are not uv's
and are not read. Listing releases anywhere else would plan versions the cells cannot get, or
send a private package's name to PyPI.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..tomlcheck import Table, tomllib

PYPI = "https://pypi.org/simple"

_TRUE = ("1", "true", "yes", "on")

# Settings under which uv may refuse a file the index lists for the cell's Python.
_NARROWING_KEYS = (
    "exclude-newer",
    "exclude-newer-package",
    "index-strategy",
    "no-binary",
    "no-binary-package",
    "only-binary",
    "python-platform",
    "torch-backend",
)
# Where set, the user chose where packages come from (or that no configuration is read).
_INDEX_VARIABLES = (
    "UV_CONFIG_FILE",
    "UV_DEFAULT_INDEX",
    "UV_EXTRA_INDEX_URL",
    "UV_INDEX",
    "UV_INDEX_URL",
    "UV_NO_CONFIG",
    "UV_NO_INDEX",
)
PYPI_CONFIG = Path(__file__).with_name("uv-pypi.toml")
# The same without the pages' lifetime, for a page that must be asked for again.
PYPI_REFRESH_CONFIG = Path(__file__).with_name("uv-pypi-afresh.toml")

_NARROWING_VARIABLES = (
    "UV_EXCLUDE_NEWER",
    "UV_INDEX_STRATEGY",
    "UV_NO_BINARY",
    "UV_NO_BINARY_PACKAGE",
    "UV_PYTHON_PLATFORM",
    "UV_TORCH_BACKEND",
)


@dataclass(frozen=True)
class Sources:
    """The indexes uv asks, in its order (the first that has a package is the only one
    asked for it: uv's ``first-index`` strategy), and its find-links folders."""

    indexes: tuple[str, ...]
    find_links: tuple[str, ...] = ()
    # uv settings that change which of those files uv takes (``exclude-newer``,
    # ``index-strategy``, ...), where they were found: the index alone cannot say then.
    narrowing: tuple[str, ...] = ()


@dataclass
class _Settings:
    default: str | None = None
    extra: list[str] | None = None
    find_links: list[str] | None = None
    no_index: bool | None = None
    narrowing: list[str] = field(default_factory=list)

    def fill_from(self, other: _Settings) -> None:
        """Keep what is set here (the higher precedence); take the rest from ``other``."""
        self.default = self.default if self.default is not None else other.default
        self.extra = self.extra if self.extra is not None else other.extra
        self.find_links = self.find_links if self.find_links is not None else other.find_links
        self.no_index = self.no_index if self.no_index is not None else other.no_index
        self.narrowing += other.narrowing


def uv_sources(
    project: Path,
    *,
    index_url: str = "",
    no_index: bool = False,
    find_links: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Sources:
    """What the cells' uv searches for a package: the matrix's settings (``index_url``,
    ``no_index``, ``find_links``) first, then uv's own configuration as seen from
    ``project``."""
    env = os.environ if environ is None else environ
    settings = _from_environment(env)
    for path in _config_files(project, env):
        settings.fill_from(_from_file(path))
    links = (*find_links, *(settings.find_links or ()))
    narrowing = tuple(settings.narrowing)
    if no_index or settings.no_index:
        return Sources((), links, narrowing)
    default = _url(index_url) or settings.default or PYPI
    return Sources((*(settings.extra or ()), default), links, narrowing)


def pypi_config_args(
    start: Path,
    *,
    index_url: str = "",
    no_index: bool = False,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """``--config-file`` giving PyPI's own cache lifetimes (``uv-pypi.toml``: a project's
    page for 10 minutes, a file for good), where uv asks PyPI and no configuration of the
    user's would be set aside by it. uv revalidates a cached response that said nothing of
    its freshness on every call, and a mirror of PyPI may say nothing: each cell then
    fetched every page (numpy's is 1.9 MB) and its wheels' metadata again."""
    env = os.environ if environ is None else environ
    if index_url or no_index or any(env.get(v) for v in _INDEX_VARIABLES):
        return []
    if _config_files(start, env):
        return []
    return ["--config-file", str(PYPI_CONFIG)]


def _from_environment(env: Mapping[str, str]) -> _Settings:
    extra = [*env.get("UV_INDEX", "").split(), *env.get("UV_EXTRA_INDEX_URL", "").split()]
    links = [p for p in env.get("UV_FIND_LINKS", "").replace(",", " ").split() if p]
    no_index = env.get("UV_NO_INDEX", "").lower()
    return _Settings(
        default=_url(env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL") or "") or None,
        extra=[_url(u) for u in extra] or None,
        find_links=links or None,
        no_index=True if no_index in _TRUE else None,
        narrowing=[v for v in _NARROWING_VARIABLES if env.get(v)],
    )


def config_files(project: Path, environ: Mapping[str, str] | None = None) -> list[Path]:
    """uv's configuration files as seen from ``project``, highest precedence first."""
    return _config_files(project, os.environ if environ is None else environ)


def _config_files(project: Path, env: Mapping[str, str]) -> list[Path]:
    """uv's configuration files, highest precedence first."""
    if env.get("UV_NO_CONFIG", "").lower() in _TRUE:
        return []
    if env.get("UV_CONFIG_FILE"):
        return [Path(env["UV_CONFIG_FILE"])]
    found = []
    local = _project_config(project)
    if local is not None:
        found.append(local)
    home = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    user = Path(home, "uv", "uv.toml")
    if user.is_file():
        found.append(user)
    for folder in [*(env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep), "/etc"]:
        system = Path(folder, "uv", "uv.toml")
        if system.is_file():
            found.append(system)
            break
    return found


def _project_config(start: Path) -> Path | None:
    """The nearest ``uv.toml``, or ``pyproject.toml`` with a ``[tool.uv]`` table."""
    for folder in (start, *start.parents):
        if (folder / "uv.toml").is_file():
            return folder / "uv.toml"
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "uv" in _read(pyproject).get("tool", {}):
            return pyproject
    return None


def _from_file(path: Path) -> _Settings:
    table = _read(path)
    if path.name == "pyproject.toml":
        table = table.get("tool", {}).get("uv", {})
    # `uv pip` reads the [pip] table first, then the top level.
    pip = table.get("pip", {}) if isinstance(table.get("pip"), dict) else {}
    settings = _settings(pip, path.parent)
    settings.fill_from(_settings(table, path.parent))
    return settings


def _settings(table: Mapping[str, Any], base: Path) -> _Settings:
    extra: list[str] = []
    default = table.get("index-url")
    for index in table.get("index", []) or []:
        if not isinstance(index, dict) or not isinstance(index.get("url"), str):
            continue
        if index.get("default"):
            default = default or index["url"]
        elif not index.get("explicit"):
            extra.append(index["url"])
    extra += [u for u in table.get("extra-index-url", []) if isinstance(u, str)]
    # uv reads a relative folder as relative to the file that names it.
    links = [_folder(u, base) for u in table.get("find-links", []) if isinstance(u, str)]
    no_index = table.get("no-index")
    return _Settings(
        default=_url(default) if isinstance(default, str) else None,
        extra=[_url(u) for u in extra] or None,
        find_links=links or None,
        no_index=no_index if isinstance(no_index, bool) else None,
        narrowing=[k for k in _NARROWING_KEYS if k in table],
    )


def _url(value: str) -> str:
    return value.rstrip("/")


def _folder(link: str, base: Path) -> str:
    if "://" in link or Path(link).is_absolute():
        return link
    return str(base / link)


def _read(path: Path) -> Table:
    try:
        table: Table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    return table

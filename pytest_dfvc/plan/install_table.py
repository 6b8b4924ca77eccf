"""The ``[install]`` table of a matrix file: how each cell's environment is built."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..tomlcheck import (
    NAME,
    MatrixError,
    boolean,
    date,
    links,
    reject_unknown,
    requirement_list,
    resolve_link,
    string,
    string_list,
    url,
)
from ..vocabulary import RESOLUTIONS, Resolution


@dataclass(frozen=True)
class CudaVariant:
    """How one CUDA variant installs: its own index or wheel folders, uv's torch backend,
    and package substitutions (``tensorflow = "tensorflow-cpu"``, ``jax = "jax[cuda12]"``)."""

    index_url: str = ""
    find_links: tuple[str, ...] = ()
    # None: automatic (uv's --torch-backend for the PyTorch family when no index is given).
    torch_backend: str | None = None
    packages: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class InstallOptions:
    """How each cell's environment is built."""

    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    index_url: str = ""
    no_index: bool = False
    resolution: Resolution = "highest"
    exclude_newer: str = ""
    cuda: tuple[tuple[str, CudaVariant], ...] = ()
    # Environment variables every cell gets (MPLBACKEND = "Agg"); part of the cache key.
    env: tuple[tuple[str, str], ...] = ()
    # exclude-newer = "release[+Nd]": each cell resolves as of its newest pinned release's
    # upload, plus N days (era.py); None otherwise.
    era_days: int | None = None
    # False: the project is not installed; its tests import it from its tree.
    project: bool = True
    # What the project's build imports without declaring it (a legacy setup.py's numpy).
    build_requirements: tuple[str, ...] = ()

    def variant(self, cuda: str | None) -> CudaVariant:
        return dict(self.cuda).get(cuda or "", CudaVariant())


_INSTALL_KEYS = (
    "extras",
    "groups",
    "requirements",
    "constraints",
    "find-links",
    "index-url",
    "no-index",
    "resolution",
    "exclude-newer",
    "cuda",
    "env",
    "project",
    "build-requirements",
)


def parse_install(table: object, path: Path) -> InstallOptions:
    if not isinstance(table, dict):
        raise MatrixError(path, "install", table, "must be a table")
    reject_unknown(table, _INSTALL_KEYS, "install.", path)
    requirements = requirement_list(table, "requirements", path)
    constraints = requirement_list(table, "constraints", path)
    extras = string_list(table.get("extras", []), "install.extras", path)
    groups = string_list(table.get("groups", []), "install.groups", path)
    for key, names in (("install.extras", extras), ("install.groups", groups)):
        for n in names:
            if not NAME.match(n):
                raise MatrixError(path, key, n, "not a valid extra or group name")
    resolution = string(table.get("resolution", "highest"), "install.resolution", path)
    if resolution not in RESOLUTIONS:
        raise MatrixError(
            path, "install.resolution", resolution, f"must be one of {', '.join(RESOLUTIONS)}"
        )
    exclude_newer, era_days = _exclude_newer(table.get("exclude-newer", ""), path)
    find_links = links(table.get("find-links", []), "install.find-links", path)
    project = boolean(table.get("project", True), "install.project", path)
    build_requirements = requirement_list(table, "build-requirements", path)
    if not project:
        # What only an installed project has cannot be asked of one that is not installed.
        for key, value in (("extras", extras), ("build-requirements", build_requirements)):
            if value:
                raise MatrixError(
                    path,
                    f"install.{key}",
                    list(value),
                    "needs the project installed, and install.project is false",
                )
    return InstallOptions(
        extras=extras,
        groups=groups,
        requirements=requirements,
        constraints=constraints,
        # Relative find-links folders are relative to the matrix file, like any path in it.
        find_links=tuple(resolve_link(link, path) for link in find_links),
        index_url=url(table.get("index-url", ""), "install.index-url", path),
        no_index=boolean(table.get("no-index", False), "install.no-index", path),
        resolution=resolution,
        exclude_newer=exclude_newer,
        era_days=era_days,
        cuda=_parse_variants(table.get("cuda", {}), path),
        env=_parse_env(table.get("env", {}), path),
        project=project,
        build_requirements=build_requirements,
    )


def _parse_variants(table: object, path: Path) -> tuple[tuple[str, CudaVariant], ...]:
    if not isinstance(table, dict):
        raise MatrixError(path, "install.cuda", table, "must be a table of [install.cuda.VARIANT]")
    variants = []
    for name, spec in table.items():
        key = f"install.cuda.{name}"
        if not isinstance(spec, dict):
            raise MatrixError(path, key, spec, "must be a table")
        reject_unknown(
            spec, ("index-url", "find-links", "torch-backend", "packages"), key + ".", path
        )
        backend = spec.get("torch-backend")
        if backend is not None and not isinstance(backend, (str, bool)):
            raise MatrixError(
                path, key + ".torch-backend", backend, "must be a backend name or false"
            )
        packages = spec.get("packages", {})
        if not isinstance(packages, dict):
            raise MatrixError(
                path, key + ".packages", packages, "must be a table of NAME = requirement"
            )
        for package, replacement in packages.items():
            try:
                Requirement(string(replacement, f"{key}.packages.{package}", path))
            except InvalidRequirement:
                raise MatrixError(
                    path, f"{key}.packages.{package}", replacement, "not a valid requirement"
                ) from None
        variants.append(
            (
                name,
                CudaVariant(
                    index_url=url(spec.get("index-url", ""), key + ".index-url", path),
                    find_links=tuple(
                        resolve_link(link, path)
                        for link in links(spec.get("find-links", []), key + ".find-links", path)
                    ),
                    torch_backend=""
                    if backend is False
                    else (name if backend is True else backend),
                    packages=tuple((canonicalize_name(k), v) for k, v in packages.items()),
                ),
            )
        )
    return tuple(variants)


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# Ours: a matrix must not point the recorder elsewhere.
_RESERVED_ENV = ("DFVC_",)


def _parse_env(table: object, path: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(table, dict):
        raise MatrixError(path, "install.env", table, 'must be a table: env = { NAME = "value" }')
    env = []
    for name, value in table.items():
        key = f"install.env.{name}"
        if not _ENV_NAME.match(name) or name.startswith(_RESERVED_ENV):
            raise MatrixError(path, key, value, "not an environment variable name of one's own")
        env.append((name, string(value, key, path)))
    return tuple(sorted(env))


_ERA = re.compile(r"^release(?:\+(\d+)d)?$")


def _exclude_newer(value: object, path: Path) -> tuple[str, int | None]:
    """``exclude-newer``: a date, or ``release``/``release+30d`` (the era of each cell)."""
    key = "install.exclude-newer"
    if isinstance(value, str) and value.startswith("release"):
        found = _ERA.match(value)
        if found is None:
            raise MatrixError(
                path, key, value, "write release, or release+30d for 30 days after it"
            )
        return "", int(found.group(1) or 0)
    return date(value, key, path), None

"""The uv arguments a cell's resolution takes, the same for the pre-check, the reuse check and
the install: its pins, where packages come from, its era, and the uv settings it inherits.
Nothing here runs uv."""

from __future__ import annotations

import os
import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..index import uvconfig
from ..index.uvconfig import pypi_config_args
from .cell import Cell
from .era import era_args
from .matrix import InstallOptions, Matrix

# uv's --torch-backend knows these; other frameworks take an index or a package per variant.
TORCH_FAMILY = frozenset({"torch", "torchvision", "torchaudio"})


def pin_requirements(matrix: Matrix, cell: Cell) -> list[str]:
    """``numpy==1.23.5``; with a CUDA variant's substitution, ``tensorflow-cpu==2.15.0`` or
    ``jax[cuda12]==0.4.30``."""
    replaced = dict(matrix.install.variant(cell.cuda).packages)
    pins = []
    for name, version in cell.packages:
        if name in replaced:
            requirement = Requirement(replaced[name])
            extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
            pins.append(f"{requirement.name}{extras}=={version}")
        else:
            pins.append(f"{name}=={version}")
    return pins


# Local version labels that name a build variant of the same release (a CUDA or CPU build):
# ``2.5.1+cpu`` is torch 2.5.1. Any other label (``1.0.0+broken``) is another build.
_VARIANT_LABEL = re.compile(r"^(cpu|cu\d+|rocm[\d.]+|xpu)$")


def wrong_pins(pins: list[str], resolved: dict[str, str]) -> list[str]:
    """The pins the environment does not hold as asked: ``==1.0.0`` matches ``1.0.0+broken``
    (PEP 440 ignores a local label the pin does not give), and uv takes the labelled build
    when a folder has both. Each says what was installed instead."""
    installed = {str(canonicalize_name(n)): v for n, v in resolved.items()}
    wrong = []
    for pin in pins:
        requirement = Requirement(pin)
        asked = next(iter(requirement.specifier)).version
        got = installed.get(str(canonicalize_name(requirement.name)))
        if got is None or got == asked:
            continue
        public, _, label = got.partition("+")
        if public == asked and (not label or _VARIANT_LABEL.match(label)):
            continue
        wrong.append(f"{requirement.name}=={asked} installed {got}")
    return wrong


def source_args(matrix: Matrix, cell: Cell) -> list[str]:
    """Where packages come from, shared by the pre-check and the install: wheels only for
    the matrix packages, the indexes and folders of the matrix and of the cell's variant."""
    install = matrix.install
    variant = install.variant(cell.cuda)
    args = build_source_args(matrix)
    pins = pin_requirements(matrix, cell)
    for pin in pins:
        args += ["--only-binary", Requirement(pin).name]
    args += era_args(cell, pins)
    for link in variant.find_links:
        args += ["--find-links", link]
    if variant.index_url and not install.no_index:
        # Searched before the default index: the variant's builds win (uv's first-index rule).
        args += ["--extra-index-url", variant.index_url]
    backend = variant.torch_backend
    if backend is None and cell.cuda and not variant.index_url and not variant.find_links:
        backend = cell.cuda if any(n in TORCH_FAMILY for n, _ in cell.packages) else ""
    if variant.torch_backend is None and cell.torch_backend is not None:
        backend = cell.torch_backend
    if backend:
        args += ["--torch-backend", backend]
    return args


def build_source_args(matrix: Matrix) -> list[str]:
    """Where the matrix's packages, and the project's build requirements, come from, with
    PyPI's cache lifetimes where uv asks PyPI (``uvconfig.pypi_config_args``)."""
    install = matrix.install
    return [
        *pypi_config_args(
            matrix.path.parent, index_url=install.index_url, no_index=install.no_index
        ),
        *index_args(install),
    ]


def keeps_pages(args: list[str]) -> bool:
    """Whether uv, given these arguments, keeps PyPI's pages for their lifetime
    (``uv-pypi.toml``): then a release newer than its copy of a page is missing from it
    until the page is asked for again (``asked_afresh``)."""
    return str(uvconfig.PYPI_CONFIG) in args


def asked_afresh(args: list[str], name: str) -> list[str]:
    """The arguments again, asking the index for ``name``'s page: uv does not refresh a page
    whose lifetime a configuration sets, so with the configuration without it."""
    return [*without_lifetime(args), "--refresh-package", name]


def without_lifetime(args: list[str]) -> list[str]:
    kept, refreshed = str(uvconfig.PYPI_CONFIG), str(uvconfig.PYPI_REFRESH_CONFIG)
    return [refreshed if a == kept else a for a in args]


def index_args(install: InstallOptions) -> list[str]:
    """Where the matrix's packages, and the project's build requirements, come from."""
    args: list[str] = []
    for link in install.find_links:
        args += ["--find-links", link]
    if install.no_index:
        args.append("--no-index")
    elif install.index_url:
        args += ["--index-url", install.index_url]
    if install.exclude_newer:
        args += ["--exclude-newer", install.exclude_newer]
    return args


# uv variables that choose which environment or interpreter uv works on, not how it
# resolves: each cell's nox session sets its own (a nox session with the uv backend sets
# UV_PYTHON and UV_PROJECT_ENVIRONMENT to its environment; passed on, they made the cells'
# installs land in the environment pytest-dfvc itself ran from).
_ENVIRONMENT_VARIABLES = frozenset({"UV_PYTHON", "UV_PROJECT_ENVIRONMENT", "UV_SYSTEM_PYTHON"})


def uv_variables() -> dict[str, str]:
    """uv's settings in this environment (``UV_*``), which the cells' installs inherit;
    never those that choose the environment to install into."""
    return {
        k: v
        for k, v in sorted(os.environ.items())
        if k.startswith("UV_") and k not in _ENVIRONMENT_VARIABLES
    }

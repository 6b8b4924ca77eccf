"""Which CUDA variant a set of resolved or installed distributions is a build of.

PyTorch's own indexes label every build (``2.5.1+cu124``, ``2.5.1+cpu``). The wheels on PyPI
carry no label: they depend on NVIDIA's runtime wheels instead (``nvidia-cuda-runtime-cu12``
pinned to ``12.4.127``; from CUDA 13 on, ``nvidia-cuda-runtime``), and that version names the
CUDA release. TensorFlow's ``[and-cuda]`` extra and JAX's ``cuda12`` plugins pull the same
runtime wheels. Without either sign the build is not known, and nothing is judged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

_LABEL = re.compile(r"\+(?P<variant>cpu|cu\d+|rocm\d[\d.]*)$")
_RUNTIME = re.compile(r"nvidia-cuda-runtime(?:-cu\d+)?")
# Variant names whose meaning can be checked against a build; others ("gpu", "tpu") are the
# matrix author's own words.
_CHECKABLE = re.compile(r"cpu|cu\d+|rocm\d[\d.]*")


@dataclass(frozen=True)
class Build:
    """A build's variant (``cu124``) and what says so (``torch 2.5.1+cu124``)."""

    variant: str
    evidence: str


def build_of(distributions: Mapping[str, str]) -> Build | None:
    """The variant that ``{name: version}`` was built for, or None when nothing says."""
    for name, version in sorted(distributions.items()):
        label = _LABEL.search(version)
        if label:
            return Build(label["variant"], f"{name} {version}")
    for name, version in sorted(distributions.items()):
        if _RUNTIME.fullmatch(canonicalize_name(name)):
            try:
                release = Version(version).release
            except InvalidVersion:
                continue
            if len(release) >= 2:
                return Build(f"cu{release[0]}{release[1]}", f"{name} {version}")
    return None


def matches(variant: str, build: str) -> bool:
    """Whether a cell of ``variant`` may run ``build``: the same variant, or a build of a
    family the variant names (``cu12`` takes ``cu124``; JAX's ``cuda12`` spelling too).
    Unknown variant names take any."""
    variant = re.sub(r"^cuda(?=\d)", "cu", variant)
    if not _CHECKABLE.fullmatch(variant):
        return True
    if variant == "cpu" or build == "cpu":
        return variant == build
    return build.startswith(variant)


def pinned(compiled: str) -> dict[str, str]:
    """``{name: version}`` from ``uv pip compile`` output (``name==version`` lines)."""
    found = {}
    for line in compiled.splitlines():
        requirement = line.split("#", 1)[0].split(";", 1)[0].strip()
        name, sep, version = requirement.partition("==")
        if sep and name and version:
            found[str(canonicalize_name(name.split("[", 1)[0]))] = version.strip()
    return found


def mismatch(variant: str | None, distributions: Mapping[str, str]) -> Build | None:
    """The build a cell of ``variant`` resolved to, when it is another variant's."""
    if not variant:
        return None
    build = build_of(distributions)
    if build is None or matches(variant, build.variant):
        return None
    return build

"""A small fake framework, built as real wheels in several versions at test time.

Its history has the breaking changes of the DFVC study's table:

==========  ==========================================================================
1.0.0       ``mean``, ``old_mean``, ``ops.conv(x, filters=)``, ``fakeframe.utils.helper``
1.1.0       adds ``new_feature`` (tests using it fail on 1.0.0: a downgrade boundary)
1.2.0       ``scale`` silently changes its result (behaviour); ``ops.flatten`` refuses
            non-contiguous input (usage-constraint)
2.0.0       removes ``old_mean`` (missing-api), renames ``filters`` to ``kernel``
            (parameter), moves ``utils`` to ``tools`` (import-path), ``device()`` needs a
            GPU (resource), and breaks ``fakeaddon`` (third-party)
2.1.0       requires Python >= 3.10 (python-version)
==========  ==========================================================================
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

NAME = "fakeframe"
_WHEEL = (
    "Wheel-Version: 1.0\nGenerator: pytest-dfvc-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
)
VERSIONS = ("1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0")


def _sources(version: str) -> dict[str, str]:
    major, minor = (int(p) for p in version.split(".")[:2])
    v2 = major >= 2
    init = [f'__version__ = "{version}"', "", "def mean(xs):", "    return sum(xs) / len(xs)", ""]
    if not v2:
        init += ["def old_mean(xs):", "    return mean(xs)", ""]
    if (major, minor) >= (1, 1):
        init += ["def new_feature():", "    return 42", ""]
    factor = "2.0" if (major, minor) >= (1, 2) else "1.0"
    init += ["def scale(xs):", f"    return [x * {factor} for x in xs]", ""]
    if v2:
        # 2.x targets GPUs only: on a machine without one it fails the way CUDA builds do.
        init += [
            "def device():",
            '    raise RuntimeError("CUDA error: no CUDA GPUs are available")',
            "",
        ]
    else:
        init += ["def device():", '    return "cpu"', ""]
    keyword = "kernel" if v2 else "filters"
    ops = [
        f"def conv(x, {keyword}=1):",
        f"    if not isinstance({keyword}, int):",
        f'        raise TypeError("{keyword} must be an int")',
        f"    return [v * {keyword} for v in x]",
        "",
        "def flatten(x):",
    ]
    if (major, minor) >= (1, 2):
        # From 1.2 a view needs contiguous input: a usage constraint on a valid call.
        ops += [
            "    if any(isinstance(v, tuple) for v in x):",
            '        raise RuntimeError("view size is not compatible with input tensor\'s size and stride")',
        ]
    ops += ["    return [w for v in x for w in (v if isinstance(v, (list, tuple)) else [v])]", ""]
    helper_module = "tools" if v2 else "utils"
    return {
        f"{NAME}/__init__.py": "\n".join(init),
        f"{NAME}/ops.py": "\n".join(ops),
        f"{NAME}/{helper_module}.py": "def helper():\n    return 'help'\n",
    }


def _requires_python(version: str) -> str:
    return ">=3.10" if version == "2.1.0" else ">=3.7"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(version: str, dest: Path, name: str = NAME) -> Path:
    """Write ``{name}-{version}-py3-none-any.whl`` into ``dest``; a real, installable wheel."""
    dist_info = f"{name}-{version}.dist-info"
    files = {path.replace(NAME, name, 1): text for path, text in _sources(version).items()}
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        f"Requires-Python: {_requires_python(version)}\nSummary: fake framework for tests\n"
    )
    files[f"{dist_info}/WHEEL"] = _WHEEL
    files[f"{dist_info}/top_level.txt"] = f"{name}\n"
    return _write_wheel(dest, name, version, files)


def build_addon(dest: Path) -> Path:
    """``fakeaddon 1.0.0``: another distribution, built against fakeframe 1.x, whose import
    fails beside fakeframe 2 (a third-party cause, like pandas 1.x beside numpy 2)."""
    body = (
        "import fakeframe\n\n"
        "if int(fakeframe.__version__.split('.')[0]) >= 2:\n"
        "    raise ImportError('fakeaddon was built against fakeframe 1.x; "
        "fakeframe.dtype size changed')\n\n"
        "def extra():\n    return fakeframe.mean([1, 2])\n"
    )
    return simple_wheel(dest, "fakeaddon", "1.0.0", body, ("fakeframe",))


def simple_wheel(
    dest: Path, name: str, version: str, body: str = "", requires: tuple[str, ...] = ()
) -> Path:
    """A one-module wheel: ``name/__init__.py`` holding ``body``, with these requirements."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = {
        f"{module}/__init__.py": body,
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": _WHEEL,
        f"{dist_info}/top_level.txt": f"{module}\n",
    }
    return _write_wheel(dest, module, version, files)


def package_wheel(dest: Path, name: str, version: str, files: dict[str, str]) -> Path:
    """A wheel of these files (``name/__init__.py``, ``name/models.py``, ...)."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        **files,
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": _WHEEL,
        f"{dist_info}/top_level.txt": f"{name}\n",
    }
    return _write_wheel(dest, name, version, files)


def _write_wheel(dest: Path, name: str, version: str, files: dict[str, str]) -> Path:
    dist_info = f"{name}-{version}.dist-info"
    record = [_record_line(p, t.encode()) for p, t in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files = {**files, f"{dist_info}/RECORD": "\n".join(record) + "\n"}
    dest.mkdir(parents=True, exist_ok=True)
    wheel = dest / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def build_unlabelled(dest: Path) -> Path:
    """One folder as PyPI serves GPU frameworks: no local label, the CUDA release pinned
    through NVIDIA's runtime wheels (2.0.0 a CUDA 12.1 build, 2.1.0 a CUDA 13.0 one)."""
    runtimes = (("nvidia-cuda-runtime-cu12", "12.1.105"), ("nvidia-cuda-runtime", "13.0.96"))
    for version, (runtime, runtime_version) in zip(("2.0.0", "2.1.0"), runtimes):
        body = f'__version__ = "{version}"\n'
        simple_wheel(dest, "fakeframe", version, body, (f"{runtime}=={runtime_version}",))
        simple_wheel(dest, runtime, runtime_version)
    return dest


def build_all(dest: Path, versions: tuple[str, ...] = VERSIONS) -> list[Path]:
    return [build_wheel(v, dest) for v in versions] + [build_addon(dest)]


def build_history(dest: Path, count: int = 24, removed_at: int = 17) -> list[str]:
    """``longframe`` 1.0 … 1.<count-1>: ``api()`` exists before 1.<removed_at>, a long history
    with one upgrade boundary, for the search strategies."""
    versions = [f"1.{i}" for i in range(count)]
    for i, version in enumerate(versions):
        body = f'__version__ = "{version}"\n'
        if i < removed_at:
            body += "\ndef api():\n    return 1\n"
        simple_wheel(dest, "longframe", version, body)
    return versions


def build_variants(dest: Path) -> dict[str, Path]:
    """Per-variant wheel folders, as PyTorch's indexes serve them: ``fakeframe 2.0.0+cpu``,
    ``2.1.0+cpu`` and ``2.1.0+cu121`` (2.0.0 has no cu121 build)."""
    folders = {}
    for variant, versions in (("cpu", ("2.0.0", "2.1.0")), ("cu121", ("2.1.0",))):
        folder = dest / variant
        for version in versions:
            local = f"{version}+{variant}"
            body = f'__version__ = "{local}"\n\ndef device():\n    return "{"cuda" if variant != "cpu" else "cpu"}"\n'
            simple_wheel(folder, "fakeframe", local, body)
        folders[variant] = folder
    return folders

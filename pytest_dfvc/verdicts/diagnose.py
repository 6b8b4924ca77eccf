"""Root causes of failing tests, in the vocabulary of DESIGN.md's cause table.

The rules are data (``rules.py``); the first that matches wins. The framework API involved
is found the study's way: the call in the project's own code closest to the error that goes
into a matrix package.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from ..model import CauseJSON, Companion
from ..rules import BINARY, RULES, Rule

# Code that raises on the project's behalf: the standard library and pytest's assertion
# machinery. A failure raised there belongs to whoever called it.
_TOOLING_OWNERS = frozenset({"python", "_pytest", "pytest", "pluggy"})


def _tooling(owner: str | None) -> bool:
    """The project's own code (None) or code that raises on its behalf."""
    return owner is None or owner in _TOOLING_OWNERS


def diagnose(
    exception: Mapping[str, Any],
    *,
    frameworks: Mapping[str, str],
    top_level: Mapping[str, str],
    resolved: Mapping[str, str],
    rules: Sequence[Rule] = (),
    in_era: bool = False,
    companions: Mapping[str, Companion] | None = None,
) -> CauseJSON:
    """The cause of one failing test.

    ``frameworks`` maps each matrix package to the version the cell pinned; ``top_level``
    maps import names to distributions; ``resolved`` is what the cell installed; ``rules``
    (a project's, from the ``pytest_dfvc_rules`` hook) are tried before the built-in ones;
    ``in_era``: the cell resolved as of its release (``exclude-newer = "release"``);
    ``companions``: distributions the framework releases require at the major they have
    (``results.companions``): a failure raised in one is the release's own.
    """
    exc_type = str(exception.get("type") or "unknown")
    message = str(exception.get("message") or "")
    frames: list[Mapping[str, Any]] = list(exception.get("frames") or [])
    owners = [_owner(f, top_level) for f in frames]
    framework_modules = _framework_modules(frameworks, top_level)
    raised_in = _raised_in(owners, frameworks, exc_type, exception, top_level)
    companion = None
    if raised_in == "other" and companions:
        # Keras 3 beside TensorFlow 2.16: the release brought it, so it is the release's.
        widened = {**frameworks, **{n: c["version"] for n, c in companions.items()}}
        if _raised_in(owners, widened, exc_type, exception, top_level) == "framework":
            frameworks, raised_in = widened, "framework"
            framework_modules = _framework_modules(frameworks, top_level)
            companion = next(
                (companions[o] for o in reversed(owners) if o and o in companions), None
            )
    rule = next((r for r in (*rules, *RULES) if r.matches(exc_type, message, raised_in)), None)
    category = rule.category if rule else "unknown"
    if rule not in rules and _missing_from_stdlib(exc_type, message):
        category = "python-version"
    cause: CauseJSON = {
        "category": category,
        "exception": exc_type,
        "message": _message(message, rule),
    }
    location = _project_location(frames, owners)
    if location:
        cause["location"] = location
    api = find_api(exc_type, message, frames, owners, framework_modules, exception)
    lost = _OBJ_NO_ATTRIBUTE.search(message) or _NO_ATTRIBUTE.search(message)
    if not api and lost and exc_type.endswith("AttributeError"):
        # An attribute a standard-library class or module lost (``assertEquals``, 3.12).
        found = find_api(exc_type, message, frames, owners, set(_STDLIB), exception)
        api = found if found and found.endswith("." + lost.group("name")) else None
    named = _named_elsewhere(message, top_level, frameworks)
    if named is not None:
        # The API is the one the error names, and it belongs to its own package: an axis
        # object that happened to be on the failing line is not it.
        api = named[1]
        if rule not in rules and category in ("missing-api", "import-path"):
            category = cause["category"] = "third-party"
    keyword = _KEYWORD.search(message)
    if api and keyword and category == "parameter" and "(" not in api:
        # The API of a removed keyword is the function with it: ``to_csv(line_terminator=)``.
        api = f"{api}({keyword.group('keyword')}=)"
    if api:
        cause["api"] = api
        if rule not in rules and category == "missing-api" and api.split(".")[0] in _STDLIB:
            # A standard-library API one Python has and another lacks: the Python's change
            # (``unittest.TestCase.assertEquals``, gone in 3.12).
            category = cause["category"] = "python-version"
    if companion is not None and category != "third-party":
        cause["companion"] = dict(companion)  # type: ignore[typeddict-item]
    if category == "third-party":
        involved = named[0] if named else None
        _third_party(
            cause, message, owners, exception, top_level, resolved, frameworks, in_era, involved
        )
    return cause


def _named_elsewhere(
    message: str, top_level: Mapping[str, str], frameworks: Mapping[str, str]
) -> tuple[str, str] | None:
    """(distribution, API) when the error names a module of an installed distribution that
    is no matrix package (``module 'scipy.linalg' has no attribute 'pinv2'``,
    ``cannot import name 'pinv2' from 'scipy.linalg'``); None otherwise."""
    for pattern in (_NO_ATTRIBUTE, _CANNOT_IMPORT, _NO_MODULE):
        match = pattern.search(message)
        if match is None:
            continue
        module = match.group("module")
        holder = top_level.get(module.split(".", 1)[0])
        if holder is None or holder in frameworks or holder in _TOOLING_OWNERS:
            return None
        if module.split(".", 1)[0] in _STDLIB:
            return None
        name = match.groupdict().get("name")
        return holder, f"{module}.{name}" if name else module
    return None


# Standard-library modules, including those newer than the controller's own Python.
_STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {
    "tomllib",
    "zoneinfo",
    "graphlib",
    "annotationlib",
    "compression",
    "typing",
    "asyncio",
    "importlib",
    "functools",
    "dataclasses",
    "contextlib",
    "collections",
    "math",
    "os",
    "sys",
    "enum",
    "itertools",
    "statistics",
    "string",
    "types",
}


def _missing_from_stdlib(exc_type: str, message: str) -> bool:
    """A module or name of the standard library that this Python does not have yet
    (``tomllib`` before 3.11, ``typing.Self`` before 3.11): the cell's Python is too old."""
    if not exc_type.endswith(("ImportError", "ModuleNotFoundError", "AttributeError")):
        return False
    for pattern in (_NO_ATTRIBUTE, _CANNOT_IMPORT, _NO_MODULE):
        match = pattern.search(message)
        if match:
            return match.group("module").split(".", 1)[0] in _STDLIB
    return False


# Terminal colours and bold (torch prints ``\x1b[1m`` into its messages).
_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _message(message: str, rule: Rule | None) -> str:
    """The message's first line, without terminal escape codes; when the rule that matched
    read a later line (the one that explains: "we changed the default value of the
    `weights_only` argument"), that line after it."""
    lines = [line.strip() for line in _ESCAPES.sub("", message).splitlines() if line.strip()]
    if not lines:
        return ""
    shown = lines[0]
    if rule is not None and rule.message and not re.search(rule.message, shown, re.I):
        explains = next((line for line in lines[1:] if re.search(rule.message, line, re.I)), None)
        if explains:
            shown = f"{shown} … {explains}"
    return shown[:500]


def _owner(frame: Mapping[str, Any], top_level: Mapping[str, str]) -> str | None:
    """The distribution a frame's file belongs to; None for the project's own files."""
    module = module_of(str(frame.get("file", "")))
    if module is None:
        return None
    root = module.split(".", 1)[0]
    return top_level.get(root, "python" if "/lib/python" in str(frame.get("file")) else root)


def module_of(path: str) -> str | None:
    """The dotted module of an installed file; None for the project's own files.

    ``/venv/lib/python3.9/site-packages/numpy/core/fromnumeric.py`` is
    ``numpy.core.fromnumeric``.
    """
    normalized = path.replace("\\", "/")
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in normalized:
            tail = normalized.split(marker, 1)[1]
            return _dotted(tail)
    match = re.search(r"/lib/python\d\.\d+/(.+)$", normalized)
    if match and normalized.startswith("/"):
        return _dotted(match.group(1))
    return None


def _dotted(tail: str) -> str:
    tail = re.sub(r"\.pyi?$", "", tail)
    tail = re.sub(r"/__init__$", "", tail)
    return tail.replace("/", ".")


def _framework_modules(frameworks: Mapping[str, str], top_level: Mapping[str, str]) -> set[str]:
    modules = {m for m, dist in top_level.items() if dist in frameworks}
    # Without top-level data, the import name is usually the distribution's name.
    modules |= {name.replace("-", "_") for name in frameworks}
    return modules


def _raised_in(
    owners: list[str | None],
    frameworks: Mapping[str, str],
    exc_type: str,
    exception: Mapping[str, Any],
    top_level: Mapping[str, str],
) -> str:
    if exc_type.endswith(("ImportError", "ModuleNotFoundError")):
        return _import_owner(owners, frameworks, exception, top_level)
    owner = owners[-1] if owners else None
    if owner is None:
        return "project"
    if owner in frameworks:
        return "framework"
    if owner in _TOOLING_OWNERS or _assertion_helper(exc_type, exception):
        # An assertion helper or the standard library raised it on the project's behalf.
        return _after_project(owners, frameworks)
    return "other"


def _assertion_helper(exc_type: str, exception: Mapping[str, Any]) -> bool:
    """An assertion that failed in a testing module of any distribution (numpy.testing,
    pandas._testing): the helper compared the test's values on its behalf, so numpy
    shipping ``assert_allclose`` makes numpy no party to the failure."""
    frames = exception.get("frames") or []
    if not exc_type.endswith("AssertionError") or not frames:
        return False
    module = module_of(str(frames[-1].get("file", ""))) or ""
    return any(part in ("testing", "_testing") for part in module.split(".")[1:])


def _after_project(owners: list[str | None], frameworks: Mapping[str, str]) -> str:
    for owner in reversed(owners):
        if owner is None:
            return "project"
        if owner in frameworks:
            return "framework"
    return "project"


def _import_owner(
    owners: list[str | None],
    frameworks: Mapping[str, str],
    exception: Mapping[str, Any],
    top_level: Mapping[str, str],
) -> str:
    """An import that failed inside another distribution is that distribution's problem;
    one that failed in the project's code, or inside a framework, is an import path —
    unless a framework failed to import from another installed distribution (pandas 1.x
    importing what numpy 2 removed): that distribution moved, not the framework."""
    for owner in reversed(owners):
        if _tooling(owner):
            continue
        if owner not in frameworks:
            return "other"
        source = _imported_from(exception)
        holder = top_level.get(source.split(".")[0]) if source else None
        if holder and holder not in frameworks and holder not in _TOOLING_OWNERS:
            return "other"
        return "framework"
    return "project"


def _imported_from(exception: Mapping[str, Any]) -> str | None:
    """The module an ImportError names: ``from 'numpy'`` or ``No module named 'numpy.x'``."""
    message = str(exception.get("message") or "")
    for pattern in (_CANNOT_IMPORT, _NO_MODULE):
        match = pattern.search(message)
        if match:
            return match.group("module")
    return None


def _project_location(frames: list[Mapping[str, Any]], owners: list[str | None]) -> str | None:
    for frame, owner in zip(reversed(frames), reversed(owners)):
        if owner is None:
            return f"{frame.get('file')}:{frame.get('line')}"
    return None


_NO_ATTRIBUTE = re.compile(r"module '(?P<module>[\w.]+)' has no attribute '(?P<name>\w+)'")
_OBJ_NO_ATTRIBUTE = re.compile(r"'(?P<cls>[\w.]+)' object has no attribute '(?P<name>\w+)'")
_CANNOT_IMPORT = re.compile(r"cannot import name '(?P<name>\w+)' from '(?P<module>[\w.]+)'")
_CALLED = re.compile(r"^(?:(?P<owner>[\w.]+)\.)?(?P<function>\w+)\(\)")
_KEYWORD = re.compile(r"unexpected keyword argument '(?P<keyword>\w+)'")
# Frames that only pass a call on (a decorator's wrapper, ``__getattr__``): never the API.
_PASSING_ON = frozenset(
    {"wrapper", "wrapped", "inner", "decorated", "new_func", "_wrapper", "__getattr__"}
)
_NO_MODULE = re.compile(r"No module named '(?P<module>[\w.]+)'")


def find_api(
    exc_type: str,
    message: str,
    frames: list[Mapping[str, Any]],
    owners: list[str | None],
    framework_modules: set[str],
    exception: Mapping[str, Any],
) -> str | None:
    """The framework API involved, e.g. ``numpy.float`` or ``fakeframe.ops.conv``."""
    for pattern in (_NO_ATTRIBUTE, _CANNOT_IMPORT):
        match = pattern.search(message)
        if match and _is_framework(match.group("module"), framework_modules):
            return f"{match.group('module')}.{match.group('name')}"
    match = _NO_MODULE.search(message)
    if match and _is_framework(match.group("module"), framework_modules):
        return match.group("module")
    names = [
        str(resolved)
        for resolved in dict(exception.get("names") or {}).values()
        if _is_framework(str(resolved), framework_modules)
    ]
    match = _OBJ_NO_ATTRIBUTE.search(message)
    if match:
        # ``'Series' object has no attribute 'iteritems'``: the API is the attribute, on
        # the class as users reach it (``pandas.Series.iteritems``), never the framework's
        # ``__getattr__`` that raised.
        return _missing_attribute(names, match.group("cls"), match.group("name"))
    match = _CALLED.match(message)
    if match:
        called = [n for n in names if n.rsplit(".", 1)[-1] == match.group("function")]
        if called:
            return called[0]
        owner = (match.group("owner") or "").rsplit(".", 1)[-1]
        # ``Frame.to_csv() got an unexpected keyword``, where the line names ``silent.Frame``.
        owners = [n for n in names if owner and n.rsplit(".", 1)[-1] == owner]
        if owners:
            return f"{owners[0]}.{match.group('function')}"
    call = _called_framework_function(frames, owners, framework_modules, names)
    if call:
        return call
    closest = _closest_line_api(exception, framework_modules)
    if closest:
        return closest
    # Otherwise the most specific framework name on the project's failing lines.
    return max(names, key=lambda n: n.count("."), default=None)


def _passing_on(frame: Mapping[str, Any]) -> bool:
    qualname = str(frame.get("qualname") or frame.get("function") or "")
    return "<locals>" in qualname or str(frame.get("function")) in _PASSING_ON


def _closest_line_api(exception: Mapping[str, Any], framework_modules: set[str]) -> str | None:
    """The framework name on the project's line closest to the error: one called there
    (``np.array(...)``) first, else the most specific dotted one. A plain variable holding a
    framework object (``x`` → ``numpy.int64``) names no API."""
    for line in reversed(list(exception.get("lines") or [])):
        names = {
            str(k): str(v)
            for k, v in dict(line.get("names") or {}).items()
            if _is_framework(str(v), framework_modules)
        }
        called = [names[k] for k in line.get("called") or () if k in names and "." in k]
        if called:
            return max(called, key=lambda n: n.count("."))
        dotted = [v for k, v in names.items() if "." in k]
        if dotted:
            return max(dotted, key=lambda n: n.count("."))
    return None


def _is_framework(module: str, framework_modules: set[str]) -> bool:
    return module.split(".", 1)[0] in framework_modules


def _missing_attribute(names: list[str], cls: str, attribute: str) -> str | None:
    on_attribute = [n for n in names if n.endswith("." + attribute)]
    on_class = [n for n in on_attribute if n.rsplit(".", 2)[-2] == cls.rsplit(".", 1)[-1]]
    found = on_class or on_attribute
    return found[0] if found else None


def _called_framework_function(
    frames: list[Mapping[str, Any]],
    owners: list[str | None],
    framework_modules: set[str],
    names: list[str],
) -> str | None:
    """The first framework frame entered from the project's code closest to the error,
    named as the project's line reached it (``sklearn.linear_model.LogisticRegression.fit``)
    where the recorder resolved that name, else by its real module and qualified name:
    never a shortened path that does not exist."""
    for i in range(len(frames) - 1, 0, -1):
        if owners[i - 1] is None and owners[i] is not None:
            # A wrapper passes the call on: the function it called, further in, is the API.
            i = next((j for j in range(i, len(frames)) if not _passing_on(frames[j])), -1)
            if i < 0 or owners[i] is None:
                continue
            module = module_of(str(frames[i].get("file", "")))
            if not module or not _is_framework(module, framework_modules):
                continue
            function = str(frames[i].get("function", ""))
            qualname = str(frames[i].get("qualname") or function)
            if function == "<module>":
                return module
            on_line = [n for n in names if n.rsplit(".", 1)[-1] == function]
            if on_line:
                return on_line[0]
            if function.startswith("__") and function.endswith("__"):
                # ``Conv.__init__`` stands for ``Conv(...)``; an anonymous dunder tells nothing.
                owner = qualname.rsplit(".", 1)[0] if "." in qualname else ""
                return f"{module}.{owner}" if owner else None
            return f"{module}.{qualname}"
    return None


ERA_SUGGESTION = '[install] exclude-newer = "release" resolves each cell as of its release'


def _third_party(
    cause: CauseJSON,
    message: str,
    owners: list[str | None],
    exception: Mapping[str, Any],
    top_level: Mapping[str, str],
    resolved: Mapping[str, str],
    frameworks: Mapping[str, str],
    in_era: bool,
    named: str | None = None,
) -> None:
    """Name in ``cause`` the other distribution involved (``named``: the one the error
    names), the version the cell got, and what to try: resolving each cell as of its
    release, unless ``in_era`` says the cell was."""
    binary = re.search(BINARY, message, re.IGNORECASE) is not None
    involved = named
    source = _imported_from(exception)
    holder = top_level.get(source.split(".")[0]) if source else None
    if involved is None:
        involved = _involved(binary, holder, owners, resolved, frameworks)
    if involved is None:
        return
    cause["distribution"] = involved
    version = resolved.get(involved)
    if not version:
        return
    cause["version"] = version
    # The general answer is the era: each cell resolves as of its own release (era.py); a
    # cell resolved so already needs the constraint.
    era = "" if in_era else f"{ERA_SUGGESTION}; or "
    if involved == "numpy" and binary:
        # Compiled extensions break across numpy's ABI breaks, which come with majors.
        cause["suggestion"] = f"{era}add the constraint numpy<{version.split('.')[0]}"
    else:
        beside = ", ".join(f"{n} {v}" for n, v in frameworks.items())
        when = " even as of the cell's release" if in_era else ""
        cause["suggestion"] = (
            f"{involved} {version} does not work beside {beside}{when}: {era}constrain "
            f"{involved} to a release made for it ([install] constraints)"
        )


def _involved(
    binary: bool,
    holder: str | None,
    owners: list[str | None],
    resolved: Mapping[str, str],
    frameworks: Mapping[str, str],
) -> str | None:
    """The other distribution a third-party failure comes from: numpy for a binary
    incompatibility, what a framework failed to import from, else the innermost frame's."""
    if binary and "numpy" in resolved and "numpy" not in frameworks:
        return "numpy"
    if holder and holder not in frameworks and holder not in _TOOLING_OWNERS:
        return holder
    for owner in reversed(owners):
        if not _tooling(owner) and (owner not in frameworks or binary):
            return owner
    return None

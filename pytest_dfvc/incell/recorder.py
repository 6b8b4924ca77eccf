"""The in-cell recorder: a pytest plugin loaded inside every cell's environment.

It runs on whatever the cell has (Python 3.7 and pytest 6 included), so it uses the standard
library only, old-style hook wrappers, and nothing newer than Python 3.7 syntax. It appends
one JSON object per line to the file named by ``DFVC_RECORDS``: the environment, every test
outcome (collection errors included), the warnings each test raised, and the exit status.
Lines are flushed as they are written, so a crash loses only the test that crashed.

One file, so that it is copied alone into each cell (``cells.provision``). Its sections:

1. the records file: ``Recorder`` writes the lines (environment, outcomes, warnings, exit);
2. failures, described where the test ran: the exception, its frames, the project's lines;
3. names on the failing lines: what ``np.float`` referred to in the failing frame;
4. exceptions and skips as text: chains, a report's text, skip reasons;
5. the environment: installed distributions, their import names, a set-back's conflicts;
6. the project's rules hook, declared in the cells too;
7. declared ranges (``@pytest.mark.dfvc``) and GPU marks;
8. recorded values (``dfvc_record``);
9. differential traces: a boundary's trace cells record each test's calls into the axis
   packages (``CallTracer``), which the controller aligns across versions;
10. the pytest hooks that start and stop the recorder.
"""

from __future__ import annotations

import json
import linecache
import os
import platform
import re
import sys
import traceback
import types
from typing import TYPE_CHECKING, Any, TypeVar, Union

import pytest

if TYPE_CHECKING:  # the annotations are strings at run time: Python 3.7 never reads them
    import warnings
    from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
    from types import FrameType, TracebackType

    from _pytest.nodes import Node
    from _pytest.reports import BaseReport
    from packaging.requirements import Requirement
    from pytest import (
        CallInfo,
        CollectReport,
        Config,
        FixtureRequest,
        Item,
        PytestPluginManager,
        Session,
        TestReport,
    )

    # One line of the records file, as JSON.
    Record = dict[str, Any]
    # A declared range: a specifier, or CUDA variants (a name or a list of names).
    Spec = Union[str, Sequence[str]]
    T = TypeVar("T")
    D = TypeVar("D")

# --- the records file ------------------------------------------------------------------------

RECORDS_ENV = "DFVC_RECORDS"
DESELECT_ENV = "DFVC_DESELECT"
SCHEMA = 1
_MAX_MESSAGE = 2000
_MAX_FRAMES = 40
_DIST_INFO = re.compile(r"^(?P<name>.+?)-(?P<version>[^-]+?)\.(dist|egg)-info$")
# Warnings: distinct ones per test, and in all (a test that warns in a loop repeats one).
_MAX_WARNINGS_PER_TEST = 20
_MAX_WARNINGS = 2000
_MAX_WARNING_MESSAGE = 500


class Recorder:
    def __init__(self, path: str, rootdir: str) -> None:
        # Held open for the whole session and closed in pytest_unconfigure.
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._rootdir = rootdir
        self._phases: dict[str, list[TestReport]] = {}
        self._deselected = 0
        self._warned: dict[str, set[tuple[str, str, str]]] = {}
        self._warnings = 0

    def write(self, record: Record) -> None:
        self._file.write(json.dumps(record, sort_keys=True, default=_safe_str) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    # --- environment -------------------------------------------------------------------

    def write_environment(self) -> None:
        self.write(
            {
                "kind": "env",
                "schema": SCHEMA,
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
                "executable": sys.executable,
                "pytest": pytest.__version__,
                "distributions": installed_distributions(),
                "top_level": top_level_modules(),
                "conflicts": held_conflicts(),
                "requires": framework_requirements(),
            }
        )

    # --- outcomes ----------------------------------------------------------------------

    def pytest_collectreport(self, report: CollectReport) -> None:
        # A module that fails to import is a finding against each of its tests; one skipped
        # at module level (``pytest.importorskip``) ran none of them: both are kept.
        if report.failed:
            record = self._outcome_record(report.nodeid or ".", "error", "collect", report)
            self.write(record)
        elif report.skipped and report.nodeid:
            self.write(self._outcome_record(report.nodeid, "skipped", "collect", report))

    # --- warnings ----------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_warning_recorded(
        self, warning_message: warnings.WarningMessage, when: str, nodeid: str, location: object
    ) -> None:
        # Evidence of what the next release removes: never at the cost of an outcome.
        _guarded(self._warning, None, warning_message, when, nodeid)

    def _warning(self, warning_message: warnings.WarningMessage, when: str, nodeid: str) -> None:
        if when not in ("runtest", "collect") or self._warnings >= _MAX_WARNINGS:
            return
        record = warning_record(warning_message, self._rootdir)
        # Collection warnings come without a node: the module file they point at (a module
        # that uses a deprecated name at import) stands for its tests.
        key = nodeid or "file:" + record["location"].rsplit(":", 1)[0]
        seen = self._warned.setdefault(key, set())
        shape = (record["category"], record["message"], record["location"])
        if shape in seen or len(seen) >= _MAX_WARNINGS_PER_TEST:
            return
        seen.add(shape)
        self._warnings += 1
        self.write(dict(record, kind="warning", nodeid=nodeid or "", when=when))

    def pytest_deselected(self, items: Sequence[Item]) -> None:
        self._deselected += len(items)

    def pytest_runtest_logstart(self, nodeid: str, location: object) -> None:
        # If the process dies inside this test, the controller knows which test it was.
        self.write({"kind": "start", "nodeid": nodeid})

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: Session, config: Config, items: list[Item]
    ) -> None:
        """After a crash the controller restarts the cell's pytest without the tests that
        already have an outcome (and the one that crashed)."""
        done = _read_lines(os.environ.get(DESELECT_ENV))
        if not done:
            return
        kept = [item for item in items if item.nodeid not in done]
        if len(kept) != len(items):
            config.hook.pytest_deselected(items=[i for i in items if i.nodeid in done])
            # Those ran before the restart: not deselected by the user.
            self._deselected -= len(items) - len(kept)
            items[:] = kept

    def pytest_runtest_logreport(self, report: TestReport) -> None:
        for key, value in getattr(report, "dfvc_values", None) or ():
            self.write({"kind": "value", "nodeid": report.nodeid, "key": key, "value": value})
        phases = self._phases.setdefault(report.nodeid, [])
        phases.append(report)
        if report.when == "teardown":
            del self._phases[report.nodeid]
            self.write(self._merge(report.nodeid, phases))

    def pytest_sessionfinish(self, session: Session, exitstatus: int) -> None:
        for nodeid, phases in list(self._phases.items()):
            self.write(self._merge(nodeid, phases))
        # The project's diagnosis rules live in its conftest.py files, which only the cells
        # load (the controller does not import the project): they travel as a record.
        rules = _guarded(_project_rules, [], session.config)
        if rules:
            self.write({"kind": "rules", "rules": rules})
        self.write(
            {
                "kind": "finish",
                "exitstatus": int(exitstatus),
                "collected": getattr(session, "testscollected", None),
                "deselected": self._deselected,
            }
        )

    def _merge(self, nodeid: str, phases: list[TestReport]) -> Record:
        """One outcome per test from its setup, call and teardown reports."""
        outcome, when, failing = "passed", "call", None
        for rep in phases:
            if rep.failed:
                outcome = "error" if rep.when != "call" else "failed"
                when, failing = rep.when, rep
                break
            if rep.skipped:
                outcome, when, failing = "skipped", rep.when, rep
        record = self._outcome_record(nodeid, outcome, when, failing)
        declared = next((r.dfvc_declared for r in phases if hasattr(r, "dfvc_declared")), None)
        if declared is not None:
            record["declared"], record["inside"] = declared
        record["duration"] = round(sum(getattr(r, "duration", 0.0) for r in phases), 6)
        traced = next((r.dfvc_calls for r in phases if hasattr(r, "dfvc_calls")), None)
        if traced is not None:
            record["calls"], record["calls_dropped"] = traced
        return record

    def _outcome_record(
        self, nodeid: str, outcome: str, when: str, report: BaseReport | None
    ) -> Record:
        record: Record = {"kind": "test", "nodeid": nodeid, "outcome": outcome, "when": when}
        if report is None:
            return record
        if outcome == "skipped":
            record["reason"] = _guarded(skip_reason, "", report)
            return record
        longrepr = _guarded(lambda: str(report.longrepr or ""), "")
        record["longrepr"] = longrepr[-8000:]
        exception = getattr(report, "dfvc_exception", None)
        record["exception"] = exception or _guarded(
            exception_from_text, {"type": "unknown", "message": "", "frames": []}, longrepr
        )
        return record


# --- failures, described where the test ran ------------------------------------------------
#
# In the process that ran the test (the main one, or a pytest-xdist worker), the failure is
# described and put on the report, with the test's declared ranges and recorded values: pytest
# (and xdist, when it sends reports to the main process) carries a report's attributes along.


_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def warning_record(warning_message: warnings.WarningMessage, rootdir: str) -> Record:
    """A warning as the controller reads it: its category (and whether it announces a
    deprecation), its message, and where it pointed (file:line, relative to the rootdir
    when in the project)."""
    category = warning_message.category
    message = _safe_str(warning_message.message)
    where = _relative(str(warning_message.filename), rootdir)
    # Inside an installed package: the path from the package on (sklearn/utils/x.py), the
    # same in every cell, not the cell's environment folder.
    where = re.split(r"[\\/]site-packages[\\/]", where)[-1]
    return {
        "category": getattr(category, "__name__", str(category)),
        "deprecation": isinstance(category, type) and issubclass(category, _DEPRECATIONS),
        "message": message[:_MAX_WARNING_MESSAGE],
        "location": f"{where}:{warning_message.lineno}",
        "names": _guarded(existing_names, {}, message, str(warning_message.filename)),
    }


_WORD = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_ALIASES = {"np": "numpy", "pd": "pandas", "tf": "tensorflow", "sp": "scipy"}
# Per top-level package: how many of its modules were loaded, and the names they define.
_NAME_INDEX: dict[str, tuple[int, dict[str, str]]] = {}


def existing_names(message: str, filename: str) -> dict[str, str]:
    """The words of a warning's text that name something that exists, with its path: a
    dotted name whose first part is a module loaded here (``np.int`` -> ``numpy.int``), or
    a bare name defined in the package of the module that warned or of a matrix package,
    or on one of their classes (``get_feature_names`` -> its class's method). English
    words ("argument", "positions") and parameter names name nothing."""
    found: dict[str, str] = {}
    packages = _warning_packages(filename)
    for word in sorted(set(_WORD.findall(message)))[:60]:
        head, dot, rest = word.partition(".")
        module = _ALIASES.get(head, head)
        if dot and module in sys.modules:
            found[word] = f"{module}.{rest}"
            continue
        if not dot and len(word) > 1:
            for package in packages:
                path = _package_names(package).get(word)
                if path:
                    found[word] = path
                    break
    return found


# Per file a warning pointed at: the top-level package of the module loaded from it.
_FILE_PACKAGES: dict[str, str | None] = {}
_MATRIX_MODULES: list[list[str]] = []


def _warning_packages(filename: str) -> list[str]:
    """The top-level package of the module at ``filename`` (when one is loaded from it),
    then the matrix packages of the cell. Both looked up once per process and file: a
    test warns in a loop, and reading the environment's distributions is not free."""
    absolute = os.path.abspath(filename)
    if absolute not in _FILE_PACKAGES:
        _FILE_PACKAGES[absolute] = next(
            (
                name.split(".")[0]
                for name, module in list(sys.modules.items())
                if _plain_str(getattr(module, "__file__", None)) == absolute
            ),
            None,
        )
    own = _FILE_PACKAGES[absolute]
    packages = [own] if own else []
    packages += matrix_modules()
    return [p for p in dict.fromkeys(packages) if p in sys.modules]


def matrix_modules() -> list[str]:
    """The import names of the cell's matrix packages (``DFVC_CELL``), read once."""
    if not _MATRIX_MODULES:
        try:
            cell = json.loads(os.environ.get("DFVC_CELL") or "{}")
        except ValueError:
            cell = {}
        packages = cell.get("packages") if isinstance(cell, dict) else None
        wanted = {_normal(n) for n in packages or {}}
        found = set()
        if wanted:
            modules = top_level_modules()
            found = {m for m, dist in modules.items() if _normal(dist) in wanted}
            found |= {n.replace("-", "_") for n in wanted}
        _MATRIX_MODULES.append(sorted(found))
    return _MATRIX_MODULES[0]


def _package_names(package: str) -> dict[str, str]:
    """Every public name the loaded modules of ``package`` define, and the public attributes
    of their classes, each with a path; built again when more of its modules are loaded."""
    loaded = [
        (n, m) for n, m in list(sys.modules.items()) if n == package or n.startswith(package + ".")
    ]
    kept = _NAME_INDEX.get(package)
    # Built again only when a tenth more of its modules were loaded: a warning in a loop
    # of imports costs one index, not one each.
    if kept is not None and len(loaded) <= kept[0] * 1.1:
        return kept[1]
    index: dict[str, str] = {}
    for name, module in sorted(loaded, key=lambda item: item[0].count(".")):
        for key, value in list(_namespace(module).items()):
            if key.startswith("_"):
                continue
            index.setdefault(key, f"{name}.{key}")
            if isinstance(value, type) and str(getattr(value, "__module__", "")).startswith(
                package
            ):
                owner = public_path(value) or f"{name}.{key}"
                for attribute in list(type.__getattribute__(value, "__dict__")):
                    if not attribute.startswith("_"):
                        index.setdefault(attribute, f"{owner}.{attribute}")
    _NAME_INDEX[package] = (len(loaded), index)
    return index


def _guarded(function: Callable[..., T], default: D, *args: Any) -> T | D:
    """``function(*args)``, or ``default`` when it raises anything at all.

    Describing a failure reads objects from the failing frames, and those can be hostile: a
    pipe DSL's placeholder whose ``__getattr__``, ``__bool__`` or ``__eq__`` raise, a
    ``__repr__`` that recurses forever. The recorder may lose a detail, never an outcome.
    """
    try:
        return function(*args)
    except Exception:
        return default


def _safe_str(value: object) -> str:
    return _guarded(str, f"<unprintable {type(value).__name__}>", value)


def describe(exc: BaseException, rootdir: str) -> Record:
    """What the controller needs to diagnose a failure: type, message, frames, and what
    the names on the project's failing lines refer to. Never raises."""
    exc = _guarded(innermost_cause, exc, exc)
    described: Record = {
        "type": _guarded(qualified_type, "unknown", exc),
        # Paths inside the project read the same in every cell (each runs in its own copy).
        "message": _safe_str(exc).replace(rootdir + os.sep, "")[:_MAX_MESSAGE],
        "frames": [],
    }
    tb = getattr(exc, "__traceback__", None)
    described["frames"] = _guarded(_frames, [], tb, rootdir)
    lines = _guarded(_project_lines, [], tb, rootdir)
    described["names"] = {k: v for line in lines for k, v in line["names"].items()}
    # Innermost last: the line closest to the error names the API the study asks for.
    described["lines"] = lines
    if isinstance(exc, ImportError):
        name = _guarded(lambda: exc.name, None)
        if isinstance(name, str):
            described["module"] = name
    if isinstance(exc, SyntaxError):
        frame = _guarded(_syntax_frame, None, exc, rootdir)
        if frame:
            described["frames"].append(frame)
    return described


def _frames(tb: TracebackType | None, rootdir: str) -> list[Record]:
    frames = [_frame(f, rootdir) for f in traceback.extract_tb(tb)[-_MAX_FRAMES:]]
    # Python 3.11 knows each function's qualified name (``NDFrame.__getattr__``).
    codes = []
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    for frame, code in zip(frames, codes[-len(frames) :] if frames else []):
        qualname = getattr(code, "co_qualname", None)
        if isinstance(qualname, str) and qualname != frame["function"]:
            frame["qualname"] = qualname
    return frames


def _syntax_frame(exc: SyntaxError, rootdir: str) -> Record | None:
    if not exc.filename:
        return None
    return {
        "file": _relative(exc.filename, rootdir),
        "line": exc.lineno or 0,
        "function": "<module>",
        "code": (exc.text or "").strip(),
    }


def _project_lines(tb: TracebackType | None, rootdir: str) -> list[Record]:
    """What the dotted names on the project's failing lines refer to, line by line.

    The study names "the framework API called by the client code closest to the error";
    ``ops.conv`` on a line means nothing later, ``fakeframe.ops.conv`` does. Only the
    frames of the project's own files are read, outermost first; ``called`` are the names
    called on the line (``np.array(``). A name that cannot be resolved safely is left out.
    """
    lines = []
    while tb is not None:
        frame = tb.tb_frame
        filename = frame.f_code.co_filename
        if _is_project(filename, rootdir):
            text = linecache.getline(filename, tb.tb_lineno).strip()
            names = {}
            for dotted in sorted(set(_DOTTED.findall(text))):
                resolved = _guarded(resolve_name, None, dotted, frame)
                if isinstance(resolved, str):
                    names[dotted] = resolved
            # ``hasattr(numpy, 'acos')``: the attribute asked about is the API on the line.
            for owner, attribute in _ASKED.findall(text):
                if owner in names:
                    names[f"{owner}.{attribute}"] = f"{names[owner]}.{attribute}"
            called = sorted(n for n in names if re.search(re.escape(n) + r"\s*\(", text))
            lines.append(
                {
                    "file": _relative(filename, rootdir),
                    "line": tb.tb_lineno,
                    "names": names,
                    "called": called,
                }
            )
        tb = tb.tb_next
    return lines


def _is_project(filename: str, rootdir: str) -> bool:
    absolute = os.path.abspath(filename)
    return absolute.startswith(rootdir + os.sep) and "site-packages" not in absolute


def _frame(frame: traceback.FrameSummary, rootdir: str) -> Record:
    return {
        "file": _relative(frame.filename, rootdir),
        "line": frame.lineno,
        "function": frame.name,
        "code": (frame.line or "").strip(),
    }


def _relative(filename: str, rootdir: str) -> str:
    absolute = os.path.abspath(filename)
    if absolute.startswith(rootdir + os.sep) and "site-packages" not in absolute:
        return os.path.relpath(absolute, rootdir).replace(os.sep, "/")
    return absolute


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Item, call: CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    if not os.environ.get(RECORDS_ENV):
        return
    report = outcome.get_result()
    if report.failed and call.excinfo is not None:
        report.dfvc_exception = describe(call.excinfo.value, _rootdir(item.config))
    if item.nodeid in _DECLARED:
        declared, inside = _DECLARED[item.nodeid]
        report.dfvc_declared = [declared, inside]
    if call.when == "call" and "_dfvc_calls" in item.__dict__:
        report.dfvc_calls = item.__dict__.pop("_dfvc_calls")
    if call.when == "teardown":
        values = item.__dict__.pop("_dfvc_values", None)
        if values:
            report.dfvc_values = values


def pytest_exception_interact(node: Node, call: CallInfo[Any], report: BaseReport) -> None:
    # Collection errors reach us only here: pytest wraps the real exception (an ImportError,
    # a SyntaxError) in a CollectError, so describe the innermost cause.
    if not os.environ.get(RECORDS_ENV) or call.excinfo is None:
        return
    if getattr(report, "when", "collect") == "collect":
        # Reports carry any attribute along (to the main process, from an xdist worker).
        vars(report)["dfvc_exception"] = describe(call.excinfo.value, _rootdir(node.config))


# --- names on the failing lines: what np.float referred to -----------------------------------

_ASKED = re.compile(r"\b(?:hasattr|getattr)\(\s*([A-Za-z_][\w.]*)\s*,\s*[\'\"]([A-Za-z_]\w*)[\'\"]")
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|[A-Za-z_]\w*)(?=\s*\(|\.|\b)")


def resolve_name(dotted: str, frame: FrameType) -> str | None:
    """``np.float`` in a frame where ``np`` is numpy -> ``numpy.float``; ``s.iteritems``
    where ``s`` is a pandas Series -> ``pandas.Series.iteritems`` (the class's public path,
    never a private module's); None when the first name is unknown there or is the
    project's own. Only the first name's object is touched, through its type where it can
    be: a user object's ``__getattr__`` is never called."""
    first, _, rest = dotted.partition(".")
    if first in frame.f_locals:
        obj = frame.f_locals[first]
    elif first in frame.f_globals:
        obj = frame.f_globals[first]
    else:
        return None
    kind = type(obj)
    if issubclass(kind, types.ModuleType):
        base = _plain_str(object.__getattribute__(obj, "__name__"))
    elif issubclass(kind, type):
        base = public_path(obj)
    elif issubclass(kind, _FUNCTIONS):
        base = _function_path(obj)
    elif kind.__module__ not in ("builtins", "__main__"):
        # An instance (a tensor, an array, a Series): name its class, ``torch.Tensor``;
        # for an attribute it lacks, the library class it inherits from (``self.assertEquals``
        # on a project's TestCase on Python 3.12 -> ``unittest.TestCase.assertEquals``).
        base = public_path(_lacking_owner(kind, rest.partition(".")[0]) if rest else kind)
    else:
        return None
    if not base:
        return None
    return base + ("." + rest if rest else "")


_FUNCTIONS = (types.FunctionType, types.BuiltinFunctionType, types.MethodType)


def _lacking_owner(kind: type, attribute: str) -> type:
    """The class to name for ``attribute`` of an instance of ``kind``: ``kind`` itself, unless
    no class of its MRO has the attribute and ``kind`` is of another top-level package than
    a base: then the nearest such base (what the project's class took from a library)."""
    mro = type.__getattribute__(kind, "__mro__")
    if any(attribute in type.__getattribute__(k, "__dict__") for k in mro):
        return kind
    top = str(type.__getattribute__(kind, "__module__")).split(".")[0]
    for base in mro[1:]:
        module = str(type.__getattribute__(base, "__module__"))
        if module != "builtins" and module.split(".")[0] != top:
            return base  # type: ignore[no-any-return]
    return kind


def _plain_str(value: object) -> str | None:
    return value if type(value) is str else None


def _function_path(function: object) -> str | None:
    module = _plain_str(getattr(function, "__module__", None))
    qualname = _plain_str(getattr(function, "__qualname__", None))
    if not module or not qualname:
        return None
    return _public(module, qualname, function)


def public_path(cls: type) -> str | None:
    """Where users reach a class: the shortest importable path that gives this very class
    (``pandas.Series`` for ``pandas.core.series.Series``), else its defining module's path."""
    module = _plain_str(type.__getattribute__(cls, "__module__"))
    qualname = _plain_str(type.__getattribute__(cls, "__qualname__"))
    if not module or not qualname:
        return None
    return _public(module, qualname, cls)


def _public(module: str, qualname: str, target: object) -> str:
    """The shortest public module path whose namespace holds ``target`` (or the class it
    is nested in) under its own name. Reads only modules already imported."""
    parts = module.split(".")
    head = qualname.split(".", 1)[0]
    owner = _namespace(sys.modules.get(module)).get(head)
    for end in range(1, len(parts)):
        if parts[end - 1].startswith("_") and end > 1:
            break
        found = _namespace(sys.modules.get(".".join(parts[:end]))).get(head)
        if found is not None and (found is owner or found is target):
            return ".".join(parts[:end]) + "." + qualname
    return module + "." + qualname


def _namespace(module: object) -> dict[str, object]:
    if module is None:
        return {}
    namespace: object = _guarded(lambda: object.__getattribute__(module, "__dict__"), {})
    return namespace if type(namespace) is dict else {}


def _read_lines(path: str | None) -> set[str]:
    if not path or not os.path.exists(path):
        return set()
    with open(path, encoding="utf-8") as f:
        return {line.rstrip("\n") for line in f if line.strip()}


# --- exceptions and skips as text ------------------------------------------------------------


def innermost_cause(exc: BaseException) -> BaseException:
    """Follow ``raise ... from`` and implicit chains down to pytest's wrapped original."""
    seen = set()
    while type(exc).__name__ == "CollectError" and id(exc) not in seen:
        seen.add(id(exc))
        nxt = exc.__cause__ or exc.__context__
        if nxt is None:
            break
        exc = nxt
    return exc


def qualified_type(exc: BaseException) -> str:
    cls = type(exc)
    module = cls.__module__
    return cls.__name__ if module in ("builtins", "exceptions") else module + "." + cls.__name__


_EXC_LINE = re.compile(
    r"^E\s+(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning))"
    r"(?::\s*(?P<message>.*))?$"
)
_FRAME_LINE = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):\s+(?:in\s+)?(?P<function>\S+)$")


def exception_from_text(longrepr: str) -> Record:
    """Best-effort description when pytest gave us only text (old pytest, odd plugins)."""
    exc_type, message, frames = "", "", []
    for line in longrepr.splitlines():
        match = _EXC_LINE.match(line)
        if match:
            exc_type, message = match.group("type"), (match.group("message") or "")
            continue
        match = _FRAME_LINE.match(line)
        if match:
            frames.append(
                {
                    "file": match.group("file"),
                    "line": int(match.group("line")),
                    "function": match.group("function"),
                    "code": "",
                }
            )
    return {
        "type": exc_type or "unknown",
        "message": message[:_MAX_MESSAGE],
        "frames": frames[-_MAX_FRAMES:],
    }


def skip_reason(report: BaseReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    if hasattr(report, "wasxfail"):
        return "xfail: " + str(report.wasxfail)
    return str(longrepr or "")


# --- the environment: distributions, import names, conflicts ---------------------------------


def _dist_infos() -> Iterator[tuple[str, str, str]]:
    """(distribution, version, dist-info folder) for everything importable here."""
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in names:
            match = _DIST_INFO.match(name)
            if match:
                dist = re.sub(r"[-_.]+", "-", match.group("name")).lower()
                yield dist, match.group("version"), os.path.join(entry, name)


def installed_distributions() -> dict[str, str]:
    """Name -> version of every distribution importable here (the first one on sys.path)."""
    found: dict[str, str] = {}
    for dist, version, _ in _dist_infos():
        found.setdefault(dist, version)
    return found


def held_conflicts() -> list[Record]:
    """The requirements of a counterfactual cell's set-back packages that this environment
    breaks: the axis's pin overrides every requirement on it, so ``scipy 1.8.1`` installs
    beside ``numpy 2.0.2`` although it requires ``numpy<1.25``; such a cell says nothing
    about whether the test passes where the packages really install."""
    cell = os.environ.get(CELL_ENV)
    held = {_normal(n) for n in (json.loads(cell).get("held") or {})} if cell else set()
    if not held:
        return []
    installed = installed_distributions()
    conflicts: list[Record] = []
    for dist, version, info_dir in _dist_infos():
        if dist not in held:
            continue
        for requirement in _applying_requirements(info_dir):
            have = installed.get(_normal(requirement.name))
            if have and not requirement.specifier.contains(have, prereleases=True):
                conflicts.append(
                    {
                        "package": dist,
                        "version": version,
                        "requires": str(requirement),
                        "installed": f"{_normal(requirement.name)} {have}",
                    }
                )
    return conflicts


def framework_requirements() -> dict[str, list[str]]:
    """What the releases the cell pins require here (markers that do not apply left out):
    the companions they bring, at the versions they ask for (Keras 3 beside TensorFlow
    2.16). Read by the controller to tell a framework's own companion from a third party."""
    cell = os.environ.get(CELL_ENV)
    described = json.loads(cell) if cell else {}
    pinned = {_normal(n) for n in described.get("pinned") or described.get("packages") or ()}
    if not pinned:
        return {}
    found: dict[str, list[str]] = {}
    for dist, _, info_dir in _dist_infos():
        if dist not in pinned or dist in found:
            continue
        found[dist] = [str(r) for r in _applying_requirements(info_dir)]
    return found


def _applying_requirements(info_dir: str) -> list[Requirement]:
    """A distribution's requirements that apply here (no extra asked, markers true)."""
    from packaging.requirements import InvalidRequirement, Requirement

    applying = []
    for line in _requires_dist(info_dir):
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if not requirement.marker or requirement.marker.evaluate({"extra": ""}):
            applying.append(requirement)
    return applying


def _requires_dist(info_dir: str) -> list[str]:
    try:
        with open(os.path.join(info_dir, "METADATA"), encoding="utf-8") as f:
            lines = f.read().split("\n\n", 1)[0].splitlines()
    except OSError:
        return []
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")]


def top_level_modules() -> dict[str, str]:
    """Import name -> distribution, from each dist-info's top_level.txt or RECORD.

    Diagnosis needs it to tell which distribution a traceback frame or an import belongs to
    (``sklearn`` is scikit-learn, ``PIL`` is pillow).
    """
    owners: dict[str, str] = {}
    for dist, _, info_dir in _dist_infos():
        for module in _dist_modules(info_dir):
            owners.setdefault(module, dist)
    return owners


def _dist_modules(info_dir: str) -> list[str]:
    top_level = os.path.join(info_dir, "top_level.txt")
    if os.path.exists(top_level):
        with open(top_level, encoding="utf-8") as f:
            return [line.strip() for line in f if line.strip()]
    modules = set()
    record = os.path.join(info_dir, "RECORD")
    if os.path.exists(record):
        with open(record, encoding="utf-8") as f:
            for line in f:
                first = line.split(",", 1)[0].split("/", 1)[0]
                if first.endswith(".py"):
                    first = first[:-3]
                if not first.endswith((".dist-info", ".data", ".pth")):
                    modules.add(first)
    return sorted(m for m in modules if m.isidentifier() and m != "__pycache__")


# --- the project's rules hook (pytest_dfvc_rules) --------------------------------------------


class _DfvcHookspecs:
    """The controller's hooks, declared in cells too: a project's conftest.py that
    implements them must load in every cell, where pytest-dfvc itself is not installed."""

    @pytest.hookspec
    def pytest_dfvc_rules(self) -> list[object]:
        """See pytest_dfvc.hookspecs."""
        raise NotImplementedError  # a specification, never called


def _project_rules(config: Config) -> list[object]:
    """What ``pytest_dfvc_rules`` implementations return, as JSON: each rule a list of its
    fields (from a tuple, or a ``pytest_dfvc.rules.Rule``); the controller checks them."""
    rules: list[object] = []
    for returned in config.hook.pytest_dfvc_rules():
        for rule in returned or ():
            fields: object
            if hasattr(rule, "category") and hasattr(rule, "exception"):
                fields = [rule.category, rule.exception, rule.message, rule.raised_in]
            elif isinstance(rule, (tuple, list)):
                fields = list(rule)
            else:
                fields = {"invalid": _safe_str(rule)}
            rules.append(fields)
    return rules


def pytest_addhooks(pluginmanager: PytestPluginManager) -> None:
    # pytest-dfvc itself may be installed in the cell too: declare the hooks once.
    if not hasattr(pluginmanager.hook, "pytest_dfvc_rules"):
        pluginmanager.add_hookspecs(_DfvcHookspecs)


# --- declared ranges, @pytest.mark.dfvc(numpy=">=1.20,<2"), and GPU marks --------------------

CELL_ENV = "DFVC_CELL"
# nodeid -> (declared ranges, whether this environment is inside them)
_DECLARED: dict[str, tuple[dict[str, str], bool]] = {}


def environment_versions() -> dict[str, str]:
    """What this environment is: the cell's pins when run by the controller, else what is
    installed here; Python's full version either way."""
    versions = dict(installed_distributions())
    versions["python"] = platform.python_version()
    cell = os.environ.get(CELL_ENV)
    if cell:
        data = json.loads(cell)
        versions.update(data.get("packages", {}))
        if data.get("cuda"):
            versions["cuda"] = data["cuda"]
    return versions


def check_declared(declared: Mapping[str, Spec], versions: Mapping[str, str]) -> tuple[bool, str]:
    """(inside, reason): whether ``versions`` lie inside every declared range; the reason
    names the first range that excludes them. Unknown names (a package not installed, no
    CUDA variant) exclude nothing."""
    from packaging.specifiers import SpecifierSet  # pytest's own dependency, in every cell

    for name, spec in sorted(declared.items()):
        key = "python" if name == "python" else ("cuda" if name == "cuda" else _normal(name))
        have = versions.get(key)
        if have is None:
            continue
        if key == "cuda":
            allowed = [spec] if isinstance(spec, str) else list(spec)
            if have not in allowed:
                return False, f"dfvc: declared cuda in {allowed}; this cell has {have}"
            continue
        if not SpecifierSet(str(spec)).contains(have, prereleases=True):
            return False, f"dfvc: declared {name}{spec}; this environment has {name} {have}"
    return True, ""


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_ranges(item: Item) -> dict[str, Spec]:
    declared: dict[str, Spec] = {}
    for mark in item.iter_markers(name="dfvc"):
        for name, spec in mark.kwargs.items():
            declared.setdefault(name, spec)  # the closest marker wins
    return declared


def _check_specifiers(nodeid: str, declared: Mapping[str, Spec]) -> None:
    """A declared range that is not a specifier (``ff="1.0"``) stops the cell's pytest with
    a message naming the marker, not a traceback every cell reports as its status."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    for name, spec in declared.items():
        if name == "cuda":
            continue
        try:
            SpecifierSet(str(spec))
        except InvalidSpecifier:
            hint = f"'=={spec}' for that version alone, or a range such as '>={spec}'"
            raise pytest.UsageError(
                f"@pytest.mark.dfvc({name}={spec!r}) on {nodeid}: {spec!r} is not a version "
                f"specifier; write {hint}"
            ) from None


def apply_declared_ranges(items: Sequence[Item]) -> None:
    """Skip each test outside its declared range, with a reason naming the range."""
    versions = None
    for item in items:
        declared = declared_ranges(item)
        if not declared:
            continue
        _check_specifiers(item.nodeid, declared)
        if versions is None:
            versions = environment_versions()
        inside, reason = check_declared(declared, versions)
        _DECLARED[item.nodeid] = (dict((k, str(v)) for k, v in declared.items()), inside)
        if not inside:
            item.add_marker(pytest.mark.skip(reason=reason))


_GPU: list[bool] = []


def gpu_present() -> bool:
    """Whether nvidia-smi lists a GPU here (asked once per process; no GPU library is
    imported, so a CPU-only cell stays fast)."""
    if not _GPU:
        import shutil
        import subprocess

        smi = shutil.which("nvidia-smi")
        found = False
        if smi:
            try:
                out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
                found = out.returncode == 0 and "GPU" in out.stdout
            except (OSError, subprocess.TimeoutExpired):
                found = False
        _GPU.append(found)
    return _GPU[0]


def apply_gpu_marks(items: Sequence[Item]) -> None:
    """Tests marked ``dfvc_gpu`` are skipped, with the reason, on hosts without a GPU."""
    for item in items:
        if item.get_closest_marker("dfvc_gpu") is not None and not gpu_present():
            item.add_marker(
                pytest.mark.skip(reason="dfvc_gpu: no GPU on this host (nvidia-smi lists none)")
            )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: Session, config: Config, items: list[Item]) -> None:
    apply_declared_ranges(items)
    apply_gpu_marks(items)


# --- recorded values: dfvc_record(key, value) ---------------------------------------------

# Items kept one by one; a larger list, dict or array is kept as a summary and a digest.
MAX_ITEMS = 1000


def summarise(value: Any) -> Any:
    """A JSON-able stand-in for a recorded value that the controller compares structure by
    structure (``drift.same``): numbers, strings, ``None`` as they are (a NaN or an infinity
    as ``{"float": "NaN"}``, which JSON can hold); lists, tuples and dicts item by item; a
    set sorted, as ``{"set": [...]}``; an array (shape, dtype, tolist) as ``{"array":
    {"shape", "dtype", "values"}}``; past ``MAX_ITEMS`` items, ``{"summary": {"length",
    "digest", and for numbers "min", "max", "mean"}}``; anything else by its ``repr``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else _non_finite(value)
    if hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "tolist"):
        return _array(value)
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        try:
            return {
                "value": summarise(value.item()),
                "dtype": str(getattr(value, "dtype", type(value).__name__)),
            }
        except Exception:
            pass
    if isinstance(value, (set, frozenset)):
        items = sorted((summarise(v) for v in value), key=_canonical)
        return {"set": items} if len(items) <= MAX_ITEMS else _summary(items)
    if isinstance(value, (list, tuple)):
        items = [summarise(v) for v in value]
        return items if len(items) <= MAX_ITEMS else _summary(items)
    if isinstance(value, dict):
        kept = {str(k): summarise(v) for k, v in value.items()}
        return kept if len(kept) <= MAX_ITEMS else _summary(kept)
    return repr(value)[:200]


def _non_finite(value: float) -> dict[str, str]:
    if value != value:
        return {"float": "NaN"}
    return {"float": "Infinity" if value > 0 else "-Infinity"}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _array(value: Any) -> dict[str, Any]:
    array: dict[str, Any] = {"shape": list(value.shape), "dtype": str(value.dtype)}
    try:
        size = 1
        for n in value.shape:
            size *= int(n)
        flat = value.reshape(-1).tolist() if hasattr(value, "reshape") else value.tolist()
    except Exception:
        return {"array": array}
    values = [summarise(v) for v in flat] if isinstance(flat, list) else [summarise(flat)]
    array["values"] = values if size <= MAX_ITEMS else _summary(values)
    return {"array": array}


def _summary(items: Any) -> dict[str, Any]:
    """A large value: its length and digest, and for numbers their range and mean."""
    import hashlib

    summary: dict[str, Any] = {
        "length": len(items),
        "digest": hashlib.sha256(_canonical(items).encode()).hexdigest(),
    }
    numbers = [v for v in (items.values() if isinstance(items, dict) else items)]
    if numbers and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        summary.update(min=min(numbers), max=max(numbers), mean=sum(numbers) / len(numbers))
    return {"summary": summary}


@pytest.fixture
def dfvc_record(request: FixtureRequest) -> Callable[[str, object], None]:
    """``dfvc_record(key, value)`` records a value of this test in each cell, so the controller
    can report drift between versions; outside a matrix run it does nothing."""
    return value_recorder(request.node)


def value_recorder(node: Item) -> Callable[[str, object], None]:
    """The ``dfvc_record`` function for one test (the plugin's fixture calls this too)."""
    recording = bool(os.environ.get(RECORDS_ENV))

    def record(key: str, value: object) -> None:
        if not isinstance(key, str):
            raise TypeError(f"dfvc_record: the key must be a string, got {key!r}")
        if recording:
            # Sent with the test's teardown report, from an xdist worker too.
            node.__dict__.setdefault("_dfvc_values", []).append([key, summarise(value)])

    return record


# --- differential traces: what a test's calls into the axis packages returned ----------------
#
# Only in a boundary's trace cells (``DFVC_CELL`` says ``"trace": true``): each test's calls
# from the project's files into the matrix packages, with a digest of the arguments and of the
# result. The controller aligns the calls of the passing and the failing version; the first
# call whose arguments agree and whose result differs names the API whose behaviour changed.

TRACE_MAX_CALLS = 5000
# Values compared to six significant digits: a tolerance, not bit equality.
_TRACE_DIGITS = "%.6g"
_TRACE_MAX_ITEMS = 100000
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
# Frames that only pass a call on: never the API (the function they wrap is).
_PASSING_ON = frozenset({"wrapper", "wrapped", "inner", "decorated", "new_func", "_wrapper"})
_CO_VARARGS, _CO_VARKEYWORDS = 0x04, 0x08


class CallTracer:
    """The calls of one test's body from the project's files into the modules ``packages``
    (import names): ``{"api", "args", "result", "shown"}`` each, in the order they started.
    ``sys.monitoring`` from Python 3.12 (code of no interest is switched off where it
    starts), ``sys.setprofile`` before."""

    def __init__(self, packages: Sequence[str], rootdir: str) -> None:
        names = "|".join(re.escape(p) for p in sorted(packages))
        self._axis = re.compile(rf"[\\/](?:site|dist)-packages[\\/](?:{names})(?:[\\/]|\.py$)")
        self._rootdir = rootdir
        self._own = os.path.abspath(__file__)
        self._files: dict[str, bool] = {}
        self._callers: dict[str, bool] = {}
        self._functions: dict[object, object] = {}
        self._open: dict[int, Record] = {}
        self.calls: list[Record] = []
        self.dropped = 0
        self._tool: int | None = None

    # Starting and stopping around one test's call.

    def start(self) -> None:
        monitoring = getattr(sys, "monitoring", None)
        if monitoring is not None:
            for tool in (monitoring.PROFILER_ID, 3, 4):
                if monitoring.get_tool(tool) is None:
                    self._tool = tool
                    break
        if monitoring is None or self._tool is None:
            sys.setprofile(self._profile)
            return
        events = monitoring.events
        monitoring.use_tool_id(self._tool, "dfvc-trace")
        monitoring.register_callback(self._tool, events.PY_START, self._started)
        monitoring.register_callback(self._tool, events.PY_RETURN, self._returned)
        monitoring.register_callback(self._tool, events.PY_UNWIND, self._unwound)
        monitoring.set_events(self._tool, events.PY_START | events.PY_RETURN | events.PY_UNWIND)

    def stop(self) -> None:
        monitoring = getattr(sys, "monitoring", None)
        if self._tool is None or monitoring is None:
            sys.setprofile(None)
            return
        monitoring.set_events(self._tool, 0)
        monitoring.free_tool_id(self._tool)
        self._tool = None

    # The callbacks: whatever goes wrong in them is lost with the call, never raised into
    # the test's code.

    def _profile(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            _guarded(self._enter, None, frame)
        elif event == "return" and self._open:
            _guarded(self._leave, None, frame, arg)

    def _started(self, code: types.CodeType, offset: int) -> object:
        if not self._in_axis(code.co_filename):
            return sys.monitoring.DISABLE  # type: ignore[attr-defined]
        _guarded(self._enter, None, sys._getframe(1))
        return None

    def _returned(self, code: types.CodeType, offset: int, value: object) -> object:
        if not self._in_axis(code.co_filename):
            return sys.monitoring.DISABLE  # type: ignore[attr-defined]
        if self._open:
            _guarded(self._leave, None, sys._getframe(1), value)
        return None

    def _unwound(self, code: types.CodeType, offset: int, exc: BaseException) -> None:
        if self._open and self._in_axis(code.co_filename):
            call = self._open.pop(id(sys._getframe(1)), None)
            if call is not None:
                call["result"] = call["shown"] = "raised " + type(exc).__name__

    # One call.

    def _in_axis(self, filename: str) -> bool:
        known = self._files.get(filename)
        if known is None:
            known = self._files[filename] = bool(self._axis.search(filename))
        return known

    def _axis_class(self, cls: type) -> bool:
        """Whether a class is one of the matrix packages' (not a project's subclass)."""
        module = sys.modules.get(_plain_str(type.__getattribute__(cls, "__module__")) or "")
        filename = getattr(module, "__file__", None)
        return isinstance(filename, str) and self._in_axis(filename)

    def _from_project(self, frame: FrameType | None) -> bool:
        if frame is None:
            return False
        filename = frame.f_code.co_filename
        known = self._callers.get(filename)
        if known is None:
            absolute = os.path.abspath(filename)
            known = absolute != self._own and _is_project(absolute, self._rootdir)
            self._callers[filename] = known
        return known

    def _enter(self, frame: FrameType) -> None:
        code = frame.f_code
        if not self._in_axis(code.co_filename) or not self._from_project(frame.f_back):
            return
        if len(self.calls) >= TRACE_MAX_CALLS:
            self.dropped += 1
            return
        function = self._function(frame)
        api = _guarded(traced_api, None, frame, function, self._axis_class)
        if not api:
            return
        call: Record = {"api": api, "args": _guarded(self._arguments, "?", frame, function)}
        self._open[id(frame)] = call
        self.calls.append(call)

    def _leave(self, frame: FrameType, value: object) -> None:
        call = self._open.pop(id(frame), None)
        if call is None:
            return
        state, settings = (
            _guarded(_object_state, ({}, []), value) if _plain_object(value) else ({}, [])
        )
        if state:
            # An object (``fit`` returns the estimator, ``clone`` a new one): what it holds
            # is its attributes, compared one by one where both releases set them. Its repr
            # is no part of it: a release that adds a parameter changes the repr, and the
            # attributes both releases set may be all the same.
            call["result"] = _digest(_class_name(type(value)))
            call["state"] = state
            call["settings"] = settings
        else:
            call["result"] = _digest(trace_form(value))
        call["shown"] = _guarded(_shown_state if state else shown_value, "?", value)

    def _function(self, frame: FrameType) -> object:
        """The function whose code runs in ``frame``, where it can be found cheaply: in its
        module's namespace, or on the class of its first argument."""
        code = frame.f_code
        if code in self._functions:
            return self._functions[code]
        found = _guarded(_function_of, None, frame)
        self._functions[code] = found
        return found

    def _arguments(self, frame: FrameType, function: object) -> str:
        """A digest of the arguments the caller gave: those left at their default are not
        the caller's (a default that changed shows in the result)."""
        code = frame.f_code
        named = code.co_argcount + code.co_kwonlyargcount
        varargs = code.co_varnames[named] if code.co_flags & _CO_VARARGS else None
        varkw = code.co_flags & _CO_VARKEYWORDS
        varkw_name = code.co_varnames[named + bool(varargs)] if varkw else None
        local = frame.f_locals
        defaults = _defaults(function, code)
        # The values alone, in order: a release that puts the function behind a wrapper
        # (``*args, **kwargs``) or renames a parameter has not changed what was passed.
        form: list[Any] = []
        for index, name in enumerate(code.co_varnames[:named]):
            value = local.get(name)
            if name in defaults and value is defaults[name]:
                continue
            if index == 0 and name in ("self", "cls"):
                # The object a method is called on, by its class's name: its state is what
                # the calls before this one did (a class that moved module is the same).
                kind = value if isinstance(value, type) else type(value)
                form.append(_class_name(kind))
            else:
                form.append(trace_form(value, loose=True))
        if varargs is not None:
            form.extend(trace_form(v, 1, loose=True) for v in local.get(varargs) or ())
        if varkw_name is not None:
            given = local.get(varkw_name) or {}
            form.extend([str(k), trace_form(v, 1, loose=True)] for k, v in sorted(given.items()))
        return _digest(form)


def _first_argument(frame: FrameType) -> object:
    code = frame.f_code
    if not code.co_argcount:
        return None
    return frame.f_locals.get(code.co_varnames[0])


def _function_of(frame: FrameType) -> object:
    code = frame.f_code
    candidate = frame.f_globals.get(code.co_name)
    if getattr(candidate, "__code__", None) is code:
        return candidate
    first = _first_argument(frame)
    if first is not None:
        kind = first if isinstance(first, type) else type(first)
        for owner in type.__getattribute__(kind, "__mro__"):
            attribute = type.__getattribute__(owner, "__dict__").get(code.co_name)
            attribute = getattr(attribute, "__func__", attribute)
            if getattr(attribute, "__code__", None) is code:
                return attribute
    return None


def _defaults(function: object, code: types.CodeType) -> dict[str, object]:
    if function is None:
        return {}
    found: dict[str, object] = {}
    positional = getattr(function, "__defaults__", None) or ()
    if positional:
        names = code.co_varnames[code.co_argcount - len(positional) : code.co_argcount]
        found.update(zip(names, positional))
    found.update(getattr(function, "__kwdefaults__", None) or {})
    return found


def traced_api(
    frame: FrameType, function: object, axis_class: Callable[[type], bool] | None = None
) -> str | None:
    """The public name of a traced call: ``silent.Frame.to_csv`` for the method defined in
    ``silent.frame``; a method by the class it was called on (``StratifiedKFold.split``,
    not the private base class that defines it), the nearest one ``axis_class`` accepts;
    for a frame that only passes the call on (a decorator's ``wrapper``), the function it
    wraps; ``Class.__init__`` stands for ``Class(...)``; None when no public name can be
    given."""
    code = frame.f_code
    module = _plain_str(frame.f_globals.get("__name__"))
    qualname = getattr(code, "co_qualname", None) or _plain_str(
        getattr(function, "__qualname__", None)
    )
    if not module:
        return None
    if not qualname or "<locals>" in qualname or code.co_name in _PASSING_ON:
        wrapped = [
            v
            for v in frame.f_locals.values()
            if isinstance(v, types.FunctionType) and "<locals>" not in v.__qualname__
        ]
        return _function_path(wrapped[0]) if len(wrapped) == 1 else None
    if code.co_name.startswith("__") and code.co_name.endswith("__") and code.co_name != "__init__":
        return None  # ``__getattr__``, ``__eq__``: machinery, not an API
    target = function
    receiver = _receiver_class(frame, qualname, axis_class)
    if receiver is not None:
        module = _plain_str(type.__getattribute__(receiver, "__module__")) or module
        qualname = _class_name(receiver) + "." + code.co_name
        target = receiver
    if code.co_name == "__init__" and "." in qualname:
        qualname = qualname.rsplit(".", 1)[0]
    return _public(module, qualname, target)


def _receiver_class(
    frame: FrameType, qualname: str, axis_class: Callable[[type], bool] | None
) -> type | None:
    """The class a method was called on, as the framework knows it: the receiver's own
    class or its nearest base ``axis_class`` accepts (a project's subclass is not the
    framework's API); None for a plain function."""
    code = frame.f_code
    if axis_class is None or "." not in qualname or not code.co_argcount:
        return None
    if code.co_varnames[0] not in ("self", "cls"):
        return None
    first = frame.f_locals.get(code.co_varnames[0])
    kind = first if isinstance(first, type) else type(first)
    mro: tuple[type, ...] = type.__getattribute__(kind, "__mro__")
    return next((owner for owner in mro if axis_class(owner)), None)


def _class_name(cls: type) -> str:
    return _plain_str(type.__getattribute__(cls, "__qualname__")) or "?"


def trace_form(value: Any, depth: int = 0, loose: bool = False) -> Any:
    """A JSON-able form of a value for comparison across versions: numbers to six
    significant digits; arrays, tensors and frames by type, dtype, shape and values;
    containers item by item (a few levels deep); any other object by its class's name and
    the length of its ``repr`` (addresses taken out), or with ``loose`` (an argument, an
    attribute) by its class's name alone: an estimator's repr grows with each parameter a
    release adds, and that is not what the caller passed."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return _TRACE_DIGITS % value
    if isinstance(value, (str, bytes)):
        return repr(value)[:2000]
    if hasattr(value, "shape") and (hasattr(value, "dtype") or hasattr(value, "dtypes")):
        return _guarded(_array_form, _object_form(value, loose), value)
    if depth < 3 and isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)[:1000]
        if isinstance(value, (set, frozenset)):
            items = sorted((trace_form(v, depth + 1, loose) for v in items), key=str)
            return [type(value).__name__, items]
        return [type(value).__name__, [trace_form(v, depth + 1, loose) for v in items]]
    if depth < 3 and isinstance(value, dict):
        pairs = list(value.items())[:1000]
        return ["dict", [[str(k), trace_form(v, depth + 1, loose)] for k, v in pairs]]
    if hasattr(value, "item") and hasattr(value, "dtype"):
        return [str(value.dtype), trace_form(value.item(), depth + 1)]
    return _object_form(value, loose)


def _array_form(value: Any) -> Any:
    dtype = getattr(value, "dtype", None)
    dtype = str(dtype if dtype is not None else list(map(str, getattr(value, "dtypes", ()))))
    shape = [int(n) for n in value.shape]
    size = 1
    for n in shape:
        size *= n
    form: list[Any] = [type(value).__name__, dtype, shape]
    if size <= _TRACE_MAX_ITEMS:
        data = value.to_numpy() if hasattr(value, "to_numpy") else value
        if hasattr(data, "detach"):
            data = data.detach().cpu()
        form.append(trace_form(data.tolist(), 0) if hasattr(data, "tolist") else repr(data))
    for labels in ("columns", "index"):
        if hasattr(value, labels):
            axis = getattr(value, labels)
            # A renamed result is another result (pandas 2's ``value_counts`` is "count").
            names = getattr(axis, "names", None)
            form.append([repr(list(axis)[:1000]), repr(list(names) if names else None)])
    if hasattr(value, "name") and not callable(value.name):
        form.append(repr(value.name))
    return form


def _object_form(value: object, loose: bool = False) -> list[Any]:
    # The class by its name, not its module: a release that moves a class to a private
    # module (``k_means_`` -> ``_kmeans``) has not changed the object.
    name = _class_name(type(value))
    if loose:
        return [name]
    text = _ADDRESS.sub("", _safe_str(_guarded(repr, "", value)))
    return [name, len(text)]


def _plain_object(value: object) -> bool:
    """An object that is none of the values ``trace_form`` reads (numbers, text,
    containers, arrays): its attributes say what it holds."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, list, tuple, dict)):
        return False
    if isinstance(value, (set, frozenset, type)) or hasattr(value, "dtype"):
        return False
    return not (hasattr(value, "shape") and hasattr(value, "dtypes"))


def _object_state(value: object) -> tuple[dict[str, str], list[str]]:
    """An object's attributes, each as a digest of its loose form, and which of them hold
    settings (text, flags, None) rather than data: a default that changed
    (``presort='auto'`` -> ``'deprecated'``) shows there, its effect in results."""
    state: object = _guarded(lambda: object.__getattribute__(value, "__dict__"), {})
    if type(state) is not dict:
        return {}, []
    items = [(str(k), v) for k, v in sorted(state.items())[:200] if not str(k).startswith("__")]
    digests = {k: _digest(trace_form(v, 1, loose=True)) for k, v in items}
    settings = [k for k, v in items if v is None or isinstance(v, (bool, str))]
    return digests, settings


def _digest(form: Any) -> str:
    import hashlib

    text = json.dumps(form, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shown_value(value: object) -> str:
    """A short text of a value for reports: an array's type, dtype and shape; else its
    ``repr``, cut."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        shape = tuple(int(n) for n in value.shape)
        return f"{type(value).__name__} {value.dtype} {shape}"
    text = _ADDRESS.sub("", _safe_str(_guarded(repr, "", value)))
    return text if len(text) <= 120 else text[:119] + "…"


def _shown_state(value: object) -> str:
    """An object a method returned as itself: its type and its attributes (``KMeans
    labels_=[0, 0, 1, 1] n_init='warn'``), cut."""
    state = object.__getattribute__(value, "__dict__")
    parts = [f"{k}={_ADDRESS.sub('', repr(v))[:40]}" for k, v in sorted(state.items())[:8]]
    text = f"{type(value).__name__} " + " ".join(parts)
    return text if len(text) <= 120 else text[:119] + "…"


def trace_packages(config: Config) -> list[str] | None:
    """The import names of the cell's matrix packages when the cell traces, else None."""
    try:
        cell = json.loads(os.environ.get("DFVC_CELL") or "{}")
    except ValueError:
        return None
    if not isinstance(cell, dict) or not cell.get("trace"):
        return None
    return matrix_modules() or None


class TracePlugin:
    """Traces each test's call phase; the calls travel on the call report (from an xdist
    worker too)."""

    def __init__(self, packages: Sequence[str], rootdir: str) -> None:
        self._packages = packages
        self._rootdir = rootdir

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: Item) -> Generator[None, Any, None]:
        tracer = CallTracer(self._packages, self._rootdir)
        tracer.start()
        try:
            yield
        finally:
            tracer.stop()
        item.__dict__["_dfvc_calls"] = [tracer.calls, tracer.dropped]


# --- the hooks that start and stop the recorder ----------------------------------------------

_recorder = None


def pytest_configure(config: Config) -> None:
    global _recorder
    config.addinivalue_line("markers", "dfvc(**ranges): versions this test claims to support")
    config.addinivalue_line("markers", "dfvc_gpu: needs a GPU; skipped on hosts without one")
    path = os.environ.get(RECORDS_ENV)
    traced = _guarded(trace_packages, None, config) if path else None
    if traced:
        # Where the tests run: the main process, or each xdist worker.
        config.pluginmanager.register(TracePlugin(traced, _rootdir(config)), "dfvc-trace")
    # Only the main process records: an xdist worker's reports reach the controller anyway.
    if not path or hasattr(config, "workerinput"):
        return
    _recorder = Recorder(path, _rootdir(config))
    _recorder.write_environment()
    config.pluginmanager.register(_recorder, "dfvc-recorder")


def _rootdir(config: Config) -> str:
    """pytest's rootdir: ``rootpath`` from pytest 6.1 on, ``rootdir`` before."""
    return str(getattr(config, "rootpath", None) or vars(config)["rootdir"])


def pytest_unconfigure(config: Config) -> None:
    global _recorder
    if _recorder is not None:
        _recorder.close()
        _recorder = None

"""The in-cell recorder on its own: a plain pytest run with the recorder loaded, as a cell
runs it, and the JSON lines it writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from pytest_dfvc.incell.recorder import public_path, resolve_name

# Objects a failing line can hold: a pipe DSL's placeholder (every attribute is a new
# expression; truth, comparison and indexing raise), a repr that recurses forever.
HOSTILE = """
    import pytest


    class Expr:
        def __getattr__(self, name):
            return Expr()

        def __call__(self, *args, **kwargs):
            return Expr()

        def __bool__(self):
            raise TypeError("an expression has no truth value")

        def __eq__(self, other):
            raise TypeError("compare expressions with .eq()")

        __hash__ = object.__hash__

        def __index__(self):
            raise TypeError("no index")

        def __repr__(self):
            return repr(self)


    class Raising:
        def __getattribute__(self, name):
            raise RuntimeError("no attribute access at all: " + name)


    X = Expr()
    R = Raising()


    def test_pipe_placeholder_on_failing_line():
        assert X.column.mean() == 3


    def test_raising_getattribute_on_failing_line():
        R.anything.more()


    def test_index_raises():
        [1, 2, 3][X]


    def test_passes_after_the_hostile_ones():
        assert X is X


    def test_recursive_exception_message():
        class Loud(Exception):
            def __str__(self):
                return str(self)

        raise Loud()
    """


def run_recorded(pytester: pytest.Pytester, *args: str) -> list[dict[str, Any]]:
    records = pytester.path / "records.jsonl"
    pytester.makeini("[pytest]\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DFVC_RECORDS", str(records))
        result = pytester.runpytest_subprocess("-p", "pytest_dfvc.incell.recorder", *args)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str(), result.stdout.str()
    return [json.loads(line) for line in records.read_text().splitlines()]


def outcomes(records: list[dict[str, Any]]) -> dict[str, str]:
    return {r["nodeid"].rsplit("::", 1)[-1]: r["outcome"] for r in records if r["kind"] == "test"}


def test_hostile_objects_never_break_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_hostile=HOSTILE)
    records = run_recorded(pytester)
    assert outcomes(records) == {
        "test_pipe_placeholder_on_failing_line": "failed",
        "test_raising_getattribute_on_failing_line": "failed",
        "test_index_raises": "failed",
        "test_passes_after_the_hostile_ones": "passed",
        "test_recursive_exception_message": "failed",
    }
    finish = next(r for r in records if r["kind"] == "finish")
    assert finish["exitstatus"] == 1
    failed = [r for r in records if r.get("outcome") == "failed"]
    # Each failure is still described, even when a detail had to be dropped.
    assert all(r["exception"]["type"] for r in failed)


def test_module_level_skip_and_deselection_are_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_skipped_module="""
        import pytest

        pytest.importorskip("no_such_module_anywhere")


        def test_never_collected():
            pass
        """,
        test_plain="""
        def test_one():
            pass


        def test_two():
            pass
        """,
    )
    records = run_recorded(pytester, "-k", "test_one")
    skipped = [r for r in records if r["kind"] == "test" and r["outcome"] == "skipped"]
    assert [(r["nodeid"], r["when"]) for r in skipped] == [("test_skipped_module.py", "collect")]
    assert "no_such_module_anywhere" in skipped[0]["reason"]
    finish = next(r for r in records if r["kind"] == "finish")
    assert finish["deselected"] == 1


class _Series:
    """Stands for ``pandas.core.series.Series``, exported as ``pandas.Series``."""


def test_public_path_prefers_the_exporting_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    package = types.ModuleType("fakepd")
    core = types.ModuleType("fakepd.core")
    private = types.ModuleType("fakepd.core._series")
    cls = type("Series", (), {"__module__": "fakepd.core._series"})
    private.Series = cls  # type: ignore[attr-defined]
    package.Series = cls  # type: ignore[attr-defined]
    for module in (package, core, private):
        monkeypatch.setitem(__import__("sys").modules, module.__name__, module)
    assert public_path(cls) == "fakepd.Series"
    frame = cast(types.FrameType, types.SimpleNamespace(f_locals={"s": cls()}, f_globals={}))
    assert resolve_name("s.iteritems", frame) == "fakepd.Series.iteritems"
    # Not exported anywhere above its module: the module's own (real) path.
    del package.Series
    assert public_path(cls) == "fakepd.core._series.Series"


def test_resolve_name_leaves_user_objects_alone() -> None:
    calls: list[str] = []

    class Spy:
        def __getattr__(self, name: str) -> object:
            calls.append(name)
            raise AttributeError(name)

    import types

    frame = cast(
        types.FrameType,
        types.SimpleNamespace(f_locals={"x": Spy(), "f": len}, f_globals={"np": Path}),
    )
    assert str(resolve_name("x.mean", frame)).endswith("Spy.mean")
    assert calls == []
    assert resolve_name("np.cwd", frame) == "pathlib.Path.cwd"


def test_the_attribute_a_line_asks_about_is_named(pytester: pytest.Pytester) -> None:
    """uncertainties 3.1.7 asserts ``not hasattr(numpy, 'acos')``, which numpy 2.0 added:
    the API on the failing line is ``numpy.acos``, not ``numpy``."""
    pytester.makepyfile(
        test_asks="import json\n\ndef test_absent():\n    assert not hasattr(json, 'dumps')\n"
    )
    records = run_recorded(pytester)
    failed = next(r for r in records if r.get("outcome") == "failed")
    assert failed["exception"]["lines"][-1]["names"] == {"json": "json", "json.dumps": "json.dumps"}

"""Differential tracing, piece by piece: the in-cell tracer (its calls, forms and names) and
the controller's alignment of two traces (``verdicts/tracing.py``). The whole way, from fake
wheels through real cells, is ``test_silent_end_to_end.py``."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from typing import Any, cast

import pytest

from pytest_dfvc.incell.recorder import CallTracer, existing_names, trace_form
from pytest_dfvc.model import CellJSON, OutcomeJSON, TracedCall
from pytest_dfvc.verdicts.tracing import (
    apply_traces,
    carry_traces,
    first_difference,
    silent,
    trace_text,
    traces_wanted,
)

# --- the tracer, in this process -------------------------------------------------------------


@pytest.fixture
def traced_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Any]:
    """A package ``tracedpkg`` under a ``site-packages`` folder and a project module under
    ``root`` that calls it."""
    site = tmp_path / "lib" / "site-packages"
    package = site / "tracedpkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """\
            import functools

            def _passes_on(func):
                @functools.wraps(func)
                def wrapper(*args, **kwargs):
                    return func(*args, **kwargs)
                return wrapper

            def _inner(x):
                return x * 2

            def double(x, factor=2):
                return [_inner(v) * factor / 2 for v in x]

            class Model:
                def fit(self, x):
                    self.total_ = sum(x)
                    return self

                @_passes_on
                def score(self, x):
                    return len(x)
            """
        )
    )
    root = tmp_path / "root"
    root.mkdir()
    (root / "project_calls.py").write_text(
        textwrap.dedent(
            """\
            import tracedpkg

            def run():
                tracedpkg.double([1, 2])
                model = tracedpkg.Model().fit([1, 2, 3])
                model.score([1])
                return model
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(root))
    for name in ("tracedpkg", "project_calls"):
        sys.modules.pop(name, None)
    module = importlib.import_module("project_calls")
    return root, module


def _traced(packages: list[str], root: Path, run: Any) -> list[Any]:
    """The calls ``run()`` makes from ``root``'s files into ``packages``, traced here."""
    tracer = CallTracer(packages, str(root))
    tracer.start()
    try:
        run()
    finally:
        tracer.stop()
    return tracer.calls


def test_the_tracer_records_the_projects_calls_into_the_package(
    traced_package: tuple[Path, Any],
) -> None:
    root, module = traced_package
    calls = _traced(["tracedpkg"], root, module.run)
    apis = [c["api"] for c in calls]
    # The package's own inner call (_inner) is not the project's; Model() has no __init__
    # of its own; the wrapper is named for the method it passes the call to.
    assert apis == ["tracedpkg.double", "tracedpkg.Model.fit", "tracedpkg.Model.score"]
    assert all(c.get("result") and c.get("args") for c in calls)
    # fit returned its own object: shown with its attributes.
    assert calls[1]["shown"].startswith("Model total_=6")
    assert sys.getprofile() is None


def test_a_default_left_alone_is_not_an_argument_of_the_caller(
    traced_package: tuple[Path, Any],
) -> None:
    root, _ = traced_package
    import tracedpkg  # type: ignore[import-not-found]

    def calls(source: str) -> list[dict[str, Any]]:
        path = root / "caller.py"
        path.write_text(f"import tracedpkg\n\ndef go():\n    {source}\n")
        sys.modules.pop("caller", None)
        caller = importlib.import_module("caller")
        return _traced(["tracedpkg"], root, caller.go)

    assert tracedpkg.double([1]) == [2.0]
    plain = calls("tracedpkg.double([1])")
    explicit = calls("tracedpkg.double([1], factor=3)")
    assert plain[0]["args"] != explicit[0]["args"]
    assert plain[0]["args"] == calls("tracedpkg.double([1])")[0]["args"]


def test_values_compare_to_six_significant_digits() -> None:
    assert trace_form(1.0000001) == trace_form(1.0)
    assert trace_form([1.234, 5.678]) != trace_form([1.2, 5.7])
    assert trace_form((1, "a")) == ["tuple", [1, "'a'"]]
    # Any other object: its type and the length of its repr, addresses taken out.
    assert trace_form(object())[1] == len("<object object>")


def test_a_warning_names_only_words_that_exist(traced_package: tuple[Path, Any]) -> None:
    root, _ = traced_package
    names = existing_names(
        "the 'factor' argument of double is deprecated; use Model.fit, or os.path.join",
        str(root / "project_calls.py"),
    )
    # ``double`` is defined in no package this warning's module belongs to here (the
    # project's module): no word names it; a dotted name whose module is loaded does.
    assert names == {"os.path.join": "os.path.join"}
    inside = existing_names(
        "fit is deprecated, and the 'factor' argument", sys.modules["tracedpkg"].__file__ or ""
    )
    assert inside == {"fit": "tracedpkg.Model.fit"}


# --- aligning two traces ---------------------------------------------------------------------


def call(api: str, args: str, result: str) -> TracedCall:
    return {"api": api, "args": args, "result": result, "shown": result}


def test_the_first_call_with_the_same_arguments_and_another_result() -> None:
    passing = [call("p.parse", "a", "1"), call("p.convert", "b", "2"), call("p.check", "c", "3")]
    failing = [call("p.parse", "a", "1"), call("p.convert", "b", "9"), call("p.check", "x", "3")]
    found = first_difference(passing, failing)
    assert found is not None
    index, was, now, count = found
    # p.check got other arguments (the changed result): it is not "the same call".
    assert (index, was["result"], now["result"], count) == (1, "2", "9", 1)
    assert first_difference(passing, passing) is None
    # An extra call on one side does not shift the alignment.
    shifted = [call("p.setup", "z", "0"), *failing]
    assert first_difference(passing, shifted) is not None
    assert first_difference(passing, shifted)[0] == 2  # type: ignore[index]


def cell(cell_id: str, version: str, tests: list[OutcomeJSON], python: str = "3.12.1") -> CellJSON:
    status = "failed" if any(t["outcome"] == "failed" for t in tests) else "passed"
    return cast(
        CellJSON,
        {
            "id": cell_id,
            "python": python,
            "packages": {"p": version},
            "cuda": None,
            "status": status,
            "cause": None,
            "resolved": {"p": version},
            "tests": tests,
            "duration": 0.1,
        },
    )


def failed(nodeid: str, message: str = "values differ", **cause: Any) -> OutcomeJSON:
    return cast(
        OutcomeJSON,
        {
            "nodeid": nodeid,
            "outcome": "failed",
            "cause": {
                "category": "unknown",
                "exception": "AssertionError",
                "message": message,
                "location": "t.py:3",
                **cause,
            },
        },
    )


def passed(nodeid: str, **extra: Any) -> OutcomeJSON:
    return cast(OutcomeJSON, {"nodeid": nodeid, "outcome": "passed", **extra})


def test_a_trace_names_the_api_and_keeps_the_rest() -> None:
    data = cell("c2", "2.0", [failed("t::a"), failed("t::b", category="missing-api")])
    data["tests"][1]["cause"]["exception"] = "AttributeError"
    traced_passing = cell(
        "c1-trace", "1.0", [passed("t::a", calls=[call("p.f", "a", "1"), call("p.g", "b", "2")])]
    )
    traced_failing = cell(
        "c2-trace",
        "2.0",
        [failed("t::a") | {"calls": [call("p.f", "a", "1"), call("p.g", "b", "3")]}],
    )
    updated = apply_traces(data, traced_passing, traced_failing)
    cause = updated["tests"][0]["cause"]
    assert (cause["category"], cause["api"], cause["linked_by"]) == ("behavior", "p.g", "trace")
    assert cause["trace"] == {
        "passing": "1.0",
        "calls": 2,
        "differ": 1,
        "cells": ["c1-trace", "c2-trace"],
        "api": "p.g",
        "call": 2,
        "was": "2",
        "now": "3",
    }
    assert trace_text(cause["trace"]) == (
        "same arguments, different result from 1.0 (first of 1 call that differs)"
    )
    # A failure that raised from the framework is no silent break: untouched.
    assert updated["tests"][1]["cause"]["category"] == "missing-api"
    assert "trace" not in data["tests"][0]["cause"]  # the input is not changed


def test_no_differing_call_is_said_and_names_nothing() -> None:
    data = cell("c2", "2.0", [failed("t::a")])
    same = [call("p.f", "a", "1")]
    updated = apply_traces(
        data,
        cell("c1-trace", "1.0", [passed("t::a", calls=same)]),
        cell("c2-trace", "2.0", [failed("t::a") | {"calls": same}]),
    )
    cause = updated["tests"][0]["cause"]
    assert cause["category"] == "unknown" and "api" not in cause
    assert cause["trace"]["differ"] == 0
    # Traced once: never wanted again.
    assert not silent(updated["tests"][0])


def test_boundaries_with_silent_failures_are_traced() -> None:
    cells = [
        cell("c1", "1.0", [passed("t::a"), passed("t::b")]),
        cell("c2", "2.0", [failed("t::a"), failed("t::b", category="missing-api")]),
        cell("c3", "3.0", [failed("t::a"), failed("t::b", category="missing-api")]),
    ]
    cells[1]["tests"][1]["cause"]["exception"] = "AttributeError"
    wanted = traces_wanted(cells, [("c1", "c2", "c3")], {"p": ["1.0", "2.0", "3.0"]})
    assert [(w.failing, w.passing, w.nodeids) for w in wanted] == [("c2", "c1", ("t::a",))]


def test_a_finding_carries_along_the_line_to_the_same_failure() -> None:
    traced = cell("c2", "2.0", [failed("t::a", api="p.g", linked_by="trace")])
    traced["tests"][0]["cause"]["trace"] = {"passing": "1.0", "api": "p.g", "differ": 1}
    further = cell("c3", "3.0", [failed("t::a")])
    other_message = cell("c4", "4.0", [failed("t::a", message="something else")])
    other_python = cell("c5", "3.0", [failed("t::a")], python="3.11.4")
    changed = carry_traces([traced, further, other_message, other_python], traced)
    assert [c["id"] for c in changed] == ["c3"]
    cause = changed[0]["tests"][0]["cause"]
    assert (cause["category"], cause["api"], cause["trace"]["at"]) == ("behavior", "p.g", "c2")


# --- the same calls across two releases (scikit-learn 0.21 -> 0.22, in small) ----------------

_RELEASE = {
    "__init__.py": """\
        from ._split import StratifiedKFold
        from .{kmeans_module} import KMeans
        from .utils import clone, safe_indexing
        """,
    "_split.py": """\
        class _BaseKFold:
            def __init__(self, n_splits=2):
                self.n_splits = n_splits

            def split(self, X):
                return {folds}

        class StratifiedKFold(_BaseKFold):
            pass
        """,
    "{kmeans_module}.py": """\
        class KMeans:
            def __init__(self, random_state=None, presort={presort!r}{more_params}):
                self.random_state = random_state
                self.presort = presort{more_init}

            def __repr__(self):
                return "KMeans(" + ", ".join(f"{{k}}={{v!r}}" for k, v in vars(self).items()) + ")"

            def fit(self, X):
                self.cluster_centers_ = {centers}{more_fitted}
                return self
        """,
    "utils.py": """\
        import functools

        def _deprecated(func):
            @functools.wraps(func)
            def wrapped(*args, **kwargs):
                return func(*args, **kwargs)
            return wrapped

        {deprecated}def safe_indexing(X, indices):
            return [X[i] for i in indices]

        def clone(estimator):
            new = type(estimator).__new__(type(estimator))
            new.__dict__.update(vars(estimator))
            return new
        """,
}
_V1 = {
    "kmeans_module": "k_means_",
    "folds": "[[0, 1], [2, 3]]",
    "centers": "[[0.5], [2.5]]",
    "more_params": "",
    "more_init": "",
    "more_fitted": "",
    "deprecated": "",
    "presort": "auto",
}


def _trace_release(tmp_path: Path, name: str, **changes: str) -> list[Any]:
    """The project's calls into one release of ``skpkg`` (written from ``_RELEASE`` with
    ``changes`` over ``_V1``), traced in this process."""
    values = {**_V1, **changes}
    site = tmp_path / name / "site-packages"
    package = site / "skpkg"
    package.mkdir(parents=True)
    for file, text in _RELEASE.items():
        (package / file.format(**values)).write_text(textwrap.dedent(text.format(**values)))
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    (root / "sk_project.py").write_text(
        textwrap.dedent(
            """\
            import skpkg

            def run():
                X = [[0.0], [1.0], [2.0], [3.0]]
                estimator = skpkg.clone(skpkg.KMeans(random_state=0))
                folds = skpkg.StratifiedKFold(n_splits=2).split(X)
                part = skpkg.safe_indexing(X, folds[0])
                return estimator.fit(part)
            """
        )
    )
    for module in [
        m for m in sys.modules if m == "skpkg" or m.startswith(("skpkg.", "sk_project"))
    ]:
        del sys.modules[module]
    sys.path[:0] = [str(site), str(root)]
    try:
        project = importlib.import_module("sk_project")
        return _traced(["skpkg"], root, project.run)
    finally:
        sys.path.remove(str(site))
        sys.path.remove(str(root))


def test_a_method_is_named_for_the_class_it_was_called_on(tmp_path: Path) -> None:
    """imbalanced-learn 0.5.0 under scikit-learn 0.22: the tracer named
    ``sklearn.model_selection._split._BaseKFold.split``, the private base class that
    defines ``split``; the project called ``StratifiedKFold(...).split``."""
    calls = _trace_release(tmp_path, "v1")
    assert [c["api"] for c in calls] == [
        "skpkg.KMeans",
        "skpkg.clone",
        "skpkg.StratifiedKFold",
        "skpkg.StratifiedKFold.split",
        "skpkg.safe_indexing",
        "skpkg.KMeans.fit",
    ]


def test_the_same_call_has_the_same_arguments_in_both_releases(tmp_path: Path) -> None:
    """What a release changes around a call is not the caller's arguments: a function now
    behind a deprecation wrapper (``*args, **kwargs``), a class moved to a private module,
    an object whose repr grew a parameter. Each had made the arguments differ, so no call
    lined up and the changed result went unnamed; and an object returned (``clone``) is
    the same object when its attributes are, whatever its repr says."""
    before = _trace_release(tmp_path, "v1")
    after = _trace_release(
        tmp_path,
        "v2",
        kmeans_module="_kmeans",
        deprecated="@_deprecated\n        ",
        more_params=", algorithm='auto'",
        more_init="\n                self.algorithm = algorithm",
    )
    assert [c["args"] for c in before] == [c["args"] for c in after]
    assert [c["result"] for c in before] == [c["result"] for c in after]
    assert first_difference(cast(Any, before), cast(Any, after)) is None


def test_a_changed_result_is_found_past_what_only_grew(tmp_path: Path) -> None:
    """Folds that differ are the first changed result; a fitted object is compared by the
    attributes both releases set (one more attribute in the new release is no change, other
    cluster centres are); a setting whose default changed comes after data that changed
    (imbalanced-learn under scikit-learn 0.22 named ``sklearn.clone``, which copied an
    estimator whose ``presort`` default had become ``'deprecated'``)."""
    before = _trace_release(tmp_path, "v1")
    grew = _trace_release(tmp_path, "v2", more_fitted="\n                self.n_features_in_ = 1")
    assert first_difference(cast(Any, before), cast(Any, grew)) is None
    moved = _trace_release(
        tmp_path,
        "v3",
        centers="[[2.5], [0.5]]",
        more_fitted="\n                self.n_features_in_ = 1",
    )
    found = first_difference(cast(Any, before), cast(Any, moved))
    assert found is not None and found[1]["api"] == "skpkg.KMeans.fit" and found[3] == 1
    # A default setting that changed (copied by ``clone``) before the folds that differ.
    split = _trace_release(tmp_path, "v4", folds="[[0, 2], [1, 3]]", presort="deprecated")
    found = first_difference(cast(Any, before), cast(Any, split))
    assert found is not None
    assert (found[0], found[2]["api"], found[3]) == (3, "skpkg.StratifiedKFold.split", 2)

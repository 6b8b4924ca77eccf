"""Deprecation warnings as evidence: precursors of boundaries and upgrade risks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder
from pytest_dfvc.model import CellJSON
from pytest_dfvc.verdicts.deprecations import (
    announced_version,
    kept_warning,
    link_precursors,
    risk_lines,
    upgrade_risks,
    warned_api,
)

from . import fakeframe
from .helpers import offline_install, require_pythons, run_matrix, tooling_wheels, write_project


@pytest.mark.parametrize(
    ("message", "api", "announced"),
    [
        (
            "`np.int` is a deprecated alias for the builtin `int`. To silence this warning, "
            "use `int` by itself.",
            "numpy.int",
            None,
        ),
        (
            "`product` is deprecated as of NumPy 1.25.0, and will be removed in NumPy 2.0. "
            "Please use `prod` instead.",
            "product",
            "2.0",
        ),
        (
            "Function get_feature_names is deprecated; get_feature_names is deprecated in 1.0 "
            "and will be removed in 1.2. Please use get_feature_names_out instead.",
            "get_feature_names",
            "1.2",
        ),
        (
            "sklearn.externals.joblib is deprecated in 0.21 and will be removed in 0.23.",
            "sklearn.externals.joblib",
            "0.23",
        ),
        (
            "scipy.interp is deprecated and will be removed in SciPy 2.0.0, use numpy.interp "
            "instead",
            "scipy.interp",
            "2.0.0",
        ),
        (
            "The 'normalize' keyword is deprecated and will be removed in version 1.2",
            "normalize",
            "1.2",
        ),
    ],
)
def test_the_api_and_version_a_message_names(message: str, api: str, announced: str | None) -> None:
    assert warned_api(message) == api
    assert announced_version(message) == announced


def test_only_evidence_of_a_change_is_kept() -> None:
    assert (
        kept_warning({"category": "UserWarning", "message": "low precision", "location": "a:1"})
        is None
    )
    visible = kept_warning(
        {
            "category": "VisibleDeprecationWarning",
            "message": "`x.y` is deprecated",
            "location": "a:1",
        }
    )
    assert visible is not None and visible["api"] == "x.y"
    future = kept_warning(
        {"category": "FutureWarning", "deprecation": True, "message": "behaviour will change"}
    )
    assert future == {
        "category": "FutureWarning",
        "message": "behaviour will change",
        "location": "",
    }


def _cell(
    version: str, outcome: str, warnings: list[dict[str, Any]] | None = None, cause: Any = None
) -> CellJSON:
    test: dict[str, Any] = {"nodeid": "t.py::t", "outcome": outcome}
    if warnings:
        test["warnings"] = warnings
    if cause:
        test["cause"] = cause
    return cast(
        CellJSON,
        {
            "id": f"py3.11-w{version}",
            "python": "3.11.7",
            "packages": {"w": version},
            "cuda": None,
            "status": "passed" if outcome == "passed" else "failed",
            "tests": [test],
        },
    )


WARNED = {
    "category": "FutureWarning",
    "message": "Function get_names is deprecated; it will be removed in 1.2.",
    "location": "proj.py:4",
    "api": "get_names",
    "announced": "1.2",
}


def test_an_assertion_after_a_warned_removal_becomes_missing_api() -> None:
    behavior = {
        "category": "behavior",
        "exception": "AssertionError",
        "message": "assert ['x0'] == ['a']",
    }
    cells = [
        _cell("1.0", "passed"),
        _cell("1.1", "passed", [WARNED]),
        _cell("1.2", "failed", cause=behavior),
    ]
    link_precursors(cells, {"w": ["1.0", "1.1", "1.2"]})
    cause = cells[2]["tests"][0]["cause"]
    assert cause["category"] == "missing-api" and cause["api"] == "get_names"
    assert cause["linked_by"] == "warning"
    assert cause["precursor"] == {
        "version": "1.1",
        "category": "FutureWarning",
        "message": WARNED["message"],
        "location": "proj.py:4",
    }


def test_no_link_to_an_unrelated_warning_or_across_a_gap_in_the_evidence() -> None:
    other_api = {"category": "missing-api", "api": "w.total", "exception": "AttributeError"}
    cells = [_cell("1.1", "passed", [WARNED]), _cell("1.2", "failed", cause=other_api)]
    link_precursors(cells, {"w": ["1.1", "1.2"]})
    assert "precursor" not in cells[1]["tests"][0]["cause"]
    # Two removals and an assertion that names neither: which one broke it is not known.
    two = [WARNED, dict(WARNED, api="old_sum", message="old_sum is deprecated, removed in 1.2")]
    behavior = {"category": "behavior", "message": "assert 1 == 2"}
    cells = [_cell("1.1", "passed", two), _cell("1.2", "failed", cause=behavior)]
    link_precursors(cells, {"w": ["1.1", "1.2"]})
    assert cells[1]["tests"][0]["cause"] == {"category": "behavior", "message": "assert 1 == 2"}


def test_risks_are_announced_as_said_and_survival_is_noticed() -> None:
    cells = [_cell("1.0", "passed", [WARNED]), _cell("1.1", "passed", [WARNED])]
    risks = upgrade_risks(cells, {"w": ["1.0", "1.1"]})
    assert [(r["api"], r["announced"], r["seen_on"], r["first_warned"]) for r in risks] == [
        ("get_names", "1.2", ["1.1"], "1.0")
    ]
    assert "survived" not in risks[0]
    survived = upgrade_risks(
        [_cell("1.2", "passed", [WARNED]), _cell("1.3", "passed", [WARNED])],
        {"w": ["1.2", "1.3"]},
    )
    assert survived[0]["survived"] is True
    line = risk_lines(survived)[0]
    assert "announced for 1.2 (tested already, and it survived)" in line
    assert "seen in 1 test on w 1.3" in line


@pytest.mark.parametrize(
    "message",
    [
        "You are saving your model as an HDF5 file via `model.save()`. This file format is "
        "considered legacy. We recommend using instead the native Keras format.",
        "In a future release, the default value for `weights_only` will be flipped to `True`.",
        "The default of `observed` will change to True in a future version.",
    ],
)
def test_announcements_worded_as_legacy_or_a_coming_change_are_kept(message: str) -> None:
    """issue 29, item 3: "deprecated" and "will be removed" are not the only words."""
    kept = kept_warning({"category": "UserWarning", "message": message, "location": "a:1"})
    assert kept is not None and kept["message"] == message


# --- end to end: a fake framework that warns one release before it removes ---------------

_V10 = """
import warnings

def total(xs):
    return sum(xs)

def old_sum(xs):
    {old_sum}
    return sum(xs)

def interp(xs):
    {interp}
    return xs[0]

class Est:
    def get_names(self):
        {get_names}
        return ["a", "b"]
"""
_WARN = {
    "old_sum": "warnings.warn('old_sum is deprecated and will be removed in 1.2; use total', "
    "DeprecationWarning, stacklevel=2)",
    # The scipy case: the text announces a later removal than the one that came.
    "interp": "warnings.warn('warnframe.interp is deprecated and will be removed in "
    "warnframe 2.0.0, use total instead', DeprecationWarning, stacklevel=2)",
    "get_names": "warnings.warn('Function get_names is deprecated; get_names is deprecated "
    "in 1.1 and will be removed in 1.2.', FutureWarning, stacklevel=2)",
}
_V12 = "def total(xs):\n    return sum(xs)\n\nclass Est:\n    pass\n"

PROJECT = {
    "conftest.py": "",
    "proj.py": """
        import warnframe

        def summed(xs):
            return warnframe.old_sum(xs)

        def names(est):
            if hasattr(est, "get_names"):
                return est.get_names()
            return ["x%d" % i for i in range(2)]

        def first(xs):
            return warnframe.interp(xs)
        """,
    "tests/test_proj.py": """
        import warnframe
        import proj

        def test_sum():
            assert proj.summed([1, 2]) == 3

        def test_names():
            assert proj.names(warnframe.Est()) == ["a", "b"]

        def test_first():
            assert proj.first([1]) == 1

        def test_total():
            assert warnframe.total([1]) == 1
        """,
}


@pytest.fixture(scope="module")
def warnframe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("warnframe")
    quiet = {k: "pass" for k in _WARN}
    fakeframe.simple_wheel(folder, "warnframe", "1.0", _V10.format(**quiet))
    fakeframe.simple_wheel(folder, "warnframe", "1.1", _V10.format(**_WARN))
    fakeframe.simple_wheel(folder, "warnframe", "1.2", _V12)
    return folder


@pytest.mark.slow
def test_a_boundary_with_its_precursor(
    tmp_path: Path, warnframe: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.9")
    write_project(tmp_path, PROJECT)
    (tmp_path / "matrices").mkdir()
    (tmp_path / "matrices" / "w.toml").write_text(
        'python = ["3.9"]\n[packages.warnframe]\nversions = ">=1.0"\n\n'
        + offline_install(warnframe, tooling)
        + "project = false\n"
    )
    result = run_matrix(tmp_path)
    assert result.returncode == 0, result.output
    matrix = result.matrix("w")
    failing = {
        t["nodeid"].rsplit("::", 1)[1]: t["cause"]
        for t in matrix["cells"][2]["tests"]
        if t.get("cause")
    }
    assert set(failing) == {"test_sum", "test_names", "test_first"}
    names = failing["test_names"]
    # The API is a name that exists where the warning was raised: the class's method.
    assert (names["category"], names["api"], names["linked_by"]) == (
        "missing-api",
        "warnframe.Est.get_names",
        "warning",
    )
    assert names["precursor"]["version"] == "1.1"
    assert names["precursor"]["category"] == "FutureWarning"
    assert names["precursor"]["location"] == "proj.py:8"  # the project line that called it
    assert failing["test_sum"]["precursor"]["message"].startswith("old_sum is deprecated")
    assert (
        failing["test_sum"]["category"] == "missing-api" and "linked_by" not in failing["test_sum"]
    )
    assert "will be removed in warnframe 2.0.0" in failing["test_first"]["precursor"]["message"]
    assert matrix["ranges"]["warnframe"]["specifier"] == ">=1.0,<1.2"
    assert "warned in 1.1: Function get_names is deprecated" in result.output
    assert "(the failure is tied to it by this warning)" in result.output
    # The upgrade was tried and failed: a failure with its precursor, not a risk.
    assert matrix["risks"] == []
    assert "upgrade risks" not in result.output


@pytest.mark.slow
def test_risks_on_a_matrix_that_stops_before_the_removal_on_python_37_and_pytest_6(
    tmp_path: Path, warnframe: Path, finder: InterpreterFinder
) -> None:
    """The recorder keeps warnings on the oldest Python and pytest it supports; risks
    change no range, no badge and not the exit status."""
    require_pythons(finder, "3.7")
    write_project(tmp_path, PROJECT)
    (tmp_path / "matrices").mkdir()
    (tmp_path / "matrices" / "w.toml").write_text(
        'python = ["3.7"]\n[packages.warnframe]\nversions = ["1.0", "1.1"]\n\n'
        + offline_install(warnframe, tooling_wheels("py37"))
        + 'constraints = ["pytest<7"]\nproject = false\n'
    )
    result = run_matrix(tmp_path)
    assert result.returncode == 0, result.output
    matrix = result.matrix("w")
    assert matrix["cells"][1]["resolved"]["pytest"].startswith("6.")
    # 1.2 is on the index and was not run: the range stops at 1.1.
    assert matrix["ranges"]["warnframe"]["specifier"] == ">=1.0,<=1.1"
    risks = {r["api"]: r for r in matrix["risks"]}
    assert set(risks) == {"warnframe.old_sum", "warnframe.Est.get_names", "warnframe.interp"}
    assert risks["warnframe.Est.get_names"]["announced"] == "1.2"
    assert risks["warnframe.Est.get_names"]["tests"] == ["tests/test_proj.py::test_names"]
    assert risks["warnframe.Est.get_names"]["first_warned"] == "1.1"
    # The scipy case: the text announces 2.0.0 (the removal came in 1.2); shown as said.
    assert risks["warnframe.interp"]["announced"] == "2.0.0"
    assert risks["warnframe.interp"]["seen_on"] == ["1.1"]
    assert "survived" not in risks["warnframe.interp"]
    assert "upgrade risks (deprecations met on the newest versions that pass" in result.output
    assert "warnframe.Est.get_names: Function get_names is deprecated" in result.output
    report = (tmp_path / ".dfvc" / "report.md").read_text()
    assert "### Upgrade risks" in report


def test_a_warning_from_inside_a_package_is_located_from_the_package_on() -> None:
    import warnings

    from pytest_dfvc.incell.recorder import warning_record

    message = warnings.WarningMessage(
        FutureWarning("Function f is deprecated"),
        FutureWarning,
        "/p/.dfvc/envs/dfvc-py3-10-13-1/lib/python3.10/site-packages/sklearn/utils/deprecation.py",
        87,
    )
    assert warning_record(message, "/p") == {
        "category": "FutureWarning",
        "deprecation": True,
        "message": "Function f is deprecated",
        "location": "sklearn/utils/deprecation.py:87",
        # No sklearn is loaded here: no word of the text names anything that exists.
        "names": {},
    }


def test_a_warning_from_another_package_never_takes_the_blame() -> None:
    """The test also calls ``datetime.utcnow()`` (deprecated on Python 3.12) and fails
    because ``w`` changed a result: the cause became ``missing-api:
    datetime.datetime.utcnow``, "tied by this warning" (issue 26, item 4). A precursor comes
    only from a warning of the package that changed (or one naming no package)."""
    utcnow = {
        "category": "DeprecationWarning",
        "message": "datetime.datetime.utcnow() is deprecated and scheduled for removal in a "
        "future version. Use timezone-aware objects to represent datetimes in UTC.",
        "location": "tests/test_x.py:9",
        "api": "datetime.datetime.utcnow",
    }
    behavior = {
        "category": "behavior",
        "exception": "AssertionError",
        "message": "assert 2.0 == 1.0",
    }
    cells = [_cell("1.1", "passed", [utcnow]), _cell("1.2", "failed", cause=dict(behavior))]
    link_precursors(cells, {"w": ["1.1", "1.2"]})
    assert cells[1]["tests"][0]["cause"] == behavior
    # The package's own warning still ties, dotted or not.
    own = dict(WARNED, api="w.get_names")
    cells = [_cell("1.1", "passed", [utcnow, own]), _cell("1.2", "failed", cause=dict(behavior))]
    link_precursors(cells, {"w": ["1.1", "1.2"]})
    assert cells[1]["tests"][0]["cause"]["api"] == "w.get_names"


PINV2_WARNED = {
    "category": "DeprecationWarning",
    "message": "scipy.linalg.pinv2 is deprecated since SciPy 1.7.0, use scipy.linalg.pinv instead",
    "location": "peakutils/baseline.py:51",
    "api": "scipy.linalg.pinv2",
}


def test_a_failure_another_package_caused_takes_its_precursor_from_that_package() -> None:
    """PeakUtils on a numpy axis: the pass beside scipy 1.8.1 warned that ``pinv2`` is
    deprecated; the failure scipy 1.9 brought (``other-package`` after its counterfactual)
    is tied to scipy's warning, the package blamed, not to numpy's."""
    cause = {
        "category": "third-party",
        "api": "scipy.linalg.pinv2",
        "exception": "AttributeError",
        "distribution": "scipy",
    }
    cells = [_cell("1.1", "passed", [PINV2_WARNED]), _cell("1.2", "failed", cause=dict(cause))]
    cells[1]["tests"][0]["outcome"] = "other-package"
    link_precursors(cells, {"w": ["1.1", "1.2"]})
    precursor = cells[1]["tests"][0]["cause"]["precursor"]
    assert precursor["version"] == "1.1" and "pinv2" in precursor["message"]


def test_another_packages_deprecation_is_never_measured_against_the_axis() -> None:
    """One numpy axis: scipy's "removed in SciPy 1.14.0" read as "announced for 1.14.0
    (tested already, and it survived)" against numpy's versions."""
    simps = {
        "category": "DeprecationWarning",
        "message": "'scipy.integrate.simps' is deprecated in favour of 'scipy.integrate.simpson' "
        "and will be removed in SciPy 1.14.0",
        "location": "peakutils/peak.py:146",
        "api": "scipy.integrate.simps",
        "announced": "1.14.0",
    }
    risks = upgrade_risks([_cell("1.26", "passed", [simps])], {"w": ["1.26"]})
    assert len(risks) == 1 and risks[0]["axis"] is None and "survived" not in risks[0]
    own = upgrade_risks([_cell("1.26", "passed", [WARNED])], {"w": ["1.26"]})
    assert own[0]["axis"] == "w"

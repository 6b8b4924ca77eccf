"""Silent breaks named to the API that changed (issue 30, items 1, 2 and 4), from fake
wheels of a small library, ``silent``, in three releases:

========  ==================================================================================
1.0       ``to_seconds`` exact; ``KMeans.fit`` warns that ``n_init``'s default will change in
          1.1; ``Frame.to_csv(line_terminator=)`` warns that the keyword is deprecated
1.1       ``to_seconds`` loses precision, no exception (item 1); ``n_init`` defaults to
          ``'auto'`` and other labels come out (item 2)
1.2       ``line_terminator`` is gone; ``to_csv`` is reached through a decorator's wrapper,
          which raises the TypeError (item 4)
========  ==================================================================================

The tests compare with ``silent.testing.assert_equal``, which raises inside the library:
without tracing, the tool named that helper (``unknown``), or nothing."""

from __future__ import annotations

import itertools
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from . import fakeframe
from .helpers import (
    MatrixRunResult,
    offline_install,
    require_pythons,
    run_matrix,
    write_project,
)

pytestmark = pytest.mark.slow

VERSIONS = ("1.0", "1.1", "1.2")
PYTHONS = ("3.11", "3.12")


def _library(version: str) -> dict[str, str]:
    minor = int(version.split(".")[1])
    seconds = "v / div" if minor == 0 else "round(v / div, 1)"
    init = f"""\
        __version__ = "{version}"
        from . import cluster, testing
        from .frame import Frame

        def parse(values):
            return [float(v) for v in values]

        def to_seconds(values, unit="ms"):
            div = 1000.0 if unit == "ms" else 1.0
            return [{seconds} for v in values]
        """
    default = '"warn"' if minor == 0 else '"auto"'
    cluster = f"""\
        import warnings

        class KMeans:
            def __init__(self, n_clusters=2, n_init={default}):
                self.n_clusters = n_clusters
                self.n_init = n_init

            def fit(self, X):
                n_init = self.n_init
                if n_init == "warn":
                    warnings.warn(
                        "The default value of `n_init` will change from 10 to 'auto' in 1.1. "
                        "Set the value of `n_init` explicitly to suppress the warning",
                        FutureWarning,
                        stacklevel=2,
                    )
                    n_init = 10
                if n_init == "auto":
                    n_init = 1
                threshold = 5 if n_init > 1 else 1.5
                self.labels_ = [0 if x < threshold else 1 for x in X]
                return self
        """
    testing = """\
        def assert_equal(left, right):
            if left != right:
                raise AssertionError("values differ: %r != %r" % (left, right))
        """
    if minor < 2:
        frame = """\
            import functools
            import warnings

            def _deprecate_kwarg(old, new):
                def decorate(func):
                    @functools.wraps(func)
                    def wrapper(*args, **kwargs):
                        if old in kwargs:
                            warnings.warn(
                                "the %r keyword is deprecated, use %r instead." % (old, new),
                                FutureWarning,
                                stacklevel=2,
                            )
                            kwargs[new] = kwargs.pop(old)
                        return func(*args, **kwargs)
                    return wrapper
                return decorate

            class Frame:
                def __init__(self, rows):
                    self.rows = rows

                @_deprecate_kwarg("line_terminator", "lineterminator")
                def to_csv(self, lineterminator="\\n"):
                    return lineterminator.join(",".join(map(str, r)) for r in self.rows)
            """
    else:
        frame = """\
            import functools

            def _keyword_only(func):
                @functools.wraps(func)
                def wrapper(*args, **kwargs):
                    return func(*args, **kwargs)
                return wrapper

            class Frame:
                def __init__(self, rows):
                    self.rows = rows

                @_keyword_only
                def to_csv(self, lineterminator="\\n"):
                    return lineterminator.join(",".join(map(str, r)) for r in self.rows)
            """
    files = {"__init__.py": init, "cluster.py": cluster, "testing.py": testing, "frame.py": frame}
    if minor < 2:
        # Gone in 1.2: a test module that imports it is not collected there (item 5).
        files["legacy.py"] = "def helper():\n    return 1\n"
    return {f"silent/{name}": textwrap.dedent(text) for name, text in files.items()}


TESTS = {
    "tests/test_times.py": """\
        import silent
        from silent.testing import assert_equal


        def test_parse():
            assert_equal(silent.parse(["1", "2"]), [1.0, 2.0])


        def test_seconds():
            parsed = silent.parse(["1", "2"])
            assert_equal(parsed, [1.0, 2.0])
            assert_equal(silent.to_seconds([1234, 5678], unit="ms"), [1.234, 5.678])


        def test_seconds_again():
            assert_equal(silent.to_seconds([250], unit="ms"), [0.25])
        """,
    "tests/test_cluster.py": """\
        from silent.cluster import KMeans
        from silent.testing import assert_equal


        def test_labels():
            model = KMeans(n_clusters=2).fit([1, 2, 10, 11])
            assert_equal(model.labels_, [0, 0, 1, 1])
        """,
    "tests/test_legacy.py": """\
        import pytest

        legacy = pytest.importorskip("silent.legacy")


        def test_helper():
            assert legacy.helper() == 1


        def test_helper_again():
            assert legacy.helper() + 1 == 2
        """,
    "tests/test_csv.py": """\
        import silent


        def test_csv_unix():
            assert silent.Frame([[1, 2]]).to_csv(line_terminator="\\n") == "1,2"


        def test_csv_windows():
            frame = silent.Frame([[1, 2], [3, 4]])
            assert frame.to_csv(line_terminator="\\r\\n") == "1,2\\r\\n3,4"


        def test_csv_twice():
            frame = silent.Frame([[5]])
            assert frame.to_csv(line_terminator=";") == frame.to_csv(line_terminator=";")
        """,
}


@pytest.fixture(scope="module")
def silent_run(
    tmp_path_factory: pytest.TempPathFactory, tooling: Path, finder: InterpreterFinder
) -> MatrixRunResult:
    require_pythons(finder, *PYTHONS)
    tmp_path = tmp_path_factory.mktemp("silent")
    wheels = tmp_path / "wheels"
    for version in VERSIONS:
        fakeframe.package_wheel(wheels, "silent", version, _library(version))
    root = tmp_path / "p"
    write_project(root, TESTS)
    # 3.11 traces with sys.setprofile, 3.12 with sys.monitoring.
    matrix = 'python = ["3.11", "3.12"]\n[packages.silent]\nversions = ["1.0", "1.1", "1.2"]\n'
    (root / "m.toml").write_text(matrix + offline_install(wheels, tooling))
    result = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-jobs=2")
    assert result.returncode == 0, result.output
    return result


def _cause(
    result: MatrixRunResult, version: str, test: str, python: str = "3.12"
) -> dict[str, Any]:
    cell = next(
        c
        for c in result.matrix("m")["cells"]
        if c["packages"]["silent"] == version and c["python"].startswith(python)
    )
    outcome = next(t for t in cell["tests"] if t["nodeid"].endswith("::" + test))
    assert outcome["outcome"] == "failed", outcome
    cause: dict[str, Any] = outcome["cause"]
    return cause


def test_a_result_that_changed_without_an_exception_names_the_function(
    silent_run: MatrixRunResult,
) -> None:
    """Item 1. Symptom: ``unknown``, API ``silent.testing.assert_equal``. Right: ``behavior:
    silent.to_seconds``, found by tracing both cells: same arguments, another result."""
    for test, python in itertools.product(("test_seconds", "test_seconds_again"), PYTHONS):
        cause = _cause(silent_run, "1.1", test, python)
        assert cause["category"] == "behavior", cause
        assert cause["api"] == "silent.to_seconds", cause
        trace = cause["trace"]
        assert trace["passing"] == "1.0"
        assert trace["differ"] == 1
        # test_seconds calls parse and assert_equal (same results) before to_seconds.
        assert trace["call"] == (3 if test == "test_seconds" else 1)
    assert (
        "behavior: silent.to_seconds — same arguments, different result from 1.0"
        in silent_run.output
    )
    report = (silent_run.root / ".dfvc" / "report.html").read_text()
    assert "silent.to_seconds" in report and "same arguments" in report


def test_a_default_that_changed_after_a_future_warning(silent_run: MatrixRunResult) -> None:
    """Item 2. Symptom: ``behavior`` with no API and the warning left untied. Right:
    ``behavior: silent.cluster.KMeans.fit``, warned in 1.0."""
    cause = _cause(silent_run, "1.1", "test_labels")
    assert cause["category"] == "behavior", cause
    assert cause["api"] == "silent.cluster.KMeans.fit", cause
    assert cause["precursor"]["version"] == "1.0", cause
    assert "n_init" in cause["precursor"]["message"]


def test_a_removed_keyword_is_one_group_with_every_warning(silent_run: MatrixRunResult) -> None:
    """Item 4. Symptom: three groups (the method, the keyword alone, the decorator's
    wrapper), one test with its precursor. Right: one group ``parameter:
    silent.Frame.to_csv(line_terminator=)``, every test warned in 1.1."""
    for test in ("test_csv_unix", "test_csv_windows", "test_csv_twice"):
        cause = _cause(silent_run, "1.2", test)
        assert cause["category"] == "parameter", cause
        assert cause["api"] == "silent.Frame.to_csv(line_terminator=)", cause
        assert cause["precursor"]["version"] == "1.1", cause
    groups = [
        g for g in silent_run.matrix("m")["causes"] if any("test_csv" in t for t in g["tests"])
    ]
    assert len(groups) == 1, groups
    assert len(groups[0]["tests"]) == 3
    # No English word of a warning's text is an API.
    warned = [
        w
        for c in silent_run.matrix("m")["cells"]
        for t in c["tests"]
        for w in t.get("warnings") or ()
    ]
    assert warned
    assert all(w.get("api") is None for w in warned), warned


def test_summaries_count_only_tests_that_ran(silent_run: MatrixRunResult) -> None:
    """Item 5. Tests of a module not collected on 1.2 (it skips without ``silent.legacy``)
    pass on 1.0 and 1.1 only: no summary says they pass on every version."""
    assert "1 test passes on every silent version tried" in silent_run.output
    assert "1 test passes in every cell that ran" in silent_run.output
    entry = silent_run.matrix("m")["ranges"]["silent"]["tests"]
    helper = entry["tests/test_legacy.py::test_helper"]
    assert helper["compatible"] == ["1.0", "1.1"], helper
    assert "1.2" not in helper["incompatible"]
    report = (silent_run.root / ".dfvc" / "report.md").read_text()
    assert "1 test passed in every cell that ran." in report

"""``pytest --dfvc-matrix`` provisioning real cells with nox and uv, offline: the fake
framework's wheels come from a local folder, and so does pytest."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_dfvc.index.interpreters import InterpreterFinder

from .helpers import (
    MatrixRunResult,
    offline_install,
    require_pythons,
    run_matrix,
    tooling_wheels,
    write_project,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fake_run(
    tmp_path_factory: pytest.TempPathFactory,
    wheelhouse: Path,
    tooling: Path,
    finder: InterpreterFinder,
) -> MatrixRunResult:
    require_pythons(finder, "3.9", "3.10")
    root = tmp_path_factory.mktemp("project")
    write_project(root)
    (root / "matrices").mkdir()
    (root / "matrices" / "fake.toml").write_text(
        'python = ["3.9", "3.10"]\n\n[packages.fakeframe]\nversions = ">=1.0"\n\n'
        + offline_install(wheelhouse, tooling)
        + 'requirements = ["fakeaddon"]\n'
    )
    return run_matrix(root, "--dfvc-jobs=2")


def _cell(result: MatrixRunResult, cell_id: str) -> dict[str, Any]:
    return next(c for c in result.matrix("fake")["cells"] if c["id"] == cell_id)


def _test(cell: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in cell["tests"] if t["nodeid"].endswith(name))


def test_run_succeeds_and_reports(fake_run: MatrixRunResult) -> None:
    # Failing cells are findings, not errors of the run.
    assert fake_run.returncode == 0, fake_run.output
    out = fake_run.output
    assert "py3.10-fakeframe1.2.0: provisioning and testing" in out
    assert "compatible ranges:" in out
    assert "fakeframe: >=1.1.0,<1.2.0" in out
    assert "python: >=3.10" in out
    assert "cells failed" in out


def test_results_file_follows_schema(fake_run: MatrixRunResult) -> None:
    results = fake_run.results
    assert results["schema"] == 1
    matrix = fake_run.matrix("fake")
    assert [c["id"] for c in matrix["cells"]] == [
        f"py{py}-fakeframe{v}"
        for py in ("3.9", "3.10")
        for v in ("1.0.0", "1.1.0", "1.2.0", "2.0.0", "2.1.0")
    ]
    cell = _cell(fake_run, "py3.10-fakeframe1.2.0")
    assert cell["python"].startswith("3.10.")
    assert cell["packages"] == {"fakeframe": "1.2.0"}
    assert cell["resolved"]["fakeframe"] == "1.2.0"
    assert "pytest" in cell["resolved"]
    assert cell["status"] == "failed"  # test_stale fails everywhere
    for key in ("nodeid", "outcome"):
        assert all(key in t for t in cell["tests"])
    # Where the cell's time went: the three stages, which its wall time holds.
    assert set(cell["seconds"]) == {"session", "install", "tests"}
    assert all(s >= 0 for s in cell["seconds"].values())
    assert cell["seconds"]["tests"] > 0
    assert sum(cell["seconds"].values()) <= cell["duration"] + 0.01
    # A cell that could not install has no test time.
    unavailable = _cell(fake_run, "py3.9-fakeframe2.1.0")
    assert "tests" not in unavailable.get("seconds", {})


def test_version_that_needs_newer_python_is_unavailable(fake_run: MatrixRunResult) -> None:
    cell = _cell(fake_run, "py3.9-fakeframe2.1.0")
    assert cell["status"] == "unavailable"
    assert cell["cause"]["category"] == "python-version"
    assert "fakeframe 2.1.0 requires Python>=3.10" in cell["cause"]["reason"]
    assert cell["tests"] == []


def test_every_failing_test_carries_a_cause(fake_run: MatrixRunResult) -> None:
    for cell in fake_run.matrix("fake")["cells"]:
        for test in cell["tests"]:
            if test["outcome"] in ("failed", "error"):
                assert test["cause"]["category"], (cell["id"], test)


@pytest.mark.parametrize(
    ("cell_id", "test", "category", "api"),
    [
        ("py3.10-fakeframe2.0.0", "test_average", "missing-api", "fakeframe.old_mean"),
        ("py3.10-fakeframe2.0.0", "test_conv", "parameter", "fakeframe.ops.conv(filters=)"),
        ("py3.10-fakeframe2.0.0", "test_helper", "import-path", "fakeframe.utils"),
        ("py3.10-fakeframe1.0.0", "test_new_feature", "missing-api", "fakeframe.new_feature"),
        ("py3.9-fakeframe1.2.0", "test_kind", "python-version", None),
        ("py3.10-fakeframe1.2.0", "test_stale", "behavior", None),
        ("py3.10-fakeframe1.2.0", "test_flatten", "usage-constraint", "fakeframe.ops.flatten"),
        ("py3.10-fakeframe2.0.0", "test_device", "resource", "fakeframe.device"),
        ("py3.10-fakeframe2.0.0", "test_addon", "third-party", None),
    ],
)
def test_causes_of_the_fake_history(
    fake_run: MatrixRunResult, cell_id: str, test: str, category: str, api: str | None
) -> None:
    cause = _test(_cell(fake_run, cell_id), test)["cause"]
    assert cause["category"] == category
    if api:
        assert cause["api"] == api
    assert cause["location"]


def test_results_group_failures_by_cause_and_api(fake_run: MatrixRunResult) -> None:
    groups = fake_run.matrix("fake")["causes"]
    old_mean = next(g for g in groups if g.get("api") == "fakeframe.old_mean")
    assert old_mean["category"] == "missing-api"
    assert old_mean["tests"] == ["tests/test_api.py::test_average"]
    assert old_mean["versions"]["fakeframe"] == ["2.0.0", "2.1.0"]
    assert old_mean["versions"]["python"] == ["3.9", "3.10"]
    assert "missing-api: fakeframe.old_mean — AttributeError" in fake_run.output
    unavailable = next(g for g in groups if g["category"] == "python-version" and "reason" in g)
    assert unavailable["cells"] == ["py3.9-fakeframe2.1.0"]


def test_third_party_cause_names_the_distribution(fake_run: MatrixRunResult) -> None:
    cause = _test(_cell(fake_run, "py3.10-fakeframe2.0.0"), "test_addon")["cause"]
    assert cause["distribution"] == "fakeaddon"
    assert cause["version"] == "1.0.0"
    assert cause["suggestion"]


def test_module_that_fails_to_import_fails_each_of_its_tests(fake_run: MatrixRunResult) -> None:
    cell = _cell(fake_run, "py3.10-fakeframe2.0.0")
    helper = _test(cell, "tests/test_utils.py::test_helper")
    assert helper["outcome"] == "error"
    assert helper["from_module"] == "tests/test_utils.py"
    # Python 3.9 cannot even parse test_match.py: counted against its test too.
    kind = _test(_cell(fake_run, "py3.9-fakeframe1.1.0"), "tests/test_match.py::test_kind")
    assert kind["outcome"] == "error"


def test_project_and_per_test_ranges(fake_run: MatrixRunResult) -> None:
    ranges = fake_run.matrix("fake")["ranges"]
    frame = ranges["fakeframe"]
    # A staircase: one test lost at 1.2.0, most of the suite at 2.0.0.
    assert frame["specifier"] == ">=1.1.0,<1.2.0"
    assert frame["compatible"] == ["1.1.0"]
    assert frame["incompatible"] == ["1.0.0", "1.2.0", "2.0.0", "2.1.0"]
    assert frame["upgrade_boundary"] == "1.2.0"
    assert frame["downgrade_boundary"] == "1.0.0"
    tests = frame["tests"]
    assert tests["tests/test_api.py::test_conv"]["specifier"] == ">=1.0.0,<2.0.0"
    assert tests["tests/test_api.py::test_new_feature"]["specifier"] == ">=1.1.0"
    assert tests["tests/test_utils.py::test_helper"]["upgrade_boundary"] == "2.0.0"


def test_match_statement_gives_python_range_from_310(fake_run: MatrixRunResult) -> None:
    python = fake_run.matrix("fake")["ranges"]["python"]
    assert python["specifier"] == ">=3.10,<3.11"  # 3.11 and newer were not run
    assert python["compatible"] == ["3.10"]
    assert python["incompatible"] == ["3.9"]


def test_always_failing_test_is_not_version_related(fake_run: MatrixRunResult) -> None:
    matrix = fake_run.matrix("fake")
    assert matrix["not_version_related"] == ["tests/test_api.py::test_stale"]
    assert "not version-related" in fake_run.output


def test_cell_logs_are_kept(fake_run: MatrixRunResult) -> None:
    cell = _cell(fake_run, "py3.10-fakeframe1.0.0")
    log = Path(cell["log"]).read_text()
    # The session is the Python's slot environment, synced to this cell.
    assert "nox > Running session dfvc-py3.10." in log
    assert "nox > fake: py3.10-fakeframe1.0.0" in log


def test_user_noxfile_lists_the_cells(fake_run: MatrixRunResult) -> None:
    """The same cells are nox sessions a project's own noxfile can expose."""
    root = fake_run.root
    (root / "noxfile.py").write_text(
        "from pytest_dfvc.nox import matrix_sessions\n\nmatrix_sessions('matrices')\n"
    )
    listing = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    names = {s["session"] for s in json.loads(listing.stdout)}
    assert "dfvc-fake-py3.10-fakeframe1.1.0" in names
    # The cell nox cannot build on 3.9 is still a session; the pre-check is what skips it.
    assert len(names) == 10

    def session(test: str) -> tuple[int, str]:
        run = subprocess.run(
            [sys.executable, "-m", "nox", "-s", "dfvc-fake-py3.10-fakeframe1.1.0", "--", test],
            cwd=root,
            capture_output=True,
            text=True,
        )
        return run.returncode, run.stdout + run.stderr

    code, output = session("tests/test_api.py::test_conv")
    assert code == 0 and "1 passed" in output, output
    # A failing test fails the session, as `nox -s tests` would: CI running it goes red
    # (the controller's own sessions take failures as findings).
    code, output = session("tests/test_api.py::test_stale")
    assert code == 1, output
    assert "Session dfvc-fake-py3.10-fakeframe1.1.0 failed" in output


def test_old_python_and_old_pytest_cell(
    tmp_path: Path, wheelhouse: Path, finder: InterpreterFinder
) -> None:
    """The recorder runs on Python 3.7 with pytest 6."""
    require_pythons(finder, "3.7")
    tooling = tooling_wheels("py37")
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "tests/test_old.py": """
            import pytest
            import fakeframe

            def test_mean():
                assert fakeframe.mean([1, 3]) == 2

            def test_old_mean():
                assert fakeframe.old_mean([1, 3]) == 2

            @pytest.mark.dfvc(fakeframe="<2")
            def test_marked(dfvc_record):
                dfvc_record("version", fakeframe.__version__)
            """,
        },
    )
    (tmp_path / "matrices").mkdir()
    (tmp_path / "matrices" / "old.toml").write_text(
        'python = ["3.7"]\n\n[packages.fakeframe]\nversions = ["1.2.0", "2.0.0"]\n\n'
        + offline_install(wheelhouse, tooling)
        + 'constraints = ["pytest<7"]\n'
    )
    result = run_matrix(tmp_path)
    assert result.returncode == 0, result.output
    cells = result.matrix("old")["cells"]
    assert [c["status"] for c in cells] == ["passed", "failed"]
    assert cells[0]["resolved"]["pytest"].startswith("6.")
    failing = _test(cells[1], "test_old_mean")
    assert failing["cause"]["category"] == "missing-api"
    assert failing["cause"]["api"] == "fakeframe.old_mean"
    # An explicit list: nothing between 1.2.0 and 2.0.0 was run, so nothing past 1.2.0 is admitted.
    assert result.matrix("old")["ranges"]["fakeframe"]["specifier"] == "==1.2.0"
    # Markers and recorded values work on pytest 6 too.
    marked = _test(cells[1], "test_marked")
    assert marked["outcome"] == "skipped"
    assert marked["reason"].startswith("dfvc: declared fakeframe<2")
    assert _test(cells[0], "test_marked")["records"] == {"version": "1.2.0"}


def test_crashing_test_costs_only_itself_and_a_hang_is_an_error(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """A test that kills the test process is recorded as a crash and the cell's other tests
    still run; a cell past --dfvc-timeout is an error of the run (exit 1), the rest kept."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "tests/test_x.py": """
            import os, signal, time
            import fakeframe

            def test_a_ok():
                assert fakeframe.mean([1, 3]) == 2

            def test_b_exits():
                if fakeframe.__version__ == "1.1.0":
                    os._exit(3)

            def test_c_segfaults():
                if fakeframe.__version__ == "1.1.0":
                    os.kill(os.getpid(), signal.SIGSEGV)

            def test_d_after():
                pass

            def test_e_hangs():
                if fakeframe.__version__ == "1.2.0":
                    time.sleep(120)
            """,
        },
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0", "1.1.0", "1.2.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    result = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-timeout=15")
    assert result.returncode == 1, result.output
    cells = {c["id"]: c for c in result.matrix("m")["cells"]}
    assert cells["py3.10-fakeframe1.0.0"]["status"] == "passed"
    crashed = cells["py3.10-fakeframe1.1.0"]
    assert crashed["status"] == "failed"
    outcomes = {t["nodeid"].split("::")[1]: t for t in crashed["tests"]}
    assert {n: t["outcome"] for n, t in outcomes.items()} == {
        "test_a_ok": "passed",
        "test_b_exits": "error",
        "test_c_segfaults": "error",
        "test_d_after": "passed",
        "test_e_hangs": "passed",
    }
    assert outcomes["test_b_exits"]["cause"]["category"] == "crash"
    assert "exited with status 3" in outcomes["test_b_exits"]["cause"]["message"]
    assert "killed by signal 11" in outcomes["test_c_segfaults"]["cause"]["message"]
    hung = cells["py3.10-fakeframe1.2.0"]
    assert hung["status"] == "error"
    assert hung["cause"]["category"] == "timeout"
    assert "--dfvc-timeout=15s" in hung["cause"]["reason"]
    assert [t["outcome"] for t in hung["tests"][:4]] == ["passed"] * 4


def test_broken_environment_is_rebuilt(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {"conftest.py": "", "tests/test_x.py": "import fakeframe\n\ndef test_x():\n    pass\n"},
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    assert run_matrix(tmp_path, "--dfvc-matrix=m.toml").returncode == 0
    (env,) = (p.parent for p in (tmp_path / ".dfvc" / "envs").glob("*/pyvenv.cfg"))
    (env / "bin" / "python").unlink()
    again = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-rerun")
    assert again.returncode == 0, again.output
    assert again.matrix("m")["cells"][0]["status"] == "passed"


def test_second_run_waits_for_the_first(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    import fcntl

    require_pythons(finder, "3.10")
    write_project(tmp_path, {"conftest.py": "", "tests/test_x.py": "def test_x():\n    pass\n"})
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    (tmp_path / ".dfvc").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DFVC_"))}
    with (tmp_path / ".dfvc" / "lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("pid 4242")
        held.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--dfvc-matrix=m.toml", "-p", "no:cacheprovider"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        # Released once the second run says it waits (never after a fixed sleep: a run
        # slow to start under load would find the lock free and never wait).
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "lock is held by pid 4242: waiting for that run to finish" in line:
                break
        else:
            raise AssertionError("the second run did not wait:\n" + "".join(seen))
        assert proc.poll() is None, "the second run went on while the lock was held"
        fcntl.flock(held, fcntl.LOCK_UN)
    rest, _ = proc.communicate(timeout=120)
    output = "".join(seen) + rest
    assert proc.returncode == 0, output


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_keeps_finished_cells_and_stops_the_rest(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder, signum: int
) -> None:
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            "conftest.py": "",
            "tests/test_x.py": """
            import os, time
            import fakeframe

            def test_x():
                if fakeframe.__version__ == "1.1.0":
                    with open("hanging.pid", "w") as f:
                        f.write(str(os.getpid()))
                    time.sleep(300)
            """,
        },
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0", "1.1.0", "1.2.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DFVC_"))}
    env["PYTHONFAULTHANDLER"] = "1"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--dfvc-matrix=m.toml",
            "--dfvc-jobs=1",
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        # As from a terminal: a suite started in the background by a non-interactive shell
        # inherits SIGINT ignored, and Python keeps it ignored (the run never saw Ctrl-C).
        preexec_fn=_default_sigint,
    )
    # The test writes where it runs: in its cell's own view of the project.
    pid_file = tmp_path / ".dfvc" / "views" / "m" / "py3.10-fakeframe1.1.0" / "hanging.pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not pid_file.exists():
        proc.kill()
        proc.communicate()
        raise AssertionError("the hanging cell never started")
    time.sleep(0.5)
    proc.send_signal(signum)
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        # Where it hangs: every thread's stack (faulthandler, on SIGABRT) and what still runs.
        tree = subprocess.run(["ps", "-eo", "pid,ppid,pgid,stat,args"], capture_output=True)
        proc.send_signal(signal.SIGABRT)
        output, _ = proc.communicate()
        raise AssertionError(output + tree.stdout.decode()) from None
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    results = json.loads((tmp_path / ".dfvc" / "results.json").read_text())
    cells = results["matrices"][0]["cells"]
    assert [c["id"] for c in cells] == ["py3.10-fakeframe1.0.0"]
    assert cells[0]["status"] == "passed"
    assert results["complete"] is False
    # The hanging test process was stopped with its cell, not left running.
    hanging = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(hanging) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(hanging)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not yet reaped by its parent) is as good as gone.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_project_rules_through_the_hook(
    tmp_path: Path, wheelhouse: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """A project's conftest.py adds diagnosis rules, tried before the built-in ones."""
    require_pythons(finder, "3.10")
    write_project(
        tmp_path,
        {
            "conftest.py": """
            def pytest_dfvc_rules():
                return [("resource", r"RuntimeError$", r"NCCL error")]
            """,
            "tests/test_x.py": """
            import fakeframe

            def test_collective():
                raise RuntimeError("NCCL error: unhandled system error")
            """,
        },
    )
    (tmp_path / "m.toml").write_text(
        'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0"]\n'
        + offline_install(wheelhouse, tooling)
    )
    result = run_matrix(tmp_path, "--dfvc-matrix=m.toml")
    (cell,) = result.matrix("m")["cells"]
    assert _test(cell, "test_collective")["cause"]["category"] == "resource"
    assert "resource: RuntimeError: NCCL error: unhandled system error" in result.output


def test_unreachable_index_is_an_error_never_unavailable(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """An index nobody answers on is no evidence that a version cannot be installed: with
    explicit versions every cell is an error with uv's reason, and the run fails; the GitHub
    Actions plan prints nothing and fails; listing releases from it is retried, then stops
    the run with one message."""
    require_pythons(finder, "3.10")
    write_project(tmp_path, {"conftest.py": "", "tests/test_x.py": "def test_x():\n    pass\n"})
    dead = "http://127.0.0.1:9/simple"
    (tmp_path / "m.toml").write_text(
        f'python = ["3.10"]\n[packages.fakeframe]\nversions = ["1.0.0", "1.1.0"]\n[install]\nindex-url = "{dead}"\n'
    )
    result = run_matrix(tmp_path, "--dfvc-matrix=m.toml", env_extra={"UV_HTTP_RETRIES": "1"})
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.output
    cells = result.matrix("m")["cells"]
    assert [c["status"] for c in cells] == ["error", "error"]
    assert all(
        c["cause"]["category"] == "install" and "127.0.0.1:9" in c["cause"]["reason"] for c in cells
    )
    assert "nothing was tested" in result.output
    plan = subprocess.run(
        [sys.executable, "-m", "pytest", "--dfvc-gha", "--dfvc-matrix=m.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "UV_HTTP_RETRIES": "1"},
    )
    assert plan.returncode != 0
    assert plan.stdout == ""
    assert "planning failed" in plan.stderr and "index unreachable" in plan.stderr
    (tmp_path / "m.toml").write_text(
        f'python = ["3.10"]\n[packages.fakeframe]\nversions = ">=1"\n[install]\nindex-url = "{dead}"\n'
    )
    listing = run_matrix(tmp_path, "--dfvc-matrix=m.toml", "--dfvc-rerun")
    assert listing.returncode == pytest.ExitCode.USAGE_ERROR
    assert "index unreachable after 3 tries" in listing.output

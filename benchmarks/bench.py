"""Speed of pytest-dfvc against what users run today, measured in one go on one machine.

Run it with ``nox -s benchmark`` (it needs the package index, CPython 3.10 and 3.11, and
tox, tox-uv and virtualenv, which the session installs). It copies the numpy example to a
scratch folder, warms the download caches once (uncounted), then times:

* pytest-dfvc cold (no environments, warm download cache) and warm (nothing changed);
* a hand-written loop of ``uv venv`` + ``uv pip install`` + ``pytest``, two at a time;
* the same cells as nox sessions on nox's default virtualenv + pip backend, two nox
  processes at a time;
* tox with tox-uv, ``tox p -p 2``, cold and warm;
* bisect against grid on a long fake history with one boundary;
* planning a long history (every numpy since 1.17 on Python 3.7 to 3.13: 595 cells) with
  ``--dfvc-list``, cold (nothing kept from an earlier plan) and warm;
* the controller's own overhead per cell and the recorder's cost inside a cell;
* the tracer's cost: none in an ordinary cell, and what a boundary's trace cell pays;
* with ``stages``: a cold run taken apart (before the first cell, the cells and each one's
  session start, install and tests, the later waves, the results) against the hand loop's
  own steps, and the share of the run in which both slots ran a test process.

Every figure printed is a ratio of runs made in the same invocation; absolute seconds are
shown for context only (the machine is shared).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = ROOT / "examples" / "numpy-demo"
PYTHONS = ("3.10", "3.11")
NUMPYS = ("1.23.5", "1.24.4", "1.25.2", "1.26.4", "2.0.2", "2.1.3")
BIN = Path(sys.executable).parent

sys.path.insert(0, str(ROOT))
from pytest_dfvc.index.interpreters import InterpreterFinder  # noqa: E402
from tests import fakeframe  # noqa: E402


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode not in (0, 1):
        output = result.stdout[-3000:] + result.stderr[-3000:]
        raise SystemExit(f"{command} failed ({result.returncode}):\n{output}")
    return elapsed


def interpreters() -> dict[str, str]:
    finder = InterpreterFinder()
    found = {m: finder.find(m) for m in PYTHONS}
    missing = [m for m, i in found.items() if i is None]
    if missing:
        raise SystemExit(f"the benchmark needs CPython {', '.join(missing)}")
    return {m: i.path for m, i in found.items() if i is not None}


def prepare(scratch: Path) -> Path:
    project = scratch / "project"
    shutil.copytree(
        EXAMPLE, project, ignore=shutil.ignore_patterns(".dfvc", ".nox", ".tox", "__pycache__")
    )
    versions = ", ".join(f'"{v}"' for v in NUMPYS)
    (project / "matrices" / "numpy.toml").write_text(
        f"python = [{', '.join(repr(p).replace(chr(39), chr(34)) for p in PYTHONS)}]\n\n"
        f"[packages.numpy]\nversions = [{versions}]\n"
    )
    return project


def dfvc(project: Path, *extra: str) -> float:
    return timed(
        [str(BIN / "pytest"), "--dfvc-matrix", "--dfvc-jobs=2", "-p", "no:cacheprovider", *extra],
        project,
    )


def hand_loop(
    project: Path,
    pythons: dict[str, str],
    mode: str = "editable",
    stages: dict[str, list[float]] | None = None,
) -> float:
    """What a careful user writes by hand: uv venv, uv pip install, pytest; two at a time.
    ``mode``: how the project reaches the tests. ``wheel``: its wheel built once (timed; a
    pure-Python wheel serves every Python) and installed in each venv; ``tree``: not
    installed, imported through ``PYTHONPATH=src``; ``editable``: ``-e .`` in every venv.
    ``stages`` gets each step's seconds: ``build`` once, ``venv``, ``install`` and
    ``tests`` per cell."""
    spent: dict[str, list[float]] = stages if stages is not None else {}

    def step(stage: str, command: list[str], **kwargs: Any) -> None:
        began = time.perf_counter()
        subprocess.run(command, **kwargs)
        spent.setdefault(stage, []).append(time.perf_counter() - began)

    uv = str(BIN / "uv")
    envs = project / ".hand"
    shutil.rmtree(envs, ignore_errors=True)
    started = time.perf_counter()
    project_args: list[str] = ["-e", str(project)]
    if mode == "wheel":
        dist = envs / "dist"
        step(
            "build",
            [uv, "build", "-q", "--wheel", "--out-dir", str(dist), str(project)],
            check=True,
        )
        project_args = [str(next(dist.glob("*.whl")))]
    elif mode == "tree":
        project_args = []
    run_env = dict(os.environ, PYTHONPATH=str(project / "src")) if mode == "tree" else None

    def cell(args: tuple[str, str]) -> None:
        python, numpy = args
        env = envs / f"py{python}-np{numpy}"
        step("venv", [uv, "venv", "-q", "-p", pythons[python], str(env)], check=True)
        python_path = str(env / "bin" / "python")
        install = [uv, "pip", "install", "-q", "-p", python_path, *project_args]
        step("install", [*install, f"numpy=={numpy}", "pytest"], check=True)
        step(
            "tests",
            [python_path, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=project,
            capture_output=True,
            env=run_env,
        )

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(cell, [(p, n) for p in PYTHONS for n in NUMPYS]))
    return time.perf_counter() - started


NOXFILE = """
import nox

CELLS = {cells!r}


def make(python, numpy):
    def cell(session):
        session.install(*{project!r}, f"numpy=={{numpy}}", "pytest")
        session.run(
            "pytest", "-q", "-p", "no:cacheprovider", success_codes=[0, 1], env={env!r}
        )
    return cell


for python, numpy, path in CELLS:
    name = f"cell-py{{python}}-np{{numpy}}"
    nox.session(name=name, python=path, venv_backend="virtualenv")(make(python, numpy))
"""


def nox_virtualenv(project: Path, pythons: dict[str, str], mode: str = "editable") -> float:
    """The same cells as plain nox sessions on nox's default backend (virtualenv + pip).
    ``mode``: ``editable`` (``-e .``), ``wheel`` (``session.install(".")``: pip builds and
    installs the project in each session), ``tree`` (``PYTHONPATH=src``)."""
    cells = [(p, n, pythons[p]) for p in PYTHONS for n in NUMPYS]
    noxfile = project / "noxfile_bench.py"
    installs = {"editable": ["-e", "."], "wheel": ["."], "tree": []}
    env = {"PYTHONPATH": str(project / "src")} if mode == "tree" else {}
    noxfile.write_text(NOXFILE.format(cells=cells, project=installs[mode], env=env))
    names = [f"cell-py{p}-np{n}" for p, n, _ in cells]
    halves = [names[0::2], names[1::2]]
    shutil.rmtree(project / ".nox", ignore_errors=True)
    started = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(
            pool.map(
                lambda half: subprocess.run(
                    [str(BIN / "nox"), "-f", str(noxfile), "--reuse-venv=never", "-s", *half],
                    cwd=project,
                    capture_output=True,
                    check=False,
                ),
                halves,
            )
        )
    return time.perf_counter() - started


def tox_uv(project: Path, pythons: dict[str, str], *, cold: bool, mode: str = "editable") -> float:
    """tox with tox-uv, two environments at a time: the fastest tool users have today.
    ``mode``: ``editable`` (``package = "editable"``: rebuilt in every run), ``wheel`` (one
    wheel built in a shared ``wheel_build_env`` and installed in each), ``tree``
    (``skip_install``, ``PYTHONPATH=src``)."""
    lines = [
        "env_list = [" + ", ".join(f'"{_tox_env(p, n)}"' for p in PYTHONS for n in NUMPYS) + "]",
        "",
    ]
    package = {
        "editable": ['package = "editable"'],
        "wheel": ['package = "wheel"', 'wheel_build_env = ".pkg"'],
        "tree": ["skip_install = true", 'set_env = { PYTHONPATH = "src" }'],
    }[mode]
    lines += [
        "[env_run_base]",
        *package,
        'commands = [["pytest", "-q", "-p", "no:cacheprovider"]]',
        "",
    ]
    for python in PYTHONS:
        for numpy in NUMPYS:
            lines += [
                f'[env."{_tox_env(python, numpy)}"]',
                f'base_python = ["{pythons[python]}"]',
                f'deps = ["pytest", "numpy=={numpy}"]',
                "",
            ]
    # tox.toml, not tox.ini: pytest reads tox.ini for its own settings.
    (project / "tox.toml").write_text("\n".join(lines))
    if cold:
        shutil.rmtree(project / ".tox", ignore_errors=True)
    return timed([str(BIN / "tox"), "p", "-p", "2"], project)


def from_its_tree(scratch: Path) -> Path:
    """The example again, its matrix saying ``[install] project = false``: the cells import
    it from its tree (``src/`` on the path) and nothing builds it."""
    project = prepare(scratch / "tree")
    matrix = project / "matrices" / "numpy.toml"
    matrix.write_text(matrix.read_text() + "\n[install]\nproject = false\n")
    return project


def peers(scratch: Path, pythons: dict[str, str]) -> dict[str, float]:
    """pytest-dfvc and each peer doing the same work, in two configurations: the project
    installed (dfvc as it is; the hand loop and tox-uv build one wheel and install it; nox +
    pip installs ``.``) and the project imported from its tree (dfvc ``project = false``;
    the others ``PYTHONPATH=src``, tox ``skip_install``). Then the heavier peers of earlier
    tables: an editable install in every venv, and tox rebuilding the editable project in
    every run. A warm dfvc run that names another results file is timed too: which file a
    run writes must not change what it reuses."""
    figures: dict[str, float] = {}
    configurations = {"installed": prepare(scratch / "installed"), "tree": from_its_tree(scratch)}
    for name, project in configurations.items():
        mode = "wheel" if name == "installed" else "tree"
        print(f"warming download caches for '{name}' (uncounted)...", flush=True)
        dfvc(project)
        nox_virtualenv(project, pythons, mode)
        tox_uv(project, pythons, cold=True, mode=mode)
        print(f"measuring '{name}'...", flush=True)
        shutil.rmtree(project / ".dfvc")
        figures[f"{name}_dfvc_cold_s"] = dfvc(project, "--dfvc-json=out/results.json")
        # The cold run's own results: the warm runs below write reused cells over them.
        cold_results = project / "out" / "cold.json"
        shutil.copy(project / "out" / "results.json", cold_results)
        figures[f"{name}_dfvc_warm_s"] = statistics.median(
            dfvc(project, "--dfvc-json=out/results.json") for _ in range(3)
        )
        figures[f"{name}_dfvc_warm_other_json_s"] = dfvc(project, "--dfvc-json=out/warm.json")
        # Cold again without the second wave that traces the example's silent breaks
        # (work no peer does): how much of the gap that wave is.
        shutil.rmtree(project / ".dfvc")
        figures[f"{name}_dfvc_cold_notrace_s"] = dfvc(
            project, "--dfvc-trace=off", "--dfvc-json=out/notrace.json"
        )
        figures[f"{name}_hand_s"] = hand_loop(project, pythons, mode)
        figures[f"{name}_nox_pip_s"] = nox_virtualenv(project, pythons, mode)
        figures[f"{name}_tox_cold_s"] = tox_uv(project, pythons, cold=True, mode=mode)
        figures[f"{name}_tox_warm_s"] = statistics.median(
            tox_uv(project, pythons, cold=False, mode=mode) for _ in range(3)
        )
        tests, installs = cells_own_time(cold_results)
        figures[f"{name}_limit_tests_s"] = tests / 2
        figures[f"{name}_limit_s"] = (tests + installs) / 2
    heavier = configurations["installed"]
    print("measuring the heavier peers (editable installs)...", flush=True)
    figures["heavier_hand_editable_s"] = hand_loop(heavier, pythons, "editable")
    figures["heavier_nox_pip_editable_s"] = nox_virtualenv(heavier, pythons, "editable")
    tox_uv(heavier, pythons, cold=True, mode="editable")  # its build env, warmed
    figures["heavier_tox_editable_cold_s"] = tox_uv(heavier, pythons, cold=True, mode="editable")
    figures["heavier_tox_editable_warm_s"] = statistics.median(
        tox_uv(heavier, pythons, cold=False, mode="editable") for _ in range(3)
    )
    return figures


def timeline(command: list[str], cwd: Path) -> tuple[float, list[tuple[float, str]]]:
    """Run ``command``; its wall time and each output line with when it came."""
    started = time.perf_counter()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.perf_counter() - started, line.rstrip("\n")))
    if process.returncode not in (0, 1):
        raise SystemExit(f"{command} failed:\n" + "\n".join(t for _, t in lines[-40:]))
    return time.perf_counter() - started, lines


def dfvc_stages(project: Path) -> dict[str, float]:
    """A cold run of ``project`` taken apart: before its first cell (pytest's start, the
    plan, the index), its cells (and, from results.json, each cell's session start, install
    and tests), the trace cells after them, and the results and reports after the last."""
    shutil.rmtree(project / ".dfvc", ignore_errors=True)
    wall, lines = timeline(
        [str(BIN / "pytest"), "--dfvc-matrix", "--dfvc-jobs=2", "-p", "no:cacheprovider"], project
    )

    def at(pattern: str, last: bool = False) -> float:
        found = [t for t, text in lines if pattern in text]
        if not found:
            raise SystemExit(f"no line with {pattern!r} in:\n" + "\n".join(t for _, t in lines))
        return found[-1] if last else found[0]

    first, ordinary_end = at("provisioning and testing"), at("] numpy", last=True)
    waves_end = at(" cells run, ")
    results = json.loads((project / ".dfvc" / "results.json").read_text())
    cells = [c for m in results["matrices"] for c in m["cells"] if c["status"] != "skipped"]
    figures = {
        "wall_s": wall,
        "before_first_cell_s": first,
        "cells_s": ordinary_end - first,
        "later_waves_s": waves_end - ordinary_end,
        "after_cells_s": wall - waves_end,
        "cells": float(len(cells)),
        "cell_s": statistics.mean(c["duration"] for c in cells),
    }
    for stage in ("session", "install", "tests"):
        # A release before the stage times (0.1.0) has none: not a number.
        spent = [c["seconds"].get(stage, 0.0) for c in cells if "seconds" in c]
        figures[f"cell_{stage}_s"] = statistics.mean(spent) if spent else math.nan
    # Each cell's session (trace cells too) stamped when its tests began and ended.
    spans = []
    for stamps in (project / ".dfvc" / "cells").glob("*/*/stages"):
        marks = dict(line.split() for line in stamps.read_text().splitlines())
        if "test" in marks and "done" in marks:
            spans.append((float(marks["test"]), float(marks["done"])))
    figures["both_slots_testing_fraction"] = overlap(spans, 2) / wall
    figures["test_processes"] = float(len(spans))
    return figures


def overlap(spans: list[tuple[float, float]], at_least: int) -> float:
    """Seconds during which at least ``at_least`` of ``spans`` ran at once."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running, since, total = 0, 0.0, 0.0
    for when, step in events:
        if running >= at_least:
            total += when - since
        running += step
        since = when
    return total


def stages(scratch: Path, pythons: dict[str, str]) -> dict[str, float]:
    """Where a cold cell's time goes, pytest-dfvc against the hand loop (the project's
    wheel built once and installed in each venv), one after the other on the same project,
    download caches warmed (uncounted)."""
    project = prepare(scratch / "stages")
    print("warming download caches (uncounted)...", flush=True)
    dfvc(project)
    hand_loop(project, pythons, "wheel")
    print("measuring the stages...", flush=True)
    figures = {f"dfvc_{k}": v for k, v in dfvc_stages(project).items()}
    spent: dict[str, list[float]] = {}
    figures["hand_wall_s"] = hand_loop(project, pythons, "wheel", spent)
    figures["hand_build_s"] = sum(spent["build"])
    for stage in ("venv", "install", "tests"):
        figures[f"hand_cell_{stage}_s"] = statistics.mean(spent[stage])
    figures["hand_cell_s"] = sum(figures[f"hand_cell_{s}_s"] for s in ("venv", "install", "tests"))
    return figures


def stage_table(f: dict[str, float]) -> str:
    """The figures of ``stages`` as docs/benchmarks.md shows them."""
    rows = [
        ("wall time of the run", f["dfvc_wall_s"], f["hand_wall_s"]),
        (
            "before the first cell (pytest's start and the plan; the loop's wheel build)",
            f["dfvc_before_first_cell_s"],
            f["hand_build_s"],
        ),
        ("the cells, first start to last end", f["dfvc_cells_s"], None),
        ("later waves (reruns, counterfactual and trace cells)", f["dfvc_later_waves_s"], None),
        ("results, reports and exit", f["dfvc_after_cells_s"], None),
        ("a cell, mean", f["dfvc_cell_s"], f["hand_cell_s"]),
        ("  environment made (`uv venv`)", 0.0, f["hand_cell_venv_s"]),
        ("  session started by nox in a worker", f["dfvc_cell_session_s"], 0.0),
        ("  install (`uv pip install`)", f["dfvc_cell_install_s"], f["hand_cell_install_s"]),
        ("  tests (pytest)", f["dfvc_cell_tests_s"], f["hand_cell_tests_s"]),
        (
            "share of the run with a test process in both slots",
            f["dfvc_both_slots_testing_fraction"],
            None,
        ),
    ]
    out = ["| seconds | pytest-dfvc | hand loop |", "|---|---|---|"]
    for name, ours, theirs in rows:
        out.append(f"| {name} | {ours:.2f} | {'—' if theirs is None else f'{theirs:.2f}'} |")
    return "\n".join(out)


def cells_own_time(results: Path) -> tuple[float, float]:
    """The cells' own pytest processes and their installs, summed over the cells (the
    ``seconds`` each cell of the results has): the work no scheduler can avoid. Divided
    by the job count it is the floor of a cold run (item 4 of issue 31)."""
    data = json.loads(results.read_text())
    cells = [c for m in data["matrices"] for c in m["cells"]]
    tests = sum(float((c.get("seconds") or {}).get("tests") or 0.0) for c in cells)
    installs = sum(float((c.get("seconds") or {}).get("install") or 0.0) for c in cells)
    return tests, installs


def peer_tables(f: dict[str, float]) -> str:
    """The ratios of ``peers``, as the tables docs/benchmarks.md quotes."""
    lines = []
    for name, title in (("installed", "project installed"), ("tree", "project from its tree")):
        cold, warm = f[f"{name}_dfvc_cold_s"], f[f"{name}_dfvc_warm_s"]
        rows = [
            ("cold dfvc / hand uv loop", cold / f[f"{name}_hand_s"], "<= 0.7"),
            ("cold dfvc / cold tox-uv", cold / f[f"{name}_tox_cold_s"], "<= 0.9"),
            ("warm dfvc / warm tox-uv", warm / f[f"{name}_tox_warm_s"], "<= 0.3"),
            ("warm dfvc / cold dfvc", warm / cold, "<= 0.1"),
            (
                "warm, another results file / cold",
                f[f"{name}_dfvc_warm_other_json_s"] / cold,
                "<= 0.1",
            ),
            ("nox virtualenv+pip / cold dfvc", f[f"{name}_nox_pip_s"] / cold, ">= 8"),
        ]
        notrace = f.get(f"{name}_dfvc_cold_notrace_s")
        lines.append(f"same work, {title}:")
        lines += [f"  {label:<36}{ratio:6.2f}   (target {target})" for label, ratio, target in rows]
        if notrace is not None:
            lines.append(
                f"  the same cold run, --dfvc-trace=off:  {notrace / f[f'{name}_hand_s']:.2f} of "
                f"the hand loop, {notrace / f[f'{name}_tox_cold_s']:.2f} of tox-uv"
            )
        limit = f[f"{name}_limit_s"]
        lines.append(
            f"  the cells' pytest processes / 2 jobs  {f[f'{name}_limit_tests_s']:.1f} s, with "
            f"their installs {limit:.1f} s: cold dfvc is {cold / max(limit, 1e-9):.2f}x that "
            "(goal <= 1.3)"
        )
    cold = f["installed_dfvc_cold_s"]
    warm = f["installed_dfvc_warm_s"]
    lines += [
        "heavier peers (an editable install in every venv; tox rebuilding it in every run):",
        f"  cold dfvc / hand uv loop, -e .    {cold / f['heavier_hand_editable_s']:.2f}",
        f"  cold dfvc / cold tox-uv editable  {cold / f['heavier_tox_editable_cold_s']:.2f}",
        f"  warm dfvc / warm tox-uv editable  {warm / f['heavier_tox_editable_warm_s']:.2f}",
        f"  nox virtualenv+pip -e . / cold    {f['heavier_nox_pip_editable_s'] / cold:.1f}x",
    ]
    return "\n".join(lines)


def _tox_env(python: str, numpy: str) -> str:
    return f"py{python.replace('.', '')}-np{numpy.replace('.', '')}"


def recorder_cost(project: Path) -> tuple[float, float]:
    """pytest in one cell's environment with and without the recorder (best of 5 each)."""
    env_dir = next((project / ".dfvc" / "envs").iterdir())
    python = str(env_dir / "bin" / "python")
    runtime = project / ".dfvc" / "runtime"
    env = dict(
        os.environ, PYTHONPATH=str(runtime), DFVC_RECORDS=str(project / ".dfvc" / "bench.jsonl")
    )
    base = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    plain = min(timed(base, project, env) for _ in range(5))
    recorded = min(timed([*base, "-p", "dfvc_recorder"], project, env) for _ in range(5))
    return plain, recorded


def tracer_cost(project: Path) -> tuple[float, float, float]:
    """pytest in one cell's environment with the recorder as every cell has it, as a cell
    that says nothing of tracing, and as a boundary's trace cell (every test traced, an
    upper bound: a trace cell runs only the boundary's failing tests); best of 5 each."""
    env_dir = next((project / ".dfvc" / "envs").iterdir())
    python = str(env_dir / "bin" / "python")
    runtime = project / ".dfvc" / "runtime"
    base_env = dict(
        os.environ, PYTHONPATH=str(runtime), DFVC_RECORDS=str(project / ".dfvc" / "bench.jsonl")
    )
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "dfvc_recorder"]
    cell = {"packages": {"numpy": "x"}, "cuda": None, "held": {}, "pinned": ["numpy"]}
    untraced = dict(base_env, DFVC_CELL=json.dumps(cell))
    traced = dict(base_env, DFVC_CELL=json.dumps({**cell, "trace": True}))
    alone = min(timed(command, project, base_env) for _ in range(5))
    ordinary = min(timed(command, project, untraced) for _ in range(5))
    tracing = min(timed(command, project, traced) for _ in range(5))
    return alone, ordinary, tracing


def tracing_in_a_run(scratch: Path) -> dict[str, float]:
    """The example's silent break (numpy 2 keeps float32: an assertion, no exception) makes
    one boundary per Python, whose failing test runs on both sides in trace cells. Times
    the run that adds them against the same run with ``--dfvc-trace=off`` (everything else
    reused), then what the tracer costs inside a cell."""
    project = prepare(scratch / "tracing")
    dfvc(project, "--dfvc-trace=off")  # builds every cell (uncounted)
    off = statistics.median(dfvc(project, "--dfvc-trace=off") for _ in range(3))
    first = dfvc(project)  # the trace cells run
    warm = statistics.median(dfvc(project) for _ in range(3))  # and are reused
    traced = len(list((project / ".dfvc" / "cells").glob("*/*-trace")))
    alone, ordinary, tracing = tracer_cost(project)
    return {
        "trace_cells": traced,
        "off_s": off,
        "first_s": first,
        "warm_s": warm,
        "trace_cells_s": first - off,
        "ordinary_cell_over_recorder": ordinary / alone,
        "trace_cell_over_ordinary": tracing / ordinary,
    }


def bisect_vs_grid(scratch: Path) -> dict[str, float]:
    count, removed_at = 40, 29
    wheels = scratch / "history"
    fakeframe.build_history(wheels, count, removed_at)
    project = scratch / "history-project"
    (project / "tests").mkdir(parents=True)
    (project / "conftest.py").write_text("")
    (project / "tests" / "test_api.py").write_text(
        "import longframe\n\ndef test_api():\n    assert longframe.api() == 1\n"
    )
    (project / "m.toml").write_text(
        'python = ["3.11"]\n[packages.longframe]\nversions = ">=1.0"\n'
        f'[install]\nno-index = true\nfind-links = ["{wheels}", "{tooling_wheels()}"]\n'
    )
    figures = {}
    for strategy in ("grid", "bisect"):
        figures[f"{strategy}_s"] = timed(
            [
                str(BIN / "pytest"),
                "--dfvc-matrix=m.toml",
                f"--dfvc-strategy={strategy}",
                "--dfvc-rerun",
                "--dfvc-jobs=2",
                "-p",
                "no:cacheprovider",
            ],
            project,
        )
        results = json.loads((project / ".dfvc" / "results.json").read_text())
        matrix = results["matrices"][0]
        figures[f"{strategy}_cells"] = sum(1 for c in matrix["cells"] if c["status"] != "skipped")
        figures[f"{strategy}_boundary"] = matrix["ranges"]["longframe"]["upgrade_boundary"]
    figures["bound"] = 2 * math.ceil(math.log2(count)) + 2
    return figures


SCALE_PYTHONS = ("3.7", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13")


def plan_at_scale(scratch: Path) -> dict[str, float]:
    """``--dfvc-list`` of every numpy since 1.17 on seven Pythons, cold then warm (median of
    three); the count of cells is read from the plan's own summary line."""
    project = scratch / "scale-project"
    (project / "matrices").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    (project / "pytest.ini").write_text("[pytest]\n")
    pythons = ", ".join(f'"{m}"' for m in SCALE_PYTHONS)
    (project / "matrices" / "numpy.toml").write_text(
        f'python = [{pythons}]\n[packages.numpy]\nversions = ">=1.17"\n[install]\nproject = false\n'
    )
    command = [str(BIN / "pytest"), "--dfvc-matrix", "--dfvc-list", "--dfvc-max-cells=2000"]

    def listed() -> tuple[float, str]:
        started = time.perf_counter()
        result = subprocess.run(command, cwd=project, capture_output=True, text=True)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(f"{command} failed ({result.returncode}):\n{result.stdout[-3000:]}")
        summary = next(x for x in result.stdout.splitlines() if " cells checked in " in x)
        return elapsed, summary

    cold, cold_summary = listed()
    warm_runs = [listed() for _ in range(3)]
    warm = statistics.median(t for t, _ in warm_runs)
    print(f"  cold: {cold_summary}\n  warm: {warm_runs[-1][1]}", flush=True)
    return {
        "cells": float(cold_summary.split("dfvc: ")[1].split()[0]),
        "cold_s": cold,
        "warm_s": warm,
    }


def tooling_wheels() -> Path:
    from tests.helpers import tooling_wheels as get

    return get("py39")


# ``nox -s benchmark -- NAME``: one case alone, its figures and, where it has one, its table.
SINGLE_CASES: dict[
    str,
    tuple[Callable[[Path], dict[str, float]], Callable[[dict[str, float]], str] | None],
] = {
    "plan": (plan_at_scale, None),
    "tracer": (tracing_in_a_run, None),
    "stages": (lambda scratch: stages(scratch, interpreters()), stage_table),
    "peers": (lambda scratch: peers(scratch, interpreters()), peer_tables),
}


def main() -> None:
    # Every tool runs as on a user's machine: some sandboxes set this, and then each Python
    # start compiles every module it imports again, which weighs on the Python-heavy tools
    # (nox, tox, pytest-dfvc's controller) far more than on uv.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if sys.argv[1:2] and sys.argv[1] in SINGLE_CASES:
        measure, table = SINGLE_CASES[sys.argv[1]]
        with tempfile.TemporaryDirectory(prefix="dfvc-bench-") as tmp:
            figures = measure(Path(tmp))
        print(json.dumps(figures, indent=2))
        if table is not None:
            print(table(figures))
        return
    pythons = interpreters()
    with tempfile.TemporaryDirectory(prefix="dfvc-bench-") as tmp:
        scratch = Path(tmp)
        project = prepare(scratch)
        print("warming download caches (uncounted)...", flush=True)
        dfvc(project)
        nox_virtualenv(project, pythons)
        tox_uv(project, pythons, cold=True)

        print("measuring...", flush=True)
        shutil.rmtree(project / ".dfvc")
        cold = dfvc(project)
        warm = statistics.median(dfvc(project) for _ in range(3))
        hand = hand_loop(project, pythons)
        nox_pip = nox_virtualenv(project, pythons)
        tox_cold = tox_uv(project, pythons, cold=True)
        tox_warm = statistics.median(tox_uv(project, pythons, cold=False) for _ in range(3))
        plain, recorded = recorder_cost(project)
        tracing = tracing_in_a_run(scratch)
        startup = statistics.median(
            timed([str(BIN / "pytest"), "--version"], project) for _ in range(3)
        )
        history = bisect_vs_grid(scratch)
        scale = plan_at_scale(scratch)

    cells = len(PYTHONS) * len(NUMPYS)
    figures = {
        "cells": cells,
        "dfvc_cold_s": cold,
        "dfvc_warm_s": warm,
        "hand_uv_loop_s": hand,
        "nox_virtualenv_pip_s": nox_pip,
        "tox_uv_cold_s": tox_cold,
        "tox_uv_warm_s": tox_warm,
        "warm_over_cold": warm / cold,
        "cold_over_hand_loop": cold / hand,
        "nox_pip_over_cold": nox_pip / cold,
        "cold_over_tox_cold": cold / tox_cold,
        "warm_over_tox_warm": warm / tox_warm,
        "controller_overhead_per_cell_ms": 1000 * max(warm - startup, 0) / cells,
        "recorder_overhead_ms": 1000 * (recorded - plain),
        # The tracer: none in a cell that is not a trace cell; a trace cell's overhead.
        **{f"tracer_{k}": v for k, v in tracing.items()},
        **{f"history_{k}": v for k, v in history.items()},
        **{f"plan_{k}": v for k, v in scale.items()},
    }
    print(json.dumps(figures, indent=2))
    print()
    print(f"{cells} cells (numpy {NUMPYS[0]}..{NUMPYS[-1]} x Python {', '.join(PYTHONS)})")
    ratio = figures["cold_over_hand_loop"]
    print(f"  cold dfvc / hand uv loop          {ratio:.2f}   (target <= 0.7)")
    print(f"  nox virtualenv+pip / cold dfvc    {figures['nox_pip_over_cold']:.1f}x  (target >= 8)")
    print(
        f"  cold dfvc / cold tox-uv           {figures['cold_over_tox_cold']:.2f}   (target <= 0.9)"
    )
    print(
        f"  warm dfvc / warm tox-uv           {figures['warm_over_tox_warm']:.2f}   (target < 0.33)"
    )
    print(f"  warm dfvc / cold dfvc             {figures['warm_over_cold']:.2f}   (target < 0.15)")
    print(
        "  controller overhead per cell      "
        f"{figures['controller_overhead_per_cell_ms']:.0f} ms (target < 100)"
    )
    print(f"  recorder cost in a cell           {figures['recorder_overhead_ms']:.0f} ms")
    print(
        "  tracer: an ordinary cell          "
        f"{tracing['ordinary_cell_over_recorder']:.2f}x the recorder alone (target 1.00); "
        f"a trace cell {tracing['trace_cell_over_ordinary']:.2f}x an ordinary one; "
        f"{tracing['trace_cells']:.0f} trace cells added {tracing['trace_cells_s']:.1f} s"
    )
    print(
        f"  bisect vs grid on 40 releases     {history['bisect_cells']} vs "
        f"{history['grid_cells']} cells (bound {history['bound']}), "
        f"boundary {history['bisect_boundary']} vs {history['grid_boundary']}"
    )
    print(
        f"  plan of {scale['cells']:.0f} cells (--dfvc-list)   cold {scale['cold_s']:.1f} s "
        f"(target <= 20), warm {scale['warm_s']:.1f} s (target <= 5)"
    )


if __name__ == "__main__":
    main()

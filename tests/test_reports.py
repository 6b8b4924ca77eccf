"""Badges, reports and suggested specifiers, from results built by hand."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

import pytest

from pytest_dfvc.model import CellJSON, Document, MatrixJSON, OutcomeJSON, RangeJSON
from pytest_dfvc.publish.badges import Badge, axis_badge, render_svg, text_width, write_badges
from pytest_dfvc.publish.reports import html_report, markdown, publish
from pytest_dfvc.verdicts.suggest import (
    Declared,
    classifier_notes,
    compare,
    declared_in_pyproject,
    suggestions,
)


def entry(
    compatible: list[str], incompatible: list[str], spec: str | None, **extra: Any
) -> RangeJSON:
    data = {
        "compatible": compatible,
        "incompatible": incompatible,
        "untested": [],
        "specifier": spec,
        "upgrade_boundary": None,
        "downgrade_boundary": None,
        "inferred": {},
        **extra,
    }
    return cast(RangeJSON, data)


@pytest.mark.parametrize(
    ("name", "data", "width", "message", "color"),
    [
        (
            "numpy",
            entry(["1.19.5", "1.23.5"], ["1.24.4"], ">=1.19,<1.24"),
            2,
            "1.19 – 1.23",
            "brightgreen",
        ),
        (
            "numpy",
            entry(["1.19.5", "1.23.5"], ["1.21.6"], ">=1.19,!=1.21.*"),
            2,
            "1.19 – 1.23",
            "yellowgreen",
        ),
        (
            "numpy",
            entry(["1.19.5", "1.23.5"], [], ">=1.19", inferred={"1.20.3": {}}),
            2,
            "1.19 – 1.23",
            "blue",
        ),
        ("numpy", entry([], ["1.24.4"], None), 2, "none compatible", "red"),
        ("numpy", entry([], [], None), 2, "untested", "red"),
        (
            "python",
            entry(["3.10", "3.11", "3.12"], ["3.9"], ">=3.10"),
            2,
            "3.10 | 3.11 | 3.12",
            "brightgreen",
        ),
        ("torch", entry(["2.1.2"], [], ">=2.1.2"), None, "2.1.2", "brightgreen"),
    ],
)
def test_badge_text_and_colour(
    name: str, data: RangeJSON, width: int | None, message: str, color: str
) -> None:
    badge = axis_badge(name, data, width=width)
    assert (badge.label, badge.message, badge.color) == (name, message, color)


def test_cuda_variants_in_the_message() -> None:
    badge = axis_badge(
        "torch", entry(["2.1.2", "2.4.1"], [], ">=2.1"), width=2, cudas=["cpu", "cu121"]
    )
    assert badge.message == "2.1 – 2.4 (cpu, cu121)"


def test_svg_is_well_formed_and_sized_by_its_text() -> None:
    short = ET.fromstring(render_svg(Badge("python", "3.10", "blue")))
    long = ET.fromstring(render_svg(Badge("python", "3.10 | 3.11 | 3.12 | 3.13", "blue")))
    assert short.tag.endswith("svg") and float(long.get("width", "0")) > float(
        short.get("width", "0")
    )
    texts = [t.text for t in long.iter("{http://www.w3.org/2000/svg}text")]
    assert "3.10 | 3.11 | 3.12 | 3.13" in texts
    # Verdana 11px: "python" is about 40px wide, as shields.io draws it.
    assert 35 < text_width("python") < 45
    escaped = ET.fromstring(render_svg(Badge("a<b", "x&y", "red")))
    assert escaped.get("aria-label") == "a<b: x&y"


def results_fixture(cells: int = 3) -> Document:
    made: list[CellJSON] = []
    for i in range(cells):
        version = f"1.{i}.0"
        failed = i == cells - 1
        first: OutcomeJSON = {"nodeid": "t.py::a", "outcome": "failed" if failed else "passed"}
        if failed:
            first["cause"] = {
                "category": "missing-api",
                "api": "x.f",
                "exception": "AttributeError",
                "message": "module 'x' has no attribute 'f'",
                "location": "t.py:3",
            }
        made.append(
            {
                "id": f"py3.10-x{version}",
                "python": "3.10.13",
                "packages": {"x": version},
                "cuda": None,
                "status": "failed" if failed else "passed",
                "cause": None,
                "resolved": {},
                "tests": [first, {"nodeid": "t.py::b", "outcome": "passed"}],
                "duration": 1.0,
            }
        )
    versions = [c["packages"]["x"] for c in made]
    return {
        "schema": 1,
        "matrices": [
            {
                "name": "m",
                "cells": made,
                "ranges": {
                    "x": entry(
                        versions[:-1],
                        versions[-1:],
                        f">=1.0.0,<{versions[-1]}",
                        upgrade_boundary=versions[-1],
                    ),
                    "python": entry(["3.10"], [], ">=3.10"),
                },
                "not_version_related": [],
                "causes": [
                    {
                        "category": "missing-api",
                        "api": "x.f",
                        "exception": "AttributeError",
                        "message": "module 'x' has no attribute 'f'",
                        "location": "t.py:3",
                        "tests": ["t.py::a"],
                        "cells": [made[-1]["id"]],
                        "versions": {"x": versions[-1:]},
                    }
                ],
                "violations": [],
                "declared": [],
                "drift": [],
            }
        ],
    }


def test_markdown_report() -> None:
    text = markdown(results_fixture(), {"m": ["x>=1.0.0,<1.2.0"]})
    assert "## Matrix `m` (3 cells)" in text
    assert "| `t.py::a` | ✅ | ✅ | ❌ |" in text
    assert "**x**: `>=1.0.0,<1.2.0`" in text
    assert "missing-api: x.f — AttributeError: module 'x' has no attribute 'f' — at t.py:3" in text
    assert "x>=1.0.0,<1.2.0" in text.split("### Suggested specifiers")[1]
    # t.py::b passes everywhere: one line, not a row.
    assert "`t.py::b`" not in text
    assert "1 test passed in every cell that ran." in text


def test_markdown_report_keeps_its_table_whole() -> None:
    """A ``|`` in a parametrized test's id ended the Markdown cell; cells that ran no test
    made columns; long version lists ran on."""
    results = results_fixture(40)
    cells = results["matrices"][0]["cells"]
    for cell in cells:
        cell["tests"][0]["nodeid"] = "t.py::a[x|y]"
    cells.append({**cells[0], "id": "py3.10-x9.9.9", "status": "skipped", "tests": []})
    text = markdown(results, {})
    row = next(line for line in text.splitlines() if line.startswith("| `t.py::a"))
    assert row.startswith("| `t.py::a[x\\|y]` |")
    assert row.count(" | ") == 40  # 40 cells that ran, no column for the skipped one
    assert "- `py3.10-x9.9.9` — skipped" in text
    assert "passes 1.0.0, 1.1.0 … 1.38.0 (39)" in text


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tds: list[dict[str, str | None]] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "td":
            self.tds.append(found)
        for key in ("src", "href"):
            if found.get(key):
                self.external.append(str(found[key]))


def test_html_heat_map_is_self_contained_and_explains_red() -> None:
    page = html_report(results_fixture())
    parser = _Collect()
    parser.feed(page)
    assert parser.external == []  # no CDN, no external file
    cells = [td for td in parser.tds if td.get("data-cell")]
    assert len(cells) == 3  # one row: t.py::b passes in every cell and is folded
    assert "<details><summary>1 test passes in every cell that ran</summary>" in page
    red = next(td for td in cells if td["class"] == "failed")
    assert "missing-api — x.f — AttributeError" in str(red["title"])
    assert red["data-cause"] == "missing-api"


def test_html_with_200_cells_stays_small() -> None:
    page = html_report(results_fixture(200))
    assert page.count("<td class=") == 200  # the row that differs; the other is one line
    assert len(page) < 200_000


def test_html_folds_as_the_terminal_does() -> None:
    """36 cells x 87 tests, 84 passing everywhere: rows only for the 3 that differ, the rest
    and the cells that ran no test behind a click, long version lists cut."""
    results = results_fixture(36)
    for cell in results["matrices"][0]["cells"]:
        cell["tests"] += [{"nodeid": f"t.py::same{i}", "outcome": "passed"} for i in range(84)]
        if cell["id"].endswith("x1.3.0"):
            cell["tests"][1]["outcome"] = "failed"
            cell["tests"].append({"nodeid": "t.py::odd|pipe", "outcome": "failed"})
    idle = results["matrices"][0]["cells"][0].copy()
    idle["id"], idle["tests"], idle["status"] = "py3.10-x9.9.9", [], "unavailable"
    idle["cause"] = {"category": "install", "reason": "no wheel"}
    results["matrices"][0]["cells"].append(idle)
    page = html_report(results)
    assert page.count("<td class=") == 3 * 36
    assert "<details><summary>84 tests pass in every cell that ran</summary>" in page
    assert "<code>t.py::same83</code>" in page
    assert "1 cell ran no test" in page and "py3.10-x9.9.9</code> — unavailable: no wheel" in page
    assert "1.0.0, 1.1.0 … 1.34.0 (" in page  # the compatible versions, cut
    old = 36 * 87 * 150  # the unfolded page's squares alone, at their usual size
    assert len(page) < old / 4


def test_publish_writes_reports_and_badges(tmp_path: Path) -> None:
    snippets = publish(
        results_fixture(), tmp_path / "out", {"m": {"x": None, "python": 2}}, {}, tmp_path
    )
    assert (tmp_path / "out" / "report.md").exists() and (tmp_path / "out" / "report.html").exists()
    endpoint = json.loads((tmp_path / "out" / "badges" / "m-x.json").read_text())
    assert set(endpoint) == {"schemaVersion", "label", "message", "color"}
    assert endpoint == {
        "schemaVersion": 1,
        "label": "x",
        "message": "1.0.0 – 1.1.0",
        "color": "brightgreen",
    }
    assert snippets[0] == "![x: 1.0.0 – 1.1.0](out/badges/m-x.svg)"


def test_badges_go_where_the_project_commits_them(tmp_path: Path) -> None:
    """Issue 32, item 6: the printed Markdown pointed into .dfvc/badges/, which the tool's
    own .gitignore ignores: the README's images broke once committed."""
    snippets = publish(
        results_fixture(),
        tmp_path / ".dfvc",
        {"m": {"x": None, "python": 2}},
        {},
        tmp_path,
        badges=tmp_path / "docs" / "badges",
    )
    assert (tmp_path / "docs" / "badges" / "m-x.svg").exists()
    assert not (tmp_path / ".dfvc" / "badges").exists()
    assert snippets[0] == "![x: 1.0.0 – 1.1.0](docs/badges/m-x.svg)"


def test_suggestions_against_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\nrequires-python = ">=3.8"\ndependencies = ["numpy>=1.17", "pandas"]\n'
        'classifiers = ["Programming Language :: Python :: 3.9", "Programming Language :: Python :: 3.10"]\n'
    )
    declared = declared_in_pyproject(tmp_path)
    assert declared.specifiers == {"python": ">=3.8", "numpy": ">=1.17", "pandas": ""}
    assert declared.classifiers == ["3.9", "3.10"]
    numpy = entry(
        ["1.19.5", "1.20.3", "1.23.5"],
        ["1.21.6", "1.24.4"],
        ">=1.19,!=1.21.*,<1.24",
        upgrade_boundary="1.24.4",
    )
    notes = compare("numpy", numpy, declared.specifiers["numpy"])
    assert "declares numpy>=1.17 but fails on 1.21.6, 1.24.4" in notes
    assert "declares numpy>=1.17 but nothing below 1.19.5 was tested" in notes
    assert "declares numpy with no upper bound but fails from 1.24.4 on" in notes
    matrix = {"ranges": {"numpy": numpy, "python": entry(["3.10", "3.11"], ["3.9"], ">=3.10")}}
    lines = suggestions(cast(MatrixJSON, matrix), declared)
    assert lines[0] == "numpy>=1.19,!=1.21.*,<1.24"
    assert 'requires-python = ">=3.10"' in lines
    assert "    declares requires-python>=3.8 but fails on 3.9" in lines
    assert classifier_notes(cast(MatrixJSON, matrix), declared.classifiers) == [
        "classifiers name Python 3.9, which failed",
        "Python 3.11 passed but has no classifier",
    ]


def test_write_badges_names_files_by_matrix_and_axis(tmp_path: Path) -> None:
    write_badges(results_fixture(), tmp_path / "badges", {}, tmp_path)
    assert sorted(p.name for p in (tmp_path / "badges").iterdir()) == [
        "m-python.json",
        "m-python.svg",
        "m-x.json",
        "m-x.svg",
    ]


def test_html_report_renders_in_a_real_browser(tmp_path: Path) -> None:
    """Headless Chromium (Debian's package) loads the page and draws it; skipped where it is
    not installed. The screenshot in docs/ was taken the same way."""
    import shutil
    import subprocess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = tmp_path / "report.html"
    page.write_text(html_report(results_fixture(200)))
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,800",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert shot.exists() and shot.stat().st_size > 5000
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.stdout.count("<td class=") == 400


def test_a_declared_open_bound_is_not_called_consistent_when_nothing_above_ran() -> None:
    """``versions = ">=1.0,<1.3"`` with 1.3-1.5 on the index: the range stops at 1.2, and
    ``ff>=1.0`` admits releases nobody ran (issue 34, item 4)."""
    ff = entry(["1.0", "1.2"], [], ">=1.0,<=1.2")
    notes = compare("ff", ff, ">=1.0")
    assert notes == ["declares ff>=1.0, which admits versions above 1.2 that were not tested"]
    python = entry(["3.11"], [], ">=3.11,<3.12")
    lines = suggestions(cast(MatrixJSON, {"ranges": {"python": python}}), Declared())
    assert lines[0] == 'requires-python = ">=3.11"'
    assert "Python 3.12 and newer: no test passed there" in lines[1]


def test_the_html_heading_counts_every_cell_as_the_terminal_does() -> None:
    """Issue 32, item 5: report.html said 9 cells where the terminal and report.md said 12
    (it counted the cells that ran tests)."""
    results = results_fixture()
    cells = results["matrices"][0]["cells"]
    cells.append(
        cast(
            CellJSON,
            {
                **cells[0],
                "id": "py3.10-x9.0.0",
                "status": "unavailable",
                "tests": [],
                "cause": {"category": "install", "reason": "no wheel"},
            },
        )
    )
    page = html_report(results)
    assert "Matrix m (4 cells, 3 ran tests)</h2>" in page
    assert "## Matrix `m` (4 cells)" in markdown(results, {})


def test_suggestions_read_what_setup_py_declares(tmp_path: Path) -> None:
    """Issue 32, item 3: "numpy is not declared in pyproject.toml" for a project that
    declares it in setup.py."""
    (tmp_path / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='p', install_requires=['numpy>=1.17'], python_requires='>=3.8')\n"
    )
    declared = declared_in_pyproject(tmp_path)
    assert declared.specifiers == {"numpy": ">=1.17", "python": ">=3.8"}
    assert declared.source == "setup.py"
    numpy = entry(["1.19.5"], [], ">=1.19")
    scipy = entry(["1.5.0"], [], ">=1.5")
    matrix = {"ranges": {"numpy": numpy, "scipy": scipy}}
    lines = suggestions(cast(MatrixJSON, matrix), declared)
    assert not any("numpy is not declared" in line for line in lines)
    assert "    scipy is not declared in setup.py" in lines

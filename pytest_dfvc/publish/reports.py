"""Files a run leaves for people: report.md (fits GitHub's job summary), report.html (one
self-contained heat map), and the badges."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..files import write_text_atomic
from ..index.interpreters import python_minor
from ..model import CellJSON, Document, MatrixJSON, OutcomeJSON
from ..verdicts.changes import change_lines
from ..verdicts.deprecations import risk_lines
from ..verdicts.tracing import trace_text
from .badges import write_badges
from .terminal import (
    Folded,
    apart_because,
    cell_reason,
    cell_status,
    fold,
    render_causes,
    render_declared,
    render_drift,
    render_flaky,
    square,
    versions_text,
)

MD_SYMBOLS = {
    "passed": "✅",
    "failed": "❌",
    "error": "💥",
    "skipped": "⏭️",
    "unavailable": "➖",
    "flaky": "🔁",
    "other-package": "🔀",
}


def publish(
    results: Document,
    out: Path,
    widths: dict[str, dict[str, int | None]],
    suggestions: dict[str, list[str]],
    base: Path,
    badges: Path | None = None,
) -> list[str]:
    """Write the reports (in ``out``) and badges (in ``badges``, default ``<out>/badges``);
    returns the Markdown badge lines to show the user."""
    write_text_atomic(out / "report.md", markdown(results, suggestions))
    write_text_atomic(out / "report.html", html_report(results))
    return write_badges(results, badges or out / "badges", widths, base)


def _cell_text(text: str) -> str:
    """A table cell's text: a ``|`` (a parametrized test's id) would end the cell."""
    return text.replace("|", "\\|")


def markdown(results: Document, suggestions: dict[str, list[str]]) -> str:
    lines = ["# pytest-dfvc report", ""]
    for matrix in results["matrices"]:
        every = matrix["cells"]
        table = fold(every)  # folded as the terminal's report
        cells = table.cells
        lines += [f"## Matrix `{matrix['name']}` ({len(every)} cells)", ""]
        lines += ["| test | " + " | ".join(str(i + 1) for i in range(len(cells))) + " |"]
        lines += ["|---|" + "---|" * len(cells)]
        for nodeid in table.rows:
            row = [MD_SYMBOLS.get(square(cell, nodeid)[0], " ") for cell in cells]
            lines.append(f"| `{_cell_text(nodeid)}` | " + " | ".join(row) + " |")
        for outcome, names in table.same.items():
            verb = "passed" if outcome == "passed" else "were skipped"
            lines += [
                "",
                f"{len(names)} test{'s' if len(names) != 1 else ''} {verb} in every cell that ran.",
            ]
        lines += ["", "<details><summary>Cells</summary>", ""]
        lines += [f"{i + 1}. `{c['id']}` — {cell_status(c)}" for i, c in enumerate(cells)]
        lines += [f"- `{c['id']}` — {cell_status(c)}" for c in table.hidden]
        lines += ["", "</details>", "", "### Compatible ranges", ""]
        for axis, entry in matrix.get("ranges", {}).items():
            spec = entry["specifier"] or "none among the versions tested"
            lines.append(
                f"- **{axis}**: `{spec}` — passes {versions_text(entry['compatible']) or 'nothing'}"
            )
            if entry["incompatible"]:
                lines.append(f"  - fails: {versions_text(entry['incompatible'])}")
            between = entry.get("upgrade_between")
            if between:
                low, high = between
                lines.append(f"  - upgrade boundary between {low} and {high} (untested in between)")
            if entry.get("upgrade_boundary") or entry.get("downgrade_boundary"):
                lines.append(
                    f"  - boundaries: upgrade {entry.get('upgrade_boundary') or '—'}, "
                    f"downgrade {entry.get('downgrade_boundary') or '—'}"
                )
            if entry.get("untested"):
                lines.append(f"  - untested: {versions_text(entry['untested'])}")
        if matrix.get("not_version_related"):
            because = apart_because(matrix.get("causes", []))
            lines += [
                "",
                "Fails on every version, not version-related (the same failure everywhere, for a "
                "cause no version explains; left out of the ranges): "
                + ", ".join(
                    f"`{n}`" + (f" (because of {because[n]})" if n in because else "")
                    for n in matrix["not_version_related"]
                ),
            ]
        for title, body in (
            ("Since the last run", change_lines(matrix.get("since_last_run"))),
            ("Why cells are red", render_causes(matrix.get("causes", []))),
            ("Flaky", render_flaky(matrix["cells"])),
            ("Declared ranges", render_declared(matrix)),
            ("Behaviour drift", render_drift(matrix.get("drift", []))),
            ("Upgrade risks", risk_lines(matrix.get("risks", []))),
            ("Suggested specifiers", suggestions.get(matrix["name"], [])),
        ):
            if body:
                lines += ["", f"### {title}", "", "```", *[b.rstrip() for b in body], "```"]
        lines.append("")
    return "\n".join(lines) + "\n"


_CSS = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
.filters{margin:.8em 0;display:flex;gap:1em;flex-wrap:wrap}
.filters label{font-size:.9em}
.wrap{overflow:auto;max-height:75vh;border:1px solid #ddd}
table.heat{border-collapse:collapse;font-size:12px}
.heat th.test{position:sticky;left:0;background:#fff;text-align:left;padding:2px 8px;
  white-space:nowrap;font-weight:normal;font-family:monospace;z-index:1}
.heat thead th{position:sticky;top:0;background:#fff;z-index:2}
.heat th.cell{width:16px;vertical-align:bottom;padding:0 0 4px 0}
.heat th.cell div{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;
  font-family:monospace;font-weight:normal;font-size:11px;margin:0 auto}
.heat td{width:16px;height:16px;border:1px solid #fff;cursor:pointer;padding:0}
td.passed{background:#4c1}td.failed{background:#e05d44}td.error{background:#8b0000}
td.skipped{background:#ccc}td.flaky{background:#f0c000}td.other-package{background:#2a9df4}td.unavailable{background:#eee;
  background-image:repeating-linear-gradient(45deg,#ddd 0 3px,#f6f6f6 3px 6px)}
td.none{background:#fff}
td.dim{opacity:.15}
[id$=-detail]{margin-top:1em;padding:.6em;border:1px solid #ccc;background:#fafafa;
  white-space:pre-wrap;font-family:monospace;min-height:2em}
table.ranges{border-collapse:collapse;margin-top:.5em}
table.ranges td,table.ranges th{border:1px solid #ddd;padding:3px 8px;text-align:left}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
"""

_JS = """
function applyFilters(id){
  const root=document.getElementById(id);
  const sel=[...root.querySelectorAll('select')];
  const want={};sel.forEach(s=>{if(s.value)want[s.dataset.axis]=s.value});
  root.querySelectorAll('[data-cell]').forEach(el=>{
    const v=JSON.parse(el.closest('table').dataset.values)[el.dataset.cell];
    let show=true;
    for(const k in want){if(k!=='cause'&&v[k]!==want[k])show=false}
    el.style.display=show?'':'none';
    if(el.tagName==='TD'){el.classList.toggle('dim',!!want.cause&&el.dataset.cause!==want.cause)}
  });
}
function detail(el){
  document.getElementById(el.closest('section').id+'-detail').textContent=el.title;
}
"""


def html_report(results: Document) -> str:
    """One self-contained page: no CDN, no external file."""
    sections = [_matrix_section(i, m) for i, m in enumerate(results["matrices"])]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<title>pytest-dfvc report</title>"
        f"<style>{_CSS}</style><script>{_JS}</script></head><body>"
        "<h1>pytest-dfvc report</h1>"
        "<p class='legend'>cells:<span style='background:#4c1'></span>passed"
        "<span style='background:#e05d44'></span>failed<span style='background:#8b0000'></span>error"
        "<span style='background:#ccc'></span>skipped<span style='background:#f0c000'></span>flaky<span style='background:#2a9df4'></span>broken by another package"
        "<span style='background:#eee'></span>not installable"
        " — hover or click a square for its cause</p>" + "".join(sections) + "</body></html>\n"
    )


def _folded(table: Folded) -> str:
    """The tests with one outcome in every cell, and the cells that ran none, behind a click."""
    parts = []
    for outcome, names in table.same.items():
        one = len(names) == 1
        count = f"{len(names)} test{'' if one else 's'}"
        verb = {
            "passed": "passes" if one else "pass",
            "skipped": "is skipped" if one else "are skipped",
        }[outcome]
        items = "".join(f"<li><code>{html.escape(n)}</code></li>" for n in names)
        parts.append(
            f"<details><summary>{count} {verb} in every cell that ran</summary><ul>{items}</ul></details>"
        )
    if table.hidden:
        items = "".join(
            f"<li><code>{html.escape(c['id'])}</code> — {html.escape(cell_status(c))}"
            f"{': ' + html.escape(cell_reason(c)) if c['cause'] else ''}</li>"
            for c in table.hidden
        )
        idle = len(table.hidden)
        parts.append(
            f"<details><summary>{idle} cell{'s' if idle != 1 else ''} ran no test</summary>"
            f"<ul>{items}</ul></details>"
        )
    return "".join(parts)


def _versions(values: list[str]) -> str:
    """A long list cut as in the terminal, the whole of it on hover."""
    return f"<span title='{html.escape(', '.join(values))}'>{html.escape(versions_text(values))}</span>"


def _describe(cell: CellJSON, test: OutcomeJSON | None, nodeid: str) -> str:
    if test is None:
        said = cell["cause"].get("reason") if cell["cause"] else None
        return f"{cell['id']} · {nodeid}\n{cell['status']}: {said or 'not run'}"
    text = f"{cell['id']} · {nodeid}\n{test['outcome']}"
    cause = test.get("cause")
    if cause:
        parts = [
            cause.get("category"),
            cause.get("api"),
            cause.get("exception"),
            cause.get("message"),
            cause.get("location"),
        ]
        text += " — " + " — ".join(str(p) for p in parts if p)
        trace = cause.get("trace")
        if trace and trace.get("api"):
            # The first differing call of the boundary's trace cells.
            text += (
                f"\n{trace['api']}: {trace_text(trace)}: {trace.get('was')} on "
                f"{trace['passing']}, {trace.get('now')} here"
            )
        culprit, through = cause.get("culprit"), cause.get("through")
        if culprit:
            held = ", ".join(
                f"{n} {v['passing']} instead of {v['failing']}"
                for n, v in culprit["packages"].items()
            )
            text += f"\npasses with {held} (counterfactual cell {culprit['cell']})"
        if through:
            text += f"\nincompatible through {', '.join(through['packages'])}: {through['reason']}"
    elif test.get("reason"):
        text += f" — {test['reason']}"
    return text


def _counted(matrix: MatrixJSON, shown: list[CellJSON]) -> str:
    """Every cell of the matrix, as the terminal and report.md count them, and how many
    the heat map shows (those that ran tests)."""
    total = len(matrix["cells"])
    ran = "" if len(shown) == total else f", {len(shown)} ran tests"
    return f"{total} cell{'s' if total != 1 else ''}{ran}"


def _matrix_section(index: int, matrix: MatrixJSON) -> str:
    """Folded as the terminal and report.md are: columns for the cells that ran tests,
    rows for the tests that differ somewhere; the rest one click away."""
    sid = f"m{index}"
    table = fold(matrix["cells"])
    cells = table.cells
    values = {c["id"]: {**c["packages"], "python": python_minor(c["python"])} for c in cells}
    axes: dict[str, list[str]] = {}
    for v in values.values():
        for k, x in v.items():
            if x not in axes.setdefault(k, []):
                axes[k].append(x)
    categories = sorted(
        {t["cause"]["category"] for c in cells for t in c["tests"] if "cause" in t}
        | {cause["category"] for c in cells if (cause := c["cause"])}
    )
    filters = "".join(
        f"<label>{html.escape(k)} <select data-axis='{html.escape(k)}' onchange=\"applyFilters('{sid}')\">"
        "<option value=''>all</option>"
        + "".join(f"<option>{html.escape(x)}</option>" for x in vs)
        + "</select></label>"
        for k, vs in axes.items()
    )
    filters += (
        f"<label>cause <select data-axis='cause' onchange=\"applyFilters('{sid}')\"><option value=''>all</option>"
        + "".join(f"<option>{html.escape(c)}</option>" for c in categories)
        + "</select></label>"
    )
    head = "".join(
        f"<th class='cell' data-cell='{html.escape(c['id'])}' title='{html.escape(c['id'] + ': ' + cell_status(c))}'>"
        f"<div>{html.escape(c['id'])}</div></th>"
        for c in cells
    )
    rows = []
    for nodeid in table.rows or ([] if table.same else ["(no tests ran)"]):
        tds = []
        for cell in cells:
            outcome, test = square(cell, nodeid)
            outcome = outcome or "none"
            cause = test.get("cause") if test is not None else cell["cause"]
            tds.append(
                f"<td class='{outcome}' data-cell='{html.escape(cell['id'])}' "
                f"data-cause='{html.escape(cause['category'] if cause else '')}' "
                f"title='{html.escape(_describe(cell, test, nodeid))}' onclick='detail(this)'></td>"
            )
        rows.append(f"<tr><th class='test'>{html.escape(nodeid)}</th>{''.join(tds)}</tr>")
    ranges = "".join(
        f"<tr><td>{html.escape(axis)}</td><td><code>{html.escape(str(e['specifier']))}</code></td>"
        f"<td>{_versions(e['compatible'])}</td><td>{_versions(e['incompatible'])}</td>"
        f"<td>{html.escape(str(e.get('upgrade_boundary') or ''))}</td>"
        f"<td>{html.escape(str(e.get('downgrade_boundary') or ''))}</td></tr>"
        for axis, e in matrix.get("ranges", {}).items()
    )
    return (
        f"<section id='{sid}'><h2>Matrix {html.escape(matrix['name'])} ({_counted(matrix, cells)})</h2>"
        f"<div class='filters'>{filters}</div>"
        f"<div class='wrap'><table class='heat' data-values='{html.escape(json.dumps(values))}'>"
        f"<thead><tr><th class='test'>test</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        f"<div id='{sid}-detail'>click a square</div>{_folded(table)}"
        "<h2>Compatible ranges</h2><table class='ranges'><tr><th>axis</th><th>specifier</th>"
        "<th>passes</th><th>fails</th><th>upgrade boundary</th><th>downgrade boundary</th></tr>"
        f"{ranges}</table></section>"
    )

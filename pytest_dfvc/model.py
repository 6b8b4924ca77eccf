"""The results document's types (schema 1, docs/reference/results.md): what a cell, a test,
a cause, a range and a matrix hold once a cell has run.

They are TypedDicts: the document is JSON, written and read as plain dicts (by us, by shards
from other machines, by users' scripts), so the types describe it without a conversion
step. A key a reader does not know is kept and ignored, as the schema promises. Each
optional key is in the ``total=False`` half of its type.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Optional, TypedDict

from .vocabulary import OUTCOMES, STATUSES, Outcome, Status

# True passed, False failed, None: told nothing (skipped, or not run).
Verdict = Optional[bool]  # a runtime alias: "bool | None" needs Python 3.10

SCHEMA = 1

# Values a test recorded with dfvc_record, by key: whatever JSON the test gave (numbers,
# strings, array summaries), compared across cells for drift.
Recorded = dict[str, Any]


# A cell ran its tests to a verdict: these statuses (the others ran none, or none to its end).
RAN = ("passed", "failed")


def verdict_of(outcome: str | None) -> Verdict:
    """The one reading of an outcome (or a cell's status) as evidence. A test another
    package broke passed with it set back: a passing run of the axis's version."""
    if outcome in ("failed", "error"):
        return False
    return True if outcome in ("passed", "other-package") else None


def failing(outcome: str | None) -> bool:
    return verdict_of(outcome) is False


def combined(outcomes: Iterable[str]) -> Verdict:
    """Several tests' outcomes as one verdict: False when one failed, True when none did and
    one passed, None when none ran to a verdict."""
    verdicts = {verdict_of(o) for o in outcomes}
    if False in verdicts:
        return False
    return True if True in verdicts else None


class Precursor(TypedDict):
    """The warning that announced a failure, from the last passing version."""

    version: str
    category: str
    message: str
    location: str


class Culprit(TypedDict):
    """Which packages broke a test (their version in the failing cell, and in the passing
    environment), and the counterfactual cell that passed with them set back; ``verified``
    when a run with exactly these set back passed (else narrowed by elimination)."""

    packages: dict[str, dict[str, str]]
    cell: str
    verified: bool


class Through(TypedDict):
    """Incompatible through other packages: set back to where the test passed, they do not
    install beside the axis's version (their own requirements forbid it)."""

    packages: list[str]
    reason: str
    cell: str


class Companion(TypedDict):
    """A distribution the framework release under test requires at the major it has (Keras 3
    beside TensorFlow 2.16): a failure raised in it is the release's, not a third party's."""

    distribution: str
    version: str
    # ``tensorflow-cpu 2.16.2``, and what it asks for: ``keras>=3.0.0``.
    required_by: str
    requires: str


class TracedCall(TypedDict, total=False):
    """One call a trace cell's test made into a matrix package (``incell/recorder.py``'s
    ``CallTracer``): its public API, and digests of its arguments and result."""

    api: str
    args: str
    result: str
    shown: str
    # An object returned (``fit``'s estimator, ``clone``'s copy): a digest of each
    # attribute, and which of them hold settings (text, flags, None) rather than data.
    state: dict[str, str]
    settings: list[str]


class Trace(TypedDict, total=False):
    """What tracing one test on both sides of a boundary found (``verdicts/tracing.py``):
    the first call whose arguments agree and whose result differs (its API, its position
    among the failing side's calls, the results shown), how many such calls, and the cells
    traced. ``api`` is absent when no call differs."""

    api: str
    call: int
    calls: int
    differ: int
    passing: str
    was: str
    now: str
    cells: list[str]
    # Carried to a cell further along the line, where the test fails the same way: the
    # cell whose boundary was traced.
    at: str


class _CauseFields(TypedDict):
    # DESIGN.md's cause table; a project's own rules may add categories of their own.
    category: str


class _CauseDetails(TypedDict, total=False):
    """What a cause says beyond its category: kept by its group too."""

    reason: str
    exception: str
    message: str
    location: str
    api: str
    # A third party's failure: which distribution, at which version, and what to do.
    distribution: str
    version: str
    module: str
    suggestion: str
    precursor: Precursor
    linked_by: Literal["warning", "trace"]
    # A counterfactual run's finding (culprit.py): the packages that broke the test, with
    # the cell that passed with them set back; or the packages no installable version of
    # which works beside the axis's version.
    culprit: Culprit
    through: Through
    # Raised in a companion the framework release requires (``Companion``).
    companion: Companion
    # A silent break traced on both sides of its boundary (``Trace``).
    trace: Trace


class CauseJSON(_CauseFields, _CauseDetails, total=False):
    """Why a test failed (``exception``, ``message``, ``api``…) or why a cell could not run
    (``reason``)."""


class _WarningFields(TypedDict):
    category: str
    message: str
    location: str


class WarningJSON(_WarningFields, total=False):
    api: str
    announced: str


class _OutcomeFields(TypedDict):
    nodeid: str
    outcome: Outcome


class OutcomeJSON(_OutcomeFields, total=False):
    """One test's outcome in one cell (not named Test…: pytest would collect it)."""

    cause: CauseJSON
    reason: str
    duration: float
    records: Recorded
    warnings: list[WarningJSON]
    declared: dict[str, str]
    inside: bool
    collect_error: bool
    collect_skip: bool
    from_module: str
    # A flaky test's first run (its outcome and cause), and whether a failure was confirmed
    # by a second run.
    first_run: FirstRun
    confirmed: bool
    # A trace cell's test: its calls into the matrix packages, and how many were not kept.
    calls: list[TracedCall]
    calls_dropped: int


class FirstRun(TypedDict, total=False):
    outcome: Outcome
    cause: CauseJSON


class DeviceFacts(TypedDict, total=False):
    """The host's GPUs, for cells of a matrix with a CUDA axis."""

    device: Literal["gpu", "no device"]
    gpus: list[str]
    driver: str
    note: str


class _CellFields(TypedDict):
    id: str
    python: str
    packages: dict[str, str]
    cuda: str | None
    status: Status
    cause: CauseJSON | None
    resolved: dict[str, str]
    tests: list[OutcomeJSON]
    duration: float


class CellJSON(_CellFields, total=False):
    log: str
    # Where ``duration`` went: nox starting the session, the install, the tests.
    seconds: dict[str, float]
    exclude_newer: str
    build: str | None
    device: DeviceFacts
    note: str
    metadata_fallback: str
    set_apart: list[str]
    # The failing tests a boundary made the run try once more (each cell at most once).
    rerun: list[str]
    # A counterfactual cell: the packages it set back, and requirements of theirs the
    # axis's pinned version breaks (the pin overrides them).
    held: dict[str, str]
    conflicts: list[Conflict]
    # What the pinned releases require here (markers that do not apply left out).
    requires: dict[str, list[str]]
    # The counterfactual cells run for a boundary this cell is the failing side of.
    counterfactuals: list[Counterfactual]


class AuditJSON(TypedDict):
    """``--dfvc-audit``: the seed of the choice, the cells run again from scratch, and
    those that differed from what the run kept."""

    seed: int
    cells: list[str]
    differ: list[str]


class Conflict(TypedDict):
    package: str
    version: str
    requires: str
    installed: str


class _CounterfactualFields(TypedDict):
    id: str
    # The cell it stands for and the passing cell whose packages it set back.
    against: str
    held: dict[str, str]
    status: Status
    tests: dict[str, str]


class Counterfactual(_CounterfactualFields, total=False):
    reason: str
    resolved: dict[str, str]
    log: str


class Inferred(TypedDict):
    """An untested version's verdict, taken from the tested versions either side."""

    verdict: Literal["compatible", "incompatible"]
    between: list[str]


class _RangeFields(TypedDict):
    specifier: str | None
    compatible: list[str]
    incompatible: list[str]
    untested: list[str]


class RangeJSON(_RangeFields, total=False):
    """What the cells say about one axis, for the project or for one test."""

    unavailable: list[str]
    # The newest release on the index the day the plan listed it (package axes whose index
    # answered): an open upper bound means the newest pass was that release, as of then.
    newest_release: str
    as_of: str
    upgrade_boundary: str | None
    upgrade_between: list[str] | None
    downgrade_boundary: str | None
    not_run: list[str]
    inferred: dict[str, Inferred]
    tests: dict[str, RangeJSON]


class Violation(TypedDict):
    nodeid: str
    cell: str
    declared: dict[str, str]
    by: Literal["marker", "expect"]
    cause: CauseJSON | None


class DeclaredCheck(TypedDict):
    package: str
    declared: str
    observed: str | None
    also_passes: list[str]
    fails_inside: list[str]


class _GroupFields(TypedDict):
    category: str
    tests: list[str]
    cells: list[str]
    # Every axis's values the group shows up on, sorted.
    versions: dict[str, list[str]]


class CauseGroup(_GroupFields, _CauseDetails, total=False):
    """Failures of one meaning across cells ("why cells are red"): the details of the
    cause they share, every reason and source line they show up with."""

    reasons: list[str]
    locations: list[str]
    set_apart: bool
    # Each cell's companion as it had it: ``keras 3.6.0 (required by tensorflow-cpu 2.17.1)``.
    companions: list[str]


# "from" and "with" are keywords: the functional form names them.
DriftChange = TypedDict(
    "DriftChange",
    {"axis": str, "from": str, "to": str, "old": Any, "new": Any, "with": dict[str, str]},
)


class DriftEntry(TypedDict):
    nodeid: str
    key: str
    # The recorded value in each cell, by cell id.
    values: Recorded
    changes: list[DriftChange]


class _RiskFields(TypedDict):
    api: str
    category: str
    message: str
    axis: str | None
    seen_on: list[str]
    tests: list[str]
    cells: list[str]


class Risk(_RiskFields, total=False):
    """A deprecation met on the newest passing version: what may break next."""

    announced: str
    first_warned: str | None
    survived: bool


class Break(TypedDict):
    cell: str
    packages: dict[str, str]
    new_cell: bool
    tests: list[str]
    causes: list[str]


class Fixed(TypedDict):
    cell: str
    tests: list[str]


class Changes(TypedDict):
    """What changed since the last run of the matrix."""

    breaks: list[Break]
    fixed: list[Fixed]


class _MatrixFields(TypedDict):
    name: str
    cells: list[CellJSON]
    ranges: dict[str, RangeJSON]
    drift: list[DriftEntry]


class MatrixJSON(_MatrixFields, total=False):
    """One matrix of the document; a partial one (written after each cell) has only its
    name, cells, and empty ranges and drift."""

    path: str
    not_version_related: list[str]
    causes: list[CauseGroup]
    violations: list[Violation]
    declared: list[DeclaredCheck]
    risks: list[Risk]
    since_last_run: Changes
    audit: AuditJSON


class _DocumentFields(TypedDict):
    schema: int
    matrices: list[MatrixJSON]


class Document(_DocumentFields, total=False):
    # False while a run is under way: its ranges are not computed yet.
    complete: bool
    # Read back from a file: what was damaged there and left out (changes.read_previous).
    set_aside: list[str]


def cell_problem(data: object) -> str | None:
    """What is wrong with a cell read from a file this run did not write (a kept cache
    entry, the last run's results, a CI shard), or None: what the ranges, the reports and
    the merge read of a cell must be there, with the right types."""
    if not isinstance(data, dict):
        return "a cell is not an object"
    if not isinstance(data.get("id"), str) or not data["id"]:
        return "a cell has no id"
    checks = (
        (data.get("status") in STATUSES, f"status {data.get('status')!r} is not one of {STATUSES}"),
        (isinstance(data.get("python"), str), "no python"),
        (_strings(data.get("packages")), "no packages"),
        (isinstance(data.get("tests"), list), "no tests list"),
        (
            data.get("cause") is None or isinstance(data.get("cause"), dict),
            "a cause that is no object",
        ),
    )
    for ok, problem in checks:
        if not ok:
            return f"cell {data['id']}: {problem}"
    for test in data["tests"]:
        if not isinstance(test, dict) or not isinstance(test.get("nodeid"), str):
            return f"cell {data['id']}: a test without a nodeid"
        if test.get("outcome") not in OUTCOMES:
            return f"cell {data['id']}: test {test['nodeid']}: outcome {test.get('outcome')!r}"
    return None


def _strings(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def copy_cells(cells: list[CellJSON]) -> list[CellJSON]:
    """Copies of cells and their tests, for the judgements that rewrite them in place
    (``evidence.settle``) made on the side."""
    copies = []
    for cell in cells:
        copy = cell.copy()
        copy["tests"] = [t.copy() for t in cell["tests"]]
        copies.append(copy)
    return copies


@dataclass(frozen=True)
class Cause:
    """Why a cell or test is red: a category of DESIGN.md's table and a readable reason."""

    category: str
    reason: str

    def to_json(self) -> CauseJSON:
        return {"category": self.category, "reason": self.reason}

"""Which cells to run next: all of them (grid), the study's walk from a baseline, or a binary
search of the boundaries (bisect).

Strategies are pure functions of what is known so far. A *line* is the cells that differ only
in one package's version, sorted by it; for each line and each test, a strategy proposes the
indices to run next from the verdicts found so far (True passed, False failed; a cell that ran
but told nothing, such as one that could not be installed, is done without a verdict).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from packaging.version import Version

from ..vocabulary import Strategy


@dataclass(frozen=True)
class Line:
    """Cells (by id) along one package axis, the other axes held fixed."""

    axis: str
    cells: tuple[str, ...]
    baseline: int | None = None


# At most this many probes in one gap at once: with more, a search over a long history
# runs more cells than the 2*ceil(log2 n) + 2 a binary search needs.
MAX_WAYS = 3


def _between(low: int, high: int, done: set[int]) -> int | None:
    """The not-yet-run index strictly between ``low`` and ``high`` nearest their middle."""
    spread = _spread(low, high, done, 1)
    return spread[0] if spread else None


def _spread(low: int, high: int, done: set[int], ways: int) -> list[int]:
    """``ways`` not-yet-run indices strictly between ``low`` and ``high`` that cut the gap
    into equal parts (a k-ary search: k cells run at once narrow the gap k+1 times)."""
    candidates = [i for i in range(low + 1, high) if i not in done]
    if len(candidates) <= ways:
        return candidates
    chosen: list[int] = []
    for j in range(1, ways + 1):
        target = low + (high - low) * j / (ways + 1)
        free = [i for i in candidates if i not in chosen]
        chosen.append(min(free, key=lambda i: (abs(i - target), i)))
    return sorted(chosen)


def bisect_probes(
    n: int,
    verdicts: Mapping[int, bool],
    done: set[int],
    baseline: int | None = None,
    pending: frozenset[int] | set[int] = frozenset(),
    ways: int = 1,
) -> set[int]:
    """Next indices for one test on a line of ``n`` versions, assuming compatibility is
    monotone between tested points and checking it at the boundaries.

    With one boundary this runs the two ends, then cuts the gap into ``ways + 1`` parts
    with ``ways`` cells at once: at most ⌈log2 n⌉ + 2 cells one at a time. A failure
    between two passes (a hole) is refined on both sides. ``pending`` are indices running
    now: a gap holding one waits for its answer instead of probing it again. A cell done
    without a verdict (found not installable when installed) is stepped over: the search
    goes on between the last verdict and it. A test that has passed nowhere yet is searched
    on until it passes somewhere or every version ran: failing alike at a few versions is
    no evidence that a test is not version-related.
    """
    if n == 0:
        return set()
    ways = max(1, min(ways, MAX_WAYS))
    anchors = {0, n - 1} | ({baseline} if baseline is not None else set())
    todo = {i for i in anchors if i not in done and i not in pending}
    if todo or anchors & set(pending):
        return todo
    seen = done | set(pending)

    def probe(low: int, high: int) -> list[int]:
        if any(low < p < high for p in pending):
            return []
        return _spread(low, high, seen, ways)

    passing = sorted(i for i, ok in verdicts.items() if ok)
    if not passing:
        return set(_unsearched(n, seen, pending))
    probes: list[int] = []
    failing = sorted(i for i, ok in verdicts.items() if not ok)
    silent = [i for i in done if i not in verdicts]
    top, bottom = passing[-1], passing[0]
    # Above the newest pass: up to the first failure, or else up to a cell that told
    # nothing (the newest installable release lies below it); below the oldest likewise.
    above = [i for i in failing if i > top] or [
        i for i in silent if i > top and _untried(top, i, seen)
    ]
    if above:
        probes += probe(top, min(above))
    below = [i for i in failing if i < bottom] or [
        i for i in silent if i < bottom and _untried(i, bottom, seen)
    ]
    if below:
        probes += probe(max(below), bottom)
    for hole in (i for i in failing if bottom < i < top):
        left = max(i for i in passing if i < hole)
        right = min(i for i in passing if i > hole)
        probes += probe(left, hole) + probe(hole, right)
    return set(probes)


def _untried(low: int, high: int, seen: set[int]) -> bool:
    return any(i not in seen for i in range(low + 1, high))


def _unsearched(n: int, seen: set[int], pending: frozenset[int] | set[int]) -> list[int]:
    """The middle of every stretch of versions not yet run, for a test that has passed
    nowhere so far: until it passes somewhere or every version ran, nothing shows that it
    is not version-related."""
    if pending:
        return []
    marks = sorted(seen | {-1, n})
    return [m for a, b in zip(marks, marks[1:]) for m in _spread(a, b, seen, 1)]


def walk_probes(
    n: int, verdicts: Mapping[int, bool], done: set[int], baseline: int | None = None
) -> set[int]:
    """The study's method for one test: from the baseline (default: the newest version), step
    up release by release until the first failure, and down likewise."""
    if n == 0:
        return set()
    start = n - 1 if baseline is None else baseline
    if start not in done:
        return {start}
    probes = set()
    for direction in (1, -1):
        i = start + direction
        while 0 <= i < n:
            if i not in done:
                probes.add(i)
                break
            if verdicts.get(i) is False:
                break
            i += direction
    return probes


def next_cells(
    strategy: Strategy,
    lines: Sequence[Line],
    outcomes: Mapping[str, Mapping[str, bool | None]],
    runnable: Iterable[str],
    running: Iterable[str] = (),
    ways: int = 1,
) -> set[str]:
    """Cell ids to run next. ``outcomes`` maps every finished cell to its tests' verdicts
    (an empty map when it told nothing); ``runnable`` are the cells that may run;
    ``running`` those started and not finished; ``ways`` how many cells bisect may probe in
    one gap at once (the job slots)."""
    allowed = set(runnable)
    busy = set(running)
    if strategy == "grid":
        return allowed - set(outcomes) - busy
    wanted: set[str] = set()
    for line in lines:
        index = {cell: i for i, cell in enumerate(line.cells)}
        done = {index[c] for c in line.cells if c in outcomes or c not in allowed}
        pending = {index[c] for c in line.cells if c in busy}
        if strategy == "bisect":
            if pending:
                # Rounds: a line's probes all finish before the next ones are chosen, so the
                # cells run do not depend on which finished first, and a warm re-run (whose
                # answers come at once) follows the same path and reuses every cell.
                continue
            for verdicts in _per_test(line, outcomes, index):
                found = bisect_probes(len(line.cells), verdicts, done, line.baseline, pending, ways)
                wanted |= {line.cells[i] for i in found}
        else:
            verdicts = _regressions(line, outcomes, index)
            found = walk_probes(len(line.cells), verdicts, done, line.baseline)
            if not found and not pending and _passed_nowhere(line, outcomes):
                # A test failing wherever the walk went may pass beyond its boundaries.
                found = set(_unsearched(len(line.cells), done, pending))
            wanted |= {line.cells[i] for i in found}
    return (wanted & allowed) - set(outcomes) - busy


def _per_test(
    line: Line, outcomes: Mapping[str, Mapping[str, bool | None]], index: Mapping[str, int]
) -> list[dict[int, bool]]:
    """Bisect searches every test's own boundaries: one verdict map per test."""
    tests = sorted({t for c in line.cells if c in outcomes for t in outcomes[c]})
    maps = []
    for test in tests:
        verdicts = {}
        for cell in line.cells:
            verdict = outcomes.get(cell, {}).get(test)
            if verdict is not None:
                verdicts[index[cell]] = verdict
        maps.append(verdicts)
    return maps or [{}]


def _passed_nowhere(line: Line, outcomes: Mapping[str, Mapping[str, bool | None]]) -> bool:
    """Whether some test failed on this line and passed on none of its versions yet."""
    ran = [outcomes[c] for c in line.cells if c in outcomes]
    failed = {t for o in ran for t, ok in o.items() if ok is False}
    passed = {t for o in ran for t, ok in o.items() if ok}
    return bool(failed - passed)


def _regressions(
    line: Line, outcomes: Mapping[str, Mapping[str, bool | None]], index: Mapping[str, int]
) -> dict[int, bool]:
    """The walk's verdict: a version fails when a test that passed at the baseline fails
    there. Tests already failing at the baseline (stale ones) do not stop the walk."""
    start = line.cells[len(line.cells) - 1 if line.baseline is None else line.baseline]
    tracked = [t for t, ok in outcomes.get(start, {}).items() if ok]
    verdicts = {}
    for cell in line.cells:
        if cell in outcomes and (outcomes[cell] or cell == start):
            verdicts[index[cell]] = not any(outcomes[cell].get(t) is False for t in tracked)
    return verdicts


def build_lines(
    cells: Sequence[tuple[str, Mapping[str, str]]],
    axes: Sequence[str],
    baselines: Mapping[str, str | None],
) -> list[Line]:
    """The lines of a matrix: for each package axis, the cells sharing every other value."""
    lines = []
    for axis in axes:
        groups: dict[tuple[tuple[str, str], ...], list[tuple[Version, str]]] = {}
        for cell_id, values in cells:
            others = tuple(sorted((k, v) for k, v in values.items() if k != axis))
            groups.setdefault(others, []).append((Version(values[axis]), cell_id))
        for members in groups.values():
            members.sort()
            versions = [v for v, _ in members]
            baseline = baselines.get(axis)
            index = None
            if baseline is not None:
                wanted = Version(baseline)
                # The baseline, or the newest version below it when it is not in the matrix.
                below = [i for i, v in enumerate(versions) if v <= wanted]
                index = below[-1] if below else 0
            lines.append(Line(axis=axis, cells=tuple(c for _, c in members), baseline=index))
    return lines

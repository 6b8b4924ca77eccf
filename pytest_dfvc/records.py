"""The records a cell's recorder writes (``records.jsonl``, one JSON object per line): their
kinds, their type and how to read them. Shared by the cells, which read them to restart
after a crash, and the verdicts, which judge them: neither imports the other."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The kinds of lines in records.jsonl (the recorder writes them; its module cannot import
# this one, since it runs inside the cells on whatever Python they have).
KIND_ENV = "env"
KIND_START = "start"
KIND_TEST = "test"
KIND_FINISH = "finish"
KIND_WARNING = "warning"
KIND_VALUE = "value"
KIND_RULES = "rules"

# One line of records.jsonl as the recorder wrote it: its keys depend on its kind (see
# recorder.py); results.py turns them into the results document's types.
Record = dict[str, Any]


def read_records(path: Path) -> list[Record]:
    """The recorder's JSON lines; a line cut short by a crash is dropped."""
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def of_kind(records: Iterable[Record], kind: str) -> list[Record]:
    return [r for r in records if r.get("kind") == kind]


def finished(records: list[Record]) -> bool:
    return any(r.get("kind") == KIND_FINISH for r in records)


def crashed_test(records: list[Record]) -> str | None:
    """The test that was running when the process died: started, with no outcome."""
    started = [r["nodeid"] for r in of_kind(records, KIND_START)]
    done = {r["nodeid"] for r in of_kind(records, KIND_TEST)}
    return started[-1] if started and started[-1] not in done else None


def done_tests(records: list[Record]) -> list[str]:
    """The tests that have an outcome, sorted: a restart deselects them."""
    return sorted({r["nodeid"] for r in of_kind(records, KIND_TEST)})


def stopped_test(nodeid: str, error_type: str, message: str) -> Record:
    """A test record for a test the controller stopped (timeout) or saw die (crash)."""
    return {
        "kind": KIND_TEST,
        "nodeid": nodeid,
        "outcome": "error",
        "when": "call",
        "exception": {"type": error_type, "message": message, "frames": []},
    }


@dataclass
class CellRun:
    """What running a cell left, before anyone judges it: how far its session got (the
    ``phase`` file), the records, the exit status, the log. The cells produce it; the
    verdicts (``judge.py``) read it."""

    records: list[Record] = field(default_factory=list)
    # How far the session got: None (not started), "install" or "test" (phases.py).
    phase: str | None = None
    returncode: int = 0
    # The cell ran past its time limit (``timeout`` seconds) and was stopped.
    timed_out: bool = False
    timeout: float | None = None
    # The log's text, and where it is kept.
    output: str = ""
    log: str = ""
    duration: float = 0.0
    # Where the cell's time went (``cellrun.stage_seconds``): nox's start of the session,
    # the install, the tests.
    seconds: dict[str, float] = field(default_factory=dict)
    # How a release whose metadata uv refuses was installed (legacy.py), if one was.
    metadata_fallback: str | None = None
    # Why the cell could not even be prepared (its project's lock lacks a package): no
    # session ran.
    refused: str | None = None

"""One cell's folder, ``<out>/cells/<matrix>/<cell id>/``: which file holds what, who writes
it, and typed readers for the controller.

Three writers share it. The controller writes ``session.json`` (the session spec nox runs),
the uv inputs (``overrides.txt``, ``constraints.txt``, ``locked.txt``) and, after a crash,
``deselect.txt``; the nox session writes ``phase`` (how far it got) and ``bin`` (where the
environment's executables are); the in-cell recorder appends ``records.jsonl``. The log
(``log.txt``) takes everyone's output. Only this module knows the names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import legacy
from .phases import PHASE_TEST

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


@dataclass(frozen=True)
class CellDir:
    path: Path

    @property
    def records_file(self) -> Path:
        return self.path / "records.jsonl"

    @property
    def phase_file(self) -> Path:
        return self.path / "phase"

    @property
    def bin_file(self) -> Path:
        return self.path / "bin"

    @property
    def session_file(self) -> Path:
        return self.path / "session.json"

    @property
    def log_file(self) -> Path:
        return self.path / "log.txt"

    @property
    def deselect_file(self) -> Path:
        return self.path / "deselect.txt"

    @property
    def overrides_file(self) -> Path:
        return self.path / "overrides.txt"

    @property
    def constraints_file(self) -> Path:
        return self.path / "constraints.txt"

    @property
    def locked_file(self) -> Path:
        return self.path / "locked.txt"

    @property
    def editable_folder(self) -> Path:
        return self.path / "editable"

    @property
    def legacy_note_file(self) -> Path:
        return self.path / legacy.NOTE

    @property
    def legacy_scratch(self) -> Path:
        return self.path / "legacy"

    @property
    def legacy_excludes_file(self) -> Path:
        return self.path / "legacy-excludes.txt"

    def clear_run_files(self) -> None:
        """What the last run of the cell left: a new run must not read it as its own."""
        for stale in (
            self.records_file,
            self.phase_file,
            self.deselect_file,
            self.legacy_note_file,
        ):
            stale.unlink(missing_ok=True)

    def records(self) -> list[Record]:
        return read_records(self.records_file)

    def phase(self) -> str | None:
        return _read(self.phase_file)

    def bin_dir(self) -> str | None:
        return _read(self.bin_file)

    def legacy_note(self) -> str | None:
        return _read(self.legacy_note_file)

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def crashed_in_tests(self, records: list[Record]) -> bool:
        """The session reached the test run, and the test process died before its end."""
        return self.phase() == PHASE_TEST and not finished(records)

    def append_crash(self, nodeid: str, code: int) -> None:
        """Stand in for the outcome the recorder could not write: the test the process died
        in is an error, with how it died."""
        how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
        record = stopped_test(nodeid, "dfvc.Crash", f"the test process {how} during this test")
        # The crash may have cut the recorder's last line short: start a line of our own,
        # or the record would join the broken one and be dropped with it.
        with self.records_file.open("a+b") as f:
            cut = f.seek(0, 2) > 0 and f.seek(-1, 2) >= 0 and f.read(1) != b"\n"
            f.write((b"\n" if cut else b"") + json.dumps(record).encode() + b"\n")


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


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None

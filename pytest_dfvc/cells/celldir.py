"""One cell's folder, ``<out>/cells/<matrix>/<cell id>/``: which file holds what, who writes
it, and typed readers for the controller.

Three writers share it. The controller writes ``session.json`` (the session spec nox runs),
the uv inputs (``overrides.txt``, ``constraints.txt``, ``locked.txt``) and, after a crash,
``deselect.txt``; the nox session writes ``phase`` (how far it got), ``stages`` (when it
reached each phase) and ``bin`` (where the environment's executables are); the in-cell
recorder appends ``records.jsonl``. The log (``log.txt``) takes everyone's output. Only
this module knows the names.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..index import legacy
from ..phases import PHASE_TEST
from ..records import Record, finished, read_records, stopped_test


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
    def stages_file(self) -> Path:
        return self.path / "stages"

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
            self.stages_file,
            self.deselect_file,
            self.legacy_note_file,
        ):
            stale.unlink(missing_ok=True)

    def records(self) -> list[Record]:
        return read_records(self.records_file)

    def phase(self) -> str | None:
        return _read(self.phase_file)

    def stages(self) -> dict[str, float]:
        """When the session reached each of its stages (wall-clock seconds since the epoch:
        the session runs in another process). A line without a time is left out."""
        found: dict[str, float] = {}
        for line in (_read(self.stages_file) or "").splitlines():
            stage, _, when = line.partition(" ")
            try:
                found[stage] = float(when)
            except ValueError:
                continue
        return found

    def mark_stage(self, stage: str) -> None:
        """The session reached ``stage`` now: one short line appended, in one write."""
        with self.stages_file.open("a", encoding="utf-8") as f:
            f.write(f"{stage} {time.time():.6f}\n")

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


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None

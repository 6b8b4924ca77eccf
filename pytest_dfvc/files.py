"""Atomic file writes: a reader, or a crash, never sees half a file."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    # Read once: os.umask can only be read by setting it, which is not thread-safe later.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_text_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Write through a temporary file in the same folder and rename it into place, so a
    reader (or a crash) never sees half a file. The file gets the permissions any new file
    gets here (``0666`` less the umask), not the private ones of a temporary file.
    ``durable=False`` skips the flush to disk, for caches that can be fetched again: a
    matrix plan writes hundreds of them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Valid JSON only: a NaN or an infinity (which ``json`` would write as ``NaN``, and a
    browser's ``JSON.parse`` rejects) is written as the string "NaN", "Infinity" or
    "-Infinity"."""
    try:
        text = json.dumps(data, indent=2, allow_nan=False)
    except ValueError:
        text = json.dumps(_finite(data), indent=2, allow_nan=False)
    write_text_atomic(path, text + "\n")


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return "NaN" if math.isnan(data) else ("Infinity" if data > 0 else "-Infinity")
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data

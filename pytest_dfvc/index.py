"""Which releases of a package exist: the package index (PEP 691 JSON or PEP 503 HTML)
and local find-links folders."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

DEFAULT_INDEX = "https://pypi.org/simple"
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
_RETRIES = 3


class IndexUnavailable(Exception):
    """The index could not be read (after retries)."""


class ProjectNotFound(IndexUnavailable):
    """The index answered: it has no such project (HTTP 404, or no page on a local index)."""


@dataclass(frozen=True)
class Release:
    """One version of a package, whether every one of its files is yanked, and when its
    first file was uploaded (where the index says: PEP 700's ``upload-time``)."""

    version: Version
    yanked: bool
    uploaded: str | None = None


# File name -> (yanked, upload time or None).
Files = dict[str, tuple[bool, "str | None"]]


def list_releases(
    name: str,
    *,
    index_url: str | None = None,
    indexes: Sequence[str] = (),
    find_links: Sequence[str] = (),
    cache_dir: Path | None = None,
    max_age: float = 600.0,
) -> list[Release]:
    """All releases of ``name`` on the first of ``indexes`` that has it (uv's
    ``first-index`` rule; ``index_url``: that one index) and in find-links folders.

    With ``cache_dir``, the index's answer is kept for ``max_age`` seconds, so a warm re-run
    does not wait on the network; local folders are always read afresh.
    """
    files: Files = {}
    for link in find_links:
        files.update((f, (False, None)) for f in _folder_files(link))
    missing: ProjectNotFound | None = None
    for url in [index_url] if index_url is not None else indexes:
        try:
            found = _cached_index_files(name, url, cache_dir, max_age)
        except ProjectNotFound as exc:
            missing = missing or exc
            continue
        if _releases_from_files(name, found):
            files.update(found)
            break
    releases = _releases_from_files(name, files)
    if missing is not None and not releases:
        raise missing
    return releases


def _releases_from_files(name: str, files: Files) -> list[Release]:
    """Group file names into versions; a version is yanked only if all its files are, and
    was uploaded when its first file was."""
    wanted = canonicalize_name(name)
    yanked_by_version: dict[Version, bool] = {}
    uploaded: dict[Version, str] = {}
    for filename, (yanked, upload) in files.items():
        parsed = _parse_filename(filename)
        if parsed is None or parsed[0] != wanted:
            continue
        version = parsed[1]
        yanked_by_version[version] = yanked_by_version.get(version, True) and yanked
        if upload and (version not in uploaded or instant(upload) < instant(uploaded[version])):
            uploaded[version] = upload
    return [Release(v, y, uploaded.get(v)) for v, y in sorted(yanked_by_version.items())]


def instant(timestamp: str) -> datetime.datetime:
    """An RFC 3339 timestamp (``2020-01-10T12:00:00.123Z``) as an aware datetime, UTC when
    it names no zone."""
    moment = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def _parse_filename(filename: str) -> tuple[str, Version] | None:
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
            return name, version
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return name, version
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def _folder_files(link: str) -> list[str]:
    folder = Path(link[len("file://") :] if link.startswith("file://") else link)
    if not folder.is_dir():
        return []
    return [p.name for p in folder.iterdir() if p.is_file()]


def _cached_index_files(name: str, index_url: str, cache_dir: Path | None, max_age: float) -> Files:
    if cache_dir is None:
        return _index_files(name, index_url)
    key = hashlib.sha256(f"{index_url}\0{canonicalize_name(name)}".encode()).hexdigest()[:24]
    # -2: the entries hold upload times too; older ones are not read.
    path = cache_dir / f"{canonicalize_name(name)}-{key}-2.json"
    try:
        if time.time() - path.stat().st_mtime < max_age:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(cached, dict):
                return {
                    str(k): (bool(v[0]), str(v[1]) if v[1] else None) for k, v in cached.items()
                }
    except (OSError, ValueError, TypeError, IndexError, KeyError):
        pass  # missing or damaged: ask the index
    files = _index_files(name, index_url)
    _write_atomic(path, json.dumps(files))
    return files


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _index_files(name: str, index_url: str) -> Files:
    url = f"{index_url.rstrip('/')}/{canonicalize_name(name)}/"
    body, content_type = _fetch(url)
    if "json" in content_type:
        data = json.loads(body)
        return {
            f["filename"]: (bool(f.get("yanked")), f.get("upload-time") or None)
            for f in data.get("files", [])
        }
    parser = _AnchorParser()
    parser.feed(body.decode("utf-8", "replace"))
    return {f: (yanked, None) for f, yanked in parser.files.items()}


def _fetch(url: str) -> tuple[bytes, str]:
    """GET with a few retries: indexes drop connections under load."""
    if url.startswith("file://"):
        path = Path(url[len("file://") :])
        index_html = path / "index.html"
        if not index_html.exists():
            raise ProjectNotFound(f"{url}: no such page on the local index")
        return index_html.read_bytes(), "text/html"
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    last: Exception | None = None
    for attempt in range(_RETRIES):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise ProjectNotFound(f"{url}: no such project on the index (HTTP 404)") from None
            last = exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = exc
        time.sleep(0.5 * 2**attempt)
    raise IndexUnavailable(f"{url}: index unreachable after {_RETRIES} tries ({last})")


class _AnchorParser(HTMLParser):
    """PEP 503 pages: one anchor per file, ``data-yanked`` marks yanked files."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bool] = {}
        self._yanked = False
        self._in_anchor = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._in_anchor = True
            self._yanked = any(k == "data-yanked" for k, _ in attrs)
            href = dict(attrs).get("href") or ""
            filename = re.sub(r"[#?].*$", "", href).rsplit("/", 1)[-1]
            if filename:
                self.files[filename] = self._yanked

    def handle_endtag(self, tag: str) -> None:
        self._in_anchor = False

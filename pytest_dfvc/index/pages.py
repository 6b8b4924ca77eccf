"""Which releases of a package exist, and the files of each: the package index (PEP 691
JSON or PEP 503 HTML) and local find-links folders; a wheel's dependencies from its metadata
alone (PEP 658)."""

from __future__ import annotations

import dataclasses
import datetime
import email.parser
import functools
import hashlib
import http.client
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
)
from packaging.version import InvalidVersion, Version

from ..files import write_text_atomic

# How long an index's answer for a project is used before it is asked again: PyPI's own
# lifetime for its Simple API pages (``Cache-Control: max-age=600``). The cells' uv is given
# the same one (``uv-pypi.toml``), so the releases a run plans from and the pages its cells
# resolve from are equally fresh, whatever a mirror sends.
PAGE_MAX_AGE = 600.0

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


@dataclass(frozen=True)
class IndexFile:
    """One file of a project as an index or a find-links folder lists it."""

    filename: str
    yanked: bool = False
    uploaded: str | None = None
    requires_python: str | None = None
    # A URL on an index, or a path in a find-links folder.
    location: str = ""
    # Bytes, as the index says (PEP 691's ``size``) or the folder holds; None when unsaid.
    size: int | None = None


# File name -> what the index says of it.
Files = dict[str, IndexFile]


def list_releases(
    name: str,
    *,
    index_url: str | None = None,
    indexes: Sequence[str] = (),
    find_links: Sequence[str] = (),
    cache_dir: Path | None = None,
    max_age: float = PAGE_MAX_AGE,
) -> list[Release]:
    """All releases of ``name`` on the first of ``indexes`` that has it (uv's
    ``first-index`` rule; ``index_url``: that one index) and in find-links folders.

    With ``cache_dir``, the index's answer is kept for ``max_age`` seconds, so a warm re-run
    does not wait on the network; local folders are always read afresh.
    """
    files = project_files(
        name,
        index_url=index_url,
        indexes=indexes,
        find_links=find_links,
        cache_dir=cache_dir,
        max_age=max_age,
    )
    return _releases_from_files(name, files.values())


def project_files(
    name: str,
    *,
    index_url: str | None = None,
    indexes: Sequence[str] = (),
    find_links: Sequence[str] = (),
    cache_dir: Path | None = None,
    max_age: float = PAGE_MAX_AGE,
) -> Files:
    """Every file of ``name`` that uv may install from, by the same rules as
    ``list_releases``: find-links folders, then the first index that has the project."""
    files: Files = {}
    for link in find_links:
        files.update((f.filename, f) for f in _folder_files(link))
    missing: ProjectNotFound | None = None
    for url in [index_url] if index_url is not None else indexes:
        try:
            found = _cached_index_files(name, url, cache_dir, max_age)
        except ProjectNotFound as exc:
            missing = missing or exc
            continue
        if _has_project(name, found.values()):
            files.update(found)
            break
    if missing is not None and not _has_project(name, files.values()):
        raise missing
    return files


def _has_project(name: str, files: Iterable[IndexFile]) -> bool:
    wanted = canonicalize_name(name)
    return any((p := parse_filename(f.filename)) is not None and p[0] == wanted for f in files)


def _releases_from_files(name: str, files: Iterable[IndexFile]) -> list[Release]:
    """Group file names into versions; a version is yanked only if all its files are, and
    was uploaded when its first file was."""
    wanted = canonicalize_name(name)
    yanked_by_version: dict[Version, bool] = {}
    uploaded: dict[Version, str] = {}
    for file in files:
        parsed = parse_filename(file.filename)
        if parsed is None or parsed[0] != wanted:
            continue
        version, upload = parsed[1], file.uploaded
        yanked_by_version[version] = yanked_by_version.get(version, True) and file.yanked
        if upload and (version not in uploaded or instant(upload) < instant(uploaded[version])):
            uploaded[version] = upload
    return [Release(v, y, uploaded.get(v)) for v, y in sorted(yanked_by_version.items())]


def instant(timestamp: str) -> datetime.datetime:
    """An RFC 3339 timestamp (``2020-01-10T12:00:00.123Z``) as an aware datetime, UTC when
    it names no zone."""
    moment = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


# A long history is tens of thousands of files, read by the lister, the pre-check and the
# screen of a run alike: each name is parsed once.
@functools.lru_cache(maxsize=1 << 17)
def parse_filename(filename: str) -> tuple[str, Version] | None:
    try:
        if filename.endswith(".whl"):
            # Name and version only: the tags (most of the parsing) are read where needed.
            parts = filename[:-4].split("-")
            if len(parts) not in (5, 6):
                raise InvalidWheelFilename(filename)
            return canonicalize_name(parts[0]), _version(parts[1])
        if filename.endswith((".tar.gz", ".zip")):
            name, version = parse_sdist_filename(filename)
            return name, version
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


@functools.lru_cache(maxsize=1 << 14)
def _version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise InvalidWheelFilename(text) from None


def _folder_files(link: str) -> list[IndexFile]:
    folder = Path(link[len("file://") :] if link.startswith("file://") else link)
    if not folder.is_dir():
        return []
    return [
        IndexFile(p.name, location=str(p), size=p.stat().st_size)
        for p in folder.iterdir()
        if p.is_file()
    ]


def _cached_index_files(name: str, index_url: str, cache_dir: Path | None, max_age: float) -> Files:
    if cache_dir is None:
        return _index_files(name, index_url)
    key = hashlib.sha256(f"{index_url}\0{canonicalize_name(name)}".encode()).hexdigest()[:24]
    # -4: the entries hold each file's requires-python, URL and size; older ones are not read.
    path = cache_dir / f"{canonicalize_name(name)}-{key}-4.json"
    try:
        stamp = path.stat().st_mtime_ns
        if time.time() - stamp / 1e9 < max_age:
            return _read_cached(path, stamp)
    except (OSError, ValueError, TypeError, KeyError):
        pass  # missing or damaged: ask the index
    files = _index_files(name, index_url)
    # vars(), not dataclasses.asdict: its deep copy took 0.27 s for numpy's 4,400 files.
    write_text_atomic(path, json.dumps([vars(f) for f in files.values()]), durable=False)
    return files


# The release lister and the pre-check's reader ask for the same list in one run: a cache
# file (1.9 MB for numpy) is parsed once per process while it is unchanged.
@functools.lru_cache(maxsize=64)
def _read_cached(path: Path, stamp: int) -> Files:
    cached = json.loads(path.read_text(encoding="utf-8"))
    return {f["filename"]: IndexFile(**f) for f in cached}


def _index_files(name: str, index_url: str) -> Files:
    url = f"{index_url.rstrip('/')}/{canonicalize_name(name)}/"
    body, content_type = _fetch(url)
    if "json" in content_type:
        data = json.loads(body)
        return {
            f["filename"]: IndexFile(
                f["filename"],
                yanked=bool(f.get("yanked")),
                uploaded=f.get("upload-time") or None,
                requires_python=f.get("requires-python") or None,
                location=urllib.parse.urljoin(url, f.get("url") or f["filename"]),
                size=f["size"] if isinstance(f.get("size"), int) else None,
            )
            for f in data.get("files", [])
        }
    parser = _AnchorParser()
    parser.feed(body.decode("utf-8", "replace"))
    return {
        f.filename: dataclasses.replace(f, location=urllib.parse.urljoin(url, f.location))
        for f in parser.files.values()
    }


def _fetch(url: str) -> tuple[bytes, str]:
    """GET with a few retries: indexes drop connections under load."""
    if url.startswith("file://"):
        path = Path(url[len("file://") :])
        index_html = path / "index.html"
        if not index_html.exists():
            raise ProjectNotFound(f"{url}: no such page on the local index")
        return index_html.read_bytes(), "text/html"
    host = urllib.parse.urlsplit(url).netloc
    with _unreachable_lock:
        known = _unreachable.get(host)
    if known is not None:
        # Tried and given up on earlier in this run: every page of a dead index would
        # otherwise wait out the same retries again (3.5 s each, before any cell ran).
        raise IndexUnavailable(f"{url}: index unreachable after {_RETRIES} tries ({known})")
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    last: Exception | None = None
    for attempt in range(_RETRIES):
        if attempt:
            time.sleep(0.5 * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise ProjectNotFound(f"{url}: no such project on the index (HTTP 404)") from None
            last = exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            last = exc
    if _nobody_there(last):
        with _unreachable_lock:
            _unreachable[host] = str(last)
    raise IndexUnavailable(f"{url}: index unreachable after {_RETRIES} tries ({last})")


def _nobody_there(error: Exception | None) -> bool:
    """A host that refused every connection or whose name does not resolve: no other page
    of it will answer in this run. A dropped connection, a timeout or an HTTP error may be
    the load of the moment: those pages are each tried again."""
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    return isinstance(reason, (ConnectionRefusedError, socket.gaierror))


# Hosts no page could be fetched from in this process, with the last error.
_unreachable: dict[str, str] = {}
_unreachable_lock = threading.Lock()


class _AnchorParser(HTMLParser):
    """PEP 503 pages: one anchor per file, ``data-yanked`` marks yanked files and
    ``data-requires-python`` gives the file's Python range."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, IndexFile] = {}
        self._in_anchor = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._in_anchor = True
            given = dict(attrs)
            href = re.sub(r"[#?].*$", "", given.get("href") or "")
            filename = href.rsplit("/", 1)[-1]
            if filename:
                self.files[filename] = IndexFile(
                    filename,
                    yanked="data-yanked" in given,
                    requires_python=given.get("data-requires-python") or None,
                    location=href,
                )

    def handle_endtag(self, tag: str) -> None:
        self._in_anchor = False


@dataclass(frozen=True)
class WheelMetadata:
    """What a resolver reads from a wheel's metadata to know whether it installs."""

    requires_python: str | None
    requires_dist: tuple[str, ...]


def wheel_metadata(file: IndexFile, cache_dir: Path | None = None) -> WheelMetadata | None:
    """A wheel's ``Requires-Python`` and ``Requires-Dist``, from its metadata alone: the
    index's copy (PEP 658: the file's URL + ``.metadata``) or the wheel in a find-links
    folder. None when neither can be read. Index files never change, so an answer is kept."""
    if not file.filename.endswith(".whl") or not file.location:
        return None
    path = None
    if cache_dir is not None:
        key = hashlib.sha256(file.location.encode()).hexdigest()[:32]
        path = cache_dir / "metadata" / f"{key}.json"
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if cached is None:
                return None
            return WheelMetadata(cached["requires_python"], tuple(cached["requires_dist"]))
        except (OSError, ValueError, TypeError, KeyError):
            pass
    found = _wheel_metadata(file)
    if found is _UNREACHABLE:
        return None  # not kept: the network may answer next time
    metadata = None if found is None else _parse_metadata(found)
    if path is not None:
        write_text_atomic(
            path,
            json.dumps(None if metadata is None else dataclasses.asdict(metadata)),
            durable=False,
        )
    return metadata


_UNREACHABLE = b"\0unreachable"


def _wheel_metadata(file: IndexFile) -> bytes | None:
    location = re.sub(r"#.*$", "", file.location)
    if "://" not in location or location.startswith("file://"):
        wheel = Path(location[len("file://") :] if location.startswith("file://") else location)
        try:
            with zipfile.ZipFile(wheel) as archive:
                names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
                return archive.read(names[0]) if len(names) == 1 else None
        except (OSError, zipfile.BadZipFile, KeyError):
            return None
    try:
        status, body = _get(location + ".metadata")
    except (OSError, http.client.HTTPException, ValueError):
        return _UNREACHABLE
    if status == 200:
        return body
    return None if 400 <= status < 500 else _UNREACHABLE  # 4xx: no metadata files here


_connections = threading.local()
# Every thread's pool, so that the connections of threads that ended can be closed.
_pools: list[dict[tuple[str, str], http.client.HTTPConnection]] = []
_pools_lock = threading.Lock()


def close_connections() -> None:
    """Close every connection kept open, each thread's: the threads of a pool end with it,
    and a connection left open then is a ResourceWarning (an error under a project's
    ``filterwarnings = error``)."""
    with _pools_lock:
        for pool in _pools:
            for connection in pool.values():
                connection.close()
            pool.clear()


def _get(url: str) -> tuple[int, bytes]:
    """GET on a connection this thread keeps open per host: a plan reads hundreds of small
    metadata files from one host, and a TLS handshake each costs more than the file. Through
    urllib (which knows proxies) when a proxy is configured."""
    parts = urllib.parse.urlsplit(url)
    if urllib.request.getproxies() or parts.scheme not in ("http", "https"):
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, b""
    pool: dict[tuple[str, str], http.client.HTTPConnection] | None = getattr(
        _connections, "pool", None
    )
    if pool is None:
        pool = _connections.pool = {}
        with _pools_lock:
            _pools.append(pool)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    for attempt in (1, 2):
        key = (parts.scheme, parts.netloc)
        if key not in pool:
            kind = (
                http.client.HTTPSConnection
                if parts.scheme == "https"
                else http.client.HTTPConnection
            )
            pool[key] = kind(parts.netloc, timeout=30)
        try:
            pool[key].request("GET", path)
            response = pool[key].getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            pool.pop(key).close()  # a kept connection the server closed: once more afresh
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _parse_metadata(metadata: bytes) -> WheelMetadata | None:
    message = email.parser.BytesHeaderParser().parsebytes(metadata)
    if not message.get("Metadata-Version"):
        return None
    requires_python = message.get("Requires-Python")
    return WheelMetadata(
        str(requires_python).strip() if requires_python else None,
        tuple(str(r) for r in message.get_all("Requires-Dist") or []),
    )

"""When a project is old, its first matrix is of its own time.

A library last released in 2019, with no ``requires-python``, got today's SPEC 0 window from
``--dfvc-init`` (numpy >=2.2 on Python 3.13 only) and every cell failed. Its window is
anchored at the project's own era instead: its last release on the index, or its newest
commit, whichever is later. When that is older than SPEC 0's package window, the matrix
spans the framework series SPEC 0 supported then, the Pythons of then that exist here, each
cell resolved as of its release, and today's newest release as one cell more, so the user
sees where the project stands now.
"""

from __future__ import annotations

import datetime
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from ..index.pages import IndexUnavailable, Release, instant, list_releases
from ..index.uvconfig import Sources


@dataclass(frozen=True)
class Anchor:
    """The moment a project's matrix is of, and why: ``what`` says where it comes from
    (``old 0.3.1, its last release on the index``)."""

    moment: datetime.datetime
    what: str

    @property
    def day(self) -> str:
        return self.moment.date().isoformat()


def project_anchor(
    project: Path, name: str, version: str, sources: Sources, cache_dir: Path | None
) -> Anchor | None:
    """The later of the project's last release on the index and its newest commit; None
    when neither is known."""
    released = _last_release(name, version, sources, cache_dir)
    found = [a for a in (released, _newest_commit(project)) if a]
    return max(found, key=lambda a: a.moment) if found else None


def _last_release(
    name: str, version: str, sources: Sources, cache_dir: Path | None
) -> Anchor | None:
    """The newest upload of ``name`` on the index, when the index has this project: its own
    version (written literally) is one of the releases there. A project of another's name
    (a private ``utils``) takes nothing from PyPI's."""
    if not version:
        return None
    try:
        releases = list_releases(
            name, indexes=sources.indexes, find_links=sources.find_links, cache_dir=cache_dir
        )
    except IndexUnavailable:
        return None
    try:
        own = Version(version)
    except InvalidVersion:
        return None
    dated = [r for r in releases if r.uploaded and not r.yanked]
    if not dated or own not in {r.version for r in releases}:
        return None
    newest: Release = max(dated, key=lambda r: instant(str(r.uploaded)))
    moment = instant(str(newest.uploaded))
    return Anchor(moment, f"{name} {newest.version}, its last release on the index")


def _newest_commit(project: Path) -> Anchor | None:
    try:
        done = subprocess.run(
            ["git", "log", "-1", "--format=%cI"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.strip()
    if done.returncode != 0 or not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return Anchor(moment.astimezone(datetime.timezone.utc), "its newest commit")


def is_old(anchor: Anchor | None, now: datetime.datetime, months: int) -> bool:
    """Whether the anchor lies before SPEC 0's window of ``months`` as of ``now``."""
    if anchor is None:
        return False
    return anchor.moment < now - datetime.timedelta(days=round(months * 30.44))


def era_versions(
    releases: list[Release], anchor: Anchor, months: int
) -> tuple[list[Version], Version | None]:
    """The newest patch of each minor series SPEC 0 supported at the anchor (first released
    within ``months`` before it, and not after it), and today's newest final release when it
    is not among them."""
    final = [r for r in releases if not r.yanked and not r.version.is_prerelease]
    firsts: dict[tuple[int, int], datetime.datetime] = {}
    newest: dict[tuple[int, int], Version] = {}
    for release in final:
        key = (release.version.release[0], (*release.version.release, 0)[1])
        newest[key] = max(newest.get(key, release.version), release.version)
        if release.uploaded:
            moment = instant(release.uploaded)
            firsts[key] = min(firsts.get(key, moment), moment)
    since = anchor.moment - datetime.timedelta(days=round(months * 30.44))
    window = [k for k, first in firsts.items() if since <= first <= anchor.moment]
    if not window:
        # Nothing new in the window: the series that was current at the anchor.
        before = [k for k, first in firsts.items() if first <= anchor.moment]
        window = [max(before)] if before else []
    chosen = sorted(newest[k] for k in window)
    today = max((r.version for r in final), default=None)
    return chosen, (today if today is not None and today not in chosen else None)

"""Shipping: what the workflows install, how they pin what they run, and the release's
version and notes (issue 33)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from packaging.requirements import Requirement

sys.path.insert(0, str(Path(__file__).parent.parent / "tools"))
import release

ROOT = Path(__file__).parent.parent
REUSABLE = ROOT / ".github" / "workflows" / "dfvc-matrix.yml"
WORKFLOWS = [
    ".github/workflows/ci.yml",
    ".github/workflows/dfvc-matrix.yml",
    ".github/workflows/release.yml",
    "docs/github-actions/dfvc.yml",
    "docs/github-actions/dfvc-caller.yml",
]
SHA = "0123456789abcdef0123456789abcdef01234567"


def _run_block(text: str, step_id: str) -> str:
    """The script of the step ``- id: <step_id>`` (its ``run: |`` block), dedented."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"- id: {step_id}")
    run = next(i for i in range(start, len(lines)) if lines[i].strip() == "run: |")
    indent = len(lines[run]) - len(lines[run].lstrip()) + 1
    body = []
    for line in lines[run + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            break
        body.append(line)
    return textwrap.dedent("\n".join(body))


def _jwt(claims: dict[str, str]) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


class _TokenService(BaseHTTPRequestHandler):
    """GitHub's OIDC token endpoint as a job sees it: a bearer-authenticated GET answering
    ``{"value": <JWT>}``; what was asked is kept for the test."""

    asked: ClassVar[list[tuple[str, str]]] = []
    claims: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        type(self).asked.append((self.path, self.headers.get("Authorization", "")))
        body = json.dumps({"value": _jwt(type(self).claims)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def token_service() -> Iterator[str]:
    _TokenService.asked = []
    server = HTTPServer(("127.0.0.1", 0), _TokenService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/token?api-version=2.0"
    server.shutdown()
    server.server_close()


def _source_step(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """The reusable workflow's ``source`` step, run as GitHub runs it (``python3 {0}``)."""
    script = tmp_path / "source.py"
    script.write_text(_run_block(REUSABLE.read_text(), "source"))
    output = tmp_path / "github_output"
    output.write_text("")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ACTIONS_", "GITHUB_"))}
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**clean, "GITHUB_OUTPUT": str(output), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, output.read_text()


def test_the_reusable_workflow_installs_its_own_source(tmp_path: Path, token_service: str) -> None:
    """The default ``install`` was the bare name ``pytest-dfvc``: whoever registers it on an
    index would have their code run in every caller's CI. The default is now empty, and the
    source step turns it into a direct reference to the workflow's own repository at the
    commit the caller's ``@<ref>`` resolved to (the OIDC token's claims)."""
    text = REUSABLE.read_text()
    install_input = text.split("      install:\n", 1)[1].split("\n    outputs:", 1)[0]
    assert re.search(r'^        default: ""$', install_input, re.M), install_input
    _TokenService.claims = {
        "job_workflow_ref": "acme/pytest-dfvc/.github/workflows/dfvc-matrix.yml@refs/tags/v0.2.0",
        "job_workflow_sha": SHA,
        "repository": "someone/their-project",  # the caller: not what gets installed
    }
    done, output = _source_step(
        tmp_path,
        DFVC_INSTALL="",
        ACTIONS_ID_TOKEN_REQUEST_URL=token_service,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN="request-token",
        GITHUB_SERVER_URL="https://github.com",
    )
    assert done.returncode == 0, done.stderr
    assert output.startswith("install=") and output.endswith("\n")
    requirement = Requirement(output[len("install=") :].strip())
    assert requirement.name == "pytest-dfvc"
    assert not requirement.specifier
    # A direct reference: no index is asked, whatever it serves under the name.
    assert requirement.url == f"git+https://github.com/acme/pytest-dfvc@{SHA}"
    [(path, authorization)] = _TokenService.asked
    assert path.endswith("?api-version=2.0&audience=pytest-dfvc")
    assert authorization == "bearer request-token"


def test_what_the_caller_names_is_installed_as_named(tmp_path: Path) -> None:
    done, output = _source_step(tmp_path, DFVC_INSTALL="pytest-dfvc==0.2.0")
    assert done.returncode == 0, done.stderr
    assert output == "install=pytest-dfvc==0.2.0\n"


def test_without_the_token_the_source_step_says_what_to_grant(tmp_path: Path) -> None:
    done, output = _source_step(tmp_path, DFVC_INSTALL="")
    assert done.returncode == 1
    assert "permissions: id-token: write" in done.stderr
    assert "install:" in done.stderr
    assert output == ""


@pytest.mark.parametrize(
    "workflow", [".github/workflows/dfvc-matrix.yml", "docs/github-actions/dfvc.yml"]
)
def test_every_job_installs_the_pinned_pytest_dfvc(workflow: str) -> None:
    """Every ``pip install`` of the workflows a user adopts installs ``$DFVC_INSTALL``, and
    that is the source step's output (the reusable workflow) or an exact pin (the copy)."""
    text = (ROOT / workflow).read_text()
    installs = re.findall(r"pip install (.+)$", text, re.M)
    assert installs and set(installs) == {'"$DFVC_INSTALL"'}, installs
    values = set(re.findall(r"^\s+DFVC_INSTALL: (.+?)(?:\s+#.*)?$", text, re.M))
    if workflow.endswith("dfvc-matrix.yml"):
        assert values == {"${{ inputs.install }}", "${{ needs.source.outputs.install }}"}
        # Only the source step reads the input; every installing job waits for it.
        assert text.count("${{ inputs.install }}") == 1
        for job in ("plan", "cells", "merge"):
            needs = re.search(rf"^  {job}:\n    needs: (.+)$", text, re.M)
            assert needs and "source" in needs.group(1), job
    else:
        [value] = values
        [spec] = Requirement(value).specifier
        assert spec.operator == "==", value


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_third_party_actions_are_pinned_by_commit(workflow: str) -> None:
    """A tag can be moved to other code; a commit cannot. Each pin says its tag."""
    text = (ROOT / workflow).read_text()
    for uses in re.findall(r"uses: (\S+.*)$", text, re.M):
        if uses.startswith("./"):
            continue
        assert re.fullmatch(r"[\w.<>-]+/[\w./<>-]+@(?:[0-9a-f]{40}|<commit>)\s+# \S+", uses), uses


def _filled(workflow: str, folder: Path) -> Path:
    """The workflow as a user writes it (the caller's placeholders filled), in a repository
    folder of its own."""
    text = (ROOT / workflow).read_text().replace("<owner>", "acme").replace("<commit>", SHA)
    target = folder / ".github" / "workflows" / Path(workflow).name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def test_workflows_pass_zizmor(tmp_path: Path) -> None:
    """zizmor, GitHub Actions' security linter, offline: pinned actions, no credentials left
    in checkouts, no template expansion into scripts, minimal permissions."""
    zizmor = shutil.which("zizmor") or str(Path(sys.executable).with_name("zizmor"))
    if not Path(zizmor).exists():
        pytest.skip("zizmor is not installed (pip install -e '.[test]')")
    files = [_filled(workflow, tmp_path) for workflow in WORKFLOWS]
    result = subprocess.run(
        [zizmor, "--offline", "--no-progress", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_catches_what_it_is_here_for(tmp_path: Path) -> None:
    """The check above can fail: a tag instead of a commit, and a matrix value spliced into
    a script, are findings."""
    zizmor = shutil.which("zizmor") or str(Path(sys.executable).with_name("zizmor"))
    if not Path(zizmor).exists():
        pytest.skip("zizmor is not installed (pip install -e '.[test]')")
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    text = re.sub(r"actions/checkout@[0-9a-f]{40}\s+# v5.0.0", "actions/checkout@v5", text)
    text = text.replace('--dfvc-cell="$DFVC_CELL"', '--dfvc-cell="${{ matrix.cell }}"')
    bad = tmp_path / ".github" / "workflows" / "ci.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(text)
    result = subprocess.run(
        [zizmor, "--offline", "--no-progress", str(bad)], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "unpinned-uses" in result.stdout
    assert "template-injection" in result.stdout


def test_the_documented_caller_passes_actionlint(tmp_path: Path) -> None:
    actionlint = shutil.which("actionlint") or str(Path(sys.executable).with_name("actionlint"))
    if not Path(actionlint).exists():
        pytest.skip("actionlint is not installed (pip install -e '.[test]')")
    caller = _filled("docs/github-actions/dfvc-caller.yml", tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    result = subprocess.run([actionlint, str(caller)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "uses: acme/pytest-dfvc/.github/workflows/dfvc-matrix.yml@" + SHA in caller.read_text()


# -- the release: version from the tag, notes from the changelog ----------------------------

CHANGELOG = """# Changelog

## Unreleased

- Next.

## [0.2.0] - 2026-12-07

### Added

- Shipping.

## 0.1.0

- First.
"""


@pytest.mark.parametrize(
    ("tag", "version"), [("v0.2.0", "0.2.0"), ("refs/tags/v1.0.0rc1", "1.0.0rc1"), ("0.3", "0.3")]
)
def test_the_tag_is_the_version(tag: str, version: str) -> None:
    assert release.version_of(tag) == version


@pytest.mark.parametrize(
    ("tag", "says"),
    [("latest", "is no version"), ("v1.0-RC1", "write the version as '1.0rc1'")],
)
def test_a_tag_that_is_no_version_is_refused(tag: str, says: str) -> None:
    with pytest.raises(release.ReleaseError, match=re.escape(says)):
        release.version_of(tag)


def test_the_notes_are_the_versions_changelog_section() -> None:
    assert release.notes(CHANGELOG, "0.2.0") == "### Added\n\n- Shipping.\n"
    assert release.notes(CHANGELOG, "0.1.0") == "- First.\n"
    with pytest.raises(release.ReleaseError, match=re.escape("no section for 0.2")):
        release.notes(CHANGELOG, "0.2")  # 0.2 is not 0.2.0's heading
    with pytest.raises(release.ReleaseError, match="empty"):
        release.notes("## 1.0.0\n\n## 0.1.0\n- x\n", "1.0.0")


def test_stamping_sets_the_one_version_line() -> None:
    source = (ROOT / "pytest_dfvc" / "__init__.py").read_text()
    stamped = release.stamped(source, "9.8.7")
    assert '__version__ = "9.8.7"' in stamped
    assert stamped.replace('"9.8.7"', "") == re.sub(
        r'__version__ = "[^"]*"', "__version__ = ", source
    )
    with pytest.raises(release.ReleaseError, match="exactly one"):
        release.stamped(source + '__version__ = "0"\n', "1.0.0")


def test_the_release_command_refuses_what_it_cannot_release() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "release.py"), "notes", "v99.0.0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "CHANGELOG.md has no section for 99.0.0" in done.stderr


def test_the_release_workflow_stamps_before_it_builds() -> None:
    text = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    order = [
        text.index(s)
        for s in (
            "release.py stamp",
            "run: nox -s dist",
            "DFVC_WHEEL=",
            "uses: pypa/gh-action-pypi",
        )
    ]
    assert order == sorted(order)
    assert "password" not in text and "secrets." not in text  # trusted publishing only

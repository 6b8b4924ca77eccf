"""Old releases whose metadata uv refuses: their requirements, normalised."""

from __future__ import annotations

import pytest

from pytest_dfvc.index.legacy import normalised, refused_pin


@pytest.mark.parametrize(
    ("line", "expected", "dropped"),
    [
        ("pytz (>=2011k)", "pytz", [">=2011k"]),
        ("python-dateutil (>=2.5.0)", "python-dateutil>=2.5.0", []),
        ("numpy (>=1.12.0,<2.x)", "numpy>=1.12.0", ["<2.x"]),
        ('pytz (>=2011k); python_version >= "3"', 'pytz; python_version >= "3"', [">=2011k"]),
        ("numpy>=1.12", "numpy>=1.12", []),
    ],
)
def test_legacy_requirements_are_normalised(line: str, expected: str, dropped: list[str]) -> None:
    assert normalised(line) == (expected, dropped)


def test_only_a_pinned_release_is_installed_another_way() -> None:
    log = (
        "  cause: Because pandas==0.24.2 has invalid metadata and you require pandas==0.24.2, ...\n"
        "hint: Metadata for `pandas` (v0.24.2) could not be parsed:\n"
        "  after parsing `2011`, found `k`, which is not part of a valid version\n"
        "  pytz (>=2011k)\n"
    )
    assert refused_pin(log, ["pandas==0.24.2", "numpy==1.16.6"]) == "pandas==0.24.2"
    assert refused_pin(log, ["numpy==1.16.6"]) is None
    assert refused_pin("error: something else", ["pandas==0.24.2"]) is None

"""Matrix files: what parses, and the one clear message for what does not."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.specifiers import SpecifierSet

from pytest_dfvc.plan.matrix import (
    MatrixError,
    find_matrix_files,
    load_matrices,
    load_matrix,
    parse_matrix,
)
from pytest_dfvc.tomlcheck import tomllib

FULL = """
python = ["3.9", "3.12"]
cuda = ["cpu", "cu121"]

[packages.numpy]
versions = ">=1.19,<2.2"
select = "latest-patch"
baseline = "1.23.5"

[packages.Scikit_Learn]
versions = ["1.3.2", "1.4.0"]

[install]
extras = ["test"]
groups = ["dev"]
constraints = ["pandas<2"]
find-links = ["wheels"]
index-url = "https://example.org/simple"
resolution = "lowest-direct"
exclude-newer = "2025-06-01"

[[exclude]]
python = ">=3.12"
numpy = "<1.26"
"""


def write(tmp_path: Path, text: str, name: str = "m.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_matrix(tmp_path: Path) -> None:
    m = load_matrix(write(tmp_path, FULL, "numpy.toml"))
    assert m.name == "numpy"
    assert m.python == ("3.9", "3.12")
    assert m.cuda == ("cpu", "cu121")
    numpy, sklearn = m.packages
    assert numpy.versions == SpecifierSet(">=1.19,<2.2")
    assert numpy.select == "latest-patch"
    assert numpy.baseline == "1.23.5"
    assert sklearn.name == "scikit-learn"
    assert sklearn.versions == ("1.3.2", "1.4.0")
    assert m.install.extras == ("test",)
    assert m.install.constraints == ("pandas<2",)
    assert m.install.find_links == (str((tmp_path / "wheels").resolve()),)
    assert m.install.resolution == "lowest-direct"
    (rule,) = m.exclude
    assert rule.python == SpecifierSet(">=3.12")
    assert rule.packages == (("numpy", SpecifierSet("<1.26")),)


@pytest.mark.parametrize(
    "value", ["2025-06-01", "2025-06-01T12:00:00Z", "2025-06-01T12:00:00+02:00"]
)
def test_exclude_newer_takes_dates_and_timestamps(tmp_path: Path, value: str) -> None:
    text = f'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nexclude-newer = "{value}"'
    assert load_matrix(write(tmp_path, text)).install.exclude_newer == value


def test_python_specifier_and_name_key(tmp_path: Path) -> None:
    m = load_matrix(
        write(tmp_path, 'name = "np"\npython = ">=3.9"\n[packages.numpy]\nversions = ">=1"\n')
    )
    assert m.name == "np"
    assert m.python == SpecifierSet(">=3.9")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("python = [", "m.toml: invalid TOML"),
        ('pyton = ["3.9"]', "m.toml: pyton = ['3.9']: unknown key; did you mean 'python'?"),
        ('[packages.numpy]\nversions = ">=1"', "m.toml: python: missing"),
        (
            'python = "3.9"\n[packages.numpy]\nversions = ">=1"',
            "m.toml: python = '3.9': not a valid version specifier",
        ),
        (
            'python = ["three"]\n[packages.numpy]\nversions = ">=1"',
            "m.toml: python = 'three': write Python versions as 3.X",
        ),
        ('python = ["3.9"]', "m.toml: packages = {}: declare at least one [packages.NAME] table"),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1,<<2"',
            "m.toml: packages.numpy.versions = '>=1,<<2': not a valid version specifier",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ["1.x"]',
            "m.toml: packages.numpy.versions = '1.x': not a valid version",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\nselect = "newest"',
            "m.toml: packages.numpy.select = 'newest': must be one of all, latest-patch, latest-minor",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversion = ">=1"',
            "m.toml: packages.numpy.version = '>=1': unknown key; did you mean 'versions'?",
        ),
        (
            'python = ["3.9"]\n[packages."numpy; rm -rf /"]\nversions = ">=1"',
            "m.toml: packages.numpy; rm -rf / = 'numpy; rm -rf /': not a valid package name (PEP 508)",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = 3',
            "m.toml: packages.numpy.versions = 3: must be a list of strings",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nconstraints = ["pandas <<2"]',
            "m.toml: install.constraints = 'pandas <<2': not a valid requirement",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nresolution = "lowest"',
            "m.toml: install.resolution = 'lowest': must be one of highest, lowest-direct, locked",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[[exclude]]\ntorch = "<2"',
            "m.toml: exclude[0].torch = '<2': unknown key",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[[exclude]]',
            "m.toml: exclude[0] = {}: an empty exclude removes every cell",
        ),
        # Typos that used to pass and turn every cell unavailable.
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nexclude-newer = "2025-13-45"',
            "m.toml: install.exclude-newer = '2025-13-45': not a date: write YYYY-MM-DD",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nindex-url = "--no-deps"',
            "m.toml: install.index-url = '--no-deps': not an index URL",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nfind-links = ["--no-deps"]',
            "m.toml: install.find-links = '--no-deps': not a folder or an http(s)/file URL",
        ),
        (
            'python = ["3.9"]\ncuda = ["cu121"]\n[packages.torch]\nversions = ">=2"\n'
            '[install.cuda.cu121]\nindex-url = "download.pytorch.org/whl/cu121"',
            "m.toml: install.cuda.cu121.index-url = 'download.pytorch.org/whl/cu121': not an index URL",
        ),
        # A value listed twice made two cells with one id: one was silently lost.
        (
            'python = ["3.9", "3.9"]\n[packages.numpy]\nversions = ">=1"',
            "m.toml: python = '3.9': listed twice",
        ),
        (
            'python = ["3.9"]\ncuda = ["cpu", "cpu"]\n[packages.numpy]\nversions = ">=1"',
            "m.toml: cuda = 'cpu': listed twice",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ["1.26.4", "1.26.4.0"]',
            "m.toml: packages.numpy.versions = '1.26.4.0': listed twice (as '1.26.4' too)",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ""',
            "m.toml: packages.numpy.versions = '': empty specifier: write '>=0' for every release",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nenv = { "A-B" = "1" }',
            "m.toml: install.env.A-B = '1': not an environment variable name of one's own",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nenv = { DFVC_RECORDS = "x" }',
            "m.toml: install.env.DFVC_RECORDS = 'x': not an environment variable name of one's own",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nenv = { MPLBACKEND = 1 }',
            "m.toml: install.env.MPLBACKEND = 1: must be a string",
        ),
        (
            'python = ["3.6"]\n[packages.numpy]\nversions = ">=1"',
            "m.toml: python = '3.6': the in-cell recorder needs Python 3.7 or newer",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nproject = "no"',
            "m.toml: install.project = 'no': must be true or false",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\nproject = false\n'
            'extras = ["test"]',
            "m.toml: install.extras = ['test']: needs the project installed, and "
            "install.project is false",
        ),
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n[install]\n'
            'build-requirements = ["numpy; rm -rf /"]',
            "m.toml: install.build-requirements = 'numpy; rm -rf /': not a valid requirement",
        ),
    ],
)
def test_bad_matrix_names_file_key_and_value(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(MatrixError) as info:
        load_matrix(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith(str(tmp_path / "m.toml").rsplit("/", 1)[0])
    assert expected in message


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(MatrixError, match="no such matrix file or folder"):
        find_matrix_files(tmp_path / "nope.toml")
    with pytest.raises(MatrixError, match="folder holds no matrix files"):
        find_matrix_files(tmp_path)
    test_file = write(tmp_path, "def test_x():\n    pass\n", "test_x.py")
    with pytest.raises(MatrixError, match=r"is not a matrix file \(\*\.toml\) or a folder"):
        find_matrix_files(test_file)
    test_file.unlink()
    write(tmp_path, "", "b.toml")
    write(tmp_path, "", "a.toml")
    assert [p.name for p in find_matrix_files(tmp_path)] == ["a.toml", "b.toml"]


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from([">=1", "3.9", "all", "latest-patch"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["versions", "python", "select", "numpy", "extras", "x"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "python", "cuda", "packages", "install", "exclude", "pyton"]),
        _values,
        max_size=6,
    )
)
def test_any_input_gives_a_matrix_or_a_clean_error(data: dict[str, object]) -> None:
    """Random and mutated matrices: either valid, or a MatrixError; never another exception."""
    try:
        parse_matrix(dict(data), Path("random.toml"))
    except MatrixError as exc:
        assert str(exc).startswith("random.toml")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_matrix_or_a_clean_error(text: str) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return
    with contextlib.suppress(MatrixError):
        parse_matrix(data, Path("random.toml"))


ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    "path",
    sorted(
        p
        for p in [*ROOT.glob("matrices/*.toml"), *ROOT.glob("examples/**/*.toml")]
        # Not the copies in an example's output folder (its views and snapshots).
        if p.name != "pyproject.toml" and ".dfvc" not in p.relative_to(ROOT).parts
    ),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_shipped_matrices_are_valid(path: Path) -> None:
    matrix = load_matrix(path)
    assert matrix.packages


def test_two_matrix_files_with_one_name(tmp_path: Path) -> None:
    body = 'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\n'
    write(tmp_path, body, "a.toml")
    write(tmp_path, 'name = "a"\n' + body, "b.toml")
    with pytest.raises(MatrixError, match=r"b.toml: name = 'a': a.toml has the same name"):
        load_matrices(tmp_path)

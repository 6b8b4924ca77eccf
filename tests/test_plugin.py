"""The plugin's front door, through pytester: options, usage errors, the plan listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfvc.cellargs import addopts_override, strip_dfvc_options


def test_help_lists_the_dfvc_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*framework version compatibility (pytest-dfvc)*", "*--dfvc-matrix*PATH*"]
    )


def test_plain_run_is_untouched_and_marker_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.dfvc(numpy=">=1.20")
        def test_x():
            pass
        """
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'python = ["3.9"]\n[packages.numpy]\nversions = ">=1"\nselect = "newest"',
            "*m.toml: packages.numpy.select = 'newest': must be one of all, latest-patch, latest-minor",
        ),
        ("python = [", "*m.toml: invalid TOML*"),
    ],
)
def test_bad_matrix_is_one_clean_usage_error(
    pytester: pytest.Pytester, text: str, message: str
) -> None:
    pytester.mkdir("matrices")
    (pytester.path / "matrices" / "m.toml").write_text(text)
    result = pytester.runpytest("--dfvc-matrix")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: " + message])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_missing_matrix_path(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--dfvc-matrix=nowhere.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *nowhere.toml: no such matrix file or folder"])


def test_list_plans_without_running(pytester: pytest.Pytester, wheelhouse: Path) -> None:
    (pytester.path / "m.toml").write_text(
        'python = ["3.9", "3.98"]\n[packages.fakeframe]\nversions = ">=2"\n'
        f'[install]\nno-index = true\nfind-links = ["{wheelhouse}"]\n'
    )
    result = pytester.runpytest("--dfvc-matrix=m.toml", "--dfvc-list")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "matrix m (*m.toml):",
            "  py3.9-fakeframe2.0.0  runnable *",
            "  py3.9-fakeframe2.1.0  unavailable: fakeframe 2.1.0 requires Python>=3.10*",
            "  py3.98-fakeframe2.0.0  unavailable: no CPython 3.98 interpreter here*",
        ]
    )
    assert not (pytester.path / ".dfvc" / "results.json").exists()


@pytest.mark.parametrize(
    ("args", "kept"),
    [
        (["--dfvc-matrix", "-x"], ["-x"]),
        (["--dfvc-matrix", "matrices/np.toml", "-k", "foo"], ["-k", "foo"]),
        (["--dfvc-matrix=m", "--dfvc-jobs", "4", "tests/"], ["tests/"]),
        (["-q", "--dfvc-timeout=30", "--dfvc-out", "o", "--dfvc-list"], ["-q"]),
    ],
)
def test_cells_get_the_users_arguments_without_ours(args: list[str], kept: list[str]) -> None:
    assert strip_dfvc_options(args) == kept


def test_our_options_in_addopts_are_taken_out_for_the_cells() -> None:
    assert addopts_override(["-ra", "--strict-markers"]) == []
    assert addopts_override(["-ra", "--dfvc-matrix", "--dfvc-jobs=2"]) == ["-o", "addopts=-ra"]

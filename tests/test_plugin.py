"""The plugin's front door, through pytester: options, usage errors, the plan listing."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pytest_dfvc.cells.cellargs import addopts_override, strip_dfvc_options
from pytest_dfvc.options import read_options


def test_help_lists_the_dfvc_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        ["*framework version compatibility (pytest-dfvc)*", "*--dfvc-matrix*PATH*"]
    )


def test_help_with_the_matrix_option_needs_no_matrix(pytester: pytest.Pytester) -> None:
    """Issue 32, item 7: ``pytest --dfvc-matrix --help`` in a project without matrices/
    printed "no such matrix file or folder" instead of the help."""
    result = pytester.runpytest("--dfvc-matrix", "--help")
    assert result.ret == 0
    text = result.stdout.str()
    assert "no such matrix" not in text + result.stderr.str()
    # Every value-taking option shows a short metavar, and drift is said in its help.
    assert "--dfvc-drift-rtol=R" in text and "DFVC_DRIFT_RTOL" not in text
    assert "drift is a value a test records" in " ".join(text.split())


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


def test_ini_settings_are_the_defaults_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        dfvc_matrix = checks/m.toml
        dfvc_out = build/dfvc
        dfvc_jobs = 3
        dfvc_timeout = 90
        dfvc_strategy = bisect
        """
    )
    here = pytester.path
    options = read_options(pytester.parseconfig("--dfvc-matrix"))
    assert (options.matrix, options.out, options.jobs, options.timeout, options.strategy) == (
        here / "checks/m.toml",
        here / "build/dfvc",
        3,
        90.0,
        "bisect",
    )
    assert options.results_path(here / "project") == here / "build/dfvc/results.json"
    given = read_options(
        pytester.parseconfig(
            "--dfvc-matrix=x.toml",
            "--dfvc-out=o",
            "--dfvc-jobs=5",
            "--dfvc-timeout=7",
            "--dfvc-strategy=walk",
        )
    )
    assert (given.matrix, given.out, given.jobs, given.timeout, given.strategy) == (
        here / "x.toml",
        here / "o",
        5,
        7.0,
        "walk",
    )
    # Without --dfvc-matrix (or an option implying it) the ini setting starts nothing.
    assert read_options(pytester.parseconfig()).matrix is None


def test_no_settings_give_the_documented_defaults(pytester: pytest.Pytester) -> None:
    options = read_options(pytester.parseconfig("--dfvc-cell=m/a"))
    assert options.matrix == pytester.path / "matrices"
    assert options.out is None and options.json is None
    assert options.output_folder(pytester.path / "p") == pytester.path / "p" / ".dfvc"
    assert options.strategy == "grid" and options.timeout is None and options.jobs >= 1


def test_ini_paths_are_relative_to_the_ini_file_from_any_folder(
    pytester: pytest.Pytester, wheelhouse: Path
) -> None:
    pytester.makeini("[pytest]\ndfvc_matrix = checks/m.toml\n")
    pytester.mkdir("checks")
    (pytester.path / "checks" / "m.toml").write_text(
        'python = ["3.98"]\n[packages.fakeframe]\nversions = "==2.0.0"\n'
        f'[install]\nno-index = true\nfind-links = ["{wheelhouse}"]\n'
    )
    pytester.chdir()
    (pytester.path / "tests").mkdir()
    os.chdir(pytester.path / "tests")
    result = pytester.runpytest("--dfvc-matrix", "--dfvc-list")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"matrix m ({pytester.path / 'checks' / 'm.toml'}):"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("dfvc_jobs = many", "dfvc_jobs = 'many': expected a positive int"),
        ("dfvc_timeout = -1", "dfvc_timeout = '-1': expected a positive float"),
        ("dfvc_strategy = random", "dfvc_strategy = 'random': expected one of grid, walk, bisect"),
    ],
)
def test_a_bad_ini_setting_names_the_file_key_and_value(
    pytester: pytest.Pytester, line: str, message: str
) -> None:
    ini = pytester.makeini(f"[pytest]\n{line}\n")
    result = pytester.runpytest("--dfvc-matrix")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {ini}: {message}"])


def test_plain_pytest_imports_none_of_the_matrix_machinery(pytester: pytest.Pytester) -> None:
    """A project with the plugin installed pays for the option names only: the recorder,
    the strategies and the diagnosis rules load when a dfvc option or marker asks."""
    pytester.makepyfile("def test_x():\n    pass\n")
    probe = pytester.makepyfile(
        probe="""
        import sys
        import pytest

        assert pytest.main(["-q", "-p", "no:cacheprovider", "test_probe_target.py"]) == 0
        print(sorted(m for m in sys.modules if m.startswith("pytest_dfvc")))
        """
    )
    pytester.makepyfile(test_probe_target="def test_x():\n    pass\n")
    result = pytester.run(sys.executable, str(probe))
    assert result.ret == 0
    assert (
        result.outlines[-1] == "['pytest_dfvc', 'pytest_dfvc.hookspecs', 'pytest_dfvc.options', "
        "'pytest_dfvc.plugin', 'pytest_dfvc.vocabulary']"
    )


def test_the_run_plugin_goes_with_its_config(pytester: pytest.Pytester, wheelhouse: Path) -> None:
    (pytester.path / "m.toml").write_text(
        'python = ["3.98"]\n[packages.fakeframe]\nversions = "==2.0.0"\n'
        f'[install]\nno-index = true\nfind-links = ["{wheelhouse}"]\n'
    )
    config = pytester.parseconfigure("--dfvc-matrix=m.toml")
    assert config.pluginmanager.get_plugin("dfvc-session") is not None
    config._ensure_unconfigure()
    assert config.pluginmanager.get_plugin("dfvc-session") is None

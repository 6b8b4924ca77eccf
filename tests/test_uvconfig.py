"""Where releases are listed from: the same places the cells' uv installs from."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_dfvc.index.pages import PAGE_MAX_AGE
from pytest_dfvc.index.uvconfig import (
    PYPI,
    PYPI_CONFIG,
    PYPI_REFRESH_CONFIG,
    Sources,
    pypi_config_args,
    uv_sources,
)
from pytest_dfvc.plan.uvargs import build_source_args
from pytest_dfvc.tomlcheck import tomllib

from .helpers import matrix_from_text


def _sources(project: Path, env: dict[str, str], **matrix: object) -> Sources:
    # A home of its own, so this machine's own uv configuration cannot leak in.
    env = {"XDG_CONFIG_HOME": str(project / "home"), "XDG_CONFIG_DIRS": str(project / "etc"), **env}
    return uv_sources(project, environ=env, **matrix)  # type: ignore[arg-type]


def test_pypi_when_nothing_is_configured_and_pip_settings_are_not_uvs(tmp_path: Path) -> None:
    found = _sources(tmp_path, {"PIP_INDEX_URL": "https://pip.example/simple"})
    assert found == Sources((PYPI,), ())


def test_the_matrix_first_then_the_environment(tmp_path: Path) -> None:
    env = {
        "UV_DEFAULT_INDEX": "https://default.example/simple/",
        "UV_INDEX": "https://a.example/simple https://b.example/simple",
        "UV_FIND_LINKS": "/wheels,/more",
    }
    assert _sources(tmp_path, env) == Sources(
        ("https://a.example/simple", "https://b.example/simple", "https://default.example/simple"),
        ("/wheels", "/more"),
    )
    matrix = _sources(tmp_path, env, index_url="https://matrix.example/simple", find_links=["/m"])
    assert matrix.indexes[-1] == "https://matrix.example/simple"
    assert matrix.find_links == ("/m", "/wheels", "/more")
    assert _sources(tmp_path, {**env, "UV_NO_INDEX": "1"}).indexes == ()
    assert _sources(tmp_path, env, no_index=True).indexes == ()


def test_the_nearest_project_configuration_then_the_users(tmp_path: Path) -> None:
    project = tmp_path / "repo" / "pkg"
    project.mkdir(parents=True)
    (tmp_path / "repo" / "uv.toml").write_text(
        '[pip]\nindex-url = "https://private.example/simple"\nfind-links = ["/wheels"]\n'
    )
    (tmp_path / "repo" / "pkg" / "pyproject.toml").write_text('[project]\nname = "pkg"\n')
    user = tmp_path / "home" / "uv"
    user.mkdir(parents=True)
    (user / "uv.toml").write_text('extra-index-url = ["https://user.example/simple"]\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "home"), "XDG_CONFIG_DIRS": str(tmp_path / "etc")}
    assert uv_sources(project, environ=env) == Sources(
        ("https://user.example/simple", "https://private.example/simple"), ("/wheels",)
    )
    # UV_NO_CONFIG: none of the files count.
    assert uv_sources(project, environ={**env, "UV_NO_CONFIG": "1"}) == Sources((PYPI,), ())


def test_tool_uv_indexes_in_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.uv]\n"
        '[[tool.uv.index]]\nname = "torch"\nurl = "https://torch.example/whl"\nexplicit = true\n'
        '[[tool.uv.index]]\nname = "mirror"\nurl = "https://mirror.example/simple"\n'
        '[[tool.uv.index]]\nname = "main"\nurl = "https://main.example/simple"\ndefault = true\n'
    )
    assert _sources(tmp_path, {}).indexes == (
        "https://mirror.example/simple",
        "https://main.example/simple",
    )


def test_pypis_cache_lifetimes_only_where_nothing_of_the_users_is_set_aside(
    tmp_path: Path,
) -> None:
    home = {"XDG_CONFIG_HOME": str(tmp_path / "home"), "XDG_CONFIG_DIRS": str(tmp_path / "etc")}
    plain = pypi_config_args(tmp_path, environ=home)
    assert plain == ["--config-file", str(PYPI_CONFIG)]
    config = tomllib.loads(PYPI_CONFIG.read_text())
    assert config["index"] == [
        {
            "url": PYPI,
            "default": True,
            "cache-control": {
                "api": "max-age=600",
                "files": "max-age=365000000, immutable",
            },
        }
    ]
    assert set(config) == {"index"}  # nothing else of uv's defaults is changed
    # The matrix, the environment or a configuration file chose the indexes: left alone.
    assert pypi_config_args(tmp_path, index_url="https://mirror/simple", environ=home) == []
    assert pypi_config_args(tmp_path, no_index=True, environ=home) == []
    for variable in ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_CONFIG_FILE", "UV_NO_CONFIG"):
        assert pypi_config_args(tmp_path, environ={**home, variable: "1"}) == [], variable
    (tmp_path / "home" / "uv").mkdir(parents=True)
    (tmp_path / "home" / "uv" / "uv.toml").write_text("native-tls = true\n")
    assert pypi_config_args(tmp_path, environ=home) == []
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.uv]\nnative-tls = true\n")
    home_empty = {
        "XDG_CONFIG_HOME": str(tmp_path / "none"),
        "XDG_CONFIG_DIRS": str(tmp_path / "etc"),
    }
    assert pypi_config_args(project / "matrices", environ=home_empty) == []


def test_a_page_asked_for_again_is_pypis_without_the_lifetime() -> None:
    """The second try's configuration (a pin missing from uv's kept page) is the first one
    without the pages' lifetime: the same index, the same files' lifetime."""
    kept = tomllib.loads(PYPI_CONFIG.read_text())
    afresh = tomllib.loads(PYPI_REFRESH_CONFIG.read_text())
    (index,) = kept["index"]
    del index["cache-control"]["api"]
    assert afresh == kept


def test_the_cells_pages_live_as_long_as_the_plans(tmp_path: Path) -> None:
    """The cells' uv keeps a project's page as long as the index reader that planned the
    run keeps its answer: neither sees a release the other cannot."""
    config = tomllib.loads(PYPI_CONFIG.read_text())
    (index,) = config["index"]
    assert index["cache-control"]["api"] == f"max-age={int(PAGE_MAX_AGE)}"


def test_the_projects_build_asks_pypi_as_the_cells_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The editable wheel's build environment (``build-system.requires``) is resolved with
    the cells' PyPI settings, and with the matrix's own index where it names one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "etc"))
    for variable in (
        *("UV_CONFIG_FILE", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_INDEX"),
        *("UV_INDEX_URL", "UV_NO_CONFIG", "UV_NO_INDEX"),
    ):
        monkeypatch.delenv(variable, raising=False)
    body = 'python = ["3.11"]\n[packages.numpy]\nversions = ["2.1.3"]\n'
    plain = matrix_from_text(tmp_path, body)
    assert build_source_args(plain) == ["--config-file", str(PYPI_CONFIG)]
    mirror = matrix_from_text(tmp_path, body + '[install]\nindex-url = "https://mirror/simple"\n')
    assert build_source_args(mirror) == ["--index-url", "https://mirror/simple"]

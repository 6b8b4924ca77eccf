"""Deep-learning frameworks' ways of breaking, with real cells from fake wheels (issue 29):
a load function whose default changed after a FutureWarning (torch 2.6's ``weights_only``),
a framework release that requires a new major of its companion (TensorFlow 2.16 and Keras
3), and a warning that calls a format legacy (Keras's HDF5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from pytest_dfvc.index.interpreters import InterpreterFinder

from . import fakeframe
from .helpers import offline_install, require_pythons, run_matrix, write_project

pytestmark = pytest.mark.slow

# torch.load's error in 2.6, shortened: a first line with terminal escape codes, and the
# line that explains it further down.
_WEIGHTS_ONLY = (
    "Weights only load failed. This file can still be loaded, to do so you have two "
    "options, \\x1b[1mdo those steps only if you trust the source of the checkpoint\\x1b[0m. "
    "\\n\\t(1) In fload 1.2, we changed the default value of the `weights_only` argument in "
    "`fload.load` from `False` to `True`. Re-running `fload.load` with `weights_only` set "
    "to `False` will likely succeed, but it can result in arbitrary code execution."
    "\\n\\t(2) Alternatively, to load with `weights_only=True` please check the recommended "
    "steps in the following error message.\\nWeightsUnpickler error: Unsupported global: "
    "GLOBAL builtins.set"
)


def _fload(wheels: Path) -> None:
    """fload 1.0 loads anything; 1.1 warns that the default will flip; 1.2 flipped it."""
    for version in ("1.0", "1.1", "1.2"):
        body = "import pickle\nimport warnings\n\n\ndef save(obj, path):\n"
        body += "    with open(path, 'wb') as f:\n        pickle.dump(obj, f)\n\n\n"
        body += "def load(path, weights_only=None):\n"
        if version == "1.1":
            body += (
                "    if weights_only is None:\n"
                "        warnings.warn('You are using `fload.load` with `weights_only=False` "
                "(the current default value). In a future release, the default value for "
                "`weights_only` will be flipped to `True`.', FutureWarning, stacklevel=2)\n"
            )
        if version == "1.2":
            body += (
                "    if weights_only is None or weights_only:\n"
                f"        raise pickle.UnpicklingError('{_WEIGHTS_ONLY}')\n"
            )
        body += "    with open(path, 'rb') as f:\n        return pickle.load(f)\n"
        fakeframe.simple_wheel(wheels, "fload", version, body)


LOAD_TESTS = """\
import fload


def test_reload(tmp_path):
    path = tmp_path / "model.pt"
    fload.save({1, 2}, path)
    assert fload.load(path) == {1, 2}


def test_untouched():
    assert fload.save
"""


def _ftf(wheels: Path) -> None:
    """ftf 1.0 comes with fkeras 2, whose HDF5 saving warns it is legacy; ftf 2.0 and 2.1
    require fkeras 3 (3.0 and 3.1), whose load_model refuses the HDF5 files."""
    saving = (
        "import warnings\n\n\ndef save_model(path):\n"
        "    warnings.warn('You are saving your model as an HDF5 file via `model.save()`. "
        "This file format is considered legacy. We recommend using instead the native "
        "Keras format, e.g. `model.save(\\'my_model.keras\\')`.', UserWarning, stacklevel=2)\n"
        "    open(path, 'w').write('h5')\n\n\n"
    )
    loads = "def load_model(path):\n    return open(path).read()\n"
    refuses = (
        "def load_model(path):\n"
        "    raise ValueError(f'File format not supported: filepath={path}. Keras 3 only "
        "supports V3 `.keras` files.')\n"
    )
    for version, body in (
        ("2.0", saving + loads),
        ("3.0", saving + refuses),
        ("3.1", saving + refuses),
    ):
        files = {"fkeras/__init__.py": "", "fkeras/models.py": body}
        fakeframe.package_wheel(wheels, "fkeras", version, files)
    for version, requires in (
        ("1.0", "fkeras<3"),
        ("2.0", "fkeras>=3,<3.1"),
        ("2.1", "fkeras>=3.1"),
    ):
        body = "from fkeras import models\n\n\ndef save(path):\n    models.save_model(path)\n"
        fakeframe.simple_wheel(wheels, "ftf", version, body, (requires,))


KERAS_TESTS = """\
import ftf
from fkeras import models


def test_reload_h5(tmp_path):
    path = tmp_path / "model.h5"
    ftf.save(str(path))
    assert models.load_model(str(path)) == "h5"
"""


def _run(tmp_path: Path, tooling: Path, name: str, tests: str, matrix: str) -> dict[str, Any]:
    wheels = tmp_path / "wheels"
    root = tmp_path / name
    write_project(root, {"conftest.py": "", "tests/test_it.py": tests})
    (root / "m.toml").write_text(matrix + offline_install(wheels, tooling))
    result = run_matrix(root, "--dfvc-matrix=m.toml", "--dfvc-jobs=2")
    assert result.returncode == 0, result.output
    data = result.matrix("m")
    data["output"] = result.output
    return data


def _cells(matrix: dict[str, Any], axis: str) -> dict[str, dict[str, Any]]:
    return {c["packages"][axis]: c for c in matrix["cells"]}


def _test(cell: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in cell["tests"] if t["nodeid"].endswith(name))


def test_a_changed_default_is_a_parameter_break_warned_before(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Symptom 1: ``unknown: fload.load`` with the message's first line, escape codes and
    all. The message and the warning before it both say a default changed: ``parameter``,
    its message clean and with the line that explains it."""
    require_pythons(finder, "3.11")
    _fload(tmp_path / "wheels")
    matrix = _run(
        tmp_path,
        tooling,
        "p",
        LOAD_TESTS,
        'python = ["3.11"]\n[packages.fload]\nversions = ">=1.0"\nselect = "all"\n',
    )
    cause = _test(_cells(matrix, "fload")["1.2"], "test_reload")["cause"]
    assert cause["category"] == "parameter", matrix["output"]
    assert cause["api"] == "fload.load"
    assert "\x1b" not in cause["message"] and "[1m" not in cause["message"]
    assert "we changed the default value of the `weights_only` argument" in cause["message"]
    assert cause["precursor"]["version"] == "1.1"
    assert "parameter: fload.load" in matrix["output"]


def test_a_framework_release_that_requires_a_new_companion_is_blamed_as_the_release(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Symptom 2: TensorFlow 2.16 requires Keras 3; the tool called Keras a third party,
    split the one break into a group per cell (the temporary path in the message), named
    one cell's Keras for another, and advised a constraint the release itself forbids (or,
    with counterfactual cells, ran one that could not install and called the release
    "incompatible through" Keras)."""
    require_pythons(finder, "3.11")
    _ftf(tmp_path / "wheels")
    matrix = _run(
        tmp_path,
        tooling,
        "k",
        KERAS_TESTS,
        'python = ["3.11"]\n[packages.ftf]\nversions = ">=1.0"\nselect = "all"\n',
    )
    output = matrix["output"]
    cells = _cells(matrix, "ftf")
    assert matrix["ranges"]["ftf"]["incompatible"] == ["2.0", "2.1"], output
    for version, keras in (("2.0", "3.0"), ("2.1", "3.1")):
        cause = _test(cells[version], "test_reload_h5")["cause"]
        assert cause["category"] != "third-party", (version, cause, output)
        assert cause.get("api") == "fkeras.models.load_model", cause
        companion = cause["companion"]
        assert (companion["distribution"], companion["version"]) == ("fkeras", keras)
        assert companion["required_by"] == f"ftf {version}"
        requires = {"2.0": ">=3,<3.1", "2.1": ">=3.1"}[version]
        assert SpecifierSet(companion["requires"].removeprefix("fkeras")) == SpecifierSet(requires)
        # The release's own requirement moved fkeras: incompatible through it, in the
        # release's words, known without a counterfactual cell; no constraint suggested.
        assert "counterfactuals" not in cells[version], cells[version]["counterfactuals"]
        assert cause["through"]["reason"] == f"ftf {version} requires {companion['requires']}"
        assert "constrain" not in cause["suggestion"]
    groups = [g for g in matrix["causes"] if g.get("api") == "fkeras.models.load_model"]
    assert len(groups) == 1, matrix["causes"]
    assert "constrain" not in output.lower(), output
    assert "fkeras 3.0 (required by ftf 2.0)" in output, output
    assert "fkeras 3.1 (required by ftf 2.1)" in output, output


def test_a_warning_that_calls_a_format_legacy_is_kept(
    tmp_path: Path, tooling: Path, finder: InterpreterFinder
) -> None:
    """Symptom 3: on the last good release, exactly the failing tests warn that HDF5 saving
    "is considered legacy"; only "deprecated" and "will be removed" were kept."""
    require_pythons(finder, "3.11")
    _ftf(tmp_path / "wheels")
    matrix = _run(
        tmp_path,
        tooling,
        "k",
        KERAS_TESTS,
        'python = ["3.11"]\n[packages.ftf]\nversions = ["1.0"]\n',
    )
    test = _test(_cells(matrix, "ftf")["1.0"], "test_reload_h5")
    assert test["outcome"] == "passed"
    assert any("considered legacy" in w["message"] for w in test.get("warnings", [])), test

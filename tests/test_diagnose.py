"""Diagnosis over tracebacks: the study's real examples and the fake framework's."""

from __future__ import annotations

from typing import Any, cast

import pytest

from pytest_dfvc.rules import CATEGORIES, RULES
from pytest_dfvc.verdicts.diagnose import diagnose, module_of
from pytest_dfvc.verdicts.results import companions

SITE = "/venv/lib/python3.9/site-packages"


def exc(
    type_: str,
    message: str,
    frames: list[tuple[str, int, str]],
    names: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "type": type_,
        "message": message,
        "frames": [{"file": f, "line": n, "function": fn, "code": ""} for f, n, fn in frames],
        "names": names or {},
    }


CASES = [
    pytest.param(
        exc(
            "AttributeError",
            "module 'tensorflow' has no attribute 'Session'",
            [("tests/test_model.py", 5, "test_run"), ("model.py", 12, "run")],
            {"tf.Session": "tensorflow.Session"},
        ),
        {"tensorflow": "2.0.0"},
        "missing-api",
        "tensorflow.Session",
        "model.py:12",
        id="tf.Session in TF 2",
    ),
    pytest.param(
        exc(
            "TypeError",
            "conv2d() got an unexpected keyword argument 'filters'",
            [("main.py", 202, "<module>"), ("src/model.py", 72, "setup_cnn")],
            {"tf.nn.conv2d": "tensorflow.nn.conv2d"},
        ),
        {"tensorflow": "1.13.1"},
        "parameter",
        "tensorflow.nn.conv2d(filters=)",
        "src/model.py:72",
        id="conv2d(filters=) in TF 1.13",
    ),
    pytest.param(
        exc(
            "TypeError",
            "reduce_max() got an unexpected keyword argument 'keepdims'",
            [("model.py", 17, "DecomNet")],
            {"tf.reduce_max": "tensorflow.reduce_max"},
        ),
        {"tensorflow": "1.4.0"},
        "parameter",
        "tensorflow.reduce_max(keepdims=)",
        "model.py:17",
        id="reduce_max(keepdims=) in TF 1.4",
    ),
    pytest.param(
        exc(
            "TypeError",
            "sum() received an invalid combination of arguments - got (Tensor, axis=int), but expected one of",
            [
                (f"{SITE}/torch/nn/modules/module.py", 493, "__call__"),
                ("pfld/loss.py", 13, "forward"),
            ],
            {"torch.sum": "torch.sum", "torch.cos": "torch.cos"},
        ),
        {"torch": "1.1.0"},
        "parameter",
        "torch.sum",
        "pfld/loss.py:13",
        id="torch.sum(axis=) in torch 1.1",
    ),
    pytest.param(
        exc(
            "RuntimeError",
            "view size is not compatible with input tensor's size and stride (at least one dimension spans across two contiguous subspaces). Use .reshape(...) instead.",
            [("train.py", 329, "validate"), ("utils/eval.py", 16, "accuracy")],
            {"correct": "torch.Tensor"},
        ),
        {"torch": "1.7.0"},
        "usage-constraint",
        "torch.Tensor",
        "utils/eval.py:16",
        id="view() on a non-contiguous tensor",
    ),
    pytest.param(
        exc(
            "RuntimeError",
            "cublas runtime error : the GPU program failed to execute at /pytorch/aten/src/THC/THCBlas.cu:450",
            [
                (f"{SITE}/torch/nn/modules/module.py", 493, "__call__"),
                ("lib/non_local.py", 85, "forward"),
            ],
            {"torch.matmul": "torch.matmul"},
        ),
        {"torch": "1.0.0"},
        "resource",
        "torch.matmul",
        "lib/non_local.py:85",
        id="cuBLAS runtime error",
    ),
    pytest.param(
        exc(
            "RuntimeError",
            "The NVIDIA driver on your system is too old (found version 11040). Please update your "
            "GPU driver by downloading and installing a new version from the URL: "
            "http://www.nvidia.com/Download/index.aspx",
            [
                (f"{SITE}/torch/cuda/__init__.py", 302, "_lazy_init"),
                ("tests/test_gpu.py", 7, "test_kernel"),
            ],
            {"torch.ones": "torch.ones"},
        ),
        {"torch": "2.5.1"},
        "resource",
        "torch.ones",
        "tests/test_gpu.py:7",
        id="driver too old for the CUDA build",
    ),
    pytest.param(
        exc(
            "ImportError",
            "Matplotlib requires numpy>=1.15; you have 1.14.5",
            [
                ("run.py", 22, "<module>"),
                ("visualize.py", 4, "<module>"),
                (f"{SITE}/matplotlib/__init__.py", 171, "_check_versions"),
            ],
        ),
        {"tensorflow": "1.10.0"},
        "third-party",
        None,
        "visualize.py:4",
        id="matplotlib needs newer numpy",
    ),
    pytest.param(
        exc(
            "ValueError",
            "numpy.dtype size changed, may indicate binary incompatibility. Expected 96 from C header, got 88 from PyObject",
            [
                ("tests/test_frame.py", 1, "<module>"),
                (f"{SITE}/pandas/__init__.py", 22, "<module>"),
                (f"{SITE}/pandas/_libs/__init__.py", 13, "<module>"),
            ],
        ),
        {"pandas": "1.3.5"},
        "third-party",
        "pandas",
        "tests/test_frame.py:1",
        id="pandas 1.x beside numpy 2",
    ),
    pytest.param(
        exc("SyntaxError", "invalid syntax (mod.py, line 3)", [("src/mod.py", 3, "<module>")]),
        {"numpy": "1.26.4"},
        "python-version",
        None,
        "src/mod.py:3",
        id="match statement on 3.9",
    ),
    pytest.param(
        exc(
            "ModuleNotFoundError",
            "No module named 'fakeframe.utils'",
            [("tests/test_utils.py", 1, "<module>")],
        ),
        {"fakeframe": "2.0.0"},
        "import-path",
        "fakeframe.utils",
        "tests/test_utils.py:1",
        id="moved module",
    ),
    pytest.param(
        exc(
            "ImportError",
            "cannot import name 'float_' from 'numpy' (/venv/numpy/__init__.py)",
            [("src/pkg/mod.py", 1, "<module>")],
        ),
        {"numpy": "2.0.2"},
        "import-path",
        "numpy.float_",
        "src/pkg/mod.py:1",
        id="name removed from a from-import",
    ),
    pytest.param(
        exc(
            "AssertionError",
            "assert 2.0 == 1.0",
            [("tests/test_scale.py", 8, "test_scale")],
            {"fakeframe.scale": "fakeframe.scale"},
        ),
        {"fakeframe": "1.2.0"},
        "behavior",
        "fakeframe.scale",
        "tests/test_scale.py:8",
        id="silent change of result",
    ),
    pytest.param(
        exc(
            "ValueError",
            "bad input",
            [("tests/test_x.py", 3, "test_x"), (f"{SITE}/fakeframe/ops.py", 4, "conv")],
        ),
        {"fakeframe": "2.0.0"},
        "parameter",
        "fakeframe.ops.conv",
        "tests/test_x.py:3",
        id="value rejected inside the framework",
    ),
    pytest.param(
        exc("ModuleNotFoundError", "No module named 'tomllib'", [("src/cfg.py", 1, "<module>")]),
        {"numpy": "1.26.4"},
        "python-version",
        None,
        "src/cfg.py:1",
        id="tomllib before 3.11",
    ),
    pytest.param(
        exc(
            "AttributeError",
            "module 'typing' has no attribute 'Self'",
            [("src/cfg.py", 3, "<module>")],
        ),
        {"numpy": "1.26.4"},
        "python-version",
        # The standard library's API this Python lacks (issue 30, item 3).
        "typing.Self",
        "src/cfg.py:3",
        id="typing.Self before 3.11",
    ),
    # The API of a missing attribute is the attribute, on the class as users reach it:
    # never pandas' __getattr__ that raised, nor a path with .core stripped out of it.
    pytest.param(
        exc(
            "AttributeError",
            "'Series' object has no attribute 'iteritems'",
            [
                ("ta/trend.py", 41, "_wma"),
                (f"{SITE}/pandas/core/generic.py", 5989, "__getattr__"),
            ],
            {"series.iteritems": "pandas.Series.iteritems", "np.arange": "numpy.arange"},
        ),
        {"pandas": "2.0.3"},
        "missing-api",
        "pandas.Series.iteritems",
        "ta/trend.py:41",
        id="Series.iteritems in pandas 2",
    ),
    pytest.param(
        exc(
            "AttributeError",
            "'DataFrame' object has no attribute 'append'",
            [
                ("pipe/verbs.py", 88, "concat"),
                (f"{SITE}/pandas/core/generic.py", 5989, "__getattr__"),
            ],
        ),
        {"pandas": "2.0.3"},
        "missing-api",
        None,
        "pipe/verbs.py:88",
        id="DataFrame.append, name not resolved: no invented API",
    ),
    pytest.param(
        exc(
            "TypeError",
            "fit() got an unexpected keyword argument 'sample_weight'",
            [
                ("wrap/model.py", 20, "train"),
                (f"{SITE}/sklearn/linear_model/_logistic.py", 1138, "fit"),
            ],
            {"self.model.fit": "sklearn.linear_model.LogisticRegression.fit"},
        ),
        {"scikit-learn": "0.19.2"},
        "parameter",
        "sklearn.linear_model.LogisticRegression.fit(sample_weight=)",
        "wrap/model.py:20",
        id="LogisticRegression.fit",
    ),
    pytest.param(
        exc(
            "ValueError",
            "bad solver",
            [
                ("wrap/model.py", 20, "train"),
                (f"{SITE}/sklearn/linear_model/_logistic.py", 1138, "fit"),
            ],
        ),
        {"scikit-learn": "0.19.2"},
        "parameter",
        "sklearn.linear_model._logistic.fit",
        "wrap/model.py:20",
        id="framework frame without a resolved name: its real module",
    ),
    # patsy 0.5.1 on numpy 2.0, from a real run: the API is the call on the line closest
    # to the error (util.py:70), not a name on the test's line or a variable's type.
    pytest.param(
        {
            **exc(
                "ValueError",
                "Unable to avoid copy while creating an array as requested.",
                [("patsy/test_state.py", 124, "test_Center"), ("patsy/util.py", 70, "asarray")],
                {"np.allclose": "numpy.allclose", "np.array": "numpy.array", "x": "numpy.int64"},
            ),
            "lines": [
                {
                    "names": {"np.allclose": "numpy.allclose", "x": "numpy.int64"},
                    "called": ["np.allclose"],
                },
                {"names": {"np.array": "numpy.array", "a": "numpy.int64"}, "called": ["np.array"]},
            ],
        },
        {"numpy": "2.0.2"},
        "parameter",
        "numpy.array",
        "patsy/util.py:70",
        id="np.array(copy=False) in numpy 2",
    ),
    pytest.param(
        exc("KeyError", "'x'", [("tests/test_x.py", 3, "test_x")]),
        {"fakeframe": "2.0.0"},
        "unknown",
        None,
        "tests/test_x.py:3",
        id="nothing matches",
    ),
]


@pytest.mark.parametrize(("exception", "frameworks", "category", "api", "location"), CASES)
def test_diagnosis(
    exception: dict[str, Any],
    frameworks: dict[str, str],
    category: str,
    api: str | None,
    location: str,
) -> None:
    top_level = {
        "matplotlib": "matplotlib",
        "pandas": "pandas",
        "numpy": "numpy",
        "torch": "torch",
        "tensorflow": "tensorflow",
        "fakeframe": "fakeframe",
        "sklearn": "scikit-learn",
    }
    cause = diagnose(
        exception,
        frameworks=frameworks,
        top_level=top_level,
        resolved={"numpy": "2.1.3", "matplotlib": "3.3.4"},
    )
    assert cause["category"] == category
    assert cause.get("api") == api
    assert cause["location"] == location
    assert cause["exception"] == exception["type"]


def _case(name: str) -> dict[str, Any]:
    exception: dict[str, Any] = next(
        cast("dict[str, Any]", c.values[0]) for c in CASES if c.id == name
    )
    return exception


def test_third_party_names_distribution_version_and_pin() -> None:
    cause = diagnose(
        _case("pandas 1.x beside numpy 2"),
        frameworks={"pandas": "1.3.5"},
        top_level={"pandas": "pandas", "numpy": "numpy"},
        resolved={"numpy": "2.1.3", "pandas": "1.3.5"},
    )
    assert cause["distribution"] == "numpy"
    assert cause["version"] == "2.1.3"
    assert cause["suggestion"] == (
        '[install] exclude-newer = "release" resolves each cell as of its release; '
        "or add the constraint numpy<2"
    )


def test_binary_incompatibility_inside_a_matrix_package_names_the_package() -> None:
    """Matrix over pandas, numpy 2 beside it: numpy is the third party."""
    exception = _case("pandas 1.x beside numpy 2")
    cause = diagnose(
        exception,
        frameworks={"numpy": "2.1.3"},
        top_level={"pandas": "pandas", "numpy": "numpy"},
        resolved={"numpy": "2.1.3", "pandas": "1.3.5"},
    )
    assert cause["category"] == "third-party"
    assert cause["distribution"] == "pandas"


def test_rules_use_known_categories() -> None:
    assert {r.category for r in RULES} <= set(CATEGORIES)


@pytest.mark.parametrize(
    ("path", "module"),
    [
        (f"{SITE}/numpy/core/fromnumeric.py", "numpy.core.fromnumeric"),
        (f"{SITE}/torch/__init__.py", "torch"),
        ("/usr/lib/python3.9/importlib/__init__.py", "importlib"),
        ("tests/test_x.py", None),
    ],
)
def test_module_of(path: str, module: str | None) -> None:
    assert module_of(path) == module


@pytest.mark.parametrize(
    ("log", "python", "cuda", "category", "reason", "status"),
    [
        (
            "  cause: Because numpy==1.23.5 has no usable wheels and you require numpy==1.23.5, we can conclude",
            "3.12",
            None,
            "python-version",
            "numpy 1.23.5 has no wheel for CPython 3.12 on this platform",
            "unavailable",
        ),
        (
            "  cause: Because the current Python version (3.9.18) does not satisfy Python>=3.10 and "
            "fakeframe==2.1.0 depends on Python>=3.10, we can conclude",
            "3.9",
            None,
            "python-version",
            "fakeframe 2.1.0 requires Python>=3.10 (this cell has 3.9.18)",
            "unavailable",
        ),
        (
            "error: Failed to fetch: https://download.pytorch.org/whl/cu121/torch/\n"
            "  cause: client error (Connect)\n  cause: dns error\n",
            "3.11",
            "cu121",
            "install",
            "index unreachable: https://download.pytorch.org/whl/cu121/torch/ (dns error)",
            "error",
        ),
        (
            "  cause: Because there is no version of torch==2.0.1 and you require torch==2.0.1, we can conclude",
            "3.11",
            "cu121",
            "install",
            "torch 2.0.1 has no cu121 build where this variant installs from",
            "unavailable",
        ),
        (
            "error: No solution found when resolving dependencies:\n  cause: Because pandas==1.5.3 depends on numpy>=1.21 and you require numpy<1.20, we can conclude",
            "3.11",
            None,
            "install",
            "No solution found when resolving dependencies:",
            "unavailable",
        ),
        (
            # uv's words for pandas 0.24.2 (its metadata says pytz (>=2011k)), from a real run.
            "error: No solution found when resolving dependencies\n"
            "  cause: Because pandas==0.24.2 has invalid metadata and you require "
            "pandas==0.24.2, we can conclude that your requirements are unsatisfiable.\n\n"
            "hint: Metadata for `pandas` (v0.24.2) could not be parsed:\n"
            "  after parsing `2011`, found `k`, which is not part of a valid version\n"
            "  pytz (>=2011k)\n        ^^^^^^^\n",
            "3.7",
            None,
            "install",
            "pandas 0.24.2 has metadata uv cannot read (pytz (>=2011k): after parsing `2011`, "
            "found `k`, which is not part of a valid version)",
            "unavailable",
        ),
        (
            # A setup.py that imports numpy at build time, as uv reports it.
            "error: The build backend returned an error\n"
            "  cause: Call to `setuptools.build_meta:__legacy__.get_requires_for_build_editable` "
            "failed (exit status: 1)\n\n         [stderr]\n         Traceback (most recent call last):\n"
            '           File "<string>", line 1, in <module>\n'
            "         ModuleNotFoundError: No module named 'numpy'\n",
            "3.11",
            None,
            "install",
            "the project itself could not be built (ModuleNotFoundError: No module named 'numpy')",
            "error",
        ),
        (
            # The project's build environment cannot be made (offline, no setuptools).
            "error: Failed to resolve requirements from `setup.py` build\n"
            "  cause: No solution found when resolving: `setuptools>=40.8.0`\n"
            "  cause: Because setuptools was not found in the provided package locations and "
            "you require setuptools>=40.8.0, we can conclude that your requirements are "
            "unsatisfiable.\n",
            "3.11",
            None,
            "install",
            "the project itself could not be built (Failed to resolve requirements",
            "error",
        ),
        (
            "error: something uv has never said before\n",
            "3.11",
            None,
            "install",
            "something uv has never said before",
            "error",
        ),
    ],
    ids=[
        "no-wheel",
        "requires-python",
        "unreachable",
        "no-variant-build",
        "conflict",
        "bad-metadata",
        "project-build",
        "project-build-environment",
        "unexplained",
    ],
)
def test_install_causes_from_uv(
    log: str, python: str, cuda: str | None, category: str, reason: str, status: str
) -> None:
    """Only evidence that a cell cannot be installed makes it unavailable; an unreachable
    index, a project that fails to build, or words uv never said before are errors."""
    from pytest_dfvc.index.install_causes import install_failure

    found, cause = install_failure(log, python, cuda)
    assert cause.category == category
    assert cause.reason.startswith(reason)
    assert found == status


def test_a_framework_importing_what_another_distribution_removed_is_third_party() -> None:
    """pandas 1.x importing a name numpy 2 removed: numpy moved, not pandas (it was
    diagnosed import-path: pandas)."""
    exception = {
        "type": "ImportError",
        "message": "cannot import name 'old_api' from 'fakedep' (/e/site-packages/fakedep/__init__.py)",
        "frames": [
            {"file": "tests/test_b.py", "line": 1, "function": "<module>", "module": "test_b"},
            {
                "file": "/e/site-packages/fakebase/__init__.py",
                "line": 1,
                "function": "<module>",
                "module": "fakebase",
            },
        ],
    }
    cause = diagnose(
        exception,
        frameworks={"fakebase": "1.0"},
        top_level={"fakebase": "fakebase", "fakedep": "fakedep"},
        resolved={"fakebase": "1.0", "fakedep": "2.0"},
    )
    assert cause["category"] == "third-party"
    assert cause["distribution"] == "fakedep"
    assert cause["version"] == "2.0"
    assert 'exclude-newer = "release"' in cause["suggestion"]


def test_a_cell_resolved_as_of_its_release_is_not_told_to_do_so() -> None:
    """onnx 1.16.0 failed beside onnxruntime 1.17.3 in a cell already resolved as of its
    release, and was told to resolve as of its release: the constraint is the answer."""
    exception = {
        "type": "onnx.onnx_cpp2py_export.checker.ValidationError",
        "message": "Field 'shape' of 'type' is required but missing.",
        "frames": [
            {"file": "src/m.py", "line": 29, "function": "_model", "module": "m"},
            {
                "file": "/e/site-packages/onnx/checker.py",
                "line": 179,
                "function": "check_model",
                "module": "onnx.checker",
            },
        ],
    }
    found = {
        "frameworks": {"onnxruntime": "1.17.3"},
        "top_level": {"onnx": "onnx", "onnxruntime": "onnxruntime"},
        "resolved": {"onnx": "1.16.0", "onnxruntime": "1.17.3"},
    }
    cause = diagnose(exception, **found, in_era=True)  # type: ignore[arg-type]
    assert cause["category"] == "third-party"
    assert cause["suggestion"] == (
        "onnx 1.16.0 does not work beside onnxruntime 1.17.3 even as of the cell's release: "
        "constrain onnx to a release made for it ([install] constraints)"
    )
    outside = diagnose(exception, **found)  # type: ignore[arg-type]
    assert 'exclude-newer = "release"' in outside["suggestion"]
    binary = diagnose(
        _case("pandas 1.x beside numpy 2"),
        frameworks={"pandas": "1.3.5"},
        top_level={"pandas": "pandas", "numpy": "numpy"},
        resolved={"numpy": "2.1.3", "pandas": "1.3.5"},
        in_era=True,
    )
    assert binary["suggestion"] == "add the constraint numpy<2"


def test_the_api_belongs_to_the_package_the_error_names() -> None:
    """Issue 26: an old library calling ``scipy.linalg.pinv2`` beside a scipy that removed it,
    on a numpy axis: the cause was ``missing-api: numpy.ndarray`` (an axis object on the
    failing line). The API is the one the error names, and its package is a third party."""
    exception = {
        **exc(
            "AttributeError",
            "module 'scipy.linalg' has no attribute 'pinv2'",
            [("tests/test_fit.py", 9, "test_fit"), ("lib/fit.py", 30, "solve")],
            {"np.asarray": "numpy.asarray", "x": "numpy.ndarray"},
        ),
        "lines": [{"names": {"np.asarray": "numpy.asarray"}, "called": ["np.asarray"]}],
    }
    found = {
        "frameworks": {"numpy": "1.23.5"},
        "top_level": {"numpy": "numpy", "scipy": "scipy"},
        "resolved": {"numpy": "1.23.5", "scipy": "1.9.3"},
    }
    cause = diagnose(exception, **found)  # type: ignore[arg-type]
    assert cause["category"] == "third-party"
    assert cause["api"] == "scipy.linalg.pinv2"
    assert cause["distribution"] == "scipy" and cause["version"] == "1.9.3"
    imported = diagnose(
        exc(
            "ImportError",
            "cannot import name 'pinv2' from 'scipy.linalg' (/e/site-packages/scipy/linalg/__init__.py)",
            [("tests/test_fit.py", 1, "<module>")],
        ),
        **found,  # type: ignore[arg-type]
    )
    assert (imported["category"], imported["api"]) == ("third-party", "scipy.linalg.pinv2")
    # The standard library's names stay the Python's (python-version), an axis's its own.
    stdlib = diagnose(
        exc("AttributeError", "module 'typing' has no attribute 'Self'", [("t.py", 1, "t")]),
        **found,  # type: ignore[arg-type]
    )
    assert stdlib["category"] == "python-version"


def _torch_load_error() -> dict[str, Any]:
    """torch 2.6's torch.load error, as the recorder keeps it: escape codes, and the line
    that explains it below the first."""
    message = (
        "Weights only load failed. This file can still be loaded, to do so you have two "
        "options, \x1b[1mdo those steps only if you trust the source of the checkpoint"
        "\x1b[0m. \n\t(1) In PyTorch 2.6, we changed the default value of the `weights_only` "
        "argument in `torch.load` from `False` to `True`. Re-running `torch.load` with "
        "`weights_only` set to `False` will likely succeed.\nWeightsUnpickler error: "
        "Unsupported global: GLOBAL builtins.set"
    )
    return {
        "type": "_pickle.UnpicklingError",
        "message": message,
        "frames": [
            {
                "file": "tests/test_model.py",
                "line": 9,
                "function": "test_reload",
                "names": {"torch.load": "torch.load"},
            },
            {
                "file": "/env/lib/python3.11/site-packages/torch/serialization.py",
                "line": 1470,
                "function": "load",
            },
        ],
    }


def test_a_changed_default_is_a_parameter_break_with_the_line_that_says_so() -> None:
    """issue 29, item 1: not ``unknown``, and not the first line alone with its escapes."""
    cause = diagnose(
        _torch_load_error(),
        frameworks={"torch": "2.6.0"},
        top_level={"torch": "torch"},
        resolved={"torch": "2.6.0"},
    )
    assert cause["category"] == "parameter"
    assert cause["message"] == (
        "Weights only load failed. This file can still be loaded, to do so you have two "
        "options, do those steps only if you trust the source of the checkpoint. … (1) In "
        "PyTorch 2.6, we changed the default value of the `weights_only` argument in "
        "`torch.load` from `False` to `True`. Re-running `torch.load` with `weights_only` set "
        "to `False` will likely succeed."
    )


def _keras_error() -> dict[str, Any]:
    return {
        "type": "ValueError",
        "message": "File format not supported: filepath=/tmp/pytest-of-me/pytest-7/t0/m.h5.",
        "frames": [
            {
                "file": "tests/test_layers.py",
                "line": 12,
                "function": "test_reload",
                "names": {"keras.models.load_model": "keras.models.load_model"},
            },
            {
                "file": "/env/lib/python3.11/site-packages/keras/src/saving/saving_api.py",
                "line": 190,
                "function": "load_model",
            },
        ],
    }


def test_a_companion_the_release_requires_is_the_releases_not_a_third_party() -> None:
    """issue 29, item 2: tensorflow-cpu 2.16.2 requires keras>=3.0.0; keras 3.6.0 raises."""
    resolved = {"tensorflow-cpu": "2.16.2", "keras": "3.6.0", "numpy": "1.26.4"}
    brought = companions({"tensorflow-cpu": ["keras>=3.0.0", "numpy<2.0.0,>=1.23.5"]}, resolved)
    assert brought == {
        "keras": {
            "distribution": "keras",
            "version": "3.6.0",
            "required_by": "tensorflow-cpu 2.16.2",
            "requires": "keras>=3.0.0",
        },
        "numpy": {
            "distribution": "numpy",
            "version": "1.26.4",
            "required_by": "tensorflow-cpu 2.16.2",
            "requires": "numpy<2.0.0,>=1.23.5",
        },
    }
    found = {
        "frameworks": {"tensorflow-cpu": "2.16.2"},
        "top_level": {"tensorflow": "tensorflow-cpu", "keras": "keras"},
        "resolved": resolved,
    }
    cause = diagnose(_keras_error(), **found, companions=brought)  # type: ignore[arg-type]
    assert cause["category"] == "parameter"
    # keras's own code: its API (the failing frame's, here), not a third party's.
    assert cause["api"].startswith("keras.") and cause["api"].endswith("load_model")
    assert cause["companion"]["required_by"] == "tensorflow-cpu 2.16.2"
    assert "suggestion" not in cause
    # Without the release's requirement, keras is a third party, as before.
    alone = diagnose(_keras_error(), **found)  # type: ignore[arg-type]
    assert alone["category"] == "third-party"


def test_a_dependency_that_moved_to_a_new_major_on_its_own_is_no_companion() -> None:
    """pandas 2.2 asks numpy>=1.22.4: numpy 2.0.2 went to its new major by itself."""
    resolved = {"pandas": "2.2.0", "numpy": "2.0.2"}
    assert companions({"pandas": ["numpy>=1.22.4"]}, resolved) == {}
    assert companions({"pandas": ["numpy>=1.22.4"]}, {**resolved, "numpy": "1.26.4"}) != {}


def test_an_assertion_helper_of_a_companion_is_the_tests_own_assertion() -> None:
    """imbalanced-learn 0.5.0 under scikit-learn 0.22: ``assert_allclose`` failed inside
    numpy.testing, and numpy (scikit-learn requires numpy>=1.11.0, the major installed) was
    reported as "raised in what the release requires" although numpy was the same in the
    passing cell: the helper only checked the test's values. An assertion helper raises on
    the test's behalf, whichever distribution ships it."""
    resolved = {"scikit-learn": "0.22.2.post1", "numpy": "1.17.5"}
    brought = companions({"scikit-learn": ["numpy>=1.11.0"]}, resolved)
    assert "numpy" in brought
    error = {
        "type": "AssertionError",
        "message": "Not equal to tolerance rtol=0.0001, atol=0",
        "frames": [
            {"file": "imblearn/tests/test_cluster_centroids.py", "line": 43, "function": "test_x"},
            {
                "file": "/env/lib/python3.7/site-packages/numpy/testing/_private/utils.py",
                "line": 1533,
                "function": "assert_allclose",
            },
            {
                "file": "/env/lib/python3.7/site-packages/numpy/testing/_private/utils.py",
                "line": 846,
                "function": "assert_array_compare",
            },
        ],
    }
    cause = diagnose(
        error,
        frameworks={"scikit-learn": "0.22.2.post1"},
        top_level={"sklearn": "scikit-learn", "numpy": "numpy"},
        resolved=resolved,
        companions=brought,
    )
    assert "companion" not in cause
    assert cause["category"] != "third-party"


def test_uv_wrapped_to_a_narrow_terminal_reads_as_unwrapped() -> None:
    """Under pytest-xdist (COLUMNS=80) or in a narrow terminal uv wraps its explanation;
    "no wheel for CPython 3.9" became an ``install`` cause with uv's raw text."""
    wrapped = (
        "  × No solution found when resolving dependencies:\n"
        "  ╰─▶ Because shaped==2.0 has no wheels with a matching\n"
        "      Python implementation tag (e.g., `cp39`) and you require\n"
        "      shaped==2.0, we can conclude that your requirements are\n"
        "      unsatisfiable.\n"
    )
    from pytest_dfvc.index.install_causes import install_failure

    status, cause = install_failure(wrapped, "3.9")
    assert (status, cause.category) == ("unavailable", "python-version")
    assert cause.reason == "shaped 2.0 has no wheel for CPython 3.9"

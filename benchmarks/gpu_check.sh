#!/usr/bin/env bash
# The GPU check: a small real torch matrix (two releases x cpu and one CUDA variant) on a
# machine with an NVIDIA GPU. Such machines reach no package index, so everything comes from
# disk. Run from the repository root:
#
#   bash benchmarks/gpu_check.sh prepare   # here, with the index: wheels for pytest-dfvc,
#                                          # nox, uv and pytest into benchmarks/.gpu-wheels
#   bash benchmarks/gpu_check.sh           # on the GPU machine (carry benchmarks/.gpu-wheels):
#                                          # results into $OUT, or ./gpu-check
#
# Torch and its CUDA libraries come from the GPU machine's own wheel folders: TORCH_WHEELS,
# colon-separated (default /opt/wheels:/opt/pypi-more/files:/opt/pypi/files). The matrix takes
# the two newest torch releases found there for Python $PY (default 3.11), variants cpu and
# $CUDA_VARIANT (default cu130, the build of PyPI's torch 2.12-2.14); the pre-check says which
# release has which build.
set -euo pipefail
here=$(pwd)
wheels="$here/benchmarks/.gpu-wheels"
py_minor="${PY:-3.11}"

if [ "${1:-}" = "prepare" ]; then
  rm -rf "$wheels" && mkdir -p "$wheels"
  python3 -m pip wheel -q -w "$wheels" . pytest
  du -sh "$wheels"
  exit 0
fi

out="${OUT:-$here/gpu-check}"
mkdir -p "$out"
exec > >(tee "$out/run.txt") 2>&1
echo "== device"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || echo "no nvidia-smi"
python=$(command -v "python$py_minor" || ls ~/.pyenv/versions/"$py_minor"*/bin/python 2>/dev/null | head -1)
echo "python: $python"

IFS=: read -r -a folders <<< "${TORCH_WHEELS:-/opt/wheels:/opt/pypi-more/files:/opt/pypi/files}"
tag="cp${py_minor/./}"
echo "== torch wheels for $tag"
found=$(for f in "${folders[@]}"; do ls "$f"/torch-*-"$tag"-*.whl 2>/dev/null || true; done)
echo "${found:-none}"
releases=$(echo "$found" | sed -n 's/.*torch-\([0-9.]*\)[+-].*/\1/p' | sort -uV | tail -2)
[ -n "$releases" ] || { echo "no torch wheel for $tag in ${folders[*]}"; exit 1; }

venv=$(mktemp -d)/venv
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --no-index --find-links "$wheels" pytest-dfvc pytest

work=$(mktemp -d)
mkdir -p "$work/tests" "$work/matrices"
printf '[pytest]\n' > "$work/pytest.ini"
cat > "$work/tests/test_torch.py" <<'PY'
import pytest
import torch


def test_matmul_cpu():
    a = torch.ones(64, 64)
    assert (a @ a)[0, 0].item() == 64


@pytest.mark.dfvc_gpu
def test_matmul_gpu(dfvc_record):
    a = torch.ones(256, 256, device="cuda")
    dfvc_record("gpu", torch.cuda.get_device_name(0))
    dfvc_record("cuda", torch.version.cuda)
    assert (a @ a)[0, 0].item() == 256
PY
links=$(printf '"%s", ' "$wheels" "${folders[@]}")
versions=$(printf '"%s", ' $releases)
cat > "$work/matrices/torch.toml" <<TOML
python = ["$py_minor"]
cuda = ["cpu", "${CUDA_VARIANT:-cu130}"]
[packages.torch]
versions = [${versions%, }]
[install]
no-index = true
find-links = [${links%, }]
[install.cuda.cpu]
torch-backend = false
[install.cuda.${CUDA_VARIANT:-cu130}]
torch-backend = false
TOML
cat "$work/matrices/torch.toml"
cd "$work"
"$venv/bin/pytest" --dfvc-matrix --dfvc-jobs=4 || echo "pytest exit $?"
cp .dfvc/results.json .dfvc/report.md "$out/"

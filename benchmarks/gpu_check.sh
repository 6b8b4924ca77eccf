#!/usr/bin/env bash
# The GPU check: a small real torch matrix (two releases x cpu and cu121) on a machine with an
# NVIDIA GPU, results into $OUT (or ./gpu-check). Run from the repository root:
#   bash benchmarks/gpu_check.sh
set -euo pipefail
out="${OUT:-gpu-check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/device.txt"
python3 -m venv /tmp/dfvc-gpu && /tmp/dfvc-gpu/bin/pip install -q -e .
work=$(mktemp -d)
mkdir -p "$work/tests" "$work/matrices"
cat > "$work/tests/test_torch.py" <<'PY'
import pytest
import torch

def test_matmul_cpu():
    a = torch.ones(64, 64)
    assert (a @ a)[0, 0].item() == 64

@pytest.mark.dfvc_gpu
def test_matmul_gpu(dfvc_record):
    assert torch.cuda.is_available()
    a = torch.ones(256, 256, device="cuda")
    dfvc_record("device", torch.cuda.get_device_name(0))
    assert (a @ a)[0, 0].item() == 256
PY
touch "$work/conftest.py"
cat > "$work/matrices/torch.toml" <<'TOML'
python = ["3.11"]
cuda = ["cpu", "cu121"]
[packages.torch]
versions = ["2.3.1", "2.4.1"]
TOML
cd "$work"
/tmp/dfvc-gpu/bin/pytest --dfvc-matrix --dfvc-jobs=4 2>&1 | tee "$OLDPWD/$out/run.txt" || true
cp .dfvc/results.json .dfvc/report.md "$OLDPWD/$out/"

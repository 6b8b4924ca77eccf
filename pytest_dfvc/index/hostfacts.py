"""Facts about the host the controller runs on, for the results: its GPUs (read with
nvidia-smi when it exists; no GPU library is imported) and, for a shard, its platform.

The in-cell recorder keeps a probe of its own (``recorder.gpu_present``): it runs inside
the cells on whatever Python they have and cannot import this package.
"""

from __future__ import annotations

import platform
import shutil
import subprocess

from .. import __version__
from ..model import DeviceFacts


def device_facts() -> DeviceFacts:
    """The GPUs the cells run on; otherwise "no device"."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {"device": "no device"}
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"device": "no device", "note": "nvidia-smi did not answer"}
    gpus = [line.split(",") for line in out.stdout.strip().splitlines() if "," in line]
    if out.returncode != 0 or not gpus:
        return {"device": "no device", "note": "nvidia-smi found no GPU"}
    return {
        "device": "gpu",
        "gpus": [g[0].strip() for g in gpus],
        "driver": gpus[0][1].strip(),
    }


class RunnerFacts(DeviceFacts, total=False):
    os: str
    machine: str
    controller_python: str
    plugin: str


def runner_facts() -> RunnerFacts:
    return {
        **device_facts(),
        "os": platform.platform(),
        "machine": platform.machine(),
        "controller_python": platform.python_version(),
        "plugin": __version__,
    }

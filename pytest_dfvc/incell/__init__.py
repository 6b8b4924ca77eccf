"""Code that runs inside every cell's environment, on whatever Python it has (3.7 on): the
recorder, copied there alone as ``dfvc_recorder.py``. Standard library, pytest and packaging
(pytest's own dependency) only."""

from pathlib import Path

# The file copied into every cell's runtime folder (``cells.provision.Workspace``).
RECORDER_SOURCE = Path(__file__).with_name("recorder.py")

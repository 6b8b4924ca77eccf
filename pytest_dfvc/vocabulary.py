"""The words of the matrix files, the options and the results, as types: each a ``Literal``
with the tuple of its values for checking input and for help texts. Nothing else lives
here, so every module (the plugin's front door included) can import it for nothing."""

from __future__ import annotations

from typing import Literal

# --dfvc-strategy / dfvc_strategy: which cells to run.
Strategy = Literal["grid", "walk", "bisect"]
STRATEGIES: tuple[Strategy, ...] = ("grid", "walk", "bisect")

# [packages.NAME] select: which releases of a package's range become cells.
Select = Literal["all", "latest-patch", "latest-minor"]
SELECTS: tuple[Select, ...] = ("all", "latest-patch", "latest-minor")

# [install] resolution: how the rest of a cell's environment is resolved.
Resolution = Literal["highest", "lowest-direct", "locked"]
RESOLUTIONS: tuple[Resolution, ...] = ("highest", "lowest-direct", "locked")

# A cell's status and a test's outcome (docs/reference/results.md).
Status = Literal["passed", "failed", "unavailable", "error", "skipped"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "unavailable", "error", "skipped")
# "flaky": failed, then passed when run again (evidence neither way). "other-package":
# failed, and passed with the packages that changed beside the axis set back (a
# counterfactual run, culprit.py): evidence for the axis's version.
Outcome = Literal["passed", "failed", "error", "skipped", "flaky", "other-package"]
OUTCOMES: tuple[Outcome, ...] = (
    "passed",
    "failed",
    "error",
    "skipped",
    "flaky",
    "other-package",
)

"""How far a cell's nox session got, written to the cell's ``phase`` file: the session writes
it, the controller reads it to tell an environment that could not be built (unavailable)
from a test run that broke (error). Its own module, so neither side imports the other; with
the pytest exit statuses that end a session well."""

PHASE_INSTALL = "install"
PHASE_TEST = "test"
# The end of the test run, in a cell's stage times only (it is no phase: nothing is left
# to break after it).
STAGE_DONE = "done"

# pytest's exit statuses that end a cell's session well: failing tests (1) are the
# controller's finding, and "no tests" (5) its own verdict (untested).
FINDINGS_CODES = (0, 1, 5)

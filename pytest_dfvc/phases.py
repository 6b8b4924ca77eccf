"""How far a cell's nox session got, written to the cell's ``phase`` file: the session writes
it, the controller reads it to tell an environment that could not be built (unavailable)
from a test run that broke (error). Its own module, so neither side imports the other."""

PHASE_INSTALL = "install"
PHASE_TEST = "test"

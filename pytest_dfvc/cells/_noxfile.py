"""The noxfile the controller hands to nox: it registers the cells of the current run.

``DFVC_SESSIONS`` names the plan file (a JSON list of session specs) the controller wrote.
"""

import os

from pytest_dfvc.cells.session import register_from_file

register_from_file(os.environ["DFVC_SESSIONS"])

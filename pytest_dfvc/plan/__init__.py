"""What to run: the matrix files, their expansion into cells (versions, eras, interpreters),
refinement, the search strategies' walks, the pre-check against the index, the uv arguments
of a cell's resolution, and ``--dfvc-init``."""

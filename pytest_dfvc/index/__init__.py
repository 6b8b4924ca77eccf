"""The package index and uv as they are: index pages and release lists, uv's configuration
and executable, old releases' metadata, what uv's refusals say, the interpreters and the
GPU on this machine, CUDA builds. Knows nothing of matrices or cells."""

"""pytest-dfvc: which framework versions does your code really work with?"""

__version__ = "0.1.0"

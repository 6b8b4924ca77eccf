"""Hooks a project's ``conftest.py`` (or another plugin) can implement."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    # diagnose compiles its rule table on import: plain pytest runs do without it.
    from .rules import Rule


@pytest.hookspec
def pytest_dfvc_rules() -> list[Rule | tuple[str, ...]]:
    """Extra diagnosis rules, tried before the built-in ones, in order.

    Return a list of rules, each a :class:`pytest_dfvc.rules.Rule` or a plain tuple of its
    fields ``(category, exception pattern, message pattern[, raised_in])``; every
    implementation's rules are used. Plain tuples keep a ``conftest.py`` importable inside
    the cells, where pytest-dfvc is not installed::

        def pytest_dfvc_rules():
            return [("resource", r"RuntimeError$", r"NCCL error")]
    """
    raise NotImplementedError  # pragma: no cover - a specification, never called

"""The diagnosis rules as data: an ordered table of (category, exception pattern, message
pattern, where the error was raised); the first that matches a failure names its cause. A
project adds its own through the ``pytest_dfvc_rules`` hook; they are tried first."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .records import KIND_RULES

CATEGORIES = (
    "python-version",
    "missing-api",
    "import-path",
    "parameter",
    "third-party",
    "resource",
    "usage-constraint",
    "behavior",
    "install",
    "crash",
    "timeout",
    "missing-dependency",
    "no-tests",
    "pytest-usage",
    "unknown",
)


@dataclass(frozen=True)
class Rule:
    """Matches an exception; ``raised_in`` is 'framework', 'other' (another distribution),
    'project' or 'any'."""

    category: str
    exception: str
    message: str = ""
    raised_in: str = "any"

    def matches(self, exc_type: str, message: str, raised_in: str) -> bool:
        return (
            re.search(self.exception, exc_type) is not None
            and re.search(self.message, message, re.IGNORECASE) is not None
            and self.raised_in in ("any", raised_in)
        )


RULE_SHAPE = (
    "expected a Rule or a tuple (category, exception pattern, message pattern[, raised_in])"
)


def make_rule(fields: object) -> Rule:
    """A rule from what ``pytest_dfvc_rules`` returned (a Rule, or its fields); ValueError
    says what is wrong with it."""
    if isinstance(fields, Rule):
        return fields
    if not isinstance(fields, (tuple, list)) or not 2 <= len(fields) <= 4:
        raise ValueError(f"pytest_dfvc_rules returned {fields!r}: {RULE_SHAPE}")
    if not all(isinstance(f, str) for f in fields):
        raise ValueError(f"pytest_dfvc_rules returned {fields!r}: every field is a string")
    rule = Rule(*fields)
    for pattern in (rule.exception, rule.message):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"pytest_dfvc_rules returned {fields!r}: {pattern!r} is not a regular "
                f"expression ({exc})"
            ) from None
    if rule.raised_in not in ("any", "framework", "other", "project"):
        raise ValueError(
            f"pytest_dfvc_rules returned {fields!r}: raised_in is one of any, framework, "
            "other, project"
        )
    return rule


def recorded_rules(records: Sequence[Mapping[str, Any]]) -> tuple[list[Rule], list[str]]:
    """The project's rules as a cell's recorder found them (its conftest.py files load in
    the cells only), and what was wrong with those that are not rules."""
    rules: list[Rule] = []
    problems: list[str] = []
    for record in records:
        if record.get("kind") != KIND_RULES:
            continue
        for fields in record.get("rules", []):
            if isinstance(fields, dict):
                fields = fields.get("invalid")
            try:
                rule = make_rule(fields)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if rule not in rules:
                rules.append(rule)
    return rules, problems


BINARY = (
    r"dtype size changed|binary incompatib|compiled against (API|ABI) version|"
    r"compiled using NumPy 1\.x cannot be run|numpy\.core\.multiarray failed to import|"
    r"_ARRAY_API not found"
)


RULES: tuple[Rule, ...] = (
    # The controller's own marker for a test during which the test process died.
    Rule("crash", r"^dfvc\.Crash$"),
    # The controller's marker for the test that was running when the cell ran out of time.
    Rule("timeout", r"^dfvc\.Timeout$"),
    Rule("python-version", r"(^|\.)SyntaxError$|(^|\.)IndentationError$"),
    Rule("python-version", r"TypeError$", r"object is not subscriptable", "project"),
    Rule("third-party", r".", BINARY),
    Rule(
        "resource",
        r".",
        r"\bCUDA\b|cuDNN|CUBLAS|cublas|out of memory|no CUDA GPUs|NVIDIA driver|"
        r"driver version is insufficient|no kernel image is available|device-side assert",
    ),
    Rule(
        "usage-constraint",
        r"RuntimeError$",
        r"view size is not compatible|contiguous|in-?place operation|"
        r"modified by an inplace|does not require grad|must match the size|on different devices",
    ),
    # A default that changed under the caller (torch 2.6's ``torch.load(weights_only=)``):
    # the framework's message says so, often below its first line.
    Rule(
        "parameter",
        r".",
        r"changed the default|now defaults? to|"
        r"default value (?:of|for) .{0,80}(?:changed|will change|flipped|is now)",
        "framework",
    ),
    Rule("third-party", r"(ImportError|ModuleNotFoundError)$", "", "other"),
    Rule("import-path", r"(ImportError|ModuleNotFoundError)$"),
    Rule("missing-api", r"AttributeError$", r"has no attribute"),
    # NumPy 2 made copy=False mean "never copy": old code asking for it now raises.
    Rule("parameter", r"ValueError$", r"Unable to avoid copy while creating an array"),
    Rule(
        "parameter",
        r"TypeError$",
        r"unexpected keyword argument|required (positional|keyword)|positional arguments? but|"
        r"invalid combination of arguments|multiple values for argument|"
        r"got an unexpected|takes no (keyword )?arguments",
    ),
    Rule("parameter", r"(TypeError|ValueError|NotImplementedError)$", "", "framework"),
    Rule("third-party", r".", "", "other"),
    Rule("behavior", r"AssertionError$|(^|\.)Failed$", "", "project"),
)

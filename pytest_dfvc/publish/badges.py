"""README badges from results, without any network: an SVG per axis (shields.io's flat
style, text measured with Verdana's widths) and a shields.io endpoint JSON beside it.

No maintained offline badge library fits: anybadge is fine but would be the only extra
runtime dependency for ~60 lines of template; pybadges imports ``pkg_resources``, gone from
current setuptools; genbadge calls shields.io unless told otherwise. So: a small renderer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from packaging.version import Version

from ..files import write_text_atomic
from ..model import Document, MatrixJSON, RangeJSON

COLORS = {
    "brightgreen": "#4c1",
    "green": "#97ca00",
    "yellowgreen": "#a4a61d",
    "yellow": "#dfb317",
    "blue": "#007ec6",
    "red": "#e05d44",
    "lightgrey": "#9f9f9f",
}

# Advance widths of Verdana at 11px (tenths of a pixel), as shields.io measures; others 7px.
_WIDTHS = {
    **dict.fromkeys("abcdeghknopqsuvxyz", 65),
    **dict.fromkeys("fjrt", 41),
    "i": 30,
    "l": 30,
    "m": 106,
    "w": 88,
    **dict.fromkeys("0123456789", 70),
    **dict.fromkeys("ABCDEFGHKLNOPRSTUVXYZ", 73),
    "I": 42,
    "J": 50,
    "M": 86,
    "Q": 86,
    "W": 99,
    " ": 35,
    ".": 35,
    ",": 35,
    ":": 39,
    "|": 49,
    "-": 50,
    "–": 70,
    "(": 45,
    ")": 45,
    "+": 91,
    "<": 91,
    ">": 91,
    "=": 91,
    "!": 39,
    "_": 70,
    "/": 50,
}


@dataclass(frozen=True)
class Badge:
    label: str
    message: str
    color: str

    def endpoint(self) -> dict[str, str | int]:
        """shields.io's endpoint schema: ``img.shields.io/endpoint?url=<where this is served>``."""
        return {
            "schemaVersion": 1,
            "label": self.label,
            "message": self.message,
            "color": self.color,
        }


def text_width(text: str) -> float:
    return sum(_WIDTHS.get(ch, 70) for ch in text) / 10


def render_svg(badge: Badge) -> str:
    """A flat badge, laid out as shields.io does (5px padding either side of each text)."""
    left = round(text_width(badge.label) + 10)
    right = round(text_width(badge.message) + 10)
    total = left + right
    color = COLORS.get(badge.color, badge.color)
    label, message = escape(badge.label), escape(badge.message)
    title = escape(f"{badge.label}: {badge.message}")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{title}"><title>{title}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" '
        'stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{color}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'font-size="11">'
        f'<text x="{left / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{label}</text>'
        f'<text x="{left / 2:.1f}" y="14">{label}</text>'
        f'<text x="{left + right / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{message}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{message}</text></g></svg>'
    )


def _short(version: str, width: int | None) -> str:
    if width is None:
        return version
    return ".".join(str(p) for p in Version(version).release[:width])


def axis_badge(
    name: str, entry: RangeJSON, *, width: int | None, cudas: Sequence[str] = ()
) -> Badge:
    """``numpy | 1.19 – 1.23``; ``python | 3.10 | 3.11``. Colour by health: green when every
    version in the range was tested and passed, yellowgreen with holes, blue when the range
    rests on inferred versions, red when nothing passed."""
    compatible = entry["compatible"]
    if not compatible:
        return Badge(name, "none compatible" if entry["incompatible"] else "untested", "red")
    versions = sorted(compatible, key=Version)
    if name == "python":
        message = " | ".join(versions)
    else:
        low, high = _short(versions[0], width), _short(versions[-1], width)
        message = low if low == high else f"{low} – {high}"
    if cudas:
        message += f" ({', '.join(cudas)})"
    holes = any(
        Version(versions[0]) < Version(v) < Version(versions[-1]) for v in entry["incompatible"]
    )
    if entry.get("inferred"):
        color = "blue"
    elif holes:
        color = "yellowgreen"
    else:
        color = "brightgreen"
    return Badge(name, message, color)


def matrix_badges(matrix: MatrixJSON, widths: dict[str, int | None]) -> dict[str, Badge]:
    ranges = matrix["ranges"]
    cudas = sorted(ranges["cuda"]["compatible"]) if "cuda" in ranges else []
    badges = {}
    for axis, entry in ranges.items():
        if axis == "cuda":
            continue
        badges[axis] = axis_badge(
            axis, entry, width=widths.get(axis), cudas=cudas if axis != "python" else ()
        )
    return badges


def write_badges(
    results: Document, folder: Path, widths: dict[str, dict[str, int | None]], base: Path
) -> list[str]:
    """``<folder>/<matrix>-<axis>.svg`` and ``.json``; returns Markdown lines to paste, with
    paths relative to ``base`` (where the README is)."""
    snippets = []
    for matrix in results["matrices"]:
        for axis, badge in matrix_badges(matrix, widths.get(matrix["name"], {})).items():
            stem = f"{matrix['name']}-{axis}"
            write_text_atomic(folder / f"{stem}.svg", render_svg(badge))
            write_text_atomic(folder / f"{stem}.json", json.dumps(badge.endpoint()) + "\n")
            where = Path(os.path.relpath(folder / f"{stem}.svg", base)).as_posix()
            snippets.append(f"![{badge.label}: {badge.message}]({where})")
    return snippets

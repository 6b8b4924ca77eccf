"""Text as the terminal and the reports show it."""

from __future__ import annotations


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut at a word with an ellipsis when longer (a
    warning cut mid-word, with nothing to say it was cut, reads as the whole of it)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit // 2 else head).rstrip(" ,;:") + "…"

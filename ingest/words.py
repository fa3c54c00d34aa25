"""Counts in words for people: '1 batch', '2 batches'."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 batch', '2 batches': the count with the word in the right number."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"

"""Counting a post as Mastodon and Bluesky do: in graphemes, what a reader sees as one character (an emoji with its
skin tone, a flag, a letter with its accents), not code points. Python's len() counts code points."""

from __future__ import annotations

import regex

_GRAPHEME = regex.compile(r"\X")  # an extended grapheme cluster (Unicode Standard Annex #29)


def grapheme_count(text: str) -> int:
    return len(_GRAPHEME.findall(text))

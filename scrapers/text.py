"""One rule for characters that never belong in a corpus or a post: control characters, and the invisible ones
that steer how text is shown.

Tabs and newlines are text; every other control character (NUL, ESC and the terminal sequences it starts, DEL,
U+0080-U+009F) is removed on the way in, by every source, so SQLite and PostgreSQL store the same thing (PostgreSQL
refuses NUL in text) and nothing stored can drive a terminal when printed. So are the bidirectional overrides,
embeddings, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C: they reorder what a reader
sees, the "Trojan Source" trick) and the invisible zero-width ones (U+200B, U+2060-U+2064, U+FEFF, U+180E). The
zero-width joiner and non-joiner (U+200D, U+200C) stay: emoji sequences and several scripts need them.
"""

from __future__ import annotations

import re

KEPT_CONTROLS = "\t\n"  # the control characters that are text
# C0 except \t and \n (\r goes too), DEL, C1; bidirectional controls; invisible zero-width characters
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064"
                     "\u2066-\u206f\ufeff]")
ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")  # CSI, OSC, 2-byte


def strip_controls(text: str) -> str:
    """`text` without control characters; a terminal escape sequence goes whole ("\\x1b[31mRED" -> "RED")."""
    return CONTROL.sub("", ESCAPE_SEQUENCE.sub("", text))


def has_controls(text: str) -> bool:
    return CONTROL.search(text) is not None


def printable(text: str) -> str:
    """`text` safe to print: each control character shown as an escape ("\\x1b"), tabs and newlines kept."""
    return CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), text)

"""Names of corpora, models and bots: safe as directory names, checked the same way everywhere; and the bound on
the ids people type."""

import re

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"  # the whole name (re.fullmatch: "$" lets a final newline by)
MAX_ID = 2**63 - 1  # the largest id a database row can have (a signed 64-bit integer, SQLite and PostgreSQL alike)
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"  # NAME_PATTERN, for people


def is_valid_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None


def check_name(name: str) -> str:
    """`name` unchanged, or ValueError with the rule in words (pydantic and the CLI show it to the user)."""
    if not is_valid_name(name):
        raise ValueError(f"use {NAME_RULE}")
    return name

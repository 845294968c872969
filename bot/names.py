"""Names of corpora, models and bots: safe as directory names, checked the same way everywhere."""

import re

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_valid_name(name: str) -> bool:
    return re.match(NAME_PATTERN, name) is not None

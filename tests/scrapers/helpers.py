"""Shared by the importer tests: write a file's bytes, and the sentence an import of it is refused with."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrapers.errors import ImportFormatError
from scrapers.files import read_documents


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def import_error(path: Path, **options: object) -> str:
    with pytest.raises(ImportFormatError) as caught:
        list(read_documents(path, **options))
    return str(caught.value)

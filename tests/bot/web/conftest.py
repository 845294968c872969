"""Fixtures for the review page: an app on the `store` fixture (SQLite and PostgreSQL), a client, a login."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from bot.config import load_bots_file, load_settings
from tests.bot.service.helpers import file_bot, write_bots
from tests.bot.web.helpers import PASSWORD, Web


@pytest.fixture
def bots_toml(tmp_path: Path) -> Path:
    return write_bots(tmp_path / "bots.toml", file_bot("fb") + file_bot("xb", destination="xb.jsonl"))


@pytest.fixture
def make_web(store, bots_toml: Path):  # type: ignore[no-untyped-def]
    """Build the app (optionally with other bots.toml text or a base URL) and a client on it."""
    with warnings.catch_warnings():  # Starlette asks for httpx2, which is not installed here
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from bot.web.app import create_app

    def make(*, base_url: str = "http://testserver", toml: Path | None = None) -> Web:
        settings = load_settings(bot_review_password=PASSWORD)
        bots = load_bots_file(toml or bots_toml)
        client = TestClient(create_app(store, settings, bots), base_url=base_url)
        return Web(client, store, settings, bots)

    return make


@pytest.fixture
def web(make_web) -> Web:  # type: ignore[no-untyped-def]
    return make_web()


@pytest.fixture
def logged_in(web: Web) -> Web:
    assert web.login().status_code == 303
    return web

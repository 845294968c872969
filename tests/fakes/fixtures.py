"""Fixtures that start the fake APIs and point REDDIT_URL, REDDIT_OAUTH_URL and X_API_URL at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import reddit, x


@pytest.fixture
def fake_reddit(monkeypatch: pytest.MonkeyPatch) -> Iterator[reddit.FakeReddit]:
    """A fake Reddit; REDDIT_* credentials are left unset (public listings) for each test to set."""
    with reddit.FakeReddit() as fake:
        monkeypatch.setenv("REDDIT_URL", fake.www.url)
        monkeypatch.setenv("REDDIT_OAUTH_URL", fake.oauth.url)
        yield fake


@pytest.fixture
def reddit_app(monkeypatch: pytest.MonkeyPatch, fake_reddit: reddit.FakeReddit) -> reddit.FakeReddit:
    """The fake Reddit with a script app's id and secret set, but no login: app-only access."""
    monkeypatch.setenv("REDDIT_CLIENT_ID", reddit.CLIENT_ID)
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", reddit.CLIENT_SECRET)
    return fake_reddit


@pytest.fixture
def fake_x(monkeypatch: pytest.MonkeyPatch) -> Iterator[x.FakeX]:
    """A fake X with X_BEARER_TOKEN set to the token it accepts."""
    with x.FakeX() as fake:
        monkeypatch.setenv("X_API_URL", fake.url)
        monkeypatch.setenv("X_BEARER_TOKEN", x.BEARER_TOKEN)
        yield fake

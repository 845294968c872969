"""Fixtures that start the fake APIs and point REDDIT_URL, REDDIT_OAUTH_URL and X_API_URL at them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import bluesky, mastodon, reddit, x


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


@pytest.fixture
def reddit_account(monkeypatch: pytest.MonkeyPatch, reddit_app: reddit.FakeReddit) -> reddit.FakeReddit:
    """The fake Reddit with a script app and its developer's login set: what posting needs."""
    monkeypatch.setenv("REDDIT_USERNAME", reddit.USERNAME)
    monkeypatch.setenv("REDDIT_PASSWORD", reddit.PASSWORD)
    return reddit_app


@pytest.fixture
def x_account(monkeypatch: pytest.MonkeyPatch, fake_x: x.FakeX) -> x.FakeX:
    """The fake X with the app's key and secret and the account's access token set: what posting needs."""
    monkeypatch.setenv("X_API_KEY", x.API_KEY)
    monkeypatch.setenv("X_API_SECRET", x.API_SECRET)
    monkeypatch.setenv("X_ACCESS_TOKEN", x.ACCESS_TOKEN)
    monkeypatch.setenv("X_ACCESS_TOKEN_SECRET", x.ACCESS_TOKEN_SECRET)
    return fake_x


@pytest.fixture
def fake_mastodon(monkeypatch: pytest.MonkeyPatch) -> Iterator[mastodon.FakeMastodon]:
    """A fake Mastodon instance at MASTODON_API_BASE_URL; no MASTODON_ACCESS_TOKEN (public reads) unless a test
    sets one."""
    with mastodon.FakeMastodon() as fake:
        monkeypatch.setenv("MASTODON_API_BASE_URL", fake.url)
        yield fake


@pytest.fixture
def mastodon_account(monkeypatch: pytest.MonkeyPatch, fake_mastodon: mastodon.FakeMastodon) -> mastodon.FakeMastodon:
    """The fake Mastodon with MASTODON_ACCESS_TOKEN set to its account's token (scopes read and write): what
    posting needs."""
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", mastodon.TOKEN)
    return fake_mastodon


@pytest.fixture
def fake_bluesky(monkeypatch: pytest.MonkeyPatch) -> Iterator[bluesky.FakeBluesky]:
    """A fake Bluesky (the PDS and the AppView on one host) with BLUESKY_URL pointing at it; no account set."""
    with bluesky.FakeBluesky() as fake:
        monkeypatch.setenv("BLUESKY_URL", fake.url)
        yield fake


@pytest.fixture
def bluesky_account(monkeypatch: pytest.MonkeyPatch, fake_bluesky: bluesky.FakeBluesky) -> bluesky.FakeBluesky:
    """The fake Bluesky with the bot account's handle and app password set: what posting needs."""
    monkeypatch.setenv("BLUESKY_HANDLE", bluesky.ACCOUNT)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", bluesky.APP_PASSWORD)
    return fake_bluesky

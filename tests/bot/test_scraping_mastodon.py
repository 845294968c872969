"""A Mastodon account into the store, by `bot scrape mastodon` and by a bot's source: exactly what lands in the
corpus, and that scraping again adds only what is new."""

from __future__ import annotations

from datetime import UTC, datetime


from bot.config import MastodonSource, load_settings
from bot.platforms import SOURCES
from bot.scraping import scrape_mastodon
from bot.store import Store
from tests.bot.test_scraping import counts, stored
from tests.fakes.mastodon import FakeMastodon


def test_statuses_land_in_the_store_and_a_second_scrape_adds_only_new_ones(store: Store,
                                                                           fake_mastodon: FakeMastodon) -> None:
    fake = fake_mastodon
    first = fake.add_status("alice", "Tabs &amp; spaces <3", favourites=9)
    fake.add_status("alice", "@bob no", in_reply_to=fake.add_status("bob", "Spaces?"))
    fake.add_status("alice", "Plot twist", spoiler_text="Spoilers")
    summary = scrape_mastodon(store, load_settings(), "alice", "alice")
    where = fake.domain
    assert counts(summary) == (f"@alice@{where}", 2, 1, 0, {"content_warning": 1}, None)
    assert stored(store, "alice") == [("mastodon", f"{fake.url}/users/alice/statuses/{first}", "Tabs &amp; spaces <3",
                                       f"alice@{where}", datetime(2023, 11, 14, 23, 13, 20, tzinfo=UTC), 9,
                                       f"{fake.url}/@alice/{first}")]

    fake.add_status("alice", "Pattern matching")
    again = scrape_mastodon(store, load_settings(), "alice", f"@alice@{where}")
    assert counts(again) == (f"@alice@{where}", 3, 1, 1, {"content_warning": 1}, None)
    assert [r[2] for r in stored(store, "alice")] == ["Tabs &amp; spaces <3", "Pattern matching"]
    assert counts(scrape_mastodon(store, load_settings(), "alice", "alice")) == (
        f"@alice@{where}", 3, 0, 2, {"content_warning": 1}, None)


def test_a_bots_mastodon_source_is_read_by_the_scrape_job(store: Store, fake_mastodon: FakeMastodon) -> None:
    fake_mastodon.add_status("alice", "One")
    fake_mastodon.add_boost("alice", fake_mastodon.add_status("bob", "Boosted"))
    scrape = SOURCES["mastodon"].scrape
    assert scrape(store, load_settings(), "a", MastodonSource(type="mastodon", account="alice")) == (1, [])
    with_boosts = MastodonSource(type="mastodon", account="alice", boosts=True)
    assert scrape(store, load_settings(), "a", with_boosts) == (1, [])
    added, errors = scrape(store, load_settings(), "a", MastodonSource(type="mastodon", account="nobody"))
    assert (added, errors) == (0, [f"@nobody@{fake_mastodon.domain}: {fake_mastodon.domain} has no "
                                   f"@nobody@{fake_mastodon.domain} (HTTP 404: Record not found); check the spelling, "
                                   "and that the account is on that instance."])
    assert sorted(r[2] for r in stored(store, "a")) == ["Boosted", "One"]


# --- the command line --------------------------------------------------------------------------------------


def test_scrape_mastodon_prints_a_summary(bot, fake_mastodon: FakeMastodon) -> None:  # type: ignore[no-untyped-def]
    for n in range(1, 61):
        fake_mastodon.add_status("alice", f"Toot {n}", visibility="unlisted" if n % 2 else "public",
                                 spoiler_text="cw" if n % 10 == 0 else "")
    where = fake_mastodon.domain
    result = bot("scrape", "mastodon", "alice", "--corpus", "alice", "--limit", "45")
    assert (result.code, result.err) == (0, "")
    assert result.out == (f"@alice@{where}: 45 fetched, 40 new, 0 already present, 5 skipped (5 behind a content "
                          "warning).\n")
    again = bot("scrape", "mastodon", f"alice@{where}", "--corpus", "alice", "--json")
    assert again.json == {"corpus": "alice", "source": f"@alice@{where}", "fetched": 60, "added": 14,
                          "already_present": 40, "skipped": {"content_warning": 6}, "error": None}


def test_scrape_mastodon_errors_are_one_sentence(bot, fake_mastodon: FakeMastodon, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    unknown = bot("scrape", "mastodon", "nobody", "--corpus", "c")
    assert (unknown.code, unknown.out) == (1, "")
    assert unknown.err == (f"Error: {fake_mastodon.domain} has no @nobody@{fake_mastodon.domain} (HTTP 404: Record not "
                           "found); check the spelling, and that the account is on that instance.\n")
    bad = bot("scrape", "mastodon", "no body", "--corpus", "c")
    assert (bad.code, bad.err) == (1, "Error: 'no body' is not a Mastodon account; write it as name@instance, like "
                                      "Gargron@mastodon.social.\n")
    monkeypatch.delenv("MASTODON_API_BASE_URL")
    from bot.cli import context

    context.settings.cache_clear()
    bare = bot("scrape", "mastodon", "alice", "--corpus", "c")
    assert (bare.code, bare.err) == (1, "Error: Say which instance @alice is on, like alice@mastodon.social, or set "
                                        "MASTODON_API_BASE_URL to it.\n")
    assert [r.path for r in fake_mastodon.server.requests] == ["/api/v1/accounts/lookup"]
    assert bot("corpus", "list", "--json").json == []


def test_the_command_offers_what_the_scraper_and_bots_toml_accept() -> None:
    from bot.cli import scrape as cli
    from scrapers import mastodon

    most = next(rule.le for rule in MastodonSource.model_fields["limit"].metadata if hasattr(rule, "le"))
    assert cli.MASTODON_LIMIT == mastodon.STATUSES_CAP == most
    assert cli.MASTODON_DEFAULT == MastodonSource.model_fields["limit"].default

"""A platform is one entry in `bot.platforms`: the filters, publishers, dry runs, reconcile and `bot init` read it."""

import re
import typing

import pytest

from bot import platforms
from bot.bots_toml import starting_file
from bot.config import BotConfig, Source, load_settings
from bot.filters import FilterConfig, FilterSet
from bot.posting import _where
from bot.publishers import open_publisher
from bot.publishers.base import RemotePost


class _Publisher:
    def __init__(self, settings, bot) -> None:  # type: ignore[no-untyped-def]
        self.bot = bot

    def describe(self) -> str:
        return "the notice board"

    def close(self) -> None:
        pass


BOARD = platforms.Platform(
    "board", "a notice board", max_length=12, mentions_allowed=False, links_allowed=True, destination="a board",
    credentials=("BOARD_TOKEN",), open=_Publisher, where=lambda settings, bot: f"the board {bot.destination}",
    holds=lambda bot, post: post.destination == bot.destination, counts=lambda text: len(text.encode()),
    unit="bytes")


def test_a_new_platform_is_one_entry_that_every_part_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(platforms.PLATFORMS, "board", BOARD)
    bot = BotConfig.model_construct(name="b", corpus="b", platform="board", destination="hall", filters=FilterConfig())
    filters = FilterSet(FilterConfig(min_words=1), platform="board")
    assert filters.names == ("controls", "length", "duplicate", "blocklist", "mentions")  # no mentions by default
    assert filters.check("naïve café ok").reason == "is 15 bytes long (limit 12)"  # counted the platform's way
    assert filters.check("hi @you").filter == "mentions"
    assert filters.check("short one") is None
    assert FilterSet(FilterConfig(max_chars=5, min_words=1), platform="board").check("abcdef").reason == (
        "is 6 bytes long (limit 5)")
    assert isinstance(open_publisher(load_settings(), bot), _Publisher)
    assert _where(load_settings(), bot) == "the board hall"
    post = RemotePost(remote_id="1", url="u", text="t", created_at=None, destination="hall", bot=None)
    assert platforms.platform("board").holds(bot, post)


def test_an_unknown_platform_is_named_with_the_ones_there_are() -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"Unknown platform 'myspace'; use one of reddit, x, mastodon, bluesky, file\."):
        FilterSet(FilterConfig(), platform="myspace")


@pytest.mark.parametrize("name", platforms.NAMES)
def test_every_platform_has_a_starting_bot_whose_destination_rule_the_config_keeps(name: str) -> None:
    spec = platforms.platform(name)
    text = starting_file(name, "newbot")  # loads, or starting_file raises
    assert ("destination = " in text) == (spec.destination is not None)
    for credential in spec.credentials:
        assert credential in text
    if spec.destination:
        with pytest.raises(ValueError, match=re.escape(f"needs a destination ({spec.destination})")):
            BotConfig(name="b", corpus="b", platform=name)


def test_every_source_type_in_bots_toml_has_its_scraper_entry_and_back() -> None:
    union = typing.get_args(typing.get_args(Source)[0])
    types = {typing.get_args(model.model_fields["type"].annotation)[0] for model in union}
    assert types == set(platforms.SOURCES)


@pytest.mark.parametrize("name", platforms.NAMES)
def test_every_credential_a_platform_needs_is_a_setting_and_in_env_example(name: str) -> None:
    from pathlib import Path

    from bot.config import Settings

    example = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    for credential in platforms.platform(name).credentials:
        assert credential.lower() in Settings.model_fields
        assert re.search(rf"^#?\s*{credential}=", example, re.MULTILINE), credential


def test_every_bots_toml_example_in_the_readme_loads_and_the_platforms_each_have_one(tmp_path) -> None:
    from pathlib import Path

    from bot.config import load_bots_file

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    examples = re.findall(r"```toml\n(.*?)```", readme, re.DOTALL)
    shown = set()
    for n, example in enumerate(examples):
        path = tmp_path / f"example{n}.toml"
        path.write_text(example)
        shown |= {bot.platform for bot in load_bots_file(path).bot}
    assert shown >= set(platforms.NAMES) - {"file"}  # the file platform is the demo's, described in prose

"""The `file` publisher on a real file system: whole lines or nothing, and a destination that refuses every post
holds the queue back instead of draining it."""

from __future__ import annotations

import json
import resource

from sqlalchemy import select

from bot import posting
from bot.config import load_settings
from bot.store.schema import BotState, Candidate
from tests.bot.service.helpers import add_candidates, bot_config, file_bot, python, write_bots

EARLIER_LINES = 20_000  # lines already in the file, so the size limit below is far above the database's files


def _limited(limit: int):  # type: ignore[no-untyped-def]
    def apply() -> None:  # in the child: a file-size limit, as a nearly full disk would cut the write
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_write_cut_short_leaves_the_file_as_it_was_and_nothing_posted(tmp_path, bot_home) -> None:
    from bot.store import open_store

    config = write_bots(tmp_path / "bots.toml", file_bot("fb"))
    bot_home.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{bot_home / 'bot.db'}")
    [first, second] = add_candidates(store, "fb", ["A title that would not fit on the disk", "And the next one"])
    path = bot_home / "posts.jsonl"
    path.write_text("".join(json.dumps({"id": f"old{n}", "bot": "other", "text": f"Earlier post {n}",
                                        "posted_at": "2026-01-01T00:00:00+00:00"}) + "\n"
                            for n in range(EARLIER_LINES)), encoding="utf-8")
    before = path.read_bytes()
    run = python("-m", "bot.cli", "--config", str(config), "post", "--bot", "fb",
                 preexec_fn=_limited(len(before) + 10))
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    assert path.read_bytes() == before  # the ten bytes written were taken back
    assert f"Cannot write to {path} (File too large); nothing was posted" in stderr
    with store.session() as s:
        row = s.get(Candidate, first)
        assert (row.status, row.attempts, row.remote_id) == ("approved", 0, None)
        state = s.get(BotState, "fb")
        assert state.wait_reason.startswith(f"Cannot write to {path}")
    # once the disk has room, the same candidate goes out, and every line of the file is whole
    assert posting.post_next(store, load_settings(), bot_config(config, "fb")).candidate_id == first
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == EARLIER_LINES + 1 and lines[-1]["text"] == "A title that would not fit on the disk"
    with store.session() as s:
        assert s.get(Candidate, second).status == "approved"
    store.close()


def test_a_destination_that_refuses_every_post_does_not_drain_the_queue(store, tmp_path, bot_home,
                                                                        monkeypatch) -> None:
    (bot_home / "a-folder").mkdir(parents=True)  # the destination is a folder: no post can be written there
    config = write_bots(tmp_path / "bots.toml", file_bot("fb", destination="a-folder"))
    bot = bot_config(config, "fb")
    ids = add_candidates(store, "fb", [f"Approved title number {n}" for n in range(5)])
    for _ in range(19):  # BOT_SLEEP_SCALE=0: the wait after each refusal is over at once
        outcome = posting.post_next(store, load_settings(), bot)
        assert (outcome.status, outcome.candidate_id) == ("approved", ids[0])
    with store.session() as s:
        rows = list(s.scalars(select(Candidate).order_by(Candidate.id)))
    assert [(c.status, c.attempts) for c in rows] == [("approved", 0)] * 5
    monkeypatch.setenv("BOT_SLEEP_SCALE", "1")
    refused = posting.post_next(store, load_settings(), bot)
    assert refused.status == "approved" and refused.message.endswith(
        "(Is a directory); nothing was posted, and the bot waits until the file can be written (check the disk, "
        "its permissions and the bot's destination).")
    waiting = posting.post_next(store, load_settings(), bot)
    assert waiting.status == "waiting" and waiting.message.startswith(f"Cannot write to {bot_home / 'a-folder'}")
    assert refused.retry_at is not None and waiting.retry_at == refused.retry_at

"""Models travel through the database: pack, publish, fetch on another host, verify, prune (bot.model_store).

Another host is another BOT_HOME on the same database URL: what one publishes, the other fetches on first use."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import event, func, select, text, update

from bot import model_store, registry
from bot.config import Settings, load_settings
from bot.corpus import add_documents
from bot.model_store import MARKER, DamagedVersionError, fetch_serving, pack, publish, serving
from bot.store.schema import ModelVersion, ServingModel
from bot.training import KEEP_VERSIONS, VERSIONS, VersionSuperseded, retrain
from models.artifact import CHECKPOINT, METRICS
from models.sampler import SamplingSettings
from scrapers.documents import Document

SEED = 7


def host(tmp_path: Path, name: str) -> Settings:
    """The settings of another host: its own BOT_HOME."""
    return load_settings(bot_home=tmp_path / name)


def version_of(tiny_model_dir: Path, into: Path, n: int) -> Path:
    """A copy of the tiny model that packs to content of its own: its training record says `n`."""
    shutil.copytree(tiny_model_dir, into)
    metrics = json.loads((into / METRICS).read_text())
    (into / METRICS).write_text(json.dumps({**metrics, "version": n}))
    return into


def samples(settings: Settings, store, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    model = registry.load(settings, name, store=store)
    return [s.text for s in model.sampler().sample(4, SamplingSettings(max_tokens=20), seed=SEED)]


def move_to(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """The `bot` commands that follow run on another host: another BOT_HOME (the CLI caches its settings)."""
    from bot.cli import context

    monkeypatch.setenv("BOT_HOME", str(home))
    for cached in (context.settings, context.bots, context.store):
        cached.cache_clear()


def rows(store) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with store.session() as session:
        return [tuple(r) for r in session.execute(select(ModelVersion.model, ModelVersion.sha256)
                                                  .order_by(ModelVersion.id))]


def generation(store, name: str) -> int | None:  # type: ignore[no-untyped-def]
    with store.session() as session:
        return session.scalar(select(ServingModel.generation).where(ServingModel.model == name))


def test_the_same_folder_packs_to_the_same_bytes_wherever_it_lies(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = pack(tiny_model_dir)
    elsewhere = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, elsewhere, copy_function=shutil.copyfile)  # new times and modes
    os.utime(elsewhere / METRICS, (0, 1_000_000))
    (elsewhere / METRICS).chmod(0o600)
    (elsewhere / CHECKPOINT).mkdir(exist_ok=True)
    (elsewhere / CHECKPOINT / "optimizer.npz").write_bytes(b"optimizer state stays on the host")
    (elsewhere / MARKER).write_text("0" * 64)
    again = pack(elsewhere)
    assert (again.sha256, bytes(again.content)) == (first.sha256, bytes(first.content))
    (elsewhere / METRICS).write_text((elsewhere / METRICS).read_text() + " ")
    assert pack(elsewhere).sha256 != first.sha256


def test_a_version_published_on_one_host_serves_on_another_as_it_was(store, tiny_model_dir: Path, tiny_model,
                                                                     tmp_path: Path) -> None:
    trainer, scheduler = host(tmp_path, "trainer"), host(tmp_path, "scheduler")
    folder = shutil.copytree(tiny_model_dir, trainer.model_dir("m"))
    published = publish(store, "m", folder, replaces=None)
    assert (published.stored, published.moved, published.serving) == (True, True, True)
    assert serving(store, "m") == published.sha256 == (folder / MARKER).read_text().strip()

    fetched = registry.load(scheduler, "m", store=store)
    link = scheduler.model_dir("m")
    assert link.is_symlink()
    assert link.resolve() == (scheduler.models_dir / VERSIONS / "m" / published.sha256[:16]).resolve()
    assert fetched.name == "m" and fetched.config == tiny_model.config and fetched.info == tiny_model.info
    assert fetched.weights.keys() == tiny_model.weights.keys()
    assert all(np.array_equal(fetched.weights[k], tiny_model.weights[k]) for k in tiny_model.weights)
    assert samples(scheduler, store, "m") == samples(trainer, store, "m")
    assert pack(link).sha256 == published.sha256
    assert [p.name for p in (scheduler.models_dir / VERSIONS / "m").iterdir()] == [published.sha256[:16]]


def test_a_damaged_version_is_refused_and_the_model_the_host_has_serves_on(store, tiny_model_dir: Path,
                                                                            tmp_path: Path) -> None:
    scheduler = host(tmp_path, "scheduler")
    first = publish(store, "m", version_of(tiny_model_dir, tmp_path / "v1", 1), replaces=None)
    before = samples(scheduler, store, "m")
    second = publish(store, "m", version_of(tiny_model_dir, tmp_path / "v2", 2), replaces=first.sha256)
    with store.session() as session:  # one byte flipped in the middle of the weights
        content = bytearray(session.scalar(select(ModelVersion.content).where(ModelVersion.sha256 == second.sha256)))
        content[len(content) // 2] ^= 0xFF
        session.execute(update(ModelVersion).where(ModelVersion.sha256 == second.sha256).values(content=content))

    with pytest.raises(DamagedVersionError) as refused:
        registry.load(scheduler, "m", store=store)
    damaged = hashlib.sha256(content).hexdigest()
    assert str(refused.value) == (
        f"Version {second.sha256[:16]} of model 'm' is damaged in the database (its content hashes to "
        f"{damaged[:16]}, not {second.sha256[:16]}), so it was not installed and the model this host has keeps "
        "serving; publish the model again by retraining it.")
    link = scheduler.model_dir("m")
    assert model_store.local_hash(link) == first.sha256
    assert sorted(p.name for p in (scheduler.models_dir / VERSIONS / "m").iterdir()) == [first.sha256[:16]]
    assert samples(scheduler, None, "m") == before  # the old version serves, unchanged


def test_publishing_the_same_content_again_stores_nothing_and_moves_nothing(store, tiny_model_dir: Path,
                                                                           tmp_path: Path) -> None:
    first = publish(store, "m", version_of(tiny_model_dir, tmp_path / "v1", 1), replaces=None)
    second = publish(store, "m", version_of(tiny_model_dir, tmp_path / "v2", 2), replaces=first.sha256)
    # A redelivered training of the first version: the same content, from the same starting point.
    again = publish(store, "m", version_of(tiny_model_dir, tmp_path / "v1-again", 1), replaces=None)
    assert again.sha256 == first.sha256
    assert (again.stored, again.moved, again.serving) == (False, False, False)
    assert serving(store, "m") == second.sha256 and generation(store, "m") == 2
    assert rows(store) == [("m", first.sha256), ("m", second.sha256)]
    same = publish(store, "m", tmp_path / "v2", replaces=first.sha256)
    assert (same.stored, same.moved, same.serving) == (False, False, True)
    assert generation(store, "m") == 2


@pytest.mark.parametrize("start", ["none", "published"])
def test_two_publishes_racing_leave_exactly_one_serving(store, tiny_model_dir: Path, tmp_path: Path,
                                                        start: str) -> None:
    base = publish(store, "m", version_of(tiny_model_dir, tmp_path / "v0", 0), replaces=None).sha256 \
        if start == "published" else None
    for round_ in range(3):
        folders = [version_of(tiny_model_dir, tmp_path / f"r{round_}-{i}", 10 * round_ + i + 1) for i in range(2)]
        replaces = serving(store, "m")  # both trainings started from the same version
        assert replaces == base
        barrier = threading.Barrier(2)
        results = [None, None]

        def publish_one(i: int) -> None:
            barrier.wait()
            results[i] = publish(store, "m", folders[i], replaces=replaces)  # type: ignore[call-overload]

        threads = [threading.Thread(target=publish_one, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.stored for r in results] == [True, True]  # type: ignore[union-attr]
        winners = [r for r in results if r.serving]  # type: ignore[union-attr]
        assert len(winners) == 1 and [r.moved for r in results].count(True) == 1  # type: ignore[union-attr]
        assert serving(store, "m") == winners[0].sha256
        base = winners[0].sha256


def test_pruning_keeps_the_serving_version_and_the_newest_others(store, tiny_model_dir: Path,
                                                                tmp_path: Path) -> None:
    scheduler = host(tmp_path, "scheduler")
    hashes, current = [], None
    for n in range(4):
        current = publish(store, "m", version_of(tiny_model_dir, tmp_path / f"v{n}", n), replaces=current).sha256
        hashes.append(current)
        registry.load(scheduler, "m", store=store)
    assert [sha for _, sha in rows(store)] == hashes[-KEEP_VERSIONS:]
    # A version that lost its race is kept as the newest other; the serving one stays whatever its age.
    late = publish(store, "m", version_of(tiny_model_dir, tmp_path / "late", 99), replaces=hashes[0])
    assert (late.stored, late.serving) == (True, False)
    assert [sha for _, sha in rows(store)] == [hashes[-1], late.sha256]
    assert serving(store, "m") == hashes[-1]
    # Another model's versions are its own.
    publish(store, "other", tmp_path / "v0", replaces=None)
    assert len(rows(store)) == KEEP_VERSIONS + 1
    kept = sorted(p for p in (scheduler.models_dir / VERSIONS / "m").iterdir())
    assert len(kept) == KEEP_VERSIONS and scheduler.model_dir("m").resolve() in [p.resolve() for p in kept]


def statements(store):  # type: ignore[no-untyped-def]
    seen: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_a_host_with_the_serving_version_asks_one_small_question_and_fetches_nothing(store, tiny_model_dir: Path,
                                                                                    tmp_path: Path) -> None:
    trainer, scheduler = host(tmp_path, "trainer"), host(tmp_path, "scheduler")
    folder = shutil.copytree(tiny_model_dir, trainer.model_dir("m"))
    publish(store, "m", folder, replaces=None)
    registry.load(scheduler, "m", store=store)  # the first use fetches
    seen = statements(store)
    for settings in (scheduler, trainer, scheduler):
        registry.load(settings, "m", store=store)
    assert len(seen) == 3
    assert all("FROM serving_models" in sql and "content" not in sql for sql in seen)


def test_a_model_with_no_row_loads_from_its_folder_as_before(store, tiny_model_dir: Path, tiny_model) -> None:
    settings = load_settings()
    shutil.copytree(tiny_model_dir, settings.model_dir("m"))
    seen = statements(store)
    model = registry.load(settings, "m", store=store)
    assert model.path == settings.model_dir("m") and not settings.model_dir("m").is_symlink()
    assert np.array_equal(model.weights["embedding"], tiny_model.weights["embedding"])
    assert len(seen) == 1 and rows(store) == []


def test_a_published_version_replaces_a_folder_trained_here_and_keeps_it_as_a_version(
        store, tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = load_settings()
    shutil.copytree(tiny_model_dir, settings.model_dir("m"))  # trained here, never published
    published = publish(store, "m", version_of(tiny_model_dir, tmp_path / "v1", 1), replaces=None)
    assert fetch_serving(store, settings, "m") is not None
    assert model_store.local_hash(settings.model_dir("m")) == published.sha256
    # the fetched version (named by its hash) and the folder trained here (named by when it was moved aside)
    trained, fetched = sorted((p.name for p in (settings.models_dir / VERSIONS / "m").iterdir()),
                              key=lambda name: name == published.sha256[:16])
    assert trained.endswith("-trained") and fetched == published.sha256[:16]


def test_two_fetches_on_one_host_at_once_download_once(store, tiny_model_dir: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    publish(store, "m", version_of(tiny_model_dir, tmp_path / "v1", 1), replaces=None)
    scheduler = host(tmp_path, "scheduler")
    downloads = []
    download = model_store._download
    monkeypatch.setattr(model_store, "_download", lambda *args: downloads.append(1) or download(*args))
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def load() -> None:
        barrier.wait()
        try:
            registry.load(scheduler, "m", store=store)
        except BaseException as error:  # noqa: BLE001  # reported below
            errors.append(error)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and downloads == [1]
    assert len(list((scheduler.models_dir / VERSIONS / "m").iterdir())) == 1


def test_a_version_travels_in_slices_and_no_statement_reads_it_whole(store, tiny_model_dir: Path, tiny_model,
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_store, "CHUNK_BYTES", 4096)
    seen = statements(store)
    published = publish(store, "m", version_of(tiny_model_dir, tmp_path / "v1", 1), replaces=None)
    scheduler = host(tmp_path, "scheduler")
    fetched = registry.load(scheduler, "m", store=store)
    assert all(np.array_equal(fetched.weights[k], tiny_model.weights[k]) for k in tiny_model.weights)
    reads = [sql for sql in seen if "model_versions.content" in sql]
    if store.engine.dialect.name == "sqlite":  # written and read through SQLite's blob I/O, no statement at all
        assert reads == []
    else:  # a slice at a time, from uncompressed out-of-line storage (a slice reads only its own TOAST chunks)
        assert reads == [reads[0]] * -(-published.size // 4096) and "substr(" in reads[0]
        with store.session() as session:
            assert session.scalar(text("SELECT attstorage FROM pg_attribute WHERE attname = 'content' "
                                       "AND attrelid = 'model_versions'::regclass")) == "e"
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 1


def test_bot_train_publishes_and_another_host_needs_force_to_replace_it(store, database_url: str, bot, titles,
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    with store.session() as session:
        add_documents(session, "a", [Document(source="file", external_id=str(i), text=t)
                                     for i, t in enumerate(titles[:300])])
    assert bot("train", "a", "--model", "m", "--preset", "tiny", "--epochs", "1").code == 0
    here = load_settings()
    assert serving(store, "m") == model_store.local_hash(here.model_dir("m")) is not None
    move_to(monkeypatch, tmp_path / "worker")  # no folder there, the same database
    assert not load_settings().model_dir("m").exists()
    run = bot("train", "a", "--model", "m", "--preset", "tiny", "--epochs", "1")
    assert (run.code, run.err) == (1, "Error: A model named 'm' exists; pass --resume to continue training it or "
                                      "--force to replace it.\n")


def test_a_retrain_another_training_beat_to_it_swaps_nothing_in(store, tiny_model_dir: Path, titles,
                                                                tmp_path: Path) -> None:
    settings = load_settings()
    with store.session() as session:
        add_documents(session, "a", [Document(source="file", external_id=str(i), text=t)
                                     for i, t in enumerate(titles[:300])])
    other: list[str] = []

    def another_host_publishes(_epoch: object) -> None:  # while this training runs, another one finishes first
        if not other:
            other.append(publish(store, "m", version_of(tiny_model_dir, tmp_path / "other", 1), replaces=None).sha256)

    with pytest.raises(VersionSuperseded) as lost:
        retrain(store, settings, "a", "m", "tiny", max_minutes=0.05, progress=another_host_publishes)
    assert str(lost.value) == ("Model 'm' was retrained, but another version of it was published while this one "
                               "trained and serves instead; nothing was swapped in.")
    assert not settings.model_dir("m").exists()
    assert [p.name for p in (settings.models_dir / VERSIONS / "m").iterdir()] == []
    assert serving(store, "m") == other[0] and len(rows(store)) == 2  # the loser is stored, pruned in its turn
    assert model_store.local_hash(registry.resolve(settings, "m", store=store)) == other[0]


def test_a_retrain_publishes_the_version_it_swaps_in(store, titles, tmp_path: Path) -> None:
    settings = load_settings()
    with store.session() as session:
        add_documents(session, "a", [Document(source="file", external_id=str(i), text=t)
                                     for i, t in enumerate(titles[:300])])
    retrain(store, settings, "a", "m", "tiny", max_minutes=0.05)
    link = settings.model_dir("m")
    assert link.is_symlink() and serving(store, "m") == model_store.local_hash(link) == pack(link).sha256
    scheduler = host(tmp_path, "scheduler")
    assert samples(scheduler, store, "m") == samples(settings, store, "m")


def test_bot_model_publish_sends_a_folder_copied_in_by_hand_to_the_other_hosts(store, database_url: str, bot,
                                                                              tiny_model_dir: Path, tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    older = publish(store, "m", version_of(tiny_model_dir, tmp_path / "v1", 1), replaces=None)
    here = load_settings()
    shutil.copytree(tiny_model_dir, here.model_dir("m"))  # trained on a machine that cannot reach the database
    sha256 = pack(here.model_dir("m")).sha256
    run = bot("model", "publish", "m")
    assert (run.code, run.out) == (0, f"Model 'm' (version {sha256[:16]}, {pack(tiny_model_dir).size:,} bytes) "
                                      "stored in the database and now serves; other hosts fetch it on first use.\n")
    assert serving(store, "m") == sha256 != older.sha256
    assert bot("model", "publish", "m", "--json").json == {
        "model": "m", "sha256": sha256, "bytes": pack(tiny_model_dir).size, "stored": False, "moved": False,
        "serving": True}
    move_to(monkeypatch, tmp_path / "review")
    shown = bot("model", "show", "m", "--json")
    assert shown.code == 0 and shown.json["path"] == str(tmp_path / "review" / "models" / "m")
    assert model_store.local_hash(tmp_path / "review" / "models" / "m") == sha256
    missing = bot("model", "publish", "nothing")
    assert (missing.code, missing.err) == (1, "Error: There is no model named 'nothing'; train one with `bot train "
                                              "CORPUS --model nothing`.\n")


def test_a_host_that_has_not_fetched_the_serving_version_describes_it_from_the_database(
        store, database_url: str, bot, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.bot.service.helpers import file_bot, write_bots

    trainer = host(tmp_path, "trainer")  # a worker trained and published it
    folder = shutil.copytree(tiny_model_dir, trainer.model_dir("fb"))
    header = folder / "config.json"
    header.write_text(json.dumps({**json.loads(header.read_text()), "created_at": "2026-12-06T10:00:05+00:00"}))
    published = publish(store, "fb", folder, replaces=None)
    about = registry.summarize(folder)
    assert about.valid_perplexity and about.created_at == "2026-12-06T10:00:05+00:00"
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    move_to(monkeypatch, tmp_path / "scheduler")
    bots = file_bot("fb").replace('corpus = "fb"', f'corpus = "{about.corpus}"')  # the corpus it was trained on
    config = str(write_bots(tmp_path / "b.toml", bots))
    short = published.sha256[:model_store.HASH_PREFIX]
    model = bot("--config", config, "status", "--json").json["bots"][0]["model"]
    assert {k: model[k] for k in ("valid_perplexity", "trained_at", "version", "here")} == {
        "valid_perplexity": about.valid_perplexity, "trained_at": about.created_at, "version": short, "here": False}
    line = next(line for line in bot("--config", config, "status").out.splitlines() if line.startswith("fb "))
    assert line.endswith(f"version {short}; not on this host yet, fetched from the database on first use)")
    [finding] = [f for f in bot("--config", config, "check", "--json").json["bots"][0]["findings"]
                 if f["what"] == "model"]
    assert (finding["level"], finding["detail"]) == (
        "ok", f"model 'fb': held-out perplexity {about.valid_perplexity:.1f}, version {short} in the database; this "
              "host fetches it on first use")
    assert not load_settings().model_dir("fb").exists()  # status and check fetched nothing

    registry.load(load_settings(), "fb", store=store)  # the first use: fetched
    model = bot("--config", config, "status", "--json").json["bots"][0]["model"]
    assert (model["version"], model["here"]) == (short, True)

"""The command line as a user runs it: output, JSON, exit codes, and one-sentence errors."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

TITLES = Path(__file__).resolve().parents[2] / "bot" / "data" / "hacker_news_2000.txt"


def test_help_answers_without_loading_a_backend_or_the_database() -> None:
    code = ("import sys\nfrom bot.cli import app\n"
            "try:\n    app(['--help'], prog_name='bot')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('keras', 'tensorflow', 'numpy', 'sqlalchemy', 'pydantic') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage: bot [OPTIONS] COMMAND [ARGS]..." in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_import_twice_then_list_show_export_delete(bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "posts.txt"
    source.write_text("First post here\nSecond post here\n\nThird one\n")
    first = bot("import", str(source), "--corpus", "mine")
    assert (first.code, first.out) == (0, "Imported posts.txt into corpus 'mine': 3 read, 3 new, 0 already present.\n")
    again = bot("import", str(source), "--corpus", "mine", "--json")
    assert again.json == {"corpus": "mine", "path": str(source), "read": 3, "added": 0, "already_present": 3,
                          "empty": 0}
    listing = bot("corpus", "list", "--json").json
    assert [(c["name"], c["documents"], c["words"], c["sources"]) for c in listing] == [("mine", 3, 8, {"file": 3})]
    shown = bot("corpus", "show", "mine", "--json").json
    assert shown["first_documents"] == ["First post here", "Second post here", "Third one"]
    exported = bot("corpus", "export", "mine", str(tmp_path / "out.txt"))
    assert exported.out == f"Exported 3 documents of 'mine' to {tmp_path / 'out.txt'}.\n"
    assert (tmp_path / "out.txt").read_text() == "First post here\nSecond post here\nThird one\n"
    assert bot("corpus", "delete", "mine", "--yes").out == "Deleted corpus 'mine' (3 documents).\n"
    assert bot("corpus", "list", "--json").json == []


def test_errors_are_one_sentence_and_change_nothing(bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    result = bot("import", str(empty), "--corpus", "mine")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("Error: ") and result.err.count("\n") == 1 and "Traceback" not in result.err
    assert bot("corpus", "list", "--json").json == []
    missing = bot("corpus", "show", "nope")
    assert (missing.code, missing.err) == (
        1, "Error: There is no corpus named 'nope'; `bot corpus list` shows the corpora.\n")
    bad_name = bot("import", str(empty), "--corpus", "../etc")
    assert bad_name.code == 2 and "use 1-64 letters, digits" in bad_name.err


def test_import_reads_utf16_by_its_byte_order_mark(bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "u.txt"
    source.write_text("Hello from a file\nSecond line\n", encoding="utf-16")
    assert bot("import", str(source), "--corpus", "u").out == (
        "Imported u.txt into corpus 'u': 2 read, 2 new, 0 already present.\n")
    assert bot("corpus", "show", "u").out == (
        "Corpus 'u': 2 documents, 6 words (file 2).\n  Hello from a file\n  Second line\n")


def test_import_refuses_a_program_whatever_the_format(bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    program = tmp_path / "ls"
    program.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    result = bot("import", str(program), "--corpus", "t", "--format", "txt")
    assert (result.code, result.out, result.err) == (
        1, "", (f"Error: {program} is not text: it holds NUL bytes and no UTF-16 or UTF-32 byte order mark; "
                "pass a text file saved as UTF-8.\n"))
    assert bot("corpus", "list", "--json").json == []


def test_control_characters_never_reach_the_terminal(bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from bot.cli import context
    from bot.store.schema import Corpus, StoredDocument, utcnow

    source = tmp_path / "a.txt"
    source.write_bytes(b"evil \x1b[2J\x1b[31mRED title here\n")
    assert bot("import", str(source), "--corpus", "a").code == 0
    assert bot("corpus", "show", "a").out == "Corpus 'a': 1 documents, 4 words (file 1).\n  evil RED title here\n"
    with context.store().session() as session:  # a document stored before the store removed control characters
        corpus = Corpus(name="old", created_at=utcnow())
        session.add(corpus)
        session.flush()
        session.add(StoredDocument(corpus_id=corpus.id, source="fi\x1ble", external_id="1", text="old \x1b[2J\x9b1m",
                                   added_at=utcnow()))
    shown = bot("corpus", "show", "old").out
    assert shown == "Corpus 'old': 1 documents, 2 words (fi\\x1ble 1).\n  old \\x1b[2J\\x9b1m\n"
    listed = bot("corpus", "list").out
    assert "fi\\x1ble 1" in listed and "\x1b" not in listed


def test_export_asks_for_force_and_names_a_missing_folder(bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "posts.txt"
    source.write_text("First post here\n")
    bot("import", str(source), "--corpus", "mine")
    missing = bot("corpus", "export", "mine", str(tmp_path / "nonexistent" / "x.jsonl"))
    assert (missing.code, missing.err) == (
        1, (f"Error: Cannot export to {tmp_path / 'nonexistent' / 'x.jsonl'}: the folder "
            f"{tmp_path / 'nonexistent'} does not exist; create it first.\n"))
    target = tmp_path / "out.txt"
    target.write_text("someone else's file\n")
    refused = bot("corpus", "export", "mine", str(target))
    assert (refused.code, refused.err) == (1, f"Error: {target} already exists; pass --force to replace it.\n")
    assert target.read_text() == "someone else's file\n"
    assert bot("corpus", "export", "mine", str(target), "--force").out == (
        f"Exported 1 documents of 'mine' to {target}.\n")
    assert target.read_text() == "First post here\n"


def test_debug_shows_the_traceback(bot) -> None:  # type: ignore[no-untyped-def]
    from bot.errors import NotFoundError

    with pytest.raises(NotFoundError):
        bot("--debug", "corpus", "show", "nope")


def test_train_generate_and_review(bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert bot("import", str(TITLES), "--corpus", "hn").code == 0
    trained = bot("train", "hn", "--model", "t", "--preset", "tiny", "--epochs", "2", "--json")
    assert trained.code == 0, trained.err
    info = trained.json
    assert (info["model"], info["corpus"], info["epochs"], info["stop_reason"]) == ("t", "hn", 2, "reached 2 epochs")
    assert info["valid_perplexity"] > 1 and "epoch   1: train perplexity" in trained.err

    again = bot("train", "hn", "--model", "t", "--preset", "tiny")
    assert (again.code, again.err) == (1, "Error: A model named 't' exists; pass --resume to continue training it "
                                          "or --force to replace it.\n")
    resumed = bot("train", "hn", "--model", "t", "--resume", "--epochs", "3", "--json")
    assert resumed.json["epochs"] == 3 and "resuming at epoch 3" in resumed.err

    (listed,) = bot("model", "list", "--json").json
    assert (listed["name"], listed["corpus"], listed["epochs_trained"] in (1, 2, 3), listed["problem"]) == (
        "t", "hn", True, None)
    shown = bot("model", "show", "t", "--json").json
    assert shown["config"]["hidden_dim"] == 32 and [h["epoch"] for h in shown["metrics"]["history"]] == [1, 2, 3]

    config = tmp_path / "bots.toml"  # --enqueue needs a bot that bots.toml names
    config.write_text('[[bot]]\nname = "hn"\ncorpus = "hn"\nplatform = "file"\ndestination = "hn.jsonl"\n'
                      'queue_size = 50\n')  # room for every accepted one (test_first_hour checks the limit)
    generated = bot("--config", str(config), "generate", "t", "--n", "30", "--seed", "4", "--temperature", "0.9",
                    "--max-tokens", "25", "--enqueue", "hn", "--json").json
    assert generated["sampled"] == 30 and len(generated["accepted"]) == len(generated["enqueued"]) > 0
    assert sum(generated["rejections"].values()) == len(generated["rejected"])
    plain = bot("generate", "t", "--n", "5", "--seed", "4", "--no-filter")
    assert plain.code == 0 and plain.err.startswith("5 sampled in ")

    ids = generated["enqueued"]
    queued = bot("queue", "list", "--bot", "hn", "--status", "pending", "--json").json
    assert sorted(c["id"] for c in queued) == sorted(ids)  # best first: no base model, so by the model's own score
    assert sorted(c["text"] for c in queued) == sorted(a["text"] for a in generated["accepted"])
    means = [c["logprob"] / c["tokens"] for c in queued]
    assert all(a >= b - 1e-3 for a, b in zip(means, means[1:]))
    assert bot("queue", "approve", str(ids[0])).out == f"Approved candidate {ids[0]}.\n"
    if len(ids) > 1:
        assert bot("queue", "reject", str(ids[1]), "--reason", "dull").out == f"Rejected candidate {ids[1]}.\n"
    edited = bot("queue", "edit", str(ids[0]), "--text", "A fresh title about zebras and Lisbon")
    assert edited.out == f"Edited candidate {ids[0]}.\n"
    refused = bot("queue", "edit", str(ids[0]), "--text", "Hi")
    assert (refused.code, refused.err) == (
        1, "Error: The edit was not saved: the length filter rejects it (has 1 word (minimum 3)).\n")
    (approved,) = bot("queue", "list", "--status", "approved", "--json").json
    assert (approved["id"], approved["text"], approved["edited"]) == (
        ids[0], "A fresh title about zebras and Lisbon", True)
    bad_status = bot("queue", "list", "--status", "maybe")
    assert bad_status.code == 2 and "use one of pending, approved" in bad_status.err


def test_the_installed_command_runs() -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "bot"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "demo" in result.stdout and "queue" in result.stdout


def test_ctrl_c_exits_130_with_one_sentence_and_stores_nothing(bot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import threading

    fifo = tmp_path / "never-written.txt"
    os.mkfifo(fifo)  # reading it blocks until a writer comes, which never does: the import waits for Ctrl-C
    # To the main thread itself: a process-wide signal may land on any thread (BLAS's, the sampler's pool), and then
    # nothing interrupts the main thread's blocked open() and the test waits forever.
    timer = threading.Timer(1.0, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
    # Python leaves SIGINT ignored when it starts with it ignored (a shell's background job, nohup …): Ctrl-C as a
    # terminal delivers it is what this test is about, so it is asked for here whatever started the suite.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer.start()
    try:
        result = bot("import", str(fifo), "--corpus", "c")
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert (result.code, result.out) == (130, "")
    assert result.err == "Error: Interrupted; what was stored before the interruption is kept.\n"
    assert bot("corpus", "list", "--json").json == []


def test_train_to_a_time_limit_plans_for_it_and_says_so(bot) -> None:  # type: ignore[no-untyped-def]
    assert bot("import", str(TITLES), "--corpus", "hn").code == 0
    trained = bot("train", "hn", "--model", "t", "--preset", "tiny", "--max-minutes", "5", "--epochs", "2")
    assert trained.code == 0, trained.err
    # the epoch limit comes before the time limit, so the plan is 2 epochs and the rate ends with the 2nd
    assert ("Planned for 5 minutes: about 2.0 epochs fit, so dropout was 11% of the preset's and the learning rate "
            "fell from 0.01 to zero at the limit.") in trained.out
    shown = bot("model", "show", "t", "--json").json
    assert shown["metrics"]["budget"] == {"minutes": 5.0, "learning_rate": 0.01, "epochs_expected": 2.0,
                                          "dropout_scale": 0.111, "hidden_dim": 32, "sampled_softmax": 0}
    assert "units per layer" not in trained.out  # tiny neither narrows nor samples
    history = shown["metrics"]["history"]
    assert history[0]["learning_rate"] > history[1]["learning_rate"] > 0  # falling within each epoch, not by it
    assert history[1]["learning_rate"] < 0.01 / 100  # the last step of the last epoch: nearly zero


def test_the_plan_says_how_the_learning_rate_fell() -> None:
    from bot.cli.model import plan_note

    plan = {"minutes": 60.0, "learning_rate": 20.0, "epochs_expected": 17.8, "dropout_scale": 1.0}
    assert plan_note(plan) == ("Planned for 60 minutes: about 17.8 epochs fit, so dropout was 100% of the preset's "
                               "and the learning rate fell from 20 to zero at the limit.")
    assert plan_note(plan | {"lr_held": 0.4706, "lr_end": 0.8071}) == (
        "Planned for 60 minutes: about 17.8 epochs fit, so dropout was 100% of the preset's and the learning rate "
        "was held at 20 for 47% of the time and then fell to 0.8071 at the limit.")


def test_train_says_what_a_short_limit_made_of_the_network() -> None:
    from bot.cli.model import network_note

    plan = {"minutes": 10.0, "learning_rate": 20.0, "hidden_dim": 200, "sampled_softmax": 1024}
    assert network_note(plan | {"full_softmax_from": 0.56}, 300) == (
        "So few epochs fit that it trained 200 units per layer (the preset has 300) against 1,024 sampled words per "
        "step for the first 56% of the time and the whole vocabulary after (evaluation and sampling use the whole "
        "vocabulary).")
    assert network_note(plan, 300) == (  # the epoch limit came before the full softmax's share
        "So few epochs fit that it trained 200 units per layer (the preset has 300) against 1,024 sampled words per "
        "step (evaluation and sampling use the whole vocabulary).")
    assert network_note(plan | {"sampled_softmax": 0}, 300) == (
        "So few epochs fit that it trained 200 units per layer (the preset has 300).")
    assert network_note(plan | {"hidden_dim": 300, "sampled_softmax": 0}, 300) is None
    assert network_note(plan | {"hidden_dim": 32, "sampled_softmax": 0}, None) is None  # a model of its own shape


def test_train_picks_a_preset_by_the_corpus_size_and_the_time_limit(bot) -> None:  # type: ignore[no-untyped-def]
    from bot.training import choose_preset
    from models.budget import MEDIUM_FROM_WORDS
    from models.config import parameter_count, preset

    assert bot("import", str(TITLES), "--corpus", "hn").code == 0
    unknown = bot("train", "hn", "--model", "t", "--preset", "huge")
    assert (unknown.code, unknown.err) == (
        1, "Error: There is no preset named 'huge'; choose one of tiny, small, medium, zaremba-small.\n")
    trained = bot("train", "hn", "--model", "t", "--epochs", "1", "--json")
    assert trained.code == 0, trained.err
    info = trained.json
    assert info["preset"] == "small"
    assert info["budget"] is None  # no time limit: the preset's own schedule
    assert info["parameters"] == parameter_count(preset("small"), info["vocab_size"])  # the small network was built
    words = sum(len(t.split()) for t in TITLES.read_text(encoding="utf-8").splitlines())
    assert re.search(r"^auto: small, for [\d,]+ words \(under 200,000\)\.$", trained.err, re.MULTILINE)
    assert bot("model", "show", "t", "--json").json["preset"] == "small"

    titles = TITLES.read_text(encoding="utf-8").splitlines()
    assert choose_preset(titles) == ("small", f"small, for {words:,} words (under 200,000)")
    assert choose_preset(titles * (MEDIUM_FROM_WORDS // words + 1))[0] == "medium"
    # under a time limit, medium's faster schedule wins from 10,000 words (bench/RESULTS.md)
    name, reason = choose_preset(titles, 10)
    assert name == "medium"
    assert reason == (f"medium, for {words:,} words under a time limit (at least 10,000; without a limit, small "
                      "below 200,000); planned for 10 minutes: the learning rate falls to zero at the limit (or, "
                      "where 12 epochs or more fit, is held for the first 47% and then decays to 4% of it) and dropout "
                      "is scaled to the epochs that fit")
    assert choose_preset(titles[:300], 10)[0] == "small"


@pytest.mark.parametrize("sampled", [True, False])
def test_the_epoch_line_says_when_the_training_perplexity_is_the_sampled_estimate(capsys, sampled) -> None:  # type: ignore[no-untyped-def]
    from bot.cli.progress import TrainingDisplay
    from models.trainer import EpochResult

    result = EpochResult(epoch=3, train_loss=4.0, valid_loss=4.5, learning_rate=1.0, seconds=2.0,
                         tokens_per_second=100.0, sampled=sampled)
    with TrainingDisplay() as display:
        display.on_epoch(result, best=True)
    line = capsys.readouterr().err
    assert "epoch   3: train perplexity" in line and "valid perplexity" in line
    assert ("(sampled estimate)" in line) == sampled

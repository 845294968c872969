"""`bot train`, `bot model list|show|publish`, and `bot generate`."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from bot.cli import app
from bot.cli.options import JSON, corpus_name
from models.budget import HELD
from models.config import DEFAULT_RARE_WORDS, DEFAULT_TEMPERATURE, DEFAULT_TOP_P, PRESETS

if TYPE_CHECKING:
    from bot.config import BotConfig

model_app = typer.Typer(help="List and inspect trained models.", no_args_is_help=True)
app.add_typer(model_app, name="model")

SHOW_REJECTED = 5  # rejected samples `bot generate` shows, with their reasons


MIN_TEMPERATURE = MIN_TOP_P = 0.01  # below this, sampling is greedy in all but name


def _temperature(value: float) -> float:
    """A range check of our own: inf passes click's, and NaN gets a message about its bounds."""
    if not (math.isfinite(value) and value >= MIN_TEMPERATURE):
        raise typer.BadParameter(f"use a finite number from {MIN_TEMPERATURE} up (0.5 to 1.0 is usual)")
    return value


def _top_p(value: float) -> float:
    if not (math.isfinite(value) and MIN_TOP_P <= value <= 1):
        raise typer.BadParameter(f"use a number from {MIN_TOP_P} to 1")
    return value


@app.command(short_help="Train a model on a corpus, fine-tuned from the base model.")
def train(
    corpus: Annotated[str, typer.Argument(help="Corpus to train on.")],
    model: Annotated[str, typer.Option("--model", help="Name of the model to write.", callback=corpus_name)],
    preset: Annotated[str, typer.Option(
        "--preset", help="auto|tiny|small|medium|zaremba-small; auto: small for titles and tweets, medium from "
                         "200,000 words (from 10,000 with --max-minutes); a resumed model keeps its own.")] = "auto",
    epochs: Annotated[Optional[int], typer.Option("--epochs", min=1, help="At most this many epochs.")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(
        "--max-minutes", min=0.01,
        help="Train for this long and plan for it: the learning rate falls to zero at the limit (or at the epoch "
             f"limit, if sooner; {HELD}), dropout is scaled to the epochs that fit, medium narrows its layers and "
             "samples its softmax for the first half where few epochs fit, and the best epoch is kept. Without it, "
             "the preset's own schedule runs to its epoch limit.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue training an existing model, with its own "
                                         "settings, on its corpus (documents added since are welcome).")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing model of that name.")] = False,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (default: the preset's).")] = None,
    init_from: Annotated[Optional[str], typer.Option(
        "--init-from", metavar="BASE_MODEL",
        help="Fine-tune from this model (a model name, or a model directory) rather than the base model: the new "
             "model has its network shape and vocabulary plus the corpus's new words, and the preset's training "
             "settings.")] = None,
    from_scratch: Annotated[bool, typer.Option(
        "--from-scratch", help="Train a new network from random weights instead of fine-tuning the base model "
                               "(BOT_BASE_MODEL, else the one nnbot ships).")] = False,
    json_: JSON = False,
) -> None:
    """Train a word-level LSTM on a corpus; the best epoch is kept in BOT_HOME/models/NAME."""
    from bot import training
    from bot.cli import context, output
    from bot.cli.progress import TrainingDisplay
    from bot.errors import BotError

    overrides = {k: v for k, v in {"epochs": epochs, "seed": seed}.items() if v is not None}
    if from_scratch and (init_from or resume):
        raise BotError("--from-scratch trains a new network, so it goes with neither --init-from nor --resume.")
    implicit = not (from_scratch or init_from or resume)
    if implicit:
        init_from = training.default_base(context.settings())  # None where no base model is to be had
    with TrainingDisplay() as display:
        summary = training.train(context.store(), context.settings(), corpus, model, preset,
                                 max_minutes=max_minutes, resume=resume, replace=force, reporter=display,
                                 overrides=overrides, init_from=init_from, explain=display.note)
    best = summary.best
    result = {"model": model, "corpus": corpus, "path": str(summary.path), "preset": summary.preset,
              "best_epoch": summary.best_epoch,
              "valid_perplexity": best.valid_perplexity, "train_perplexity": best.train_perplexity,
              "epochs": len(summary.epochs), "seconds": round(summary.seconds, 1), "stop_reason": summary.stop_reason,
              "vocab_size": summary.vocab_size, "parameters": summary.parameters, "init_from": init_from,
              "budget": summary.budget}
    if json_:
        output.print_json(result)
    else:
        chosen = f" ({summary.preset} preset)" if summary.preset else ""
        chosen += f" fine-tuned from {training.describe_base(init_from)}" if init_from else ""
        output.console.print(
            f"Model {model!r}{chosen}: held-out perplexity {best.valid_perplexity:.1f} at epoch {summary.best_epoch} "
            f"({summary.seconds:.0f}s, {summary.vocab_size:,} word vocabulary, {summary.parameters:,} parameters).",
            markup=False)
        plan = summary.budget
        if plan and "epochs_expected" in plan:
            output.console.print(plan_note(plan), markup=False)
        preset_units = PRESETS[summary.preset].hidden_dim if summary.preset in PRESETS else None
        note = plan and network_note(plan, preset_units)
        if note:
            output.console.print(note, markup=False)


def plan_note(plan: dict[str, float]) -> str:
    """What a time limit planned (`Trainer.budget_plan`, once the pace was measured): the epochs, dropout, and the
    learning rate's schedule."""
    rate = (f"was held at {plan['learning_rate']:g} for {plan['lr_held']:.0%} of the time and then fell to "
            f"{plan['lr_end']:g}" if "lr_held" in plan else f"fell from {plan['learning_rate']:g} to zero")
    return (f"Planned for {plan['minutes']:g} minutes: about {plan['epochs_expected']:.1f} epochs fit, so dropout was "
            f"{plan['dropout_scale']:.0%} of the preset's and the learning rate {rate} at the limit.")


def network_note(plan: dict[str, float], preset_units: int | None) -> str | None:
    """What a time limit made of the network (`Trainer.budget_plan`), where it changed it: fewer units than the
    preset's, a sampled softmax, and when the full one took over."""
    narrowed = preset_units is not None and plan.get("hidden_dim", preset_units) < preset_units
    sampled = plan.get("sampled_softmax")
    if not (narrowed or sampled):
        return None
    note = f"So few epochs fit that it trained {plan['hidden_dim']} units per layer"
    note += f" (the preset has {preset_units})" if narrowed else ""
    if sampled:
        note += f" against {sampled:,} sampled words per step"
        switched = plan.get("full_softmax_from")
        note += f" for the first {switched:.0%} of the time and the whole vocabulary after" if switched else ""
        note += " (evaluation and sampling use the whole vocabulary)"
    return note + "."


@model_app.command("list")
def list_(json_: JSON = False) -> None:
    """The trained models."""
    from bot import registry
    from bot.cli import context, output

    models = registry.list_models(context.settings())
    if json_:
        output.print_json([m.to_json() for m in models])
        return
    if not models:
        output.console.print("No models yet; train one with `bot train CORPUS --model NAME`.", markup=False)
        return
    output.table(["model", "corpus", "valid ppl", "epochs", "parameters", "vocabulary", "trained", "problem"],
                 [(m.name, m.corpus, f"{m.valid_perplexity:.1f}" if m.valid_perplexity else None,
                   m.epochs_trained, f"{m.parameters:,}" if m.parameters else None,
                   f"{m.vocab_size:,}" if m.vocab_size else None, m.created_at, m.problem) for m in models])


@model_app.command("show")
def show(name: Annotated[str, typer.Argument(help="Model name.")], json_: JSON = False) -> None:
    """A model's settings, training history and versions."""
    from bot import registry
    from bot.cli import context, output

    model = registry.load(context.settings(), name, store=context.store())  # fetched if another host published it
    data = {"name": name, "path": str(model.path), **model.info, "config": model.config.to_dict(),
            "metrics": model.metrics, "versions": model.versions}
    if json_:
        output.print_json(data)
        return
    m = model.metrics
    output.console.print(f"Model {name!r} ({model.path}), trained on corpus {model.info.get('corpus')!r}: "
                         f"held-out perplexity {m.get('valid_perplexity', float('nan')):.1f} at epoch "
                         f"{m.get('best_epoch')}.", markup=False)
    base = model.info.get("base")
    if isinstance(base, dict):
        output.console.print(f"Fine-tuned from model {base.get('name')!r} ({base.get('path')}), trained on corpus "
                             f"{base.get('corpus')!r}, vocabulary {base.get('vocab_size')} pieces.", markup=False)
    output.table(["setting", "value"], sorted(model.config.to_dict().items()))
    output.table(["epoch", "train ppl", "valid ppl", "learning rate", "seconds"],
                 [(h["epoch"], f"{_ppl(h['train_loss']):.1f}", f"{_ppl(h['valid_loss']):.1f}",
                   f"{h['learning_rate']:.3g}", f"{h['seconds']:.1f}") for h in m.get("history", [])])
    output.console.print("versions: " + ", ".join(f"{k} {v}" for k, v in model.versions.items()), markup=False)


@model_app.command("publish", short_help="Publish this host's copy of a model to the other hosts.")
def publish(name: Annotated[str, typer.Argument(help="Model name.")], json_: JSON = False) -> None:
    """Store this host's folder of a model in the database and make it serve: other hosts fetch it on first use (for
    a model copied in by hand; `bot train` and retraining publish by themselves)."""
    from bot import model_store
    from bot.cli import context, output

    published = model_store.publish_local(context.store(), context.settings(), name)
    if json_:
        output.print_json({"model": name, "sha256": published.sha256, "bytes": published.size,
                           "stored": published.stored, "moved": published.moved, "serving": published.serving})
        return
    how = "stored in the database and now serves" if published.moved else "was in the database already and serves"
    output.console.print(f"Model {name!r} (version {published.sha256[:model_store.HASH_PREFIX]}, "
                         f"{published.size:,} bytes) {how}; other hosts fetch it on first use.", markup=False)


def _ppl(loss: float) -> float:
    import math

    return math.exp(min(loss, 50.0))


@app.command(short_help="Sample texts from a model; filter, print or queue them.")
def generate(
    model: Annotated[str, typer.Argument(help="Model to sample from.")],
    n: Annotated[int, typer.Option("--n", min=1, help="How many texts to sample.")] = 10,
    temperature: Annotated[float, typer.Option("--temperature", help="Lower is safer, higher wilder (from 0.01).",
                                               callback=_temperature)] = DEFAULT_TEMPERATURE,
    top_k: Annotated[int, typer.Option("--top-k", min=0, help="Sample among the k likeliest words (0: all).")] = 0,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass (0.01 to 1).",
                                         callback=_top_p)] = DEFAULT_TOP_P,
    prefix: Annotated[str, typer.Option("--prefix", help="Start every text with this.")] = "",
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed, for repeatable output.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1, help="Cut a text off after this many.")] = 60,
    no_filter: Annotated[bool, typer.Option("--no-filter", help="Keep every sample, unfiltered.")] = False,
    rare_words: Annotated[Optional[bool], typer.Option(
        "--rare-words/--no-rare-words", help="Let the model write rare words (fills of a word class); default: the "
        "bot's [bot.sampling] rare_words, else " + ("yes" if DEFAULT_RARE_WORDS else "no") + ".")] = None,
    platform: Annotated[Optional[str], typer.Option("--platform", help="reddit|x|mastodon|bluesky|file: length and "
                                                    "link rules (default: the bot's, else reddit).")] = None,
    enqueue: Annotated[Optional[str], typer.Option("--enqueue", help="Put the accepted texts in the queue of this "
                                                   "bot (one that bots.toml names).", callback=corpus_name)] = None,
    json_: JSON = False,
) -> None:
    """Sample texts from a model, filter them, and print them (or queue them for a bot)."""
    from bot.cli import context, output
    from bot.filters import FilterConfig
    from bot.platforms import NAMES as PLATFORMS
    from bot.generation import generate as run
    from models.sampler import SamplingSettings
    from scrapers.text import printable

    bot = _queue_owner(enqueue) if enqueue else None
    platform = platform or (bot.platform if bot else "reddit")
    if platform not in PLATFORMS:
        output.fail(f"Unknown platform {platform!r}; use one of {', '.join(PLATFORMS)}.")
    filters = None if no_filter else (bot.filters if bot else FilterConfig())
    if rare_words is None:
        rare_words = bot.sampling.rare_words if bot else DEFAULT_RARE_WORDS
    sampling = SamplingSettings(temperature=temperature, top_k=top_k, top_p=top_p, max_tokens=max_tokens,
                                rare_words=rare_words)
    room = None
    if bot is not None:  # the queue holds at most the bot's queue_size, as its refills keep it
        from bot.queue import ready_count

        with context.store().session() as session:
            room = max(bot.queue_size - ready_count(session, bot.name), 0)
    with output.counter("Sampling", total=n) as update:
        report = run(context.store(), context.settings(), model, n=n, sampling=sampling, prefix=prefix, seed=seed,
                     platform=platform, filters=filters, enqueue_bot=enqueue, enqueue_limit=room, progress=update)
    if json_:
        output.print_json(_report_json(report, enqueue))
        return
    for sample in report.accepted:
        output.console.print(printable(sample.text), markup=False)
    output.errors.print(_summary_line(report, enqueue, bot.queue_size if bot else None, room), markup=False)
    for sample, rejection in report.rejected[:SHOW_REJECTED]:
        output.errors.print(printable(f"  rejected ({rejection.filter}: {rejection.reason}): {sample.text}"),
                            markup=False)


def _queue_owner(name: str) -> BotConfig:
    """The bots.toml entry of the bot `--enqueue` names: a queue no configured bot reads would only fill up."""
    from bot.cli import context
    from bot.errors import NotFoundError

    bot = context.bot_config(name)
    if bot is None and context.config_path() is None:
        raise NotFoundError(f"There is no bots.toml, so no bot {name!r} would read the queue; add the bot to "
                            "bots.toml (in BOT_HOME, or pass it with --config) first.")
    if bot is None:
        raise NotFoundError(f"No bot named {name!r} is in {context.config_path()}, so nothing would read its queue; "
                            "check the name, or pass the file that names it with --config.")
    return bot


def _summary_line(report, enqueue: str | None, queue_size: int | None = None,  # type: ignore[no-untyped-def]
                  room: int | None = None) -> str:
    rejected = ", ".join(f"{name} {count}" for name, count in report.counts.items() if count) or "none"
    queued = f"; {len(report.enqueued)} queued for bot {enqueue!r}" if enqueue else ""
    if enqueue and room is not None and len(report.accepted) > room:
        queued += (f" (the most plausible; its queue_size is {queue_size}, and {queue_size - room} were ready "
                   "already)")
    return (f"{report.sampled} sampled in {report.seconds:.1f}s, {len(report.accepted)} accepted; "
            f"rejected: {rejected}{queued}.")


def _report_json(report, enqueue: str | None) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from bot.queue import SCORE_FORMAT

    return {
        "model": report.model, "sampled": report.sampled, "seconds": round(report.seconds, 3),
        "accepted": [{"text": s.text, "score": float(SCORE_FORMAT.format(report.rank(i))),
                      "logprob": round(s.logprob, 4), "tokens": s.tokens} for i, s in enumerate(report.accepted)],
        "rejected": [{"text": s.text, "filter": r.filter, "reason": r.reason} for s, r in report.rejected],
        "rejections": report.counts,
        "enqueued": [c.id for c in report.enqueued] if enqueue else None,
    }

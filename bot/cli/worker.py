"""`bot worker`: training and refills on this host, taken from the broker that `bot run` sends them to."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli import app

QUEUES = ("train", "refill")  # bot.service.broker.QUEUES, without importing it here (`bot --help` stays instant)


@app.command(short_help="Run the trainings and refills `bot run` sends through the broker.")
def worker(
    queues: Annotated[str, typer.Option("--queues", help="The queues to take tasks from, comma-separated: train, "
                                                         "refill.")] = "train,refill",
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, max=64,
                                             help="Tasks run at once, each in its own process.")] = 1,
) -> None:
    """Run the training and refill tasks that `bot run` sends through the broker (BOT_BROKER_URL), on any host that
    reaches the database and the broker, until stopped (Ctrl-C or SIGTERM let the tasks in flight finish)."""
    import logging

    from bot.cli import context, output
    from bot.errors import ConfigError
    from bot.service.worker import run_worker

    chosen = list(dict.fromkeys(q.strip() for q in queues.split(",") if q.strip()))
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown or not chosen:
        raise ConfigError(f"--queues takes {' and '.join(QUEUES)}, comma-separated, not {queues!r}; for example "
                          "`bot worker --queues train`.")
    settings = context.settings()
    if not settings.bot_broker_url:
        raise ConfigError("`bot worker` takes its tasks from a broker, and BOT_BROKER_URL is not set; set it to the "
                          "Redis `bot run` sends to (like redis://host:6379/0), in the environment or BOT_HOME/.env.")
    from bot.config import mask_password
    from bot.service.broker import queue_lengths

    answer = queue_lengths(settings)
    if answer.get("refused"):  # Celery would try again forever; a wrong password is not going to change
        raise ConfigError(f"The broker at {mask_password(settings.bot_broker_url)} {answer['problem']}.")
    if logging.getLogger().level > logging.INFO:  # a service says what it does as it goes
        logging.getLogger("bot").setLevel(logging.INFO)
    output.errors.print(f"Worker taking {', '.join(chosen)} tasks ({concurrency} at a time); Ctrl-C stops.",
                        markup=False)
    code = run_worker(settings, queues=chosen, concurrency=concurrency)
    if code:
        raise SystemExit(code)

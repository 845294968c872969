"""The wire between `bot run` and `bot worker`: the Celery app both build from BOT_BROKER_URL (Redis), and a task.

A task is one job run of one bot: `send` puts `[TASK_PROTOCOL, run id, body]` on the job's queue (`QUEUES`), where
the run id is the `job_runs` row the scheduler wrote for it and `body` holds the job and the bot's configuration
(so a worker needs no bots.toml). The first two arguments keep their meaning in every protocol; a worker runs only
tasks of its own `TASK_PROTOCOL` and refuses others in one sentence on their row (`bot.service.worker`).

Delivery is at least once: a worker acknowledges a task when it has finished (`task_acks_late`), so a task whose
worker died (or whose child process was killed) goes back to the queue; Redis hands out a task again once it has
gone unacknowledged for BOT_BROKER_VISIBILITY_TIMEOUT. The rows in `job_runs` make a second delivery harmless.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.config import BotConfig, Settings, mask_password
from bot.store import one_line

if TYPE_CHECKING:
    from celery import Celery

TASK_NAME = "nnbot.job"
# Bumped whenever the body of a task changes meaning; a worker of another protocol refuses the task in one sentence.
TASK_PROTOCOL = 1
QUEUES = {"refill": "refill", "train": "train"}  # job -> the queue its tasks go to (`bot worker --queues`)
PREFETCH = 1  # tasks a worker process reserves beyond the one it runs: none waits behind a long training
CONNECT_SECONDS = 2.0  # to reach Redis, before a send fails (the job runs again at its next time)
SOCKET_SECONDS = 10.0  # a Redis that accepted the connection and then stopped answering
SEND_RETRIES = 1  # a send tries a broken connection once more (Redis restarted) before it fails
RESTORE_SWEEPS = 6  # a worker looks for tasks to hand out again this often per visibility timeout (at most 10 s apart)


class BrokerError(Exception):
    """The broker could not take a task (unreachable, refused); the message says so in one sentence."""


def celery_app(settings: Settings) -> Celery:
    """The Celery app on BOT_BROKER_URL, set up alike in the scheduler (which sends) and the workers (which run)."""
    from celery import Celery

    assert settings.bot_broker_url, "celery_app needs BOT_BROKER_URL"
    visibility = settings.bot_broker_visibility_timeout
    app = Celery("nnbot", broker=settings.bot_broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # acknowledged when finished: a worker's death puts the task back
        task_reject_on_worker_lost=True,  # a killed child process's task goes back too, not to a failure state
        task_acks_on_failure_or_timeout=True,  # a task that raised is done (its row says why), not redelivered
        worker_prefetch_multiplier=PREFETCH,
        task_ignore_result=True,  # outcomes live in job_runs: no result backend
        task_serializer="json", accept_content=["json"],
        task_default_queue=QUEUES["refill"],
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker waits for Redis as long as it takes, then reconnects
        broker_transport_options={
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(1.0, min(10.0, visibility / RESTORE_SWEEPS)),
            "unacked_restore_throttle": 1,
            "socket_connect_timeout": CONNECT_SECONDS,
            "socket_timeout": SOCKET_SECONDS,
        },
        worker_hijack_root_logger=False,  # nnbot's logging (bot --verbose) stays as the CLI set it
        worker_send_task_events=False,
        worker_enable_remote_control=False,  # no `celery inspect`: workers report through the database instead
        enable_utc=True,
    )
    return app


def task_body(bot: BotConfig, job: str) -> dict[str, Any]:
    return {"job": job, "bot": bot.model_dump(mode="json")}


def send(app: Celery, run_id: int, bot: BotConfig, job: str, queue: str | None = None) -> None:
    """Put the run on `queue` (by default its job's), or raise BrokerError saying why not."""
    from kombu.exceptions import KombuError

    try:
        app.send_task(TASK_NAME, args=[TASK_PROTOCOL, run_id, task_body(bot, job)], queue=queue or QUEUES[job],
                      retry=True, retry_policy={"max_retries": SEND_RETRIES, "interval_start": 0,
                                                "interval_step": 0.5, "interval_max": 0.5})
    except (KombuError, OSError) as error:
        raise BrokerError(f"the broker at {mask_password(app.conf.broker_url)} did not take the task "
                          f"({one_line(error)})") from None


def queue_lengths(settings: Settings) -> dict[str, Any]:
    """What the broker holds, asked directly with a short timeout: {"reachable": bool, "queued": {queue: n}} or
    {"reachable": False, "problem": "…"}; never waits more than about CONNECT_SECONDS."""
    import redis

    assert settings.bot_broker_url
    client = redis.Redis.from_url(settings.bot_broker_url, socket_connect_timeout=CONNECT_SECONDS,
                                  socket_timeout=CONNECT_SECONDS)
    try:
        # kombu keeps a queue as a Redis list named after it (priority 0, the only one nnbot sends)
        return {"reachable": True, "queued": {queue: int(client.llen(queue)) for queue in sorted(set(QUEUES.values()))}}
    except (redis.AuthenticationError, redis.ResponseError) as error:  # it answered: a password or database is wrong
        return {"reachable": False, "refused": True,
                "problem": f"answered but refused nnbot ({one_line(error)}); check the password and database number "
                           "in BOT_BROKER_URL"}
    except (redis.RedisError, OSError) as error:
        return {"reachable": False, "problem": f"did not answer within {CONNECT_SECONDS:.0f} s ({one_line(error)})"}
    finally:
        client.close()

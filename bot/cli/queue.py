"""`bot queue list|approve|reject|edit`: what a person decides about candidates."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from bot.cli import app
from bot.cli.options import CANDIDATE_ID, CANDIDATE_IDS, JSON

queue_app = typer.Typer(help="Review candidates: list, approve, reject, edit, reconcile.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")

SHOWN = 20  # rows `bot queue list` prints unless told otherwise
STATUSES = ("pending", "approved", "rejected", "posting", "posted", "failed", "unknown")  # store.schema.Status


def _status(value: str | None) -> str | None:
    if value is not None and value not in STATUSES:
        raise typer.BadParameter(f"use one of {', '.join(STATUSES)}")
    return value


@queue_app.command("list", short_help="Candidates: pending best first, the others oldest first.")
def list_(
    status: Annotated[Optional[str], typer.Option("--status", help="|".join(STATUSES), callback=_status)] = None,
    bot: Annotated[Optional[str], typer.Option("--bot", help="Only this bot's candidates.")] = None,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", min=1, help=f"At most this many (default: {SHOWN} in the table, all with --json).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every candidate of the selection in the table.")] = False,
    json_: JSON = False,
) -> None:
    """Candidates: pending ones best first (by score), the others oldest first."""
    from bot.cli import context, output
    from bot.queue import SCORE_FORMAT, candidate_json, count_candidates, list_candidates
    from scrapers.text import printable

    shown = limit if limit or json_ or all_ else SHOWN
    with context.store().session() as session:
        rows = [candidate_json(c) for c in list_candidates(session, status=status, bot=bot, limit=shown)]
        total = count_candidates(session, status=status, bot=bot) if shown and len(rows) == shown else len(rows)
    if json_:
        output.print_json(rows)
        return
    if not rows:
        output.console.print("The queue is empty for that selection.", markup=False)
        return
    # Texts and reasons stored before control characters were refused are shown escaped, never raw.
    output.table(["id", "bot", "status", "score", "text", "reason"],
                 [(r["id"], r["bot"], r["status"], SCORE_FORMAT.format(r["score"]),
                   printable(str(r["text"])) + (" (edited)" if r["edited"] else ""),
                   r["reason"] and printable(str(r["reason"]))) for r in rows])
    if total > len(rows):
        output.console.print(f"… and {total - len(rows)} more; --limit N or --all shows more.", markup=False)


@queue_app.command(short_help="Approve candidates; posted in the order approved.")
def approve(ids: CANDIDATE_IDS) -> None:
    """Approve candidates for posting; a rejected one too, its rejection kept in its reason."""
    from bot import queue
    from bot.cli import context, output

    with context.store().session() as session:
        done = queue.approve(session, ids)
    output.console.print(f"Approved {_ids(done)}.", markup=False)


@queue_app.command(short_help="Reject candidates: kept, posted only if approved again.")
def reject(ids: CANDIDATE_IDS,
           reason: Annotated[Optional[str], typer.Option("--reason", help="Why, for the record.")] = None) -> None:
    """Reject candidates; they are kept, and never posted unless approved again."""
    from bot import queue
    from bot.cli import context, output

    with context.store().session() as session:
        done = queue.reject(session, ids, reason=reason)
    output.console.print(f"Rejected {_ids(done)}.", markup=False)


@queue_app.command(short_help="Change a candidate's text; the filters check it.")
def edit(candidate_id: CANDIDATE_ID,
         text: Annotated[str, typer.Option("--text", help="The new text.")]) -> None:
    """Change a candidate's text; the filters check the new text first."""
    from bot import queue
    from bot.cli import context, output
    from bot.generation import filters_for_candidate

    with context.store().session() as session:
        candidate = queue.get_candidate(session, candidate_id)
        filters = filters_for_candidate(session, context.settings(), candidate, context.bot_config(candidate.bot))
        queue.edit(session, candidate_id, text, filters)
    output.console.print(f"Edited candidate {candidate_id}.", markup=False)


@queue_app.command(short_help="Look for `unknown` candidates among recent posts.")
def reconcile(bot: Annotated[Optional[str], typer.Option("--bot", help="Only this bot's candidates.")] = None,
              json_: JSON = False) -> None:
    """Look for each `unknown` candidate among its account's recent posts: found ones become `posted`."""
    from bot import posting
    from bot.cli import context, output

    results = posting.reconcile(context.store(), context.settings(), context.bots(), bot_name=bot)
    if json_:
        output.print_json([{"bot": r.bot, "found": [{"candidate": i, "url": u} for i, u in r.found],
                            "still_unknown": r.missing, "error": r.error} for r in results])
        return
    if not results:
        output.console.print("No candidate's outcome is unknown.", markup=False)
    for r in results:
        for candidate_id, url in r.found:
            output.console.print(f"Candidate {candidate_id} ({r.bot}) was posted: {url}", markup=False)
        if r.missing:
            output.console.print(f"Still unknown for bot {r.bot!r}: {', '.join(map(str, r.missing))} "
                                 f"({r.error or 'not among the latest posts'}); approve each again to post it, "
                                 "or reject it.", markup=False)


def _ids(candidates) -> str:  # type: ignore[no-untyped-def]
    ids = [str(c.id) for c in candidates]
    return ("candidate " if len(ids) == 1 else "candidates ") + ", ".join(ids)

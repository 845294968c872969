"""`bot serve`: the review web page, where a person approves, rejects and edits candidates."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli import app

if TYPE_CHECKING:
    from pydantic import SecretStr

DEFAULT_HOST = "127.0.0.1"  # only this machine can reach the page unless --host says otherwise
DEFAULT_PORT = 8000
RUN_PASSWORD_BYTES = 12  # a password made up for one run of `bot serve` on loopback: 16 characters


@app.command(short_help="Run the review web page.")
def serve(
    host: Annotated[str, typer.Option("--host", help="The address to listen on; 0.0.0.0 for every interface.")]
    = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The port to listen on.")] = DEFAULT_PORT,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", help="A host name the page answers to (repeatable), e.g. the name a reverse proxy "
                               "serves it under; default: the address listened on, and localhost on loopback.")] = None,
    forwarded_allow_ips: Annotated[str | None, typer.Option(
        "--forwarded-allow-ips", help="Addresses of a reverse proxy whose X-Forwarded-For and X-Forwarded-Proto "
                                      "are believed (comma-separated); default: none, so the login limit counts "
                                      "the connecting address.")] = None,
) -> None:
    """Run the review page, behind BOT_REVIEW_PASSWORD (on this machine only, a password made up for the run)."""
    from bot.cli import context, output
    from bot.web.security import is_loopback, require_password

    settings = context.settings()
    made_up = None
    if is_loopback(host) and not (settings.bot_review_password and settings.bot_review_password.get_secret_value()):
        made_up = one_run_password()  # a newcomer's first `bot serve` works; other users of the machine still
        settings = settings.model_copy(update={"bot_review_password": made_up})  # need the password
    require_password(settings)  # before anything heavy; other addresses never run without a password of one's own
    import uvicorn

    from bot.web.app import create_app

    web = create_app(context.store(), settings, context.bots(), allowed_hosts=allowed_hosts(host, allowed_host))
    where = f"http://{host}:{port}/" if ":" not in host else f"http://[{host}]:{port}/"
    if not is_loopback(host):
        output.console.print(f"Serving the review page on {host}, reachable from other machines; put it behind "
                             "HTTPS (a reverse proxy) so the password is not sent in clear.", markup=False)
    output.console.print(f"Review page: {where} (Ctrl-C stops it)", markup=False)
    if made_up is not None:
        output.console.print(f"Password for this run: {made_up.get_secret_value()} (no BOT_REVIEW_PASSWORD is set; "
                             "set it to keep a password of your own)", markup=False)
    # No proxy headers unless a proxy is named: uvicorn otherwise believes X-Forwarded-For from 127.0.0.1, and a
    # new made-up address per guess would get past the login limit.
    uvicorn.run(web, host=host, port=port, server_header=False, log_level="warning",
                proxy_headers=forwarded_allow_ips is not None, forwarded_allow_ips=forwarded_allow_ips)


def one_run_password() -> SecretStr:
    from pydantic import SecretStr

    return SecretStr(secrets.token_urlsafe(RUN_PASSWORD_BYTES))


def allowed_hosts(host: str, given: list[str] | None) -> list[str]:
    """The Host names the page answers to: those given; else the address it listens on, with the loopback names
    when that is loopback; on every interface (0.0.0.0, ::) without --allowed-host, any name."""
    from bot.web.security import is_loopback

    if given:
        return list(given)
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    names = [host.strip("[]"), f"[{host.strip('[]')}]" if ":" in host else host]
    if is_loopback(host):
        names += ["localhost", "127.0.0.1", "[::1]"]
    return list(dict.fromkeys(names))

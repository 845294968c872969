"""`bot serve`: the review web page, where a person approves, rejects and edits candidates."""

from __future__ import annotations

from typing import Annotated

import typer

from bot.cli import app

DEFAULT_HOST = "127.0.0.1"  # only this machine can reach the page unless --host says otherwise
DEFAULT_PORT = 8000



@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="The address to listen on; 0.0.0.0 for every interface.")]
    = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="The port to listen on.")] = DEFAULT_PORT,
) -> None:
    """Run the review page (needs BOT_REVIEW_PASSWORD, on any address)."""
    from bot.cli import context, output
    from bot.web.security import is_loopback, require_password

    settings = context.settings()
    require_password(settings)  # before anything heavy, on 127.0.0.1 too
    import uvicorn

    from bot.web.app import create_app

    web = create_app(context.store(), settings, context.bots())
    where = f"http://{host}:{port}/" if ":" not in host else f"http://[{host}]:{port}/"
    if not is_loopback(host):
        output.console.print(f"Serving the review page on {host}, reachable from other machines; put it behind "
                             "HTTPS (a reverse proxy) so the password is not sent in clear.", markup=False)
    output.console.print(f"Review page: {where} (Ctrl-C stops it)", markup=False)
    uvicorn.run(web, host=host, port=port, server_header=False, log_level="warning")

"""The gateway's commands: serve it, and make API keys."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gateway.auth import ConfigurationError, hash_key, new_key
from gateway.settings import SCOPES, Settings

app = typer.Typer(help="The public API gateway.", no_args_is_help=True, add_completion=False)


@app.command()
def serve() -> None:
    """Serve the gateway (settings from GATEWAY_* env variables, MODEL_URL, REDIS_URL)."""
    import uvicorn

    from gateway.app import create_app

    settings = Settings()
    try:
        application = create_app(settings)
    except (ConfigurationError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    uvicorn.run(application, host=settings.host, port=settings.port, log_config=None)


@app.command("new-key")
def new_key_command(
    name: Annotated[str, typer.Option(help="Who the key is for.")],
    scope: Annotated[list[str] | None, typer.Option(help=f"Repeat for several: {', '.join(SCOPES)}.")] = None,
) -> None:
    """Make an API key: prints the key (give it to the caller) and its entry for GATEWAY_API_KEYS."""
    scopes = scope or ["predict"]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        typer.echo(f"error: unknown scope {unknown}; scopes: {', '.join(SCOPES)}", err=True)
        raise typer.Exit(2)
    key = new_key()
    typer.echo(f"key (shown once): {key}")
    typer.echo(
        "entry for GATEWAY_API_KEYS: " + json.dumps({"name": name, "sha256": hash_key(key), "scopes": scopes})
    )

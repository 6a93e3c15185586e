"""For `just up`: check the settings, pick the queue, and say where each service listens.

Prints `export NAME=value` lines for the shell and, on stderr, what it chose: the queue (the
Redis at REDIS_URL when one answers, else the embedded default), the environment, and each
service's address. A malformed setting stops here with one line naming it, before any
process starts. The settings are read as the services read them (the environment, then
`.env`, then the defaults written once in the settings classes), so the addresses printed
and the peer URLs exported are the ones the services use. The embedded default needs nothing
installed beyond the project: Celery on kombu's SQLAlchemy transport (a SQLite file under
data/), and rate-limit counters kept in the gateway's process.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import redis

from batch_worker.settings import Settings as WorkerSettings
from gateway.settings import Settings as GatewaySettings
from model_service.settings import Settings as ModelSettings
from onepipe.platform.settings import DEVELOPMENT_KEY, load_settings, uses_redis
from scripts.settings_docs import STREAMLIT
from ui_service.settings import Settings as UiSettings

ROOT = Path(__file__).resolve().parent.parent
# `just up` is a developer's stack: the built-in local key works unless GATEWAY_ENVIRONMENT says otherwise
LOCAL_ENVIRONMENT = "development"


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def _reach(host: str) -> str:
    """The address to visit: a service listening on every interface answers on this machine's loopback."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


def queue_url(url: str) -> str:
    """The queue the stack runs on: the Redis at `url` when one answers, else the embedded SQLite file."""
    if not uses_redis(url):  # the embedded queue asked for by name (sqla+sqlite:///FILE): used as given
        _say(f"queue          embedded: Celery on {url}, rate limits in the gateway's process")
        return url
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except (redis.RedisError, ValueError) as error:
        queue = ROOT / "data" / "queue.sqlite"
        queue.parent.mkdir(parents=True, exist_ok=True)
        _say(
            f"queue          embedded: no Redis at {url} ({type(error).__name__}); Celery on {queue}, "
            "rate limits in the gateway's process"
        )
        return f"sqla+sqlite:///{queue}"
    _say(f"queue          Redis at {url}")
    return url


def main() -> None:
    """Check the settings, choose the queue, print the exports and where each service listens."""
    model = load_settings(ModelSettings)
    load_settings(WorkerSettings)
    load_settings(UiSettings)
    gateway = load_settings(GatewaySettings)
    exports = {"REDIS_URL": queue_url(gateway.redis_url)}
    environment = os.environ.get("GATEWAY_ENVIRONMENT") or LOCAL_ENVIRONMENT
    ui_host = os.environ.get("STREAMLIT_SERVER_ADDRESS") or STREAMLIT["STREAMLIT_SERVER_ADDRESS"][0]
    ui_port = os.environ.get("STREAMLIT_SERVER_PORT") or STREAMLIT["STREAMLIT_SERVER_PORT"][0]
    model_url = f"http://{_reach(model.host)}:{model.port}"
    gateway_url = f"http://{_reach(gateway.host)}:{gateway.port}"
    exports |= {
        "GATEWAY_ENVIRONMENT": environment,
        # the peers follow the ports the services listen on, unless set
        "MODEL_URL": os.environ.get("MODEL_URL") or model_url,
        "GATEWAY_URL": os.environ.get("GATEWAY_URL") or gateway_url,
        "STREAMLIT_SERVER_ADDRESS": ui_host,
        "STREAMLIT_SERVER_PORT": ui_port,
        "STREAMLIT_SERVER_HEADLESS": "true",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    _say(f"environment    {environment}  (GATEWAY_ENVIRONMENT)")
    _say(f"model service  {model_url}  (listening on {model.host}; internal; docs at /docs)")
    _say(f"gateway        {gateway_url}  (listening on {gateway.host}; docs at /docs)")
    _say(f"ui             http://{_reach(ui_host)}:{ui_port}  (listening on {ui_host})")
    if environment == LOCAL_ENVIRONMENT and not gateway.api_keys:
        _say(f"local API key  {DEVELOPMENT_KEY}  (X-API-Key header; development only)")
    else:
        _say("API keys       the ones in GATEWAY_API_KEYS (no built-in key)")
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")


if __name__ == "__main__":
    main()

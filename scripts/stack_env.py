"""For `just up`: check the settings; use the Redis at REDIS_URL when one answers, else the embedded default.

Prints `export NAME=value` lines for the shell, and says which mode it chose on stderr.
A malformed setting stops here with one line naming it, before any process starts.
The settings are read as the services read them (the environment, then `.env`, then
the defaults), so the Redis URL tried is the one the gateway and the workers would use.
The embedded default needs nothing installed beyond the project: Celery on kombu's
SQLAlchemy transport (a SQLite file under data/), and rate-limit counters kept in
the gateway's process.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import redis

from batch_worker.settings import Settings as WorkerSettings
from gateway.settings import Settings as GatewaySettings
from model_service.settings import Settings as ModelSettings
from onepipe.platform.settings import load_settings, uses_redis
from ui_service.settings import Settings as UiSettings

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Check the settings, choose the queue and print the exports."""
    load_settings(ModelSettings)
    load_settings(WorkerSettings)
    load_settings(UiSettings)
    url = load_settings(GatewaySettings).redis_url
    if not uses_redis(url):  # the embedded queue asked for by name (sqla+sqlite:///FILE): used as given
        print(
            f"queue          embedded: Celery on {url}, rate limits in the gateway's process", file=sys.stderr
        )
        print(f"export REDIS_URL={shlex.quote(url)}")
        return
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
    except (redis.RedisError, ValueError) as error:
        queue = ROOT / "data" / "queue.sqlite"
        queue.parent.mkdir(parents=True, exist_ok=True)
        chosen = f"sqla+sqlite:///{queue}"
        print(
            f"queue          embedded: no Redis at {url} ({type(error).__name__}); Celery on {queue}, "
            "rate limits in the gateway's process",
            file=sys.stderr,
        )
    else:
        chosen = url
        print(f"queue          Redis at {url}", file=sys.stderr)
    print(f"export REDIS_URL={shlex.quote(chosen)}")


if __name__ == "__main__":
    main()

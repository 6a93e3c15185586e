"""For `just up`: use the Redis at REDIS_URL when one answers, else the embedded default.

Prints `export NAME=value` lines for the shell, and says which mode it chose on stderr.
The embedded default needs nothing installed beyond the project: Celery on kombu's
SQLAlchemy transport (a SQLite file under data/), and rate-limit counters kept in
the gateway's process.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    """Choose the queue and print the exports."""
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
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

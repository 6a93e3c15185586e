"""`python -m review_triage held-out FILE.csv`: the held-out snippets, for a reviewer to score."""

from __future__ import annotations

import sys
from pathlib import Path

from review_triage.training import write_held_out


def main(argv: list[str]) -> int:
    """Write the held-out snippets (text, label, movie) to the CSV file named."""
    if len(argv) != 2 or argv[0] != "held-out":
        print("usage: python -m review_triage held-out FILE.csv", file=sys.stderr)
        return 2
    rows = write_held_out(Path(argv[1]))
    print(f"{rows} held-out snippets written to {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

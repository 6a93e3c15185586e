"""JSON Lines as the format defines them (https://jsonlines.org): one JSON value per line, lines
ending at `\\n` only.

One definition for every file written or read a line at a time (the batch worker's JSONL reports,
the edge-case library): a value is written with every character that some reader takes for a line
end escaped, and read back by splitting at `\\n` alone, so a text holding U+2028 or U+0085 stays
one value whoever reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Final

# Characters str.splitlines() (and some editors) take for line ends. JSON lets them stand unescaped
# in a string; escaped, a line is one line however its reader splits. `\n` and `\r` are control
# characters, which JSON always escapes.
LINE_BREAKS: Final = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def escape_line_breaks(json_text: str) -> str:
    """JSON text with U+0085, U+2028 and U+2029 escaped (they can only stand inside its strings)."""
    return json_text.translate(LINE_BREAKS)


def json_line(value: Any) -> str:
    """A value as one JSON line, ending in `\\n`: non-ASCII kept, every other line break escaped."""
    return escape_line_breaks(json.dumps(value, ensure_ascii=False)) + "\n"


def split_lines(text: str) -> Iterator[tuple[int, str]]:
    """The lines of JSON Lines text with their numbers (from 1), split at `\\n` only; blank ones skipped.

    A `\\r` before the `\\n` stays on the line: JSON reads it as white space (as it does spaces
    and tabs, the only other characters a blank line may hold).
    """
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip(" \t\r"):
            yield number, line


def read_values(text: str) -> list[Any]:
    """Every value of JSON Lines text, in order."""
    return [json.loads(line) for _, line in split_lines(text)]

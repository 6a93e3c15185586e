"""What every reader of a reviewer's file shares: its error, its rows, its limits, its text checks."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import IO, Any

SAMPLE_CHARS = 64 * 1024  # what the header check reads of a text file
MAX_COLUMNS = 1000  # the most columns a file may have
# an undecodable byte, as the "surrogateescape" error handler keeps it: U+DC80 to U+DCFF
UNDECODABLE = re.compile("[\udc80-\udcff]")
# what a file that is not text starts with, and what to tell its owner
_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed; decompress it and upload the file itself"),
    (b"PK\x03\x04", "a ZIP archive (an Excel workbook?); export or unzip it as CSV (UTF-8) or JSON lines"),
    (b"PAR1", "a Parquet file; name it .parquet"),
    (b"\xff\xfe", "UTF-16 text; save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text; save it as UTF-8"),
)


class DatasetError(ValueError):
    """The file cannot be read as the format it claims; the message says why, for people."""


@dataclass(frozen=True)
class Row:
    """One data row: its number, its columns (or None), and why it could not be read (or None)."""

    number: int
    values: dict[str, Any] | None
    error: str | None = None


def text_of(handle: IO[bytes]) -> io.TextIOWrapper:
    """A binary file read as UTF-8 text; an undecodable byte is kept, to be named where it is."""
    # an undecodable byte becomes a lone surrogate, found and reported where it is (never a crash)
    return io.TextIOWrapper(handle, encoding="utf-8-sig", newline="", errors="surrogateescape")


def byte_name(char: str) -> str:
    """An undecodable byte, as `text_of` kept it, in hex (0x93)."""
    return f"0x{ord(char) - 0xDC00:02x}"


def not_text(start: str) -> None:
    """A DatasetError when the file's first characters are the signature of a file that is not text."""
    raw = start[:8].encode("utf-8", "surrogateescape")
    for signature, what in _SIGNATURES:
        if raw.startswith(signature):
            raise DatasetError(f"the file is {what}")


def not_utf8(text: str, first_line: int = 1) -> None:
    """A DatasetError naming the line of the first byte of `text` that is not UTF-8, if any."""
    found = UNDECODABLE.search(text)
    if found is not None:
        line = first_line + text.count("\n", 0, found.start()) + text.count("\r", 0, found.start())
        line -= text.count("\r\n", 0, found.start())
        raise DatasetError(
            f"the file is not UTF-8 text: line {line} holds the byte {byte_name(found.group())} "
            "(Latin-1 or Windows-1252?); save it as UTF-8"
        )


def column_names(names: list[str], what: str) -> list[str]:
    """The names, or a DatasetError when there are too many, one is empty or one is repeated."""
    if len(names) > MAX_COLUMNS:
        raise DatasetError(f"the {what} has {len(names)} columns; the limit is {MAX_COLUMNS}")
    if any(not name.strip() for name in names):
        raise DatasetError(f"the {what} has an empty column name; every column needs a name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DatasetError(f"the {what} repeats the column(s) {', '.join(duplicates)}")
    return names

"""Reading reviewers' files (CSV, JSONL, Parquet) as a stream of rows, and mapping columns to inputs.

Needs the `storage` extra (pyarrow). Row numbers count data rows from 1: the CSV
header and a JSONL file's blank lines are not rows of their own.

Text files are UTF-8 (a byte order mark is dropped). A CSV file whose first 64 KiB,
or a JSON lines file whose first object, is not UTF-8, and a file that is compressed,
an archive or UTF-16, are refused with a message saying so; a later row that is not
UTF-8, not valid CSV or JSON, or has too many or too few values is a row with an
error, and the rows after it are read on.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any

from onepipe.platform.jobs.types import FileFormat
from onepipe.platform.schema.schemas import json_types, scorable
from onepipe.platform.schema.values import json_type

PARQUET_BATCH_ROWS = 1000
SAMPLE_CHARS = 64 * 1024  # what the header check reads of a text file
MAX_HEADER_CHARS = 1024 * 1024  # the longest CSV header line
MAX_COLUMNS = 1000  # the most columns a file may have
MAX_JSON_DEPTH = 32  # the deepest nesting of a JSON value (a JSON line, a cell holding JSON)
# an undecodable byte, as the "surrogateescape" error handler keeps it: U+DC80 to U+DCFF
_UNDECODABLE = re.compile("[\udc80-\udcff]")
# what a file that is not text starts with, and what to tell its owner
_SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed; decompress it and upload the file itself"),
    (b"PK\x03\x04", "a ZIP archive (an Excel workbook?); export or unzip it as CSV (UTF-8) or JSON lines"),
    (b"PAR1", "a Parquet file; name it .parquet"),
    (b"\xff\xfe", "UTF-16 text; save it as UTF-8"),
    (b"\xfe\xff", "UTF-16 text; save it as UTF-8"),
)
JSON_KINDS = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


class DatasetError(ValueError):
    """The file cannot be read as the format it claims; the message says why, for people."""


@dataclass(frozen=True)
class Row:
    """One data row: its number, its columns (or None), and why it could not be read (or None)."""

    number: int
    values: dict[str, Any] | None
    error: str | None = None


def detect_format(file_name: str) -> FileFormat:
    """The format a file name's extension names."""
    lowered = file_name.lower()
    for suffix, found in (
        (".csv", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".parquet", "parquet"),
    ):
        if lowered.endswith(suffix):
            return found  # type: ignore[return-value]
    raise DatasetError(f"cannot tell the format of {file_name!r}: name it .csv, .jsonl or .parquet")


def _text(handle: IO[bytes]) -> io.TextIOWrapper:
    # an undecodable byte becomes a lone surrogate, found and reported where it is (never a crash)
    return io.TextIOWrapper(handle, encoding="utf-8-sig", newline="", errors="surrogateescape")


def _byte(char: str) -> str:
    return f"0x{ord(char) - 0xDC00:02x}"


def _not_text(start: str) -> None:
    """A DatasetError when the file's first characters are the signature of a file that is not text."""
    raw = start[:8].encode("utf-8", "surrogateescape")
    for signature, what in _SIGNATURES:
        if raw.startswith(signature):
            raise DatasetError(f"the file is {what}")


def _not_utf8(text: str, first_line: int = 1) -> None:
    """A DatasetError naming the line of the first byte of `text` that is not UTF-8, if any."""
    found = _UNDECODABLE.search(text)
    if found is not None:
        line = first_line + text.count("\n", 0, found.start()) + text.count("\r", 0, found.start())
        line -= text.count("\r\n", 0, found.start())
        raise DatasetError(
            f"the file is not UTF-8 text: line {line} holds the byte {_byte(found.group())} "
            "(Latin-1 or Windows-1252?); save it as UTF-8"
        )


def _column_names(names: list[str], what: str) -> list[str]:
    if len(names) > MAX_COLUMNS:
        raise DatasetError(f"the {what} has {len(names)} columns; the limit is {MAX_COLUMNS}")
    if any(not name.strip() for name in names):
        raise DatasetError(f"the {what} has an empty column name; every column needs a name")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DatasetError(f"the {what} repeats the column(s) {', '.join(duplicates)}")
    return names


def read_header(file_format: FileFormat, handle: IO[bytes]) -> list[str]:
    """The file's column names, or a DatasetError saying why the file is unreadable."""
    if file_format == "csv":
        return _csv_header(_text(handle))
    if file_format == "jsonl":
        return _jsonl_header(_text(handle))
    return _parquet_header(handle)


def _csv_header(text: io.TextIOWrapper) -> list[str]:
    sample = text.read(SAMPLE_CHARS)
    if len(sample) == SAMPLE_CHARS and not any(end in sample for end in "\r\n"):
        sample += text.readline(MAX_HEADER_CHARS - len(sample))  # a wide header: read it to its end
        if len(sample) >= MAX_HEADER_CHARS and not sample.endswith(("\r", "\n")):
            raise DatasetError(f"the CSV header is longer than the limit of {MAX_HEADER_CHARS} characters")
    _not_text(sample)
    if not sample.strip():
        raise DatasetError("the file is empty")
    _not_utf8(sample)
    if "\x00" in sample:
        raise DatasetError("the file is not CSV text (it contains NUL bytes)")
    try:
        header = next(csv.reader(io.StringIO(sample, newline=""), strict=True))
    except csv.Error as error:
        raise DatasetError(f"the file is not valid CSV: {error}") from None
    return _column_names([name.strip() for name in header], "CSV header")


def _jsonl_header(text: io.TextIOWrapper) -> list[str]:
    for number, line in enumerate(text, start=1):
        if number == 1:
            _not_text(line)
        if not line.strip():
            continue
        _not_utf8(line, number)
        value, problem = _json_object(line)
        if problem is not None:
            raise DatasetError(f"the file is not JSON lines of objects: line {number} is {problem}")
        return _column_names(list(value or {}), "first JSON object")
    raise DatasetError("the file is empty")


def _parquet_header(handle: IO[bytes]) -> list[str]:
    import pyarrow.parquet as pq

    try:
        names = list(pq.ParquetFile(handle).schema_arrow.names)
    except Exception as error:
        raise DatasetError(f"the file is not a valid Parquet file ({error})") from None
    if not names:
        raise DatasetError("the Parquet file has no columns")
    return _column_names(names, "Parquet file")


def iter_rows(file_format: FileFormat, handle: IO[bytes]) -> Iterator[Row]:
    """Every data row, streamed: memory stays flat whatever the file's size."""
    if file_format == "csv":
        yield from _csv_rows(_text(handle))
    elif file_format == "jsonl":
        yield from _jsonl_rows(_text(handle))
    else:
        yield from _parquet_rows(handle)


def _csv_rows(text: io.TextIOWrapper) -> Iterator[Row]:
    # strict: a quote that is never closed is an error, not the rest of the file read as one value
    reader = csv.reader(text, strict=True)
    header = [name.strip() for name in next(reader, [])]
    number = 0
    while True:
        first_line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            number += 1
            yield Row(number, None, _csv_problem(error, first_line, reader.line_num))
            continue
        if not cells:
            continue  # a blank line
        number += 1
        yield _csv_row(number, header, cells)


def _csv_problem(error: csv.Error, first_line: int, last_line: int) -> str:
    message = str(error)
    if message == "unexpected end of data":
        return (
            f"not valid CSV: the quoted value opened on line {first_line} is never closed, "
            f"so lines {first_line} to {last_line} (the end of the file) were read as this one row"
        )
    if message.startswith("field larger than field limit"):
        limit = csv.field_size_limit()
        return f"not valid CSV (line {last_line}): a value is longer than the limit of {limit} characters"
    return f"not valid CSV (line {last_line}): {message}"


def _csv_row(number: int, header: list[str], cells: list[str]) -> Row:
    problems = []
    for column, cell in zip(header, cells, strict=False):
        found = _UNDECODABLE.search(cell)
        if found is not None:
            problems.append(
                f"the row is not UTF-8 text (the byte {_byte(found.group())} in column {column}); "
                "save the file as UTF-8"
            )
            break
    if problems:  # the cells as text, the undecodable bytes replaced, so the report can show them
        cells = [cell.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for cell in cells]
    values: dict[str, Any] = dict(zip(header, cells, strict=False))
    if len(cells) > len(header):
        problems.append(f"the row has {len(cells)} values but the header has {len(header)} columns")
    elif len(cells) < len(header):
        missing = header[len(cells) :]
        values.update(dict.fromkeys(missing))
        problems.append(
            f"the row has {len(cells)} value(s) but the header has {len(header)} columns "
            f"(no value for {', '.join(missing)})"
        )
    return Row(number, values, "; ".join(problems) or None)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


class RepeatedKeyError(ValueError):
    """A JSON object names a key twice: valid JSON, but which value was meant is unknown."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        repeated = sorted({key for key, _ in pairs if sum(1 for k, _ in pairs if k == key) > 1})
        raise RepeatedKeyError(f"an object repeats the key(s) {', '.join(repeated)}")
    return found


def parse_json(text: str) -> Any:
    """JSON as RFC 8259 has it: NaN, Infinity and numbers out of range are ValueErrors, as are repeated keys.

    A value Python's json would take but JSON cannot carry on (to the model service, to the reports)
    is refused here, where the row it is in can be named.
    """
    try:
        return json.loads(
            text, object_pairs_hook=_unique_keys, parse_constant=_no_constant, parse_float=_finite
        )
    except ValueError as error:
        if "integer string conversion" not in str(error):
            raise
        limit = sys.get_int_max_str_digits()
        raise ValueError(f"a number has more than {limit} digits (the limit)") from None


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON value nests objects and arrays deeper than `limit` levels."""
    pending = [(value, 1)] if isinstance(value, dict | list) else []
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _json_object(line: str) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON line's object, or None and why it is not one."""
    found = _UNDECODABLE.search(line)
    if found is not None:
        return None, f"not UTF-8 text (the byte {_byte(found.group())}); save the file as UTF-8"
    try:
        value = parse_json(line)
    except json.JSONDecodeError as error:
        return None, f"not valid JSON: {error.msg} (column {error.colno})"
    except RepeatedKeyError as error:
        return None, f"ambiguous: {error}"
    except ValueError as error:  # NaN, Infinity, a number out of range or with too many digits
        return None, f"not valid JSON: {error}"
    except RecursionError:
        return None, f"nested more than {MAX_JSON_DEPTH} levels deep (the limit)"
    if not isinstance(value, dict):
        return None, f"not a JSON object but {JSON_KINDS.get(type(value), 'a number')}"
    if (line.count("[") + line.count("{") > MAX_JSON_DEPTH) and too_deep(value):
        return None, f"nested more than {MAX_JSON_DEPTH} levels deep (the limit)"
    code = _unpaired_surrogate(line, value)
    if code is not None:
        return None, f"not text: a string holds \\u{code:04x}, half of a surrogate pair, alone"
    return value, None


def _jsonl_rows(text: io.TextIOWrapper) -> Iterator[Row]:
    number = 0
    for line in text:
        if not line.strip():
            continue
        number += 1
        value, problem = _json_object(line)
        yield Row(number, value, None) if problem is None else Row(number, None, problem)


def _plain(value: Any) -> Any:
    """A Parquet value as JSON can carry it: times as ISO text, decimals as text, NaN as null.

    Bytes that are not UTF-8 text raise UnicodeDecodeError.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else None
    return str(value)


def _parquet_record(number: int, record: dict[str, Any]) -> Row:
    values: dict[str, Any] = {}
    problems = []
    for column, value in record.items():
        try:
            values[column] = _plain(value)
        except UnicodeDecodeError:
            values[column] = None
            problems.append(f"the column {column} holds bytes that are not UTF-8 text")
    return Row(number, values, "; ".join(problems) or None)


def _parquet_rows(handle: IO[bytes]) -> Iterator[Row]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(handle)
    number = 0
    # row group by row group: one that cannot be read is reported row by row, and the next is read
    for group in range(parquet.num_row_groups):
        end = number + parquet.metadata.row_group(group).num_rows
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, row_groups=[group]):
                for record in batch.to_pylist():
                    number += 1
                    yield _parquet_record(number, record)
        except Exception as error:  # damaged data: pyarrow's errors have no common type
            reason = f"the Parquet file's row group {group + 1} cannot be read ({error})"
            while number < end:
                number += 1
                yield Row(number, None, reason)


def has_rows(file_format: FileFormat, handle: IO[bytes]) -> bool:
    """Whether the file has at least one data row (reads no further than the first)."""
    if file_format == "parquet":
        return count_rows(file_format, handle) > 0
    return next(iter_rows(file_format, handle), None) is not None


def count_rows(file_format: FileFormat, handle: IO[bytes]) -> int:
    """How many data rows the file has (Parquet: from its footer, without reading the data)."""
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(handle).metadata.num_rows)
    return sum(1 for _ in iter_rows(file_format, handle))


def resolve_mapping(
    input_schema: Mapping[str, Any], header: list[str], mapping: Mapping[str, str], file_format: FileFormat
) -> dict[str, str]:
    """Input field -> column for every field the file can fill; a DatasetError names what is missing.

    A field maps to the column of the same name unless `mapping` says otherwise. CSV and
    Parquet columns are the header's; a JSON lines file has none, and any object may hold
    a key the first one left out (an optional field not set), so there every field maps
    to its column and `header` (the first object's keys) serves only to check the
    required ones.
    """
    fields = dict(input_schema.get("properties", {}))
    unknown = [field for field in mapping if field not in fields]
    if unknown:
        raise DatasetError(
            f"the mapping names unknown input field(s) {', '.join(unknown)}; "
            f"input fields: {', '.join(fields)}"
        )
    resolved: dict[str, str] = {}
    missing = []
    absent = []
    for field in fields:
        column = mapping.get(field, field)
        if column in header or file_format == "jsonl":
            resolved[field] = column
        if column in header:
            continue
        if field in input_schema.get("required", []):
            missing.append(f"{field} (column {column!r})" if column != field else field)
        elif field in mapping and file_format != "jsonl":
            absent.append(f"{field} -> {column!r}")
    where = "first JSON object's keys" if file_format == "jsonl" else "columns"
    if missing:
        raise DatasetError(
            f"the file has no column for the required input field(s) {', '.join(missing)}; "
            f"its {where}: {', '.join(header)}"
        )
    if absent:
        raise DatasetError(
            f"the mapping names column(s) the file does not have: {', '.join(absent)}; "
            f"its columns: {', '.join(header)}"
        )
    return resolved


def truth_problems(
    output_schema: Mapping[str, Any], header: list[str], truth: Mapping[str, str], file_format: FileFormat
) -> list[tuple[str, str]]:
    """What is wrong with a job's truth mapping (output field -> column), as (field, message) pairs.

    A field must be an output field whose values can be scored (numbers, text, booleans,
    enums; not lists or objects), and its column one of the file's (a JSON lines file's
    later objects may hold keys the first one leaves out, so there any column is taken).
    """
    fields = dict(output_schema.get("properties", {}))
    problems = []
    for field, column in truth.items():
        if field not in fields:
            problems.append((field, f"not an output field; output fields: {', '.join(fields)}"))
        elif not scorable(fields[field], output_schema):
            problems.append((field, "a list or object output field cannot be scored against a column"))
        elif not isinstance(column, str) or not column:
            problems.append((field, "maps to a column name (a non-empty string)"))
        elif column not in header and file_format != "jsonl":
            problems.append((field, f"the file has no column {column!r}; its columns: {', '.join(header)}"))
    return problems


def to_input(
    values: Mapping[str, Any], mapping: Mapping[str, str], input_schema: Mapping[str, Any]
) -> dict[str, Any]:
    """A row as the pipeline's input: mapped columns, with CSV cells read as their fields' types.

    A blank cell of a field the input does not require is left out, so the field takes its
    default (or None); a required field left blank goes to the pipeline, which refuses the row.
    """
    fields = input_schema.get("properties", {})
    required = set(input_schema.get("required", []))
    built = {}
    for field, column in mapping.items():
        if column not in values:
            continue  # the pipeline's validation says the field is required
        value = values[column]
        if isinstance(value, str):
            if not value.strip() and field not in required:
                continue
            value = _cell(value, json_types(fields.get(field, {}), input_schema))
        built[field] = value
    return built


def _cell(text: str, types: set[str]) -> Any:
    """A CSV cell as the JSON value its field takes: text stays text unless the field takes other types."""
    if not types or types <= {"string", "null"}:
        return text
    parsed = _json_cell(text)
    kind = json_type(parsed)
    if "string" in types and kind not in types and not (kind == "integer" and "number" in types):
        return text  # a field of text or numbers: a cell that is no number stays text
    return parsed


def _json_cell(text: str) -> Any:
    """A cell's JSON value; the text itself when it is not JSON the model service can be sent.

    The pipeline's validation then names the field and the problem.
    """
    try:
        parsed = parse_json(text)
    except (ValueError, RecursionError):
        return text
    if too_deep(parsed) or _unpaired_surrogate(text, parsed) is not None:
        return text
    return parsed


def _unpaired_surrogate(text: str, value: Any) -> int | None:
    """The code of a surrogate a JSON escape in `text` left unpaired in `value`, if any."""
    if "\\u" not in text:
        return None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        return ord(error.object[error.start])
    return None


def _field_types(prop: Mapping[str, Any], schema: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a field's schema allows; None when it does not say (or says it another way)."""
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        prop = schema.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
    kind = prop.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    alternatives = prop.get("anyOf") or prop.get("oneOf")
    if not alternatives:
        return None
    found: set[str] = set()
    for alternative in alternatives:
        types = _field_types(alternative, schema)
        if types is None:
            return None
        found |= types
    return found


def _arrow_fits(arrow_type: Any, types: set[str]) -> bool:
    import pyarrow as pa

    t = pa.types
    if t.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    holds = {
        # binary: older writers store text without marking it; times become ISO text
        "string": t.is_string(arrow_type)
        or t.is_large_string(arrow_type)
        or t.is_string_view(arrow_type)
        or t.is_binary(arrow_type)
        or t.is_large_binary(arrow_type)
        or t.is_temporal(arrow_type),
        "integer": t.is_integer(arrow_type),
        "number": t.is_integer(arrow_type) or t.is_floating(arrow_type) or t.is_decimal(arrow_type),
        "boolean": t.is_boolean(arrow_type),
        "array": t.is_list(arrow_type) or t.is_large_list(arrow_type) or t.is_fixed_size_list(arrow_type),
        "object": t.is_struct(arrow_type) or t.is_map(arrow_type),
        "null": t.is_null(arrow_type),
    }
    return any(holds.get(kind, False) for kind in types)


def check_parquet_types(
    handle: IO[bytes], input_schema: Mapping[str, Any], mapping: Mapping[str, str]
) -> None:
    """A DatasetError naming each mapped Parquet column whose type cannot hold its input field's values.

    Read from the file's footer: a column of the wrong type is refused before any row is run.
    """
    import pyarrow.parquet as pq

    schema = pq.ParquetFile(handle).schema_arrow
    problems = []
    for field, column in mapping.items():
        types = _field_types(input_schema.get("properties", {}).get(field, {}), input_schema)
        if types is None or column not in schema.names:
            continue
        arrow_type = schema.field(column).type
        if not _arrow_fits(arrow_type, types):
            needed = " or ".join(sorted(types - {"null"}) or ["null"])
            problems.append(
                f"the column {column} holds {arrow_type} values, but the input field {field} needs {needed}"
            )
    if problems:
        raise DatasetError("; ".join(problems))

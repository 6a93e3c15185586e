"""Parquet files: the columns from the footer, the rows row group by row group, the columns' types checked."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any

from onepipe.platform.jobs.datasets.common import DatasetError, Row, column_names

PARQUET_BATCH_ROWS = 1000


def parquet_header(handle: IO[bytes]) -> list[str]:
    """The file's column names, from its footer, or a DatasetError when it is no Parquet file."""
    import pyarrow.parquet as pq

    try:
        names = list(pq.ParquetFile(handle).schema_arrow.names)
    except Exception as error:
        raise DatasetError(f"the file is not a valid Parquet file ({error})") from None
    if not names:
        raise DatasetError("the Parquet file has no columns")
    return column_names(names, "Parquet file")


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


def parquet_rows(handle: IO[bytes]) -> Iterator[Row]:
    """Every row; a row group that cannot be read gives its rows with the reason."""
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

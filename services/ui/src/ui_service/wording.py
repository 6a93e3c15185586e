"""Names and values as people read them: titles for fields, numbers rounded, yes and no, "none".

Plain functions, no Streamlit: every page writes values through these, so a number or an
empty value reads the same wherever it appears.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

NONE: Final = "none"  # how an empty value (null, "", [], {}) reads
YES: Final = "yes"
NO: Final = "no"
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def readable(name: str) -> str:
    """An identifier as words: `kind_confidence` -> "Kind confidence", `topTerms` -> "Top terms"."""
    words = _CAMEL.sub(" ", name).replace("_", " ").replace("-", " ").split()
    if not words:
        return name
    # an acronym keeps its capitals (URL, ID); other words are lower case after the first
    shown = [word if word.isupper() and len(word) > 1 else word.lower() for word in words]
    text = " ".join(shown)
    return text[:1].upper() + text[1:]


def field_title(name: str, prop: Mapping[str, Any] | None = None) -> str:
    """A field's name in words: the schema's own title when its author wrote one, else the name made readable.

    Pydantic writes a title for every field (`Kind Confidence`); that one reads better as "Kind confidence".
    """
    title = (prop or {}).get("title")
    written = isinstance(title, str) and " ".join(title.lower().split()) not in ("", readable(name).lower())
    if written:
        return str(title).strip()
    return readable(name)


def field_titles(schema: Mapping[str, Any]) -> dict[str, str]:
    """Every property of an object schema with its title, in schema order."""
    properties = schema.get("properties", {})
    return {
        name: field_title(name, prop if isinstance(prop, Mapping) else None)
        for name, prop in properties.items()
    }


def number(value: float, digits: int = 2) -> str:
    """A number rounded for people: 0.976606 -> "0.98", 0.014248 -> "0.014", 3.0 -> "3".

    `digits`: significant digits below 1, decimals from 1 to 1000. A fraction is never
    rounded to a whole number it is not (0.9996 -> "0.9996", not "1").
    """
    if isinstance(value, bool):
        return YES if value else NO
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return "not a number" if math.isnan(value) else ("infinity" if value > 0 else "minus infinity")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size < 1e-4:
        return f"{value:.1e}"
    # decimals for `digits` significant digits below 1 (0.0142 -> 0.014), `digits` decimals above
    decimals = digits if size >= 1 else digits - 1 - math.floor(math.log10(size))
    text = f"{value:.{decimals}f}"
    while float(text) == round(value) and decimals < 6:  # 0.9996 is not 1, 2.0004 is not 2
        decimals += 1
        text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".")


def distinct(first: float, second: float) -> tuple[str, str]:
    """Two different numbers rounded for people, with the digits that tell them apart."""
    for digits in range(2, 7):
        a, b = number(first, digits), number(second, digits)
        if a != b or first == second:
            return a, b
    return number(first, 6), number(second, 6)


def signed(value: float) -> str:
    """A difference with its sign: +0.14, -0.02, 0."""
    text = number(value)
    return text if value <= 0 or text == "0" else "+" + text


def percent(share: float) -> str:
    """A share of 1 as a percentage: 0.9766 -> "98%", 0.0142 -> "1.4%", 0.9996 -> "99.96%" (not 100%)."""
    value = share * 100
    if value == int(value):
        return f"{value:.0f}%"
    decimals = 0 if value >= 10 else 1
    text = f"{value:.{decimals}f}"
    while float(text) in (0, 100) and decimals < 4:  # a share is never rounded to none or all of it
        decimals += 1
        text = f"{value:.{decimals}f}"
    return text + "%"


def is_empty(value: Any) -> bool:
    """Null, an empty text, list or record."""
    return value is None or (isinstance(value, str | list | dict | tuple) and not value)


def value(item: Any) -> str:
    """Any JSON value as one line of words: numbers rounded, yes/no, "none" for empty values."""
    if is_empty(item):
        return NONE
    if isinstance(item, bool):
        return YES if item else NO
    if isinstance(item, int | float):
        return number(item)
    if isinstance(item, str):
        return item
    if isinstance(item, list | tuple):
        return ", ".join(value(part) for part in item)
    if isinstance(item, Mapping):
        return ", ".join(f"{readable(str(key))}: {value(part)}" for key, part in item.items())
    return str(item)


def milliseconds(ms: float) -> str:
    """A duration in ms as people read it: "0.02 ms", "44 ms", "1.3 s"."""
    if ms >= 1000:
        return f"{ms / 1000:.1f} s"
    if ms >= 10:
        return f"{ms:.0f} ms"
    return f"{number(ms)} ms"


def seconds(total: float) -> str:
    """A duration in seconds as people read it: "40 s", "3 min 5 s", "2 h 10 min"."""
    whole = max(0, round(total))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s" if whole % 60 else f"{whole // 60} min"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """ "1 row", "2 rows"."""
    return f"{count:,} {noun if count == 1 else many or noun + 's'}"


def sentence_start(text: str) -> str:
    """A description made to continue a sentence: "A snippet of text." -> "a snippet of text"."""
    text = text.strip().rstrip(".")
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text


def shorten(text: str, limit: int = 90) -> str:
    """A text cut at a word before `limit` characters, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return (cut or text[:limit]).rstrip(",;:") + "…"

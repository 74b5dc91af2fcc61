"""Literals for 'Copy as code' (chat.codegen): any JSON value written as Python,
JavaScript or JSON source, every string escaped so no body can break out of it or hide
characters in the shown code."""

from __future__ import annotations

import json
import math
from typing import Any

_INLINE_WIDTH = 88


def _escape(ch: str, lang: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    if lang == "py":
        return f"\\U{code:08x}"
    if lang == "js":
        return f"\\u{{{code:x}}}"
    high, low = divmod(code - 0x10000, 0x400)  # JSON: a surrogate pair
    return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"


def str_literal(text: str, lang: str) -> str:
    """A double-quoted literal of ``text`` that Python, JavaScript and JSON all read back.

    ``json.dumps`` escapes quotes, backslashes and C0 controls the same way in all three;
    the remaining risky characters get a ``\\u`` escape (non-BMP ones in each language's
    own form).
    """
    literal = json.dumps(text, ensure_ascii=False)
    if literal.isprintable():
        return literal
    # Not printable: controls, format characters (bidi overrides, zero-width), line and
    # paragraph separators, spaces other than " ", surrogates, private use, unassigned.
    # Invisible or misleading in copied code, and a lone surrogate cannot even be saved.
    return "".join(ch if ch.isprintable() else _escape(ch, lang) for ch in literal)


def _scalar(value: Any, lang: str) -> str:
    if value is None:
        return {"py": "None"}.get(lang, "null")
    if value is True:
        return "True" if lang == "py" else "true"
    if value is False:
        return "False" if lang == "py" else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        if lang == "py":
            return f'float("{value}")'
        raise ValueError("the body holds a number JSON cannot express")
    if isinstance(value, str):
        return str_literal(value, lang)
    raise TypeError(f"cannot express {type(value).__name__} in {lang}")


def literal(value: Any, lang: str, indent: str, level: int, *, inline: bool = True) -> str:
    """``value`` as a literal; containers on one line when they fit, else one item a line.

    JSON gets no trailing commas; Python and JavaScript do (the usual formatter style).
    """
    if not isinstance(value, dict | list | tuple):
        return _scalar(value, lang)
    if isinstance(value, dict):
        items = [f"{str_literal(str(k), lang)}: " for k in value]
        values = list(value.values())
        open_, close = "{", "}"
    else:
        items = [""] * len(value)
        values = list(value)
        open_, close = "[", "]"
    if not values:
        return open_ + close
    if inline:
        flat = [
            item + literal(v, lang, indent, level + 1)
            for item, v in zip(items, values, strict=True)
        ]
        one_line = open_ + ", ".join(flat) + close
        if "\n" not in one_line and len(indent) * level + len(one_line) <= _INLINE_WIDTH:
            return one_line
    inner = indent * (level + 1)
    lines = [
        inner + item + literal(v, lang, indent, level + 1, inline=inline)
        for item, v in zip(items, values, strict=True)
    ]
    tail = "" if lang == "json" else ","
    return open_ + "\n" + ",\n".join(lines) + tail + "\n" + indent * level + close

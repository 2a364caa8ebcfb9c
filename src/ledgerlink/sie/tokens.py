"""Splitting one SIE line into fields.

Fields are separated by any run of whitespace (spaces, tabs). A field in double quotes keeps its
spaces; inside it ``\\"`` is a quote and ``\\\\`` a backslash (any other backslash is literal, so
Windows paths survive). An object list ``{1 "100" 6 "P1"}`` is one field, returned as an
:class:`ObjectList` holding the text between the braces.

Three paths, fastest first: no quote and no brace (``str.split``), no quote and one brace pair
(``str.partition``), anything else (one compiled regex over the line). All three give the same
result for the lines the first two accept.
"""

from __future__ import annotations

import re

from ledgerlink.sie.model import ObjectRef


class ObjectList(str):
    """An object-list field; its string value is the text between ``{`` and ``}``."""

    __slots__ = ()


class TokenError(ValueError):
    """A line that cannot be split into fields (the reader adds the line number)."""


_TOKEN = re.compile(
    r'"(?P<quoted>(?:[^"\\]|\\.)*)(?P<quote_end>"?)'
    r'|\{(?P<objects>(?:[^}"]|"(?:[^"\\]|\\.)*"?)*)(?P<brace_end>\}?)'
    r'|(?P<bare>[^\s"{]+)'
)
_ESCAPE = re.compile(r'\\(["\\])')
_OBJECT_CACHE_LIMIT = 4096
_object_cache: dict[str, tuple[ObjectRef, ...]] = {"": ()}


def split_fields(line: str) -> list[str]:
    """Split a stripped, non-empty line into its fields (label first).

    An unterminated quote runs to the end of the line; an unterminated object list raises
    :class:`TokenError`.
    """
    if '"' not in line:
        if "{" not in line:
            return line.split()
        fields = _split_unquoted(line, [])
        if fields is not None:
            return fields
    elif "\\" not in line:
        fields = _split_quoted(line)
        if fields is not None:
            return fields
    return _split_slow(line)


def _split_unquoted(text: str, fields: list[str]) -> list[str] | None:
    """Append the fields of quote-free text to ``fields``; None if an object list is not closed in it."""
    while "{" in text:
        head, _, rest = text.partition("{")
        inner, closed, text = rest.partition("}")
        if not closed:
            return None
        fields.extend(head.split())
        fields.append(ObjectList(inner))
    fields.extend(text.split())
    return fields


def _split_quoted(line: str) -> list[str] | None:
    """Quotes without escapes: the odd parts of ``split('"')`` are quoted text. None if unsure."""
    parts = line.split('"')
    if not len(parts) % 2:
        return None  # an unterminated quote: leave it to the general path
    fields: list[str] = []
    open_list: list[str] | None = None  # pieces of an object list that spans quoted objects
    for index, part in enumerate(parts):
        if open_list is not None:
            if index % 2:
                open_list.append(f'"{part}"')
                continue
            inner, closed, part = part.partition("}")
            open_list.append(inner)
            if not closed:
                continue
            fields.append(ObjectList("".join(open_list)))
            open_list = None
        elif index % 2:
            fields.append(part)
            continue
        while "{" in part:
            head, _, rest = part.partition("{")
            inner, closed, part = rest.partition("}")
            fields.extend(head.split())
            if not closed:
                open_list = [inner]
                break
            fields.append(ObjectList(inner))
        else:
            fields.extend(part.split())
    return None if open_list is not None else fields


def _split_slow(line: str) -> list[str]:
    fields: list[str] = []
    for match in _TOKEN.finditer(line):
        bare = match.group("bare")
        if bare is not None:
            fields.append(bare)
            continue
        quoted = match.group("quoted")
        if quoted is not None:
            # An unterminated quote (seen in a real SoftOne export) runs to the end of the line.
            fields.append(_ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted)
            continue
        if not match.group("brace_end"):
            raise TokenError("unterminated object list")
        fields.append(ObjectList(match.group("objects")))
    return fields


def parse_objects(field: str) -> tuple[ObjectRef, ...]:
    """Parse an object list's inner text into ``((dimension, object), ...)`` pairs."""
    cached = _object_cache.get(field)
    if cached is not None:
        return cached
    parts = field.split() if '"' not in field else _split_slow(field)
    if len(parts) % 2:
        raise TokenError(f"object list {{{field}}} does not hold dimension/object pairs")
    pairs: list[ObjectRef] = []
    for index in range(0, len(parts), 2):
        dimension, number = parts[index], parts[index + 1]
        if isinstance(dimension, ObjectList) or isinstance(number, ObjectList):
            raise TokenError(f"nested object list in {{{field}}}")
        if not (dimension.isascii() and dimension.isdigit()):
            raise TokenError(f"object list {{{field}}}: dimension {dimension!r} is not a number")
        pairs.append((int(dimension), number))
    result = tuple(pairs)
    if len(_object_cache) >= _OBJECT_CACHE_LIMIT:
        _object_cache.clear()
        _object_cache[""] = ()
    _object_cache[field] = result
    return result

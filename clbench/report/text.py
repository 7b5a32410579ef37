"""Names read from result files (benchmarks, strategies, parameters, layers) made safe where a
report puts them: file names, LaTeX, Markdown and figure text.

A result file may come from anyone, so none of its names reaches a path, a TeX command, a
Markdown table or matplotlib's math parser as written: a file name is a slug of the name, and
every text is escaped for where it lands."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path

from clbench.errors import ClbenchError
from clbench.store import write_replacing

#: The longest slug of one name in a file name (a stem may join a few of them).
SLUG_MAX = 60
_NOT_SLUG = re.compile(r"[^a-z0-9._-]+")
# Line breaks and other control characters (C0, DEL, C1, Unicode line and paragraph separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` with line breaks and other control characters as single spaces."""
    return _CONTROL.sub(" ", text)


def slug(text: str) -> str:
    """`text` as part of a file name: lowercase letters, digits, `.`, `_` and `-`, any other run
    of characters as one `-`, no leading dot or dash, at most `SLUG_MAX` characters; `unnamed`
    when nothing is left."""
    return _NOT_SLUG.sub("-", text.lower())[:SLUG_MAX].strip(".-") or "unnamed"


class FileStems:
    """The file stems of one folder of a report, from the names each output comes from.

    A stem is its parts' slugs joined by `-`. Where two different tuples of parts give the same
    stem, the later one (outputs are named in a fixed order) gets a short hash of its parts
    appended, so no two outputs share a file and the same parts always get the same stem."""

    def __init__(self) -> None:
        self._owners: dict[str, tuple[str, ...]] = {}

    def __call__(self, *parts: str) -> str:
        stem = "-".join(slug(part) for part in parts)
        if self._owners.setdefault(stem, parts) != parts:
            digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8]
            stem = f"{stem}-{digest}"
            if self._owners.setdefault(stem, parts) != parts:
                raise ClbenchError(f"two report outputs would both be named {stem}; rename one")
        return stem


def write_inside(root: Path, relative: str, write: Callable[[Path], object]) -> Path:
    """Write `root/relative` by calling `write` on a temporary file (`write_replacing`). Refused
    (ClbenchError) where the path, its `..` resolved, is not below `root`; a failed write is a
    ClbenchError too."""
    top, path = Path(os.path.abspath(root)), Path(os.path.abspath(root / relative))
    if path == top or not path.is_relative_to(top):
        raise ClbenchError(f"report file {relative!r} would be outside the report folder {root}")
    try:
        write_replacing(path, write)
    except OSError as err:
        raise ClbenchError(f"cannot write report file {path}: {err.strerror or err}") from None
    return root / relative


_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


def latex(text: str) -> str:
    """Plain text for LaTeX (also inside a `%` comment): special characters escaped, line breaks
    as spaces (a line break would end a comment, two a paragraph)."""
    return "".join(_LATEX.get(ch, ch) for ch in one_line(text))


# A backslash (so that the escapes below hold), a pipe (a table cell's end), `<` (HTML) and
# brackets (links and images).
_MARKDOWN = re.compile(r"([\\|<\[\]])")


def markdown(text: str) -> str:
    """Plain text for a Markdown line or table cell: one line, with the characters that end a
    cell or open HTML, a link or an image escaped."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))


def figure_text(text: str) -> str:
    """Plain text for matplotlib: one line, every `$` escaped so that none starts math text."""
    return one_line(text).replace("$", r"\$")

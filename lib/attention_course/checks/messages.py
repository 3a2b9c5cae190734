"""What a learner reads: :class:`CheckFailed`, and lines wrapped to fit nbgrader's feedback.

nbgrader's feedback page (template ``feedback/index.html.j2`` of nbgrader 0.9.6, on nbconvert's
classic CSS) shows a cell's output in a ``pre`` box set in 14 px monospace, about 8.4 px a
character. Its width is the Bootstrap container (1140 px for windows at least 1200 px wide,
940 px from 992 px) less the panel and notebook paddings (2 x 15 px each), the cell's padding
and the prompt column nbgrader widens to 21ex (about 170 px): some 880 px, 104 characters, in a
wide window, and some 680 px, 81 characters, from 992 px. The CSS wraps longer lines itself,
anywhere (``word-break: break-all``), even inside ``np.exp(x, out=x)``. So every line a check
prints or raises is wrapped here to :data:`WIDTH` = 80 characters, at spaces, keeping its
indentation and never inside code: a `backticked` span, a call or an index such as
``np.where(mask, scores, -np.inf)`` or ``x[..., i, :]``, a shape such as ``(..., n_q, n_k)``,
or a formula such as ``0 / 0``.
"""

from __future__ import annotations

import re
import textwrap

#: Characters of a line in nbgrader's feedback box at 992 px and wider (see the module text).
WIDTH = 80
#: IPython shows a failure as "CheckFailed: <message>": the first line has this much less room.
_PREFIX = "CheckFailed: "
#: Stands in for a space that must not become a line break (never in a message itself).
_KEEP = "\x1f"
_CLOSE = {"(": ")", "[": "]", "{": "}"}
#: Longest bracketed group kept on one line; a longer one may break at its spaces.
_LONGEST_GROUP = 50
#: A lone operator between two words, as in "0 / 0", "n_q = n_k" or "-inf - (-inf)".
_OPERATOR = re.compile(r"(?<=\S) ([=/+×*<>≤≥-]) (?=\S)")


class CheckFailed(AssertionError):  # noqa: N818 - reads as a verdict
    """A learner's function gave a wrong answer; the message says what and, if known, why.

    ``str(failure)`` is the message wrapped to :data:`WIDTH`; ``failure.message`` is the same
    text unwrapped. IPython (and so nbgrader's feedback) shows only the message, not the
    traceback: the traceback would quote the test cell, which for hidden tests must stay hidden.
    """

    def __init__(self, message: str):
        super().__init__(wrap(message, first_line_room=WIDTH - len(_PREFIX)))
        self.message = message

    def _render_traceback_(self) -> list[str]:  # IPython hook: replaces the traceback
        return [f"\x1b[31mCheckFailed\x1b[0m: {self}"]


def _closing(text: str, start: int) -> int | None:
    """Index of the bracket that closes the one at ``start``, or None."""
    opening, depth = text[start], 0
    for i in range(start, len(text)):
        if text[i] == opening:
            depth += 1
        elif text[i] == _CLOSE[opening]:
            depth -= 1
            if depth == 0:
                return i
    return None


def _is_code(text: str, start: int, end: int) -> bool:
    """Is the bracketed group ``text[start:end + 1]`` code: a call, an index or a shape?"""
    if end - start + 1 > _LONGEST_GROUP:
        return False
    if start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.])"):
        return True  # f(...), x[...], a.b(...)
    items = text[start + 1 : end].split(",")
    return all(" " not in item.strip() for item in items)  # (..., n_q, n_k), (x), [3, 0, 5]


def _protect(text: str) -> str:
    """``text`` with the spaces inside code replaced by :data:`_KEEP`."""
    chars = list(text)

    def keep(start: int, end: int) -> None:
        for i in range(start, end):
            if chars[i] == " ":
                chars[i] = _KEEP

    def walk(start: int, end: int) -> None:
        i = start
        while i < end:
            if text[i] == "`" and (close := text.find("`", i + 1, end)) != -1:
                keep(i, close)
                i = close + 1
                continue
            if text[i] in _CLOSE and (close := _closing(text[:end], i)) is not None:
                if _is_code(text, i, close):
                    keep(i, close)
                else:
                    walk(i + 1, close)
                i = close + 1
                continue
            i += 1

    walk(0, len(text))
    for match in _OPERATOR.finditer(text):  # keep a short formula on one line
        keep(match.start(), match.end())
    return "".join(chars)


def _wrap_line(line: str, width: int) -> list[str]:
    if len(line) <= width:
        return [line]
    body = line.lstrip(" ")
    indent = line[: len(line) - len(body)]
    options = dict(
        width=width, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    )
    pieces = [
        piece.replace(_KEEP, " ")
        for piece in textwrap.wrap(_protect(body), break_long_words=False, **options)
    ]
    if any(len(piece) > width for piece in pieces):  # code longer than a line: break it anyway
        pieces = textwrap.wrap(body, break_long_words=True, **options)
    return pieces


def wrap(text: str, first_line_room: int = WIDTH) -> str:
    """Wrap every line of ``text`` to :data:`WIDTH` (the first to ``first_line_room``)."""
    lines: list[str] = []
    for number, line in enumerate(text.split("\n")):
        lines += _wrap_line(line, first_line_room if number == 0 else WIDTH)
    return "\n".join(lines)

"""What the HTTP edge refuses before any rule runs, and how client text is made safe to
repeat: a leaf module (the body readers and the error answers both import it, so neither
imports the other).
"""

from __future__ import annotations

import re

#: What :func:`escaped` rewrites: every character that is not printable (control and
#: format characters, line and paragraph separators, odd spaces) and every surrogate,
#: which no UTF-8 text can carry.
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char.isprintable():  # printable non-ASCII text (accents, CJK, emoji) stays as it is
        return char
    return repr(char)[1:-1]  # \n, \r, \t, \x00, \u2028, \ud800...


def escaped(text: str) -> str:
    """``text`` as one printable line that UTF-8 can encode: each
    character that is not printable (a newline, a carriage return, any control
    character, a lone surrogate) becomes its Python escape (``\\n``, ``\\x1b``,
    ``\\ud800``); everything else, non-ASCII letters included, is left alone.

    Every text a client chose that an error body or a log line repeats (a plan id, a
    field name, a hold id, the request's path) goes through this, so a crafted value
    can neither forge a log line nor make an answer unencodable (a 500). An escape in
    the client's own text stays as it was sent: the result is for reading, not for
    decoding back."""
    if text.isascii() and text.isprintable():  # nearly every text: one C-speed check
        return text
    return _UNPRINTABLE.sub(_escape, text)


class BodyTooLargeError(Exception):
    """A request body grew past the app's ``max_body_bytes`` while it was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class BodyTimeoutError(Exception):
    """A request body did not arrive in full within the app's ``body_timeout_seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"request body not received within {seconds:g} s")
        self.seconds = seconds


class UnsupportedMediaTypeError(Exception):
    """A request body declared a ``Content-Type`` that is not JSON."""

    def __init__(self, content_type: str) -> None:
        super().__init__(f"request body must be JSON, not {content_type!r}")
        self.content_type = content_type

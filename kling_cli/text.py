"""Text from users and the service, made safe to show: on one line, and with no character a
terminal would obey (a colour, a cleared screen, a carriage return that forges a line)."""

from __future__ import annotations

import re

# C0 controls (TAB, LF and CR among them), DEL, and C1 controls (ESC's 8-bit forms).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(text: str) -> str:
    """`text` with every control character shown escaped (`\\x1b`, `\\n`): safe on a terminal,
    and one field of a tab-separated line."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0]) or f"\\x{ord(m[0]):02x}", text)


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace runs (line breaks too) as one space, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."

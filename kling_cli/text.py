"""Text from users and the service, made safe to show: on one line, and with no character a
terminal would obey (a colour, a cleared screen, a carriage return that forges a line) nor one
that reorders what follows it (a right-to-left override that makes `gpj.exe` read `exe.jpg`)."""

from __future__ import annotations

import re

# C0 controls (TAB, LF and CR among them), DEL, C1 controls (ESC's 8-bit forms), the line and
# paragraph separators, and the bidirectional embeddings, overrides and isolates.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def printable(text: str) -> str:
    """`text` with every control character shown escaped (`\\x1b`, `\\n`, `\\u202e`): safe on a
    terminal, and one field of a tab-separated line."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0]) or _escaped(m[0]), text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace runs (line breaks too) as one space, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."

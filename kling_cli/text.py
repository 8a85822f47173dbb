"""Text from users and the service, made safe to show: on one line, and with no character a
terminal would obey (a colour, a cleared screen, a carriage return that forges a line), nor one
that reorders what follows it (a right-to-left override that makes `gpj.exe` read `exe.jpg`),
nor a byte that is not UTF-8; and the one rule for text that came in as bytes: it is UTF-8."""

from __future__ import annotations

import re

from .errors import UsageError

# C0 controls (TAB, LF and CR among them), DEL, C1 controls (ESC's 8-bit forms), the line and
# paragraph separators, the bidirectional embeddings, overrides and isolates, and surrogates.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# Surrogates: what Python makes of bytes that are not UTF-8 (an argument, a file name: PEP 383,
# U+DC80 to U+DCFF for the bytes 0x80 to 0xFF). Nothing can write them as UTF-8.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
CONVERT_HINT = "convert it first, e.g. with iconv -f latin1 -t utf-8"


def _escaped(char: str) -> str:
    """A control as `\\x1b` or `\\n`; a byte that was not UTF-8 as that byte, `\\xff`."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"
    return _NAMED.get(char) or (f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}")


def printable(text: str) -> str:
    """`text` with every control character shown escaped (`\\x1b`, `\\n`, `\\u202e`), and every
    byte that was not UTF-8 too (`\\xff`): safe on a terminal, and one field of a tab-separated
    line."""
    return _CONTROL.sub(lambda m: _escaped(m[0]), text)


def utf8_safe(text: str) -> str:
    """`text` with only its bytes that were not UTF-8 shown escaped (`\\xe9`): text that can be
    written as UTF-8 (a web page), controls and line breaks left as they are."""
    return _SURROGATE.sub(lambda m: _escaped(m[0]), text)


def check_utf8(text: str, what: str, hint: str | None = CONVERT_HINT) -> str:
    """`text` (an argument: a prompt, a task id, a path) if it is valid UTF-8, else a usage
    error (exit 2) naming `what`: bytes in another encoding could be neither sent, stored nor
    written as text. Checked where the text comes in, before anything is sent."""
    if _SURROGATE.search(text):
        raise UsageError(f"{printable(what)}: the text is not valid UTF-8", hint=hint)
    return text


def one_line(text: str, limit: int = 300) -> str:
    """Whitespace runs (line breaks too) as one space, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."

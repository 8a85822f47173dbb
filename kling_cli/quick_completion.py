"""A TAB on a task id, answered without typer, rich or requests.

Every TAB runs `kling` again (the shell script calls it back with _KLING_COMPLETE set), and the
shell waits for it keystroke by keystroke: importing the whole app to read a few ids from the
journal cost ~260 ms. kling_cli.main hands a completion request to `quick` first, which answers
the task ids of wait, status and download (the commands whose argument is TASK_ID...) exactly
as typer's completion classes would, and leaves everything else (options, other commands,
anything unusual) to the app. The app's own task-id completer (kling_cli.completion.task_ids)
reads the journal through `journal_task_ids` here too: one set of rules for both.

Never raises (a traceback would land in the user's command line); never creates the journal.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping

MAX_TASK_IDS = 50  # a screenful: more is noise, and each one is a line the shell must sort
# Only ids a shell can take as one word with no quoting are offered (bash inserts a completion
# as is): a hostile id such as `x;rm -rf ~` from a misbehaving service is never typed for you.
_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.-]+")
_PLAIN_STATUS = re.compile(r"[a-z_ -]{1,20}")


def journal_task_ids(given: set[str], incomplete: str) -> list[tuple[str, str]]:
    """Task ids from the journal that start with `incomplete`, newest first, with their status,
    leaving out those in `given` (already on the line). Any failure (no journal, a locked or
    corrupt one, an unreadable folder) gives none."""
    try:
        return _task_ids(given, incomplete)
    except Exception:
        return []


def _task_ids(given: set[str], incomplete: str) -> list[tuple[str, str]]:
    import sqlite3
    from urllib.parse import quote

    from .paths import JOURNAL_FILE, UNCERTAIN, data_dir

    path = data_dir() / JOURNAL_FILE
    if not path.is_file():
        return []
    uri = f"file:{quote(str(path))}"
    try:
        # mode=rw never creates the file; being able to write lets the last connection tidy
        # the WAL files away on close, as every kling command does. A read-only file: mode=ro.
        conn = sqlite3.connect(f"{uri}?mode=rw", uri=True, timeout=1.0)
    except sqlite3.Error:
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=1.0)
    try:  # the order is Journal.entries'
        rows = conn.execute(
            "SELECT id, status FROM tasks WHERE substr(id, 1, ?) = ? AND status != ?"
            " ORDER BY submitted_at DESC, rowid DESC LIMIT ?",
            (len(incomplete), incomplete, UNCERTAIN, MAX_TASK_IDS + len(given)),
        ).fetchall()
    finally:
        conn.close()
    found: list[tuple[str, str]] = []
    for task_id, status in rows:
        if not isinstance(task_id, str) or task_id in given or task_id in (".", ".."):
            continue
        if not _PLAIN_WORD.fullmatch(task_id):
            continue
        plain = isinstance(status, str) and _PLAIN_STATUS.fullmatch(status)
        found.append((task_id, status if plain else ""))
    return found[:MAX_TASK_IDS]


COMPLETE_VAR = "_KLING_COMPLETE"  # what typer derives from the program's name, kling
# The commands whose only argument is TASK_ID... (commands.common.TaskIdsArg, completed by
# task_ids); tests/test_completions.py checks this against the app.
TASK_ID_COMMANDS = frozenset({"wait", "status", "download"})
# The app renders descriptions (the status) with rich, which wraps them on a console narrower
# than this; wider, a plain status (_PLAIN_STATUS: nothing rich markup, emoji or the shells'
# quoting would change) comes out as it is.
_NARROWEST = 21


def quick(environ: Mapping[str, str]) -> int | None:
    """Answer a completion request for the task ids of wait, status or download, as typer's
    completion classes would (their exact output, shell by shell), and return the exit status.

    None when unsure (an option, another command, a global option, an odd line or terminal):
    the full app answers then. Never raises.
    """
    try:
        shell = environ.get(COMPLETE_VAR, "").removeprefix("complete_")
        line = _read_line(shell, environ)
        if line is None:
            return None
        args, incomplete = line
        if not args or args[0] not in TASK_ID_COMMANDS or incomplete.startswith("-"):
            return None
        if any(word.startswith("-") for word in args[1:]):
            return None  # an option (or its value, or --): click's rules decide
        found = journal_task_ids(set(args[1:]), incomplete)
        described = shell != "bash" and any(help for _, help in found)  # bash shows none
        if described and _width(environ) < _NARROWEST:
            return None
        text, code = _format(shell, environ, found)
    except Exception:
        return None
    if text is not None:
        try:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        except (OSError, ValueError):  # the shell stopped listening: nothing to tell it
            pass
    return code


def _split(string: str) -> list[str]:
    """click's split_arg_string: shlex, keeping the partial last word of an unclosed quote."""
    import shlex

    lex = shlex.shlex(string, posix=True)
    lex.whitespace_split = True
    lex.commenters = ""
    out = []
    try:
        for token in lex:
            out.append(token)
    except ValueError:
        out.append(lex.token)
    return out


def _read_line(shell: str, environ: Mapping[str, str]) -> tuple[list[str], str] | None:
    """(words before the cursor's word, the cursor's word), as each of typer's completion
    classes reads them from the variables its shell script sets."""
    if shell == "bash":
        cwords = _split(environ["COMP_WORDS"])
        cword = int(environ["COMP_CWORD"])
        try:
            incomplete = cwords[cword]
        except IndexError:
            incomplete = ""
        return cwords[1:cword], incomplete
    if shell in ("zsh", "fish"):
        completion_args = environ.get("_TYPER_COMPLETE_ARGS", "")
        args = _split(completion_args)[1:]
        if args and not completion_args.endswith(" "):
            return args[:-1], args[-1]
        return args, ""
    if shell in ("powershell", "pwsh"):
        incomplete = environ.get("_TYPER_COMPLETE_WORD_TO_COMPLETE", "")
        cwords = _split(environ.get("_TYPER_COMPLETE_ARGS", ""))
        return (cwords[1:-1] if incomplete else cwords[1:]), incomplete
    return None


def _format(
    shell: str, environ: Mapping[str, str], found: list[tuple[str, str]]
) -> tuple[str | None, int]:
    """What typer's class for `shell` prints (click echoes it with a newline) and its status."""
    if shell == "bash":
        return "\n".join(value for value, _ in found), 0
    if shell == "zsh":
        if not found:
            return "_files", 0
        items = "\n".join(f'"{value}":"{help}"' if help else f'"{value}"' for value, help in found)
        return f"_arguments '*: :(({items}))'", 0
    if shell == "fish":
        action = environ.get("_TYPER_COMPLETE_FISH_ACTION", "")
        if action == "is-args":  # files are offered only when we offer nothing
            return None, 0 if found else 1
        if action == "get-args" and found:
            return "\n".join(f"{value}\t{help}" if help else value for value, help in found), 0
        return "", 0
    return "\n".join(f"{value}:::{help or ' '}" for value, help in found), 0  # PowerShell


def _width(environ: Mapping[str, str]) -> int:
    """The width rich would give the slow path's descriptions (rich.console.Console.size)."""
    width = 0
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    columns = environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    return width or 80

"""Write kling's shell-completion scripts into completions/ (or the folder given).

    python completions/generate.py            # regenerate completions/
    python completions/generate.py OUT_DIR    # write them elsewhere (the test compares)

Each file is typer's script for that shell (what `kling --show-completion` prints: every TAB
calls `kling` back with _KLING_COMPLETE set, through the whole app) with a fast path in front
of it (FAST_PATHS below): when the command is one of those whose argument is TASK_ID... (wait,
status, download; read from the app) and neither the word under the cursor nor the one before
it is an option, the script runs `kling __complete-ids CURRENT GIVEN...` (kling_cli.main: the
journal alone, without loading the app) and offers its ids. Any other TAB goes through typer's
script as before. bash, zsh and PowerShell register a function of their own in place of
typer's, which calls typer's in every other case; fish runs every completion whose condition
holds, so typer's line gets `not __kling_task_id_here; and` before its condition.
tests/test_completions.py fails when the committed files are stale.
"""

from __future__ import annotations

import importlib
import sys
import typing
from pathlib import Path

import typer
from typer._completion_shared import get_completion_script

from kling_cli import completion
from kling_cli.app import LAZY_COMMANDS, app

REPO = Path(__file__).resolve().parent.parent
# shell (as typer names it) -> file name, each the conventional one for that shell
FILES = {
    "bash": "kling.bash",
    "zsh": "_kling",
    "fish": "kling.fish",
    "powershell": "kling.ps1",
}

# The fast path of each shell, after typer's script. @FUNC@: typer's function (bash, zsh);
# @PROG@: the program; @COMMANDS@: the commands as `a|b|c` (bash, zsh) or `a b c` (fish) or
# 'a','b','c' (PowerShell); @LIST@: the commands for a comment.
FAST_PATHS = {
    "bash": r"""
# kling's fast path: a TAB on a task id of @LIST@ runs `@PROG@ __complete-ids
# CURRENT GIVEN...` (the journal alone, without loading the app); any other TAB, typer's above.
@FUNC@_ids() {
    local i cmd= cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    for (( i = 1; i < COMP_CWORD; i++ )); do
        [[ ${COMP_WORDS[i]} == -* ]] || { cmd=${COMP_WORDS[i]}; break; }
    done
    case $cmd in
        @COMMANDS@) ;;
        *) @FUNC@ "$@"; return ;;
    esac
    if [[ $cur == -* || $prev == -* || $prev == *[=:\<\>\|\&\;]* ]]; then
        @FUNC@ "$@"; return
    fi
    local -a found
    mapfile -t found < <("$1" __complete-ids "$cur" \
                         "${COMP_WORDS[@]:i+1:COMP_CWORD-i-1}" 2>/dev/null)
    COMPREPLY=( "${found[@]%%$'\t'*}" )
    return 0
}

complete -o default -F @FUNC@_ids @PROG@
""",
    "zsh": r"""
# kling's fast path: a TAB on a task id of @LIST@ runs `@PROG@ __complete-ids
# CURRENT GIVEN...` (the journal alone, without loading the app); any other TAB, typer's above.
@FUNC@_ids() {
  local i cmd=
  for (( i = 2; i < CURRENT; i++ )); do
    [[ $words[i] == -* ]] || { cmd=$words[i]; break }
  done
  if [[ $cmd != (@COMMANDS@) || $words[CURRENT] == -* || $words[CURRENT-1] == -* ]]; then
    @FUNC@ "$@"; return
  fi
  local -a found
  found=( ${(f)"$(@PROG@ __complete-ids "$words[CURRENT]" "${(@)words[i+1,CURRENT-1]}" \
                   2>/dev/null)"} )
  found=( ${found//$'\t'/:} )  # ID:STATUS, for _describe
  _describe -V 'task id' found || _files
}

compdef @FUNC@_ids @PROG@
""",
    "fish": r"""
# kling's fast path: a TAB on a task id of @LIST@ runs `@PROG@ __complete-ids
# CURRENT GIVEN...` (the journal alone, without loading the app); any other TAB, typer's line
# below (its condition first asks __kling_task_id_here).
function __kling_task_id_here --description 'Whether a TAB on this kling line is on a task id'
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l i 2
    while test $i -le (count $words); and string match -q -- '-*' $words[$i]
        set i (math $i + 1)
    end
    test $i -le (count $words); and contains -- $words[$i] @COMMANDS@; or return 1
    string match -q -- '-*' "$current" $words[-1]; and return 1
    set -g __kling_current "$current"
    set -g __kling_given $words[(math $i + 1)..-1]
end
function __kling_task_ids_found --description 'The task ids kling offers here, if any'
    set -g __kling_task_ids (@PROG@ __complete-ids "$__kling_current" $__kling_given 2>/dev/null)
    test (count $__kling_task_ids) -gt 0
end
complete --command @PROG@ --no-files --keep-order \
    --condition '__kling_task_id_here; and __kling_task_ids_found' \
    --arguments '(printf "%s\n" $__kling_task_ids)'
""",
    "powershell": r"""
# kling's fast path: a TAB on a task id of @LIST@ runs `@PROG@ __complete-ids
# CURRENT GIVEN...` (the journal alone, without loading the app), where PowerShell passes an
# empty argument as one (7.3 on: $PSNativeCommandArgumentPassing); any other TAB, typer's above.
$kling_typer_completer = $scriptblock
$scriptblock = {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements |
        Where-Object { $_.Extent.StartOffset -lt $cursorPosition } |
        ForEach-Object { $_.Extent.Text })
    if ($wordToComplete) { $words = @($words | Select-Object -SkipLast 1) }
    $cmd = 0
    for ($i = 1; $i -lt $words.Count; $i++) {
        if (-not $words[$i].StartsWith('-')) { $cmd = $i; break }
    }
    $passing = Get-Variable PSNativeCommandArgumentPassing -ValueOnly -ErrorAction Ignore
    if ($cmd -eq 0 -or @(@COMMANDS@) -cnotcontains $words[$cmd] -or
        "$wordToComplete".StartsWith('-') -or $words[-1].StartsWith('-') -or
        -not $passing -or $passing -eq 'Legacy') {
        return & $kling_typer_completer $wordToComplete $commandAst $cursorPosition
    }
    $given = @($words | Select-Object -Skip ($cmd + 1))
    @PROG@ __complete-ids $wordToComplete @given 2>$null | ForEach-Object {
        $id, $status = $_ -split "`t", 2
        $tip = if ($status) { $status } else { $id }
        [System.Management.Automation.CompletionResult]::new($id, $id, 'ParameterValue', $tip)
    }
}.GetNewClosure()
Register-ArgumentCompleter -Native -CommandName @PROG@ -ScriptBlock $scriptblock
""",
}
# fish: typer's condition, and what goes before it
FISH_CONDITION = '--condition "'
FISH_GUARD = "not __kling_task_id_here; and "


def prog_name() -> str:
    name = app.info.name
    assert isinstance(name, str), "the app is named"
    return name


def complete_var(prog: str) -> str:
    """The variable the scripts set to call the program back, derived as typer does."""
    return "_{}_COMPLETE".format(prog.replace("-", "_").upper())


def task_id_commands() -> list[str]:
    """The commands whose argument (their only one) is completed with task ids
    (commands.common.TaskIdsArg), in the app's order."""
    found = []
    for name in LAZY_COMMANDS:
        module = importlib.import_module(f"kling_cli.commands.{name}")
        hints = typing.get_type_hints(module.command, include_extras=True)
        arguments = [
            meta
            for hint in hints.values()
            for meta in getattr(hint, "__metadata__", ())
            if isinstance(meta, typer.models.ArgumentInfo)
        ]
        if any(a.autocompletion is completion.task_ids for a in arguments):
            assert len(arguments) == 1, f"{name}: the fast path takes every word for an id"
            found.append(name)
    return found


def script(shell: str) -> str:
    """typer's script for `shell`, with kling's fast path."""
    prog = prog_name()
    typers = get_completion_script(prog_name=prog, complete_var=complete_var(prog), shell=shell)
    commands = task_id_commands()
    listed = {
        "bash": "|".join(commands),
        "zsh": "|".join(commands),
        "fish": " ".join(commands),
        "powershell": ",".join(f"'{c}'" for c in commands),
    }
    fast = (
        FAST_PATHS[shell]
        .replace("@FUNC@", "_{}_completion".format(prog.replace("-", "_")))
        .replace("@PROG@", prog)
        .replace("@COMMANDS@", listed[shell])
        .replace("@LIST@", ", ".join(commands))
    )
    if shell == "fish":  # typer's line after the fast path, asking it first
        assert typers.count(FISH_CONDITION) == 1, "typer's fish script has one condition"
        guarded = typers.replace(FISH_CONDITION, FISH_CONDITION + FISH_GUARD)
        return fast.lstrip("\n") + guarded + "\n"
    return typers + "\n" + fast


def scripts() -> dict[str, str]:
    """File name -> content."""
    return {name: script(shell) for shell, name in FILES.items()}


def write(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in scripts().items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out_dir = Path(argv[0]) if argv else REPO / "completions"
    for path in write(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

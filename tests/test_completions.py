"""Shell completion: the committed scripts are current, and each works in its real shell.

Every shell test loads the committed script from completions/ into the real shell (bash always;
zsh, fish and PowerShell when installed, else skipped) with `kling` resolving to this venv's,
and a KLING_HOME whose journal holds three known tasks.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from unittest import mock

import pytest
import typer
from typer.testing import CliRunner

from kling_cli import completion, quick_completion
from kling_cli.api.tasks import TaskView
from kling_cli.app import app
from kling_cli.config import KEYS
from kling_cli.store.journal import JOURNAL_FILE, Journal

REPO = Path(__file__).resolve().parent.parent
COMPLETIONS = REPO / "completions"
GENERATOR = REPO / "completions" / "generate.py"
SCRIPTS = {"bash": "kling.bash", "zsh": "_kling", "fish": "kling.fish", "powershell": "kling.ps1"}
# Submitted in this order, so newest first is aaa, ccc, bbb: neither sorted nor reversed, so a
# shell or a query that sorts would show.
SUBMITTED = ["video_bbb111", "video_ccc222", "video_aaa333"]
NEWEST_FIRST = ["video_aaa333", "video_ccc222", "video_bbb111"]
TIMEOUT = 120  # a hang guard only: a loaded CI machine may take a while to start a shell

# (command line up to the cursor, what TAB must offer); a trailing space: a new empty word
OPTION_CASES: list[tuple[str, list[str]]] = [
    ("kling generate 'a fox' --mode ", ["std", "pro"]),
    ("kling generate 'a fox' --duration ", ["5", "10"]),
    ("kling generate 'a fox' --aspect-ratio ", ["16:9", "9:16", "1:1"]),
]
COMMAND_CASES: list[tuple[str, list[str]]] = [
    ("kling ge", ["generate"]),
    ("kling status ", NEWEST_FIRST),
    ("kling wait ", NEWEST_FIRST),
    ("kling wait video_c", ["video_ccc222"]),
    ("kling wait video_aaa333 ", ["video_ccc222", "video_bbb111"]),
    ("kling download ", NEWEST_FIRST),
    ("kling config set ", list(KEYS)),
    ("kling config get mo", ["model", "mode"]),
    ("kling config set mode ", ["std", "pro"]),
    ("kling config set --profile work duration ", ["5", "10"]),
    ("kling config set aspect_ratio 1", ["16:9", "1:1"]),
]


def options_complete() -> bool:
    """Whether generate's --mode, --duration and --aspect-ratio have their completers."""
    group = typer.main.get_command(app)
    generate = group.get_command(typer.Context(group), "generate")  # type: ignore[attr-defined]
    ctx = typer.Context(generate)
    wanted = {"mode": "std", "duration": "5", "aspect_ratio": "16:9"}
    for param in generate.params:
        if param.name in wanted:
            offered = [item.value for item in param.shell_complete(ctx, "")]
            if wanted.pop(param.name) not in offered:
                return False
    return not wanted


def cases() -> list[tuple[str, list[str]]]:
    return COMMAND_CASES + (OPTION_CASES if options_complete() else [])


def record(home: Path, ids: Sequence[str]) -> None:
    journal = Journal(home / JOURNAL_FILE)
    try:
        for task_id in ids:
            journal.record_submitted(
                TaskView.of({"id": task_id, "status": "queued"}), "https://api", {"prompt": "x"}
            )
    finally:
        journal.close()


@pytest.fixture(scope="module")
def venv_bin() -> Path:
    # In CI, as here, the venv is <repo>/.venv and pytest runs from its python.
    folder = Path(sys.executable).parent
    if not (folder / "kling").is_file():
        pytest.skip(f"no kling console script beside {sys.executable}")
    return folder


@pytest.fixture(scope="module")
def kling_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("kling_home")
    record(home, SUBMITTED)
    return home


def shell_env(venv_bin: Path, kling_home: Path, home: Path) -> dict[str, str]:
    """The environment a user's shell would have: our kling first on PATH, a private HOME."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KLING_", "_KLING_", "_TYPER_", "XDG_", "BASH_ENV", "ENV"))
    }
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        KLING_HOME=str(kling_home),
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        TERM="xterm",
    )
    return env


@pytest.fixture
def env(venv_bin: Path, kling_home: Path, tmp_path: Path) -> dict[str, str]:
    return shell_env(venv_bin, kling_home, tmp_path / "user")


def need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed (.ci/run installs zsh and fish)")
    return path


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def split_cases(out: str, count: int) -> list[list[str]]:
    """Output blocks, each ended by a line `--end--`."""
    blocks = out.split("--end--\n")
    assert len(blocks) == count + 1, out
    return [[line for line in block.splitlines() if line] for block in blocks[:count]]


# --- the committed scripts ---------------------------------------------------------------------


def test_committed_scripts_are_what_the_generator_writes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    fresh = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    committed = {p.name: p.read_bytes() for p in COMPLETIONS.iterdir() if p != GENERATOR}
    assert sorted(fresh) == sorted(SCRIPTS.values())
    stale = sorted(name for name in fresh if committed.get(name) != fresh[name])
    assert not stale, f"completions/ is stale: run `python {GENERATOR.relative_to(REPO)}`"
    assert sorted(committed) == sorted(fresh), "completions/ holds files the generator does not"


@pytest.mark.slow
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_scripts_are_what_show_completion_prints_in_that_shell(
    shell: str, env: dict[str, str]
) -> None:
    # typer detects the shell from the process tree: run it from that shell (not as its last
    # command, which the shell might exec in its own place).
    result = run([need(shell), "-c", "kling --show-completion; true"], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (COMPLETIONS / SCRIPTS[shell]).read_text()


# --- the task-id completer, in-process ---------------------------------------------------------


def context(**params: object) -> typer.Context:
    ctx = typer.Context(typer.main.get_command(app))
    ctx.params = dict(params)
    return ctx


def ids(found: list[tuple[str, str]]) -> list[str]:
    return [task_id for task_id, _ in found]


def test_task_ids_newest_first_by_prefix_with_status(isolated: Path) -> None:
    record(isolated, SUBMITTED)
    assert completion.task_ids(context(), "") == [(i, "queued") for i in NEWEST_FIRST]
    assert ids(completion.task_ids(context(), "video_c")) == ["video_ccc222"]
    assert completion.task_ids(context(), "nope") == []
    # the order is the journal's own
    assert ids(completion.task_ids(context(), "")) == [
        e.id for e in Journal(isolated / JOURNAL_FILE).entries()
    ]


def test_task_ids_leave_out_those_already_given(isolated: Path) -> None:
    record(isolated, SUBMITTED)
    found = completion.task_ids(context(task_ids=["video_aaa333", "video_bbb111"]), "")
    assert ids(found) == ["video_ccc222"]


def test_task_ids_offer_only_plain_words_and_a_bounded_list(isolated: Path) -> None:
    record(isolated, ["x; rm -rf ~", "$(reboot)", "..", "a b", "café"])
    record(isolated, [f"video_{n:03}" for n in range(completion.MAX_TASK_IDS + 5)])
    found = ids(completion.task_ids(context(), ""))
    assert len(found) == completion.MAX_TASK_IDS
    assert found[0] == f"video_{completion.MAX_TASK_IDS + 4:03}"
    assert all(task_id.startswith("video_") for task_id in found)


def test_no_journal_gives_nothing_and_creates_nothing(isolated: Path) -> None:
    assert completion.task_ids(context(), "") == []
    assert not isolated.exists()


def test_a_broken_journal_gives_nothing(isolated: Path) -> None:
    isolated.mkdir(parents=True)
    (isolated / JOURNAL_FILE).write_text("not a database")
    assert completion.task_ids(context(), "") == []
    (isolated / JOURNAL_FILE).unlink()
    (isolated / JOURNAL_FILE).mkdir()  # a folder where the file should be
    assert completion.task_ids(context(), "") == []
    (isolated / JOURNAL_FILE).rmdir()
    sqlite3.connect(isolated / JOURNAL_FILE).close()  # a database without the table
    assert completion.task_ids(context(), "") == []


def test_a_tab_leaves_no_wal_files_behind(isolated: Path) -> None:
    record(isolated, SUBMITTED)
    completion.task_ids(context(), "")
    assert sorted(p.name for p in isolated.iterdir()) == [JOURNAL_FILE]


@pytest.mark.parametrize(
    ("complete", "incomplete", "expected"),
    [
        (completion.modes, "", ["std", "pro"]),
        (completion.modes, "p", ["pro"]),
        (completion.durations, "", ["5", "10"]),
        (completion.aspect_ratios, "1", ["16:9", "1:1"]),
    ],
)
def test_option_choices(complete: object, incomplete: str, expected: list[str]) -> None:
    assert callable(complete)
    assert complete(incomplete) == expected


def test_generate_options_offer_their_choices() -> None:
    if not options_complete():
        pytest.skip(
            "generate's --mode/--duration/--aspect-ratio have no autocompletion= yet"
            " (kling_cli.completion.modes/durations/aspect_ratios): their TAB cases are left out"
        )
    assert OPTION_CASES  # and every shell test below checks them


# --- in the real shells ------------------------------------------------------------------------


def bash_complete_lines(cases: Sequence[str]) -> str:
    """Bash commands that fill COMP_WORDS/COMP_CWORD as readline would and call the function."""
    lines = []
    for line in cases:
        # readline's words keep their quotes: `'a fox'` is one word, quotes and all
        words = shlex.split(line, posix=False) + ([""] if line.endswith(" ") else [])
        array = " ".join(shlex.quote(w) for w in words)
        lines.append(
            f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; COMPREPLY=();"
            ' _kling_completion kling; printf "%s\\n" "${COMPREPLY[@]}" --end--'
        )
    return "\n".join(lines)


@pytest.mark.slow
def test_bash(env: dict[str, str]) -> None:
    todo = cases()
    script = (
        f"source {shlex.quote(str(COMPLETIONS / 'kling.bash'))}\n"
        "complete -p kling | grep -q -- '-F _kling_completion' || exit 9\n"
        + bash_complete_lines([line for line, _ in todo])
    )
    result = run([need("bash"), "--norc", "--noprofile", "-c", script], env)
    assert result.returncode == 0, result.stderr
    got = split_cases(result.stdout, len(todo))
    for (line, expected), offered in zip(todo, got, strict=True):
        assert offered == expected, line


# A zsh that drives a real interactive zsh in a pseudo-terminal: the completion system is
# loaded (compinit), the script sourced, the line typed and TAB pressed; every match the
# completion system adds is printed. One fresh shell per line.
ZSH_HARNESS = r"""
zmodload zsh/zpty || exit 3
script=$1; shift
for buffer in "$@"; do
  zpty z zsh -f -i
  zpty -w z "PROMPT='' RPROMPT=''; unsetopt beep; autoload -Uz compinit; compinit -u -D"
  zpty -w z "source ${(q)script}"
  zpty -w z "zstyle ':completion:*' insert-tab false; bindkey '^I' complete-word"
  zpty -w z 'compadd () {
    if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
    typeset -a __hits; builtin compadd -A __hits "$@"; (( $#__hits )) || return 1
    builtin printf "<${:-HIT}>%s</${:-HIT}>\n" $__hits; builtin compadd "$@"
  }'
  zpty -w z 'end-line () { print -r -- "<${:-END}>"; exit }; comppostfuncs=( end-line )'
  zpty -n -w z "$buffer"$'\t'
  out=
  while zpty -r z chunk; do out+=$chunk; [[ $out == *'<END>'* ]] && break; done
  zpty -d z
  print -r -- $out | grep -ao '<HIT>[^<]*</HIT>' | sed 's/<HIT>//; s,</HIT>,,' | awk '!seen[$0]++'
  print -r -- --end--
done
"""


@pytest.mark.slow
def test_zsh(env: dict[str, str], tmp_path: Path) -> None:
    zsh = need("zsh")
    harness = tmp_path / "harness.zsh"
    harness.write_text(ZSH_HARNESS)
    todo = cases()
    lines = [line for line, _ in todo]
    result = run([zsh, "-f", str(harness), str(COMPLETIONS / "_kling"), *lines], env)
    assert result.returncode == 0, result.stderr
    got = split_cases(result.stdout, len(todo))
    for (line, expected), offered in zip(todo, got, strict=True):
        # zsh sorts what it shows (and _describe adds described matches in its own order):
        # "newest first", the order kling hands over, is checked in bash
        assert sorted(offered) == sorted(expected), line


@pytest.mark.slow
def test_fish(env: dict[str, str]) -> None:
    fish = need("fish")
    todo = cases()
    script = f"source {shlex.quote(str(COMPLETIONS / 'kling.fish'))}\n" + "\n".join(
        f"complete -C {shlex.quote(line)}; printf '%s\\n' --end--" for line, _ in todo
    )
    result = run([fish, "--no-config", "-c", script], env)
    assert result.returncode == 0, result.stderr
    got = split_cases(result.stdout, len(todo))
    for (line, expected), offered in zip(todo, got, strict=True):
        # fish sorts what it shows; "newest first" is checked in bash and zsh
        assert sorted(item.split("\t")[0] for item in offered) == sorted(expected), line
    assert got[1] == [f"{i}\tqueued" for i in sorted(NEWEST_FIRST)]  # the status as description


def test_powershell(env: dict[str, str]) -> None:
    pwsh = shutil.which("pwsh") or shutil.which("powershell")
    if pwsh is None:
        pytest.skip("PowerShell (pwsh) is not installed; it is not in Debian's packages")
    todo = cases()
    script = ". '{}'\n".format(str(COMPLETIONS / "kling.ps1").replace("'", "''")) + "\n".join(
        "(TabExpansion2 -inputScript '{}' -cursorColumn {}).CompletionMatches"
        " | ForEach-Object {{ $_.CompletionText }}; '--end--'".format(
            line.replace("'", "''"), len(line)
        )
        for line, _ in todo
    )
    result = run([pwsh, "-NoLogo", "-NoProfile", "-NonInteractive", "-Command", script], env)
    got = split_cases(result.stdout, len(todo))
    for (line, expected), offered in zip(todo, got, strict=True):
        assert offered == expected, (line, result.stderr)


# --- kling --install-completion ----------------------------------------------------------------


@pytest.mark.slow
def test_install_completion_for_bash(env: dict[str, str]) -> None:
    home = Path(env["HOME"])
    env["SHELL"] = "/bin/bash"
    result = run([need("bash"), "-c", "kling --install-completion; exit $?"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = home / ".bash_completions" / "kling.sh"
    assert str(installed) in result.stdout
    assert installed.read_text().strip() == (COMPLETIONS / "kling.bash").read_text().strip()
    assert f"source '{installed}'" in (home / ".bashrc").read_text()
    # a new interactive shell reads ~/.bashrc: TAB works there
    script = "source ~/.bashrc\n" + bash_complete_lines(["kling ge", "kling status "])
    result = run(["bash", "--norc", "--noprofile", "-c", script], env)
    assert split_cases(result.stdout, 2) == [["generate"], NEWEST_FIRST], result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shell", "installed"),
    [("zsh", ".zfunc/_kling"), ("fish", ".config/fish/completions/kling.fish")],
)
def test_install_completion_for_zsh_and_fish(
    shell: str, installed: str, env: dict[str, str]
) -> None:
    home = Path(env["HOME"])
    result = run([need(shell), "-c", "kling --install-completion; true"], env)
    assert f"{shell} completion installed in {home / installed}" in result.stdout, result.stderr
    assert (home / installed).read_text().strip() == (
        COMPLETIONS / SCRIPTS[shell]
    ).read_text().strip()
    if shell == "fish":  # fish loads it by itself, with no config of ours
        result = run([shell, "-c", "complete -C 'kling ge'"], env)
        assert result.stdout.split("\t")[0] == "generate", result.stderr


# --- the fast path: a TAB on a task id without typer (kling_cli.quick_completion) --------------

# The console script's entry point, reporting on stderr which heavy modules it imported.
FAST = """
import sys
from kling_cli.main import main
try:
    main()
finally:
    heavy = ("typer", "click", "rich", "requests", "urllib3")
    print(" ".join(m for m in heavy if m in sys.modules), file=sys.stderr)
"""
# (command line up to the cursor, whether the fast path answers it)
FAST_CASES: list[tuple[str, bool]] = [
    ("kling wait ", True),
    ("kling wait video_c", True),
    ("kling status video_aaa333 ", True),
    ("kling download video_aaa333 video_ccc222 video_", True),
    ("kling wait 'video_b", True),  # an unclosed quote: its partial word
    ("kling wait nothing-like-it", True),  # no match: zsh falls back to files, fish too
    ("kling ge", False),
    ("kling wait --", False),
    ("kling wait --interval ", False),
    ("kling wait video_aaa333 --json ", False),
    ("kling --sandbox wait ", False),
    ("kling config set ", False),
]


def completion_env(shell: str, line: str, base: dict[str, str]) -> dict[str, str]:
    """The variables each shell's script (completions/) sets before calling kling back."""
    env = {**base, "_KLING_COMPLETE": f"complete_{shell}"}
    words = line.split() + ([""] if line.endswith(" ") else [])  # no quoted spaces in FAST_CASES
    if shell == "bash":  # "${COMP_WORDS[*]}" with IFS=$'\n'
        env.update(COMP_WORDS="\n".join(words), COMP_CWORD=str(len(words) - 1))
    elif shell.startswith("fish"):  # `commandline -cp`, with the script's two actions
        env.update(_TYPER_COMPLETE_ARGS=line, _TYPER_COMPLETE_FISH_ACTION=shell.split("-", 1)[1])
        env["_KLING_COMPLETE"] = "complete_fish"
    elif shell == "zsh":  # "${words[1,$CURRENT]}"
        env.update(_TYPER_COMPLETE_ARGS=line)
    else:  # PowerShell: the command's text and the word under the cursor
        env.update(_TYPER_COMPLETE_ARGS=line.rstrip(), _TYPER_COMPLETE_WORD_TO_COMPLETE=words[-1])
    return env


@pytest.fixture(scope="module")
def assorted_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three plain tasks, and some with statuses and ids the completer treats apart."""
    home = tmp_path_factory.mktemp("assorted_home")
    record(home, SUBMITTED)
    journal = Journal(home / JOURNAL_FILE)
    try:
        for task_id, status in [
            ("video_ddd444", "in_progress"),
            ("video_eee555", "Running 50%"),  # not a plain status: offered with no description
            ("video_fff 666", "queued"),  # not a plain word: never offered
        ]:
            journal.record_submitted(
                TaskView.of({"id": task_id, "status": status}), "https://api", {"prompt": "x"}
            )
    finally:
        journal.close()
    return home


def slow_path(env: dict[str, str]) -> tuple[str, int]:
    """The app itself, as the console script ran it before the fast path (in this process: the
    completion reads only the environment, and the fast path's own runs are the subprocesses)."""
    unset: dict[str, str | None] = {name: None for name in os.environ if name not in env}
    result = CliRunner().invoke(app, [], env={**unset, **env}, prog_name="kling")
    return result.stdout, result.exit_code


@pytest.mark.slow
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish-get-args", "fish-is-args", "powershell"])
def test_the_fast_path_prints_what_the_app_prints(
    shell: str,
    venv_bin: Path,
    assorted_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = shell_env(venv_bin, assorted_home, tmp_path / "user")
    python = str(venv_bin / "python")
    # On a console this narrow the app's rich would wrap the descriptions (the statuses): left
    # to the app, except in bash, which shows none. (Two spaces: told apart from FAST_CASES.)
    narrow = ("kling wait  ", shell == "bash")
    for line, fast in [*FAST_CASES, narrow]:
        env = completion_env(shell, line, base)
        if (line, fast) == narrow:
            env["COLUMNS"] = "12"
        slow = slow_path(env)
        if not fast:  # it declines, writing nothing: main() hands the TAB to the app (`slow`)
            capsys.readouterr()
            with mock.patch.dict(os.environ, env, clear=True):  # its journal: env's KLING_HOME
                assert quick_completion.quick(env) is None, (shell, line)
            assert capsys.readouterr().out == "", (shell, line)
            continue
        quick = run([python, "-c", FAST], env)
        assert (quick.stdout, quick.returncode) == slow, (shell, line)
        imported = quick.stderr.strip().splitlines()[-1:]
        assert imported == [], (shell, line, quick.stderr)
    # and the fast path did offer ids: newest first, without the hostile one
    env = completion_env(shell, "kling wait video_", base)
    offered = run([python, "-c", FAST], env)
    if shell == "fish-is-args":
        assert offered.returncode == 0 and offered.stdout == ""
    else:
        assert "video_ddd444" in offered.stdout and "video_fff" not in offered.stdout


def test_the_fast_path_knows_the_task_id_commands() -> None:
    """TASK_ID_COMMANDS: exactly the commands whose argument (their only one) is completed with
    task ids, so the fast path answers for no other command and no other argument."""
    import importlib
    import typing

    from kling_cli.app import LAZY_COMMANDS
    from kling_cli.quick_completion import TASK_ID_COMMANDS

    completed_with_ids = set()
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
            assert len(arguments) == 1, name
            completed_with_ids.add(name)
    assert completed_with_ids == TASK_ID_COMMANDS

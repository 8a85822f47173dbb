"""Shell completion: the committed scripts are current, and each works in its real shell.

Every shell test loads the committed script from completions/ into the real shell (bash always;
zsh, fish and PowerShell when installed, else skipped) with `kling` resolving to this venv's,
and a KLING_HOME whose journal holds three known tasks. A TAB on a task id of wait, status or
download goes through `kling __complete-ids` (kling_cli.main); any other, through typer.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
from typer._completion_shared import get_completion_script

from kling_cli import completion
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
    ("kling generate 'a fox' --duration 1", ["10", "11", "12", "13", "14", "15"]),
    ("kling generate 'a fox' --aspect-ratio ", ["16:9", "9:16", "1:1"]),
]
COMMAND_CASES: list[tuple[str, list[str]]] = [
    ("kling ge", ["generate"]),
    ("kling status ", NEWEST_FIRST),
    ("kling wait ", NEWEST_FIRST),
    ("kling wait video_c", ["video_ccc222"]),
    ("kling wait video_aaa333 ", ["video_ccc222", "video_bbb111"]),
    ("kling download ", NEWEST_FIRST),
    ("kling --sandbox status video_", NEWEST_FIRST),
    ("kling wait -o clip.mp4 ", NEWEST_FIRST),  # an option's value before: ids again
    ("kling wait -o ", ["clip.mp4", "videos/"]),  # files, through typer (and the shell)
    ("kling wait --json video_", NEWEST_FIRST),  # after an option: typer's path, ids too
    ("kling config set ", list(KEYS)),
    ("kling config get mo", ["model", "mode"]),
    ("kling config set mode ", ["std", "pro"]),
    ("kling config set --profile work duration 1", ["10", "11", "12", "13", "14", "15"]),
    ("kling config set aspect_ratio 1", ["16:9", "1:1"]),
]


# The lines the scripts answer through `kling __complete-ids` (the others: through typer)
FAST_PATH = {
    "kling status ",
    "kling wait ",
    "kling wait video_c",
    "kling wait video_aaa333 ",
    "kling download ",
    "kling --sandbox status video_",
    "kling wait -o clip.mp4 ",
}


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


# `kling` first on PATH in the shell tests: notes which path each call takes, in $TAB_CALLS
# (a harness writes `--end--` there after each line), and runs the venv's.
WRAPPER = """#!/bin/sh
if [ "$1" = __complete-ids ]; then echo fast >> "$TAB_CALLS"
elif [ -n "$_KLING_COMPLETE" ]; then echo typer >> "$TAB_CALLS"; fi
exec {kling} "$@"
"""


@pytest.fixture
def env(venv_bin: Path, kling_home: Path, tmp_path: Path) -> dict[str, str]:
    """Also a file and a folder in the working folder (the `isolated` fixture's), which the
    shells run in: what `kling wait -o <TAB>` offers."""
    (Path.cwd() / "clip.mp4").touch()
    (Path.cwd() / "videos").mkdir()
    env = shell_env(venv_bin, kling_home, tmp_path / "user")
    wrapper = tmp_path / "bin" / "kling"
    wrapper.parent.mkdir()
    wrapper.write_text(WRAPPER.format(kling=shlex.quote(str(venv_bin / "kling"))))
    wrapper.chmod(0o755)
    env["PATH"] = f"{wrapper.parent}{os.pathsep}{env['PATH']}"
    env["TAB_CALLS"] = str(tmp_path / "calls")
    return env


def check_paths(todo: Sequence[tuple[str, list[str]]], env: dict[str, str]) -> None:
    """Each line took its path: `kling __complete-ids` alone, or typer's alone."""
    calls = split_cases(Path(env["TAB_CALLS"]).read_text(), len(todo))
    for (line, _), called in zip(todo, calls, strict=True):
        want = "fast" if line in FAST_PATH else "typer"
        assert called and set(called) == {want}, (line, called)


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
    """The committed script is typer's own (what --show-completion prints and
    --install-completion installs) with the fast path for task ids: typer's part unchanged,
    except in fish, where its condition first asks whether the fast path answers."""
    # typer detects the shell from the process tree: run it from that shell (not as its last
    # command, which the shell might exec in its own place).
    result = run([need(shell), "-c", "kling --show-completion; true"], env)
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    assert shown.strip() == typers_script(shell).strip()
    committed = (COMPLETIONS / SCRIPTS[shell]).read_text()
    if shell == "fish":
        committed = committed.replace("not __kling_task_id_here; and ", "", 1)
    assert shown.strip() in committed
    assert "__complete-ids" in committed.replace(shown.strip(), "")


def typers_script(shell: str) -> str:
    return get_completion_script(prog_name="kling", complete_var="_KLING_COMPLETE", shell=shell)


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
        (completion.durations, "", [str(n) for n in range(3, 16)]),
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
    """Bash commands that fill COMP_WORDS/COMP_CWORD as readline would and call the function
    `complete -p kling` names; with no matches, `-o default` means readline's own filename
    completion, done here as readline does it (compgen -f, a slash after a folder, sorted)."""
    lines = [
        "spec=$(complete -p kling); fn=${spec##*-F }; fn=${fn%% *}",
        'default() { [[ $spec == *"-o default"* && ${#COMPREPLY[@]} == 0 ]] || return 0;'
        ' local f; for f in $(compgen -f -- "$1" | LC_ALL=C sort); do'
        ' [[ -d $f ]] && f=$f/; COMPREPLY+=("$f"); done; }',
    ]
    for line in cases:
        # readline's words keep their quotes: `'a fox'` is one word, quotes and all
        words = shlex.split(line, posix=False) + ([""] if line.endswith(" ") else [])
        array = " ".join(shlex.quote(w) for w in words)
        lines.append(
            f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; COMPREPLY=();"
            ' "$fn" kling; default "${COMP_WORDS[COMP_CWORD]}";'
            ' printf "%s\\n" "${COMPREPLY[@]}" --end--; echo --end-- >> "$TAB_CALLS"'
        )
    return "\n".join(lines)


@pytest.mark.slow
def test_bash(env: dict[str, str]) -> None:
    todo = cases()
    script = (
        f"source {shlex.quote(str(COMPLETIONS / 'kling.bash'))}\n"
        "complete -p kling | grep -q -- '-F _kling_completion_ids' || exit 9\n"
        + bash_complete_lines([line for line, _ in todo])
    )
    result = run([need("bash"), "--norc", "--noprofile", "-c", script], env)
    assert result.returncode == 0, result.stderr
    got = split_cases(result.stdout, len(todo))
    for (line, expected), offered in zip(todo, got, strict=True):
        assert offered == expected, line
    check_paths(todo, env)


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
  print -r -- --end-- >> $TAB_CALLS
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
        # "newest first", the order kling hands over, is checked in bash and fish. A folder
        # comes with its slash as a suffix of its own.
        assert sorted(offered) == sorted(e.removesuffix("/") for e in expected), line
    check_paths(todo, env)


@pytest.mark.slow
def test_fish(env: dict[str, str]) -> None:
    fish = need("fish")
    todo = cases()
    script = f"source {shlex.quote(str(COMPLETIONS / 'kling.fish'))}\n" + "\n".join(
        f"complete -C {shlex.quote(line)}; printf '%s\\n' --end--; echo --end-- >> $TAB_CALLS"
        for line, _ in todo
    )
    result = run([fish, "--no-config", "-c", script], env)
    assert result.returncode == 0, result.stderr
    got = split_cases(result.stdout, len(todo))
    for (line, expected), offered in zip(todo, got, strict=True):
        # fish sorts what typer's path offers; the fast path's ids keep their order
        assert sorted(item.split("\t")[0] for item in offered) == sorted(expected), line
    assert todo[1][0] == "kling status "
    assert got[1] == [f"{i}\tqueued" for i in NEWEST_FIRST]  # the status as description
    check_paths(todo, env)


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
    assert installed.read_text().strip() == typers_script("bash").strip()  # without the fast path
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
    assert (home / installed).read_text().strip() == typers_script(shell).strip()
    if shell == "fish":  # fish loads it by itself, with no config of ours
        result = run([shell, "-c", "complete -C 'kling ge'"], env)
        assert result.stdout.split("\t")[0] == "generate", result.stderr


# --- the hidden entry: `kling __complete-ids PREFIX [GIVEN...]` (kling_cli.main) -----------------


def complete_ids(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The console script's entry point, as the scripts run it; stderr's last line names the
    heavy modules it imported."""
    probe = (
        "import sys\n"
        "from kling_cli.main import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    heavy = ('typer', 'click', 'rich', 'requests', 'urllib3')\n"
        "    print('imported:', *(m for m in heavy if m in sys.modules), file=sys.stderr)\n"
    )
    argv = [sys.executable, "-c", probe, "__complete-ids", *args]
    return run(argv, {**os.environ, **(env or {})})


def quiet(result: subprocess.CompletedProcess[str]) -> bool:
    """Exit 0, and nothing on stderr but the probe's line: no traceback, no message."""
    return result.returncode == 0 and result.stderr.splitlines() == ["imported:"]


def test_complete_ids_prints_id_tab_status_newest_first(isolated: Path) -> None:
    record(isolated, SUBMITTED)
    journal = Journal(isolated / JOURNAL_FILE)
    try:
        for task_id, status in [
            ("video_ddd444", "in_progress"),
            ("video_eee555", "Running 50%"),  # not a plain word: the id alone
            ("video_fff 666", "queued"),  # not a plain word: never offered
            ("video_ggg;rm", "queued"),
        ]:
            journal.record_submitted(
                TaskView.of({"id": task_id, "status": status}), "https://api", {"prompt": "x"}
            )
        journal.sending("https://api", {"prompt": "x"}, "no answer")  # `uncertain`
    finally:
        journal.close()
    result = complete_ids("")
    assert quiet(result), result.stderr
    assert result.stdout == (
        "video_eee555\nvideo_ddd444\tin_progress\n"
        + "".join(f"{i}\tqueued\n" for i in NEWEST_FIRST)
    )
    # by prefix, leaving out those given (and words that are no ids)
    result = complete_ids("video_", "video_eee555", "video_aaa333", "-o", "x y")
    assert result.stdout.splitlines() == [
        "video_ddd444\tin_progress",
        "video_ccc222\tqueued",
        "video_bbb111\tqueued",
    ]
    assert complete_ids("video_c").stdout == "video_ccc222\tqueued\n"
    assert complete_ids("video_fff ").stdout == ""  # a prefix no plain id has
    assert complete_ids().stdout.count("\n") == 5  # no PREFIX: every one


def test_complete_ids_imports_neither_typer_rich_nor_requests(isolated: Path) -> None:
    record(isolated, SUBMITTED)
    result = complete_ids("video_")
    assert result.stdout.splitlines()[0] == "video_aaa333\tqueued"
    assert result.stderr.splitlines() == ["imported:"]


def test_complete_ids_without_a_journal_creates_nothing(isolated: Path) -> None:
    result = complete_ids("")
    assert quiet(result) and result.stdout == "", result.stderr
    assert not isolated.exists()  # neither the journal nor its folder
    isolated.mkdir()
    result = complete_ids("")
    assert quiet(result) and result.stdout == "", result.stderr
    assert list(isolated.iterdir()) == []


def test_complete_ids_with_no_stdout_says_nothing(isolated: Path, venv_bin: Path) -> None:
    record(isolated, SUBMITTED)
    argv = ["sh", "-c", f'{shlex.quote(str(venv_bin / "kling"))} __complete-ids "" >&-']
    result = run(argv, dict(os.environ))
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("damage", ["not a database", "a folder", "no tasks table", "home"])
def test_complete_ids_on_a_broken_journal_gives_nothing(isolated: Path, damage: str) -> None:
    isolated.mkdir(parents=True)
    path = isolated / JOURNAL_FILE
    env = None
    if damage == "not a database":
        path.write_bytes(b"not a database" * 512)
    elif damage == "a folder":
        path.mkdir()
    elif damage == "no tasks table":
        sqlite3.connect(path).close()
    else:  # KLING_HOME names a user with no home folder
        env = {"KLING_HOME": "~no-such-user-kling/x"}
    result = complete_ids("", env=env)
    assert quiet(result) and result.stdout == "", result.stderr
    if damage == "not a database":
        assert path.read_bytes() == b"not a database" * 512


@pytest.mark.slow
def test_complete_ids_on_a_locked_journal_gives_nothing(isolated: Path) -> None:
    record(isolated, SUBMITTED)
    holder = sqlite3.connect(isolated / JOURNAL_FILE, isolation_level=None)
    try:  # another process holding the file for itself, as an exclusive transaction does
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE tasks SET status = 'x'")
        result = complete_ids("")
    finally:
        holder.close()
    assert quiet(result) and result.stdout == "", result.stderr
    assert complete_ids("").stdout.count("\n") == 3  # and once it is free again


def test_the_scripts_know_the_task_id_commands() -> None:
    """The generator reads, from the app, the commands whose argument is TASK_ID... (the
    fast path's): wait, status and download."""
    spec = importlib.util.spec_from_file_location("generate", GENERATOR)
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    assert sorted(generate.task_id_commands()) == ["download", "status", "wait"]

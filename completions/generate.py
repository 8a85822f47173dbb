"""Write kling's shell-completion scripts into completions/ (or the folder given).

    python completions/generate.py            # regenerate completions/
    python completions/generate.py OUT_DIR    # write them elsewhere (the test compares)

Each file is exactly what `kling --show-completion` prints in that shell: typer's script for
the program name `kling`, which calls `kling` back with _KLING_COMPLETE set on every TAB. The
scripts hold no command or option names, so they only change with typer (or the program's
name); tests/test_completions.py fails when the committed files are stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer._completion_shared import get_completion_script

from kling_cli.app import app

REPO = Path(__file__).resolve().parent.parent
# shell (as typer names it) -> file name, each the conventional one for that shell
FILES = {
    "bash": "kling.bash",
    "zsh": "_kling",
    "fish": "kling.fish",
    "powershell": "kling.ps1",
}


def prog_name() -> str:
    name = app.info.name
    assert isinstance(name, str), "the app is named"
    return name


def complete_var(prog: str) -> str:
    """The variable the scripts set to call the program back, derived as typer does."""
    return "_{}_COMPLETE".format(prog.replace("-", "_").upper())


def scripts() -> dict[str, str]:
    """File name -> content."""
    prog = prog_name()
    return {
        name: get_completion_script(prog_name=prog, complete_var=complete_var(prog), shell=shell)
        + "\n"
        for shell, name in FILES.items()
    }


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

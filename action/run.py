"""The kling GitHub Action's run step (action.yml): kling generate or kling batch from the
action's inputs, then its outputs written to $GITHUB_OUTPUT.

Run by the python of the environment kling was installed into, so kling's own reading of a
task applies. Inputs come as INPUT_* variables (action.yml maps each one); the key stays in the
environment (KLING_API_KEY) and is never put on a command line or printed. kling's progress
goes to the job log as it comes (stderr is not a terminal on a runner: plain lines); its --json
results are read from stdout. The step exits with kling's exit code, after the outputs are
written, so a later `if: failure()` step can still read them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kling_cli.api.tasks import TaskView
from kling_cli.errors import ExitCode

# input -> the variable kling reads it from, as a setting: it beats the config file, a flag in
# `args` beats it, and a batch line's own key beats it (flag > environment > config file).
SETTINGS = {
    "MODE": "KLING_MODE",
    "DURATION": "KLING_DURATION",
    "ASPECT_RATIO": "KLING_ASPECT_RATIO",
}


class InputError(Exception):
    pass


def given(environ: Mapping[str, str], name: str) -> str:
    return environ.get(f"INPUT_{name}", "").strip()


def command(environ: Mapping[str, str]) -> list[str]:
    """The kling command line the inputs ask for (the key is never on it)."""
    prompt, batch = environ.get("INPUT_PROMPT", ""), given(environ, "BATCH")
    if bool(prompt.strip()) == bool(batch):
        raise InputError("give the action one of `prompt` or `batch`")
    try:
        extra = shlex.split(given(environ, "ARGS"))
    except ValueError as exc:
        raise InputError(f"args: {exc}") from None
    output = given(environ, "OUTPUT") or "videos"
    timeout = given(environ, "TIMEOUT")
    argv = [sys.executable, "-m", "kling_cli"]
    sandbox = given(environ, "SANDBOX").lower()
    if sandbox not in ("", "false", "true"):
        raise InputError(f"sandbox: {sandbox!r} is neither true nor false")
    if sandbox == "true":
        argv.append("--sandbox")
    if batch:
        argv += ["batch", batch, "--json", "-o", output]
    else:
        argv += ["generate", "--json", "-o", output.rstrip("/") + "/"]  # a slash: a folder
    if timeout:
        argv += ["--timeout", timeout]
    argv += extra
    if not batch:
        argv += ["--", prompt]  # a prompt that starts with `-` is still the prompt
    return argv


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    env = {name: value for name, value in environ.items() if name != "INPUT_API_KEY"}
    for name, variable in SETTINGS.items():
        if given(environ, name):
            env[variable] = given(environ, name)
    if given(environ, "API_KEY"):  # else KLING_API_KEY from the step's env, if any
        env["KLING_API_KEY"] = given(environ, "API_KEY")
    return env


def documents(stdout: str) -> list[dict[str, Any]]:
    """kling --json's documents, one per line (anything else is left out)."""
    found = []
    for line in stdout.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict):
            found.append(document)
    return found


def outputs(docs: list[dict[str, Any]], code: int) -> dict[str, str]:
    ids = [TaskView.of(doc).id or str(doc.get("id") or "") for doc in docs]
    files = [str(Path(f).resolve()) for doc in docs for f in doc.get("output_files") or []]
    return {
        "task-ids": "\n".join(i for i in ids if i),
        "files": "\n".join(files),
        "json": json.dumps(docs),
        "exit-code": str(code),
    }


def write_outputs(path: str, values: Mapping[str, str]) -> None:
    """name<<DELIMITER ... DELIMITER, GitHub's form for values of several lines; the delimiter
    is random, so no line of a value can end it early."""
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in values.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def main() -> int:
    environ = dict(os.environ)
    try:
        argv = command(environ)
    except InputError as exc:
        print(f"::error::kling action: {exc}", flush=True)
        write_outputs(environ["GITHUB_OUTPUT"], outputs([], ExitCode.USAGE))
        return int(ExitCode.USAGE)
    shown = shlex.join(["kling", *argv[3:]])
    print(f"kling action: {shown}", flush=True)
    result = subprocess.run(argv, env=child_environment(environ), stdout=subprocess.PIPE, text=True)
    docs = documents(result.stdout)
    values = outputs(docs, result.returncode)
    write_outputs(environ["GITHUB_OUTPUT"], values)
    for doc in docs:  # the results, readable in the job log
        view = TaskView.of(doc)
        saved = " ".join(doc.get("output_files") or []) or view.error_text or ""
        print(f"{view.id or '-'}\t{view.status}\t{saved}".rstrip(), flush=True)
    if result.returncode != 0:
        print(f"::error::kling exited {result.returncode} (see the lines above)", flush=True)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())

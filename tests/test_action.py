"""The GitHub Action (action.yml): its steps run in a shell as a runner runs them, against the
sandbox, and what they leave in $GITHUB_OUTPUT is what a workflow would read.

The install step is the one replaced: it would `pip install` the action's checkout (network);
here the step's outputs name this test's own Python, in which kling is installed already, and
the run step then runs exactly as action.yml says, with the env it declares, each
`${{ inputs.X }}` filled from the inputs given or their declared defaults.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kling_cli.sandbox.server import Sandbox

pytestmark = pytest.mark.slow  # each test runs the action's steps as a runner would


@pytest.fixture
def sandbox(live_sandbox: Sandbox) -> Sandbox:
    """The action runs kling in other processes: the sandbox keeps real time."""
    return live_sandbox


ROOT = Path(__file__).resolve().parent.parent
ACTION = ROOT / "action.yml"
README = ROOT / "README.md"
KEY = "sk-action-0123456789abcdef"


# --- a reader for the plain YAML of action.yml (block maps, lists of maps, one-line scalars);
# the project has no YAML library, and GitHub reads these files with a full one.


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("{") and text.endswith("}"):  # a flow map: {name: x, path: y}
        pairs = (item.split(":", 1) for item in text[1:-1].split(","))
        return {k.strip(): _scalar(v) for k, v in pairs}
    return {"true": True, "false": False}.get(text, text)


def read_yaml(text: str) -> Any:
    lines = []
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()  # comments (none inside our values)
        if line.strip():
            lines.append((len(line) - len(line.lstrip()), line.strip()))
    value, end = _block(lines, 0, lines[0][0])
    assert end == len(lines), f"not understood: {lines[end]}"
    return value


def _block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            # the item's first key sits two columns right of the dash, as do the rest
            lines[i] = (indent + 2, lines[i][1][2:])
            item, i = _block(lines, i, indent + 2)
            items.append(item)
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and not lines[i][1].startswith("- "):
        key, _, rest = lines[i][1].partition(":")
        i += 1
        if rest.strip():
            mapping[key] = _scalar(rest)
        elif i < len(lines) and lines[i][0] > indent:
            mapping[key], i = _block(lines, i, lines[i][0])
        elif i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            mapping[key], i = _block(lines, i, indent)  # a list at the key's own indent
        else:
            mapping[key] = None
    return mapping, i


def action() -> dict[str, Any]:
    return read_yaml(ACTION.read_text())


def test_the_reader_agrees_with_a_real_yaml_parser() -> None:
    yaml = pytest.importorskip("yaml")
    assert read_yaml(ACTION.read_text()) == yaml.safe_load(ACTION.read_text())


# --- running the action's steps -------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")


def outputs_file(path: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it: name=value, or name<<DELIM ... DELIM."""
    values: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        if "<<" in lines[i]:
            name, delimiter = lines[i].split("<<", 1)
            end = lines.index(delimiter, i + 1)
            values[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        else:
            name, _, value = lines[i].partition("=")
            values[name] = value
            i += 1
    return values


def run_action(
    inputs: dict[str, str], work: Path, env: dict[str, str]
) -> tuple[int, dict[str, str], str]:
    """The steps of action.yml in bash, as the runner runs a composite action's steps: the
    step's declared env with its expressions filled in, GITHUB_* variables, a fresh
    GITHUB_OUTPUT per step. Returns (exit code of the last step run, the action's outputs, its
    log)."""
    spec = action()
    declared = spec["inputs"]
    assert set(inputs) <= set(declared), set(inputs) - set(declared)
    values = {name: inputs.get(name, declared[name].get("default") or "") for name in declared}
    steps: dict[str, dict[str, str]] = {}

    def fill(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            what = match[1].split(".")
            if what[0] == "inputs":
                return str(values[what[1]])
            if what[0] == "steps" and what[2] == "outputs":
                return steps[what[1]][what[3]]
            raise AssertionError(f"an expression this test does not know: {match[0]}")

        return EXPRESSION.sub(one, text)

    code, log = 0, ""
    for number, step in enumerate(spec["runs"]["steps"]):
        output = work / f"output-{number}"
        output.write_text("")
        step_env = {
            **env,
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_OUTPUT": str(output),
            "GITHUB_PATH": str(work / "path"),
            "RUNNER_TEMP": str(work / "runner-temp"),
            **{name: fill(str(value)) for name, value in (step.get("env") or {}).items()},
        }
        assert step["shell"] == "bash"
        if step["id"] == "install":  # reuse this environment: no pip, no network
            output.write_text(f"python={sys.executable}\n")
        else:
            result = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=work, env=step_env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            code, log = result.returncode, log + result.stdout + result.stderr
        steps[step["id"]] = outputs_file(output)
        if code != 0:
            break
    produced = {name: fill(o["value"]) for name, o in spec["outputs"].items()}
    return code, produced, log


@pytest.fixture
def runner_env(sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    """A runner's environment: no terminal, KLING_HOME of the job, the sandbox as the service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLING_", "INPUT_"))}
    env.update(
        KLING_HOME=str(tmp_path / "kling-home"),
        KLING_BASE_URL=sandbox.base_url,
        KLING_POLL_INTERVAL="0.1",
        GITHUB_ACTIONS="true",
    )
    return env


@pytest.fixture
def work(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    return folder


def test_a_prompt(runner_env: dict[str, str], work: Path, sandbox: Sandbox) -> None:
    code, out, log = run_action(
        {"prompt": "a red fox running through snow", "api-key": KEY, "mode": "pro",
         "aspect-ratio": "9:16", "timeout": "60"},
        work, runner_env,
    )  # fmt: skip
    assert code == 0, log
    [task_id] = out["task-ids"].splitlines()
    [file] = out["files"].splitlines()
    assert Path(file) == work / "videos" / f"{task_id}.mp4"
    assert Path(file).read_bytes() == sandbox.clip_bytes("9:16")
    [document] = json.loads(out["json"])
    assert document["id"] == task_id and document["status"] == "completed"
    assert out["exit-code"] == "0"
    sent = json.loads(next(r.body for r in sandbox.log if r.method == "POST"))
    assert (sent["mode"], sent["aspect_ratio"]) == ("pro", "9:16")
    # The key: in the environment only; never in the log, never on a command line.
    assert KEY not in log
    assert [r.headers["Authorization"] for r in sandbox.log if r.method == "POST"] == ["<redacted>"]
    # Progress in the job log as plain lines.
    assert f"kling: {task_id} completed 100%" in log and "\x1b[" not in log


def test_a_batch_file(runner_env: dict[str, str], work: Path, sandbox: Sandbox) -> None:
    (work / "prompts.jsonl").write_text(
        '{"prompt": "a red fox", "output": "fox.mp4"}\n'
        '{"prompt": "a calm lake", "mode": "std"}\n'
        '{"prompt": "a square cat", "aspect_ratio": "1:1"}\n'
    )
    runner_env["KLING_API_KEY"] = KEY  # the other way: the step's env, from a secret
    code, out, log = run_action(
        {"batch": "prompts.jsonl", "output": "clips", "mode": "pro", "args": "--parallel 2"},
        work, runner_env,
    )  # fmt: skip
    assert code == 0, log
    ids = out["task-ids"].splitlines()
    files = [Path(f) for f in out["files"].splitlines()]
    assert len(ids) == 3 == len(set(ids)) and len(files) == 3
    assert all(f.exists() and f.parent == work / "clips" for f in files)
    assert work / "clips" / "fox.mp4" in files
    documents = json.loads(out["json"])
    assert [d["line"] for d in documents] == [1, 2, 3] and [d["id"] for d in documents] == ids
    modes = sorted(json.loads(r.body)["mode"] for r in sandbox.log if r.method == "POST")
    assert modes == ["pro", "pro", "std"]  # the input is the default; a line's own key wins


def test_a_failing_task_fails_the_step_with_the_outputs_written(
    runner_env: dict[str, str], work: Path
) -> None:
    (work / "prompts.jsonl").write_text('{"prompt": "a fox"}\n{"prompt": "[fail] a storm"}\n')
    code, out, log = run_action({"batch": "prompts.jsonl", "api-key": KEY}, work, runner_env)
    assert code == 6, log
    assert out["exit-code"] == "6" and "::error::kling exited 6" in log
    assert len(out["task-ids"].splitlines()) == 2 and len(out["files"].splitlines()) == 1
    statuses = [d["status"] for d in json.loads(out["json"])]
    assert statuses == ["completed", "failed"]


def test_a_failing_prompt_too(runner_env: dict[str, str], work: Path) -> None:
    code, out, _ = run_action({"prompt": "[fail] a storm", "api-key": KEY}, work, runner_env)
    assert code == 6 and out["task-ids"] and out["files"] == ""
    assert json.loads(out["json"])[0]["status"] == "failed"


def test_the_sandbox_input_needs_no_key(runner_env: dict[str, str], work: Path) -> None:
    del runner_env["KLING_BASE_URL"]
    code, out, log = run_action(
        {"prompt": "-a prompt that looks like an option", "sandbox": "true"}, work, runner_env
    )
    assert code == 0, log
    assert Path(out["files"]).exists() and "built-in sandbox" in log


def test_no_key_is_exit_3_and_says_how(runner_env: dict[str, str], work: Path) -> None:
    code, out, log = run_action({"prompt": "a fox"}, work, runner_env)
    assert code == 3 and out["exit-code"] == "3" and out["task-ids"] == ""
    assert json.loads(out["json"]) == [] and "KLING_API_KEY" in log


@pytest.mark.parametrize(
    "inputs",
    [{}, {"prompt": "a fox", "batch": "x.jsonl"}, {"prompt": "a fox", "sandbox": "yes"}],
)
def test_inputs_that_make_no_sense_are_exit_2(
    runner_env: dict[str, str], work: Path, inputs: dict[str, str]
) -> None:
    code, _, log = run_action(inputs, work, runner_env)
    assert code == 2 and "::error::kling action:" in log


def test_the_readme_workflow_names_only_inputs_the_action_declares() -> None:
    blocks = [
        b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), re.S) if "kling@" in b
    ]
    uses = [
        step
        for block in blocks
        for job in read_yaml(block)["jobs"].values()
        for step in job["steps"]
        if "kling@" in str(step.get("uses", ""))
    ]
    assert uses, "the README shows no workflow that uses the action"
    declared = set(action()["inputs"])
    for step in uses:
        assert step["with"] and set(step["with"]) <= declared, set(step["with"]) - declared
        assert "api-key" not in step["with"] or "secrets." in step["with"]["api-key"]

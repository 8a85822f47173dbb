"""Every bash snippet of the README runs, in order, against the sandbox, exactly as written
(the one that starts its own sandbox runs beside the others, in a folder of its own).

A snippet that cannot run here says why in a `<!-- readme-test: not run: ... -->` line above it
(it installs, or its paths are the reader's). The GitHub Actions workflows run their `run:`
steps the same way, with the secret in the environment (their `pipx install` step is the one
left out: kling is installed already). The PowerShell block needs pwsh, which is not here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kling_cli.sandbox.server import Sandbox, SandboxConfig

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The snippets run kling in other processes: a sandbox on real time, and quick (no
    snippet watches a task's states go by; each command waits for its tasks to end)."""
    with Sandbox(config=SandboxConfig(queue_seconds=0.05, run_seconds=0.1)) as sb:
        yield sb


BLOCK = re.compile(
    r"(<!-- readme-test: not run: (?P<why>[^\n]+?) -->\n)?```bash\n(?P<code>.*?)```", re.S
)


def snippets() -> list[tuple[str, str | None]]:
    """(code, reason not run) for every bash block, in the order of the README."""
    return [(m["code"], m["why"]) for m in BLOCK.finditer(README.read_text())]


YAML = re.compile(
    r"(<!-- readme-test: not run: (?P<why>[^\n]+?) -->\n)?```yaml\n(?P<code>.*?)```", re.S
)


def workflows(run: bool = True) -> list[str]:
    """The YAML blocks (GitHub Actions) that run here (`run=False`: the others)."""
    return [m["code"] for m in YAML.finditer(README.read_text()) if bool(m["why"]) is not run]


def run_steps(block: str) -> list[str]:
    return re.findall(r"^\s*- run: (.+)$", block, re.M)


def workflow_steps() -> list[list[str]]:
    """The `run:` commands of each YAML block that runs, install steps left out."""
    steps = [run_steps(block) for block in workflows()]
    return [[step for step in block if not step.startswith("pipx install")] for block in steps]


def workflow_checkouts() -> list[list[str]]:
    """The `path:` of each extra `actions/checkout` step of each YAML block that runs: where
    it puts a repository beside the user's own."""
    return [
        re.findall(r"with: \{repository: [^,]+, path: ([^}]+)\}", block) for block in workflows()
    ]


def test_workflows_install_kling_from_where_they_checked_it_out() -> None:
    """A bare `actions/checkout` fetches the user's repository: `pipx install ./kling` needs a
    checkout of kling at ./kling (the README test links this repository there)."""
    blocks = workflows(run=True) + workflows(run=False)
    installing = 0
    for block in blocks:
        paths = re.findall(r"with: \{repository: [^,]+, path: ([^}]+)\}", block)
        installs = re.findall(r"^\s*- run: pipx install (\S+)$", block, re.M)
        if "uses: OWNER/kling@" in block:  # the Action installs kling itself
            assert not installs
            continue
        installing += 1
        assert installs and all(Path(i).name in paths for i in installs), (installs, paths)
    assert installing >= 2


def test_the_matrix_workflow_runs_what_its_bash_loop_runs() -> None:
    """The matrix YAML is not run (N jobs); its kling step, with the matrix's K put in, is the
    body of the README's loop over the shards, which is."""
    (matrix,) = [block for block in workflows(run=False) if "matrix:" in block]
    (step,) = [step for step in run_steps(matrix) if step.startswith("kling ")]
    (shards,) = re.findall(r"shard: \[(.*?)\]", matrix)
    count = len(shards.split(","))
    loop = f"for k in {' '.join(map(str, range(1, count + 1)))}; do\n  "
    body = step.replace("${{ matrix.shard }}", "$k")
    assert any(loop + body + "\ndone" in code for code, why in snippets() if not why), body


def cookbook() -> list[str]:
    text = README.read_text()
    section = text.split("<!-- cookbook:start -->", 1)[1].split("<!-- cookbook:end -->", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, re.S)


def test_workflows_have_steps() -> None:
    assert [len(steps) for steps in workflow_steps()] == [1, 1, 1, 1]


def test_only_a_few_snippets_are_not_run() -> None:
    skipped = [why for _, why in snippets() if why]
    assert len(snippets()) >= 15 and len(skipped) <= 4, skipped
    assert len(cookbook()) >= 5 and not any(why for code, why in snippets() if code in cookbook())


def sandbox_block() -> str:
    """The block that runs `kling sandbox` in the background and points kling at it."""
    (code,) = [code for code, _ in snippets() if "kling sandbox " in code]
    return code


def environment(tmp_path: Path, base_url: str, *path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": os.pathsep.join(
            [*map(str, path), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
        "HOME": str(tmp_path / "user"),
        "SHELL": "/bin/bash",
        "KLING_HOME": str(tmp_path / "kling-home"),
        "KLING_BASE_URL": base_url,
        "KLING_API_KEY": "sk-readme-0123456789",
        "KLING_POLL_INTERVAL": "0.1",
    }


def test_no_snippet_takes_a_fixed_port() -> None:
    # Two runs at once (two CI jobs, xdist) would collide on it.
    fixed = [code for code, why in snippets() if not why and re.search(r"--port [1-9]", code)]
    assert fixed == []


def test_the_sandbox_block_runs_twice_at_once(tmp_path: Path) -> None:
    # Its start, its address and its balance, without the generations (they take seconds).
    lines = [line for line in sandbox_block().splitlines() if not line.startswith("kling generate")]
    runs = []
    for n in range(2):
        work = tmp_path / f"run-{n}"
        work.mkdir()
        env = environment(work, "http://127.0.0.1:9")  # nothing there: the block sets its own
        argv = ["bash", "-eu", "-c", "\n".join(lines)]
        runs.append(subprocess.Popen(argv, cwd=work, env=env, text=True, stdout=subprocess.PIPE))
    for run in runs:
        out, _ = run.communicate(timeout=60)
        assert run.returncode == 0
        assert json.loads(out)["remain_balance"] == 10.0  # its own sandbox answered
    urls = {(tmp_path / f"run-{n}" / "sandbox.url").read_text() for n in range(2)}
    assert len(urls) == 2  # each on a free port of its own


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_every_readme_snippet_runs(sandbox, tmp_path: Path) -> None:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    opener = stubs / "xdg-open"  # no desktop here: "opening" checks the file is a video
    opener.write_text('#!/bin/sh\nhead -c 8 "$1" | grep -q ftyp && echo "opened $1"\n')
    opener.chmod(0o755)
    work = tmp_path / "readme"
    work.mkdir()
    png, jpeg = b"\x89PNG\r\n\x1a\n" + bytes(64), b"\xff\xd8\xff\xe0" + bytes(64)
    (work / "photo.png").write_bytes(png)
    (work / "photo.jpg").write_bytes(jpeg)
    (work / "me.jpg").write_bytes(jpeg)
    env = environment(tmp_path, sandbox.base_url, stubs)
    # The block that starts its own sandbox depends on no other (test_the_sandbox_block_runs_
    # twice_at_once): it runs beside the others, in a folder and KLING_HOME of its own.
    own = tmp_path / "sandbox-block"
    own.mkdir()
    beside = subprocess.Popen(
        ["bash", "-eu", "-c", sandbox_block()], cwd=own, env=environment(own, sandbox.base_url),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    outputs = {}
    for code, why in snippets():
        if why or code == sandbox_block():
            continue
        result = subprocess.run(
            ["bash", "-eu", "-c", code],
            cwd=work, env=env, input="sk-typed-0123456789\n", capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, f"{code}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
        outputs[code] = result.stdout
    for number, steps in enumerate(workflow_steps()):
        job = tmp_path / f"workflow-{number}"  # a fresh checkout, as on a runner
        job.mkdir()
        for path in workflow_checkouts()[number]:  # kling's own checkout: this repository
            (job / path).symlink_to(README.parent)
        for name in ("prompts.jsonl", "me.jpg"):
            shutil.copy(work / name, job / name)
        for step in steps:
            result = subprocess.run(
                ["bash", "-eu", "-c", step], cwd=job, env=env, capture_output=True, text=True,
                timeout=120,
            )  # fmt: skip
            assert result.returncode == 0, f"{step}\n{result.stderr}"
    out, err = beside.communicate(timeout=120)
    assert beside.returncode == 0, f"{sandbox_block()}\n{out}\n{err}"
    assert "Traceback" not in err
    outputs[sandbox_block()] = out
    assert (tmp_path / "workflow-0" / "results.jsonl").read_text().count("\n") == 3
    assert (tmp_path / "workflow-1" / "videos" / "index.html").exists()  # the gallery's
    assert (tmp_path / "workflow-2" / "fox.mp4").exists()
    # A few results a reader would look for.
    recipes = cookbook()
    assert outputs[recipes[-1]] == "4\n"  # the exit code, read from the JSON error
    assert "opened " in outputs[recipes[0]]
    (stall,) = [code for code in outputs if "[stall]" in code]
    assert outputs[stall].endswith("\tin_progress\t99%\t\nexit 7: it stalled\n")
    assert (work / "waving.mp4").stat().st_size > 0
    (shards,) = [out for code, out in outputs.items() if "--shard" in code]
    assert shards == "[1,2,3]\n"  # three shards, every line once
    assert len(list((work / "videos").glob("*.mp4"))) >= 3
    page = (work / "videos" / "index.html").read_text()  # the prompt as text
    assert "&lt;&lt;&lt;image_1&gt;&gt;&gt; waves hello" in page
    rehearsal = (work / "out" / "index.html").read_text()  # the gallery's, with its failed line
    assert rehearsal.count("<video ") == 2 and "sandbox: the prompt asked to fail" in rehearsal
    rows = (work / "tasks.csv").read_text().splitlines()
    # every task, and the uncertain send of the business ids section under its business id
    assert rows and all(row.startswith(('"video_', '"order-2026.8","uncertain"')) for row in rows)
    assert (own / "sandbox-fox.mp4").exists() and (work / "work-fox.mp4").exists()
    # The foreground sandbox answered (10 to start, 2 tasks spent), not the test's own one.
    balance = json.loads(outputs[sandbox_block()].splitlines()[-1])
    assert (balance["used_balance"], balance["remain_balance"]) == (2.0, 8.0)
    assert (own / "sandbox.url").read_text().strip() != sandbox.base_url
    assert (tmp_path / "user" / ".bash_completions" / "kling.sh").exists()

"""`python -m tests.benchmarks.soak [--seed N] ...`: issue 18's soak, with faults on.

A measurement, not part of the test suite (tests/test_soak.py is the small one that is). It
starts the sandbox in this process (real clock, short tasks, `--faults 0.3` with every default
fault kind) and runs the installed `kling` as subprocesses, each with its own KLING_HOME:

1. generates: N `kling generate PROMPT --json` (distinct prompts, no wait: the send is what is
   tested), a few at a time. Each must end with exit 0 and a task id that the journal records
   and the sandbox made for that prompt (recovered by a lookup by business id where the POST's
   answer was lost after the task was made), or with exit 5 naming a business id under which
   the sandbox made no task (and no task for its prompt), recorded in the journal as
   `uncertain`. Anything else is listed as a bug.
2. batch: a file of M lines, `kling batch FILE -o DIR` run again until it exits 0 (at most
   --max-runs times). Then every line's video must be in DIR once (the sandbox's clip, named for
   the task the sandbox made for that line's prompt), the sandbox must have made exactly M tasks,
   one per prompt.

Both: zero duplicate tasks (a prompt or a business id that made more than one task, counted
from what the sandbox made). The figures go to stdout; the exit code is 1 if any property
failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kling_cli.sandbox.server import Sandbox

GENERATES = 100
LINES = 200
FAULTS = 0.3
MAX_RUNS = 30
PARALLEL = 8  # generates at once; and batch's -p
QUEUE, RUN = 0.2, 0.5  # seconds a sandbox task is queued, then runs
INTERVAL = "0.3"  # batch's polls
RUN_TIMEOUT = 600.0  # one kling process, at most
SUBMIT = "/v1/videos/generations"
BUSINESS_ID = re.compile(r"\bkling-[A-Za-z0-9._:-]+[A-Za-z0-9]")


@dataclass
class Checks:
    """The properties, each held or not, with what broke it."""

    failures: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.held.append(what)
        else:
            self.failures.append(f"{what}: {detail}" if detail else what)
        print(f"  [{'PASS' if ok else 'FAIL'}] {what}{'' if ok else ': ' + detail}", flush=True)
        return ok


@contextmanager
def sandbox(faults: float, seed: int | None) -> Iterator[Sandbox]:
    from kling_cli.sandbox.server import Sandbox, SandboxConfig

    config = SandboxConfig(
        queue_seconds=QUEUE,
        run_seconds=RUN,
        faults=faults,
        seed=seed,
        unlimited=True,
        log_size=1_000_000,  # every request: the sends are matched to the runs by their body
    )
    with Sandbox(config=config) as sb:
        yield sb


def kling_env(base: dict[str, str], home: Path, sb: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("KLING_")}
    env.update(KLING_HOME=str(home), KLING_BASE_URL=sb.base_url, KLING_API_KEY="sk-soak-18")
    return env


def submits(sb: Sandbox) -> list[Any]:
    """The generation POSTs the sandbox received (records of its log), oldest first."""
    return [r for r in sb.log if r.method == "POST" and r.path.split("?")[0] == SUBMIT]


def lookups(sb: Sandbox) -> int:
    """GETs of a task by a business id (kling's look for a send whose answer was lost)."""
    prefix = SUBMIT + "/kling-"
    return sum(1 for r in sb.log if r.method == "GET" and r.path.startswith(prefix))


def sent_again(sb: Sandbox) -> int:
    """Business ids sent again after a lookup by that id found no task (a 404): what a batch
    re-run does with a line whose send made none, and what a generate never does."""
    not_found: set[str] = set()
    again: set[str] = set()
    prefix = SUBMIT + "/"
    for r in sb.log:
        if r.method == "GET" and r.path.startswith(prefix) and r.status == 404:
            not_found.add(r.path[len(prefix) :].split("?")[0])
        elif r.method == "POST" and r.path.split("?")[0] == SUBMIT and isinstance(r.json, dict):
            business_id = r.json.get("client_business_id")
            if business_id in not_found:
                again.add(business_id)
    return len(again)


def duplicates(sb: Sandbox) -> tuple[int, int]:
    """Tasks beyond the first per prompt, and per business id."""
    per_prompt = Counter(t.prompt for t in sb.tasks())
    per_id = sb.business_id_counts()
    return (
        sum(n - 1 for n in per_prompt.values() if n > 1),
        sum(n - 1 for n in per_id.values() if n > 1),
    )


def fault_line(sb: Sandbox) -> str:
    posts = submits(sb)
    on_posts = Counter(r.fault for r in posts if r.fault)
    injected = sb.faults_injected
    return (
        f"faults injected {sum(injected.values())} {dict(sorted(injected.items()))}; "
        f"on generation POSTs {sum(on_posts.values())} {dict(sorted(on_posts.items()))}"
    )


# --- 1. generates ------------------------------------------------------------------------------


@dataclass
class Generate:
    n: int
    prompt: str
    code: int
    stdout: str
    stderr: str
    wall: float


def run_generates(kling: Path, env: dict[str, str], count: int, parallel: int) -> list[Generate]:
    def one(n: int) -> Generate:
        prompt = f"soak generate {n:03d}: a lighthouse at dusk, waves against the rocks"
        argv = [str(kling), "--no-progress", "generate", prompt, "--json"]
        started = time.monotonic()
        proc = subprocess.run(
            argv,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=RUN_TIMEOUT,
        )
        wall = time.monotonic() - started
        return Generate(n, prompt, proc.returncode, proc.stdout, proc.stderr, wall)

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(one, range(count)))


def journal_rows(kling: Path, env: dict[str, str]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(kling), "list", "--json"], env=env, capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def named_business_id(stderr: str) -> str | None:
    """The business id the error names (the message itself, not only a field of it)."""
    for line in stderr.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            found = BUSINESS_ID.search(line)
            if found:
                return found[0]
            continue
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict):
            found = BUSINESS_ID.search(str(error.get("message", "")))
            if found:
                return found[0]
    return None


def generates_phase(
    kling: Path, base_env: dict[str, str], work: Path, args: argparse.Namespace, checks: Checks
) -> None:
    print(f"\n== 1. {args.generates} generates at faults {args.faults} (seed {args.seed})")
    home = work / "generate-home"
    with sandbox(args.faults, args.seed) as sb:
        env = kling_env(base_env, home, sb)
        started = time.monotonic()
        runs = run_generates(kling, env, args.generates, args.parallel)
        elapsed = time.monotonic() - started
        rows = journal_rows(kling, env)
        by_id = {row["id"]: row for row in rows}
        tasks_by_prompt: dict[str, list[Any]] = {}
        for task in sb.tasks():
            tasks_by_prompt.setdefault(task.prompt, []).append(task)
        posts_by_prompt: dict[Any, list[Any]] = {}
        for record in submits(sb):
            if isinstance(record.json, dict):
                posts_by_prompt.setdefault(record.json.get("prompt"), []).append(record)
        id_counts = sb.business_id_counts()

        ok: list[int] = []
        recovered: list[int] = []
        no_task: list[int] = []
        other: list[str] = []
        lost_answers = 0  # the POST processed, its answer lost (the task made)
        for g in runs:
            made = tasks_by_prompt.get(g.prompt, [])
            posts = posts_by_prompt.get(g.prompt, [])
            # Answered with nothing (status None): a `drop_after` fault. `drop_before` ones
            # are not here: their body was never read, so they name no prompt (and made no task).
            answer_lost = any(r.status is None for r in posts)
            lost_answers += answer_lost
            why = _generate_problem(g, made, by_id, id_counts)
            if why is not None:
                other.append(f"#{g.n} exit {g.code}: {why}")
            elif g.code == 0:
                (recovered if answer_lost else ok).append(g.n)
            else:
                no_task.append(g.n)
        dup_prompts, dup_ids = duplicates(sb)
        codes = Counter(g.code for g in runs)
        posts = submits(sb)
        walls = sorted(g.wall for g in runs)
        print(
            f"  {len(runs)} generates in {elapsed:.1f} s ({args.parallel} at a time; each "
            f"{walls[0]:.1f}-{walls[-1]:.1f} s, median {walls[len(walls) // 2]:.1f} s); "
            f"exit codes {dict(sorted(codes.items()))}"
        )
        print(
            f"  sends (generation POSTs received) {len(posts)}; answers lost after the task "
            f"was made {lost_answers}; lookups by business id {lookups(sb)}"
        )
        print(f"  {fault_line(sb)}")
        print(
            f"  tasks made {sb.tasks_created}; ok {len(ok)}, recovered by lookup "
            f"{len(recovered)}, exit 5 without a task {len(no_task)}, other {len(other)}"
        )
        print(f"  duplicates: {dup_prompts} (by prompt), {dup_ids} (by business id)")
        checks.check(not other, "every generate: a recorded task, or exit 5 naming an id with none",
                     "; ".join(other[:10]))  # fmt: skip
        checks.check(
            len(recovered) == lost_answers,
            "every answer lost after its task was made was recovered by lookup",
            f"{lost_answers} lost, {len(recovered)} recovered",
        )
        checks.check(
            dup_prompts == 0 and dup_ids == 0,
            "generates: zero duplicate tasks",
            f"{dup_prompts} by prompt, {dup_ids} by business id",
        )
        again = sent_again(sb)
        checks.check(again == 0, "generates: no send repeated by itself", f"{again} repeated")
        checks.check(
            sb.tasks_created == len(ok) + len(recovered),
            "generates: every task the sandbox made is one a generate printed",
            f"{sb.tasks_created} made, {len(ok) + len(recovered)} printed",
        )
    args.figures.append(
        f"generates: ok {len(ok)} / recovered {len(recovered)} / exit-5-no-task {len(no_task)} "
        f"/ other {len(other)}; sends {len(posts)}, tasks made {sb.tasks_created}, duplicates "
        f"{dup_prompts + dup_ids}; {elapsed:.0f} s"
    )


def _generate_problem(
    g: Generate, made: list[Any], journal: dict[str, dict[str, Any]], id_counts: Counter[str]
) -> str | None:
    """What is wrong with how one generate ended, or None."""
    if "Traceback" in g.stderr:
        return "a traceback: " + g.stderr.strip().splitlines()[-1]
    if g.code == 0:
        try:
            doc = json.loads(g.stdout)
        except ValueError:
            return f"stdout is not one JSON document: {g.stdout[:200]!r}"
        task_id = doc.get("id")
        if [t.id for t in made] != [task_id]:
            return f"printed {task_id}, the sandbox made {[t.id for t in made]} for its prompt"
        row = journal.get(task_id)
        if row is None:
            return f"the journal does not record {task_id}"
        business_id = row.get("business_id")  # the one kling sent, as it recorded it
        if made[0].business_id != business_id or id_counts[business_id] != 1:
            return f"business id {business_id}: the sandbox has {made[0].business_id}"
        return None
    if g.code == 5:
        business_id = named_business_id(g.stderr)
        if business_id is None:
            return "names no business id: " + g.stderr.strip()[-300:]
        if id_counts[business_id] or made:
            return f"names {business_id}, but the sandbox made {[t.id for t in made]}"
        row = journal.get(business_id)
        if row is None or row.get("state") != "uncertain":
            return f"the journal has no uncertain send {business_id}: {row}"
        return None
    return (g.stderr.strip().splitlines() or ["(no stderr)"])[-1][:300]


# --- 2. batch ----------------------------------------------------------------------------------


def batch_prompt(n: int) -> str:
    return f"soak batch line {n:03d}: a red fox running through snow"


def _why_not(doc: dict[str, Any]) -> str | None:
    """Why a batch line's document did not complete: kling's error, or the task's failure."""
    error = doc.get("error")
    if isinstance(error, dict):
        return str(error.get("message", error))
    if doc.get("status") not in ("completed", "succeeded", "success"):
        return str(error or doc.get("status"))
    return None


def batch_phase(
    kling: Path, base_env: dict[str, str], work: Path, args: argparse.Namespace, checks: Checks
) -> None:
    print(f"\n== 2. a batch of {args.lines} lines at faults {args.faults}, run until done")
    home, out = work / "batch-home", work / "batch-out"
    source = work / "soak.jsonl"
    with source.open("w") as fh:
        for n in range(1, args.lines + 1):
            fh.write(json.dumps({"prompt": batch_prompt(n)}) + "\n")
    seed = None if args.seed is None else args.seed + 1
    with sandbox(args.faults, seed) as sb:
        env = kling_env(base_env, home, sb)
        argv = [str(kling), "--no-progress", "batch", str(source), "-o", str(out), "--json",
                "-p", str(args.parallel), "--interval", INTERVAL]  # fmt: skip
        started = time.monotonic()
        codes: list[int] = []
        for number in range(1, args.max_runs + 1):
            begun = time.monotonic()
            proc = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
            )
            codes.append(proc.returncode)
            docs = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
            ended = Counter(_why_not(d) is None for d in docs)
            why = Counter(_gist(w) for d in docs if (w := _why_not(d)) is not None)
            print(
                f"  run {number}: exit {proc.returncode} in {time.monotonic() - begun:.1f} s; "
                f"{ended[True]} lines done, {ended[False]} not: {dict(why.most_common())}",
                flush=True,
            )
            if "Traceback" in proc.stderr:
                checks.check(False, f"batch run {number} without a traceback", proc.stderr[-500:])
            if proc.returncode == 0:
                break
        elapsed = time.monotonic() - started
        clip = sb.clip_bytes("16:9")
        tasks = sb.tasks()
        by_prompt: dict[str, list[Any]] = {}
        for task in tasks:
            by_prompt.setdefault(task.prompt, []).append(task)
        files = sorted(p.name for p in out.iterdir()) if out.exists() else []
        per_line: dict[int, list[str]] = {}
        strays: list[str] = []
        for name in files:
            match = re.fullmatch(r"(\d{4})-(video_[0-9A-Z]+)\.mp4", name)
            if match is None:
                strays.append(name)
            else:
                per_line.setdefault(int(match[1]), []).append(match[2])
        wrong: list[str] = []
        for n in range(1, args.lines + 1):
            made = [t.id for t in by_prompt.get(batch_prompt(n), [])]
            saved = per_line.get(n, [])
            if len(saved) != 1 or made != saved:
                wrong.append(f"line {n}: saved {saved}, the sandbox made {made}")
            elif (out / f"{n:04d}-{saved[0]}.mp4").read_bytes() != clip:
                wrong.append(f"line {n}: the file is not the clip")
        posts = submits(sb)
        resent = sent_again(sb)
        lost = sum(1 for r in posts if r.status is None and isinstance(r.json, dict))
        dup_prompts, dup_ids = duplicates(sb)
        print(
            f"  {len(codes)} run(s) in {elapsed:.1f} s, exit codes {codes}; sends {len(posts)}; "
            f"answers lost after the task was made {lost}; lookups by business id {lookups(sb)}; "
            f"lines sent again (same business id) after a lookup found no task {resent}"
        )
        print(f"  {fault_line(sb)}")
        print(f"  tasks made {sb.tasks_created} for {len(by_prompt)} prompts; videos {len(files)}")
        print(f"  duplicates: {dup_prompts} (by prompt), {dup_ids} (by business id)")
        checks.check(codes[-1] == 0, f"the batch ends with exit 0 within {args.max_runs} runs",
                     f"exit codes {codes}")  # fmt: skip
        checks.check(not wrong and not strays, "every line's video saved once, from its task",
                     "; ".join((wrong + [f"stray file {s}" for s in strays])[:10]))  # fmt: skip
        checks.check(
            sb.tasks_created == args.lines and len(by_prompt) == args.lines,
            f"the sandbox made exactly {args.lines} tasks, one per line",
            f"{sb.tasks_created} tasks for {len(by_prompt)} prompts",
        )
        checks.check(
            dup_prompts == 0 and dup_ids == 0,
            "batch: zero duplicate tasks",
            f"{dup_prompts} by prompt, {dup_ids} by business id",
        )
    args.figures.append(
        f"batch: {len(codes)} run(s) {codes}, tasks made {sb.tasks_created}, duplicates "
        f"{dup_prompts + dup_ids}, sends {len(posts)} (answers lost {lost}, sent again after "
        f"a lookup found no task {resent}); {elapsed:.0f} s"
    )


def _gist(message: str) -> str:
    """An error message with its URLs, ids and numbers left out, to count them by kind."""
    message = re.sub(r"https?://\S+", "URL", message)
    message = re.sub(r"\b(video_[0-9A-Z]+|kling-[A-Za-z0-9._:-]+)", "ID", message)
    return re.sub(r"\d+", "N", message)[:120]


# --- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--generates", type=int, default=GENERATES, metavar="N")
    parser.add_argument("--lines", type=int, default=LINES, metavar="M")
    parser.add_argument("--faults", type=float, default=FAULTS, metavar="RATE")
    parser.add_argument("--seed", type=int, help="the sandbox's fault RNG (batch: SEED+1)")
    parser.add_argument("--max-runs", type=int, default=MAX_RUNS, metavar="N")
    parser.add_argument("--parallel", type=int, default=PARALLEL, metavar="N")
    parser.add_argument("--only", choices=("generate", "batch"), help="one phase only")
    parser.add_argument("--kling", type=Path, help="the kling script [default: beside python]")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    args.figures = []
    kling = args.kling or Path(sys.executable).parent / "kling"
    if not kling.exists():
        found = shutil.which("kling")
        if found is None:
            parser.error("no kling script found: pip install -e . first, or pass --kling")
        kling = Path(found)
    version = subprocess.run([str(kling), "--version"], capture_output=True, text=True)
    print(f"kling soak: {version.stdout.strip()}, {kling}")
    checks = Checks()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="kling-soak-"))
    try:
        base_env = dict(os.environ)
        if args.only in (None, "generate"):
            generates_phase(kling, base_env, work, args, checks)
        if args.only in (None, "batch"):
            batch_phase(kling, base_env, work, args, checks)
    finally:
        if args.keep:
            print(f"\nwork folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n== figures (seed {args.seed}, faults {args.faults}, "
          f"{time.monotonic() - started:.0f} s in all)")  # fmt: skip
    for line in args.figures:
        print(f"  {line}")
    print(f"  properties held {len(checks.held)}, failed {len(checks.failures)}")
    for failure in checks.failures:
        print(f"  FAILED: {failure}")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    sys.exit(main())

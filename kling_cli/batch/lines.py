"""A batch file's lines: opened once, checked whole before anything is sent, then read again a
line at a time as the run takes them, so memory holds the lines in flight and a compact index,
whatever the file's length.

A line's number counts every line of the file from 1 (empty ones too); `--shard K/N` takes
the lines L with (L - 1) % N == K - 1.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .. import download, present
from ..api import request
from ..engine.jobs import Job
from ..env import Env
from ..errors import UsageError
from ..output import counted

FIELDS = (*request.LINE_KEYS, "output")
MAX_PROBLEMS = 20  # bad lines listed; the rest are counted


@dataclass(eq=False, kw_only=True)
class Line(Job):
    """One input line, checked, and where it stands. Its `order` is its line number."""

    key: str  # the line's journal key: the file's identity, the line's number and its text
    request: request.Request
    output: str | None = None  # the file name the line asked for

    @property
    def number(self) -> int:
        return self.order

    def document(self) -> dict[str, Any]:
        """What --json prints for the line: its task document, kling's error where there is
        one (present.document)."""
        doc = present.document(
            self.view, self.files, error=self.error, business_id=self.sent_as, line=self.number
        )
        if self.task_id:
            doc.setdefault("id", self.task_id)
        return doc


@dataclass(frozen=True)
class Shard:
    """`--shard K/N`: this run takes the lines L with (L - 1) % N == K - 1, so N runs (CI
    jobs) share one file and no line is done twice. 1/1 is the whole file."""

    k: int = 1
    n: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if match is None:
            raise UsageError(f"--shard must be K/N, e.g. 2/3 (shard 2 of 3), not {text!r}")
        k, n = int(match[1]), int(match[2])
        if n < 1 or not 1 <= k <= n:
            raise UsageError(f"--shard {text}: K/N needs 1 <= K <= N (e.g. 1/{max(n, 2)})")
        return cls(k, n)

    @property
    def whole(self) -> bool:
        return self.n == 1

    def takes(self, number: int) -> bool:
        return (number - 1) % self.n == self.k - 1

    def overlaps(self, other: Shard) -> bool:
        """Whether the two take a line in common: with the same N only the same K does; with
        different Ns (or the whole file) there is always one."""
        return self.n != other.n or self.k == other.k

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


WHOLE = Shard()  # the whole file: no --shard


@dataclass
class Index:
    """What the check learned, compactly: the numbers of the shard's lines, in order (4 bytes
    a line), and of those with local images to upload."""

    numbers: array[int] = field(default_factory=lambda: array("l"))
    with_images: array[int] = field(default_factory=lambda: array("l"))
    lines_in_file: int = 0


class Source:
    """The batch file, open for reading (stdin is copied to a temporary file first, so it can
    be read twice). `identity`: which file it is, for the journal: its absolute path; for
    stdin, its content's hash."""

    def __init__(self, env: Env, file: str):
        self.fh: IO[bytes]
        if file == "-":
            stdin = env.ui.piped_stdin("the batch file `-`")
            self.fh = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            digest = hashlib.sha256()
            while chunk := stdin.read(1 << 16):
                digest.update(chunk)
                self.fh.write(chunk)
            self.path: Path | None = None
            self.identity = "stdin:" + digest.hexdigest()
            self.base_dir = Path.cwd()
            return
        path = Path(file).expanduser()
        try:
            self.fh = path.open("rb")
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        self.path = path
        self.identity = str(path.resolve())
        self.base_dir = path.parent

    def close(self) -> None:
        self.fh.close()

    def raw_lines(self) -> Iterator[tuple[int, str]]:
        """(number, text) of every line that is not blank, from the start of the file."""
        self.fh.seek(0)
        for number, data in enumerate(self.fh, start=1):
            try:
                text = data.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise UsageError(f"line {number} is not UTF-8 text ({exc.reason})") from None
            if text.strip():
                yield number, text

    def check(
        self, env: Env, shard: Shard, named: Callable[[Line], str | None] = lambda line: None
    ) -> Index:
        """Every line checked before anything is sent: all problems at once, with line
        numbers. Each shard checks the whole file, so a bad line stops all N runs before any
        pays. `named(line)`: a problem with a line's `output` file, if any (one that exists)."""
        index = Index()
        problems: list[str] = []
        count = 0
        outputs: dict[str, int] = {}  # the one thing kept a line: named outputs must differ
        existing: list[str] = []
        for number, raw in self._checked_lines():
            index.lines_in_file += 1
            try:
                line = parse_line(number, raw, self.identity, self.base_dir, env)
                if line.output is not None and line.output in outputs:
                    raise UsageError(
                        f"output {line.output!r} is also line {outputs[line.output]}'s"
                    )
            except UsageError as exc:
                count += 1
                if len(problems) < MAX_PROBLEMS:
                    problems.append(f"line {number}: {exc.message}")
                continue
            if line.output is not None:
                outputs[line.output] = number
            if shard.takes(number):
                index.numbers.append(number)
                if line.request.local_files():
                    index.with_images.append(number)
                problem = named(line) if line.output is not None and not count else None
                if problem is not None:
                    existing.append(f"line {number}: {problem}")
        if count:
            shown = problems[:MAX_PROBLEMS]
            if count > len(shown):
                shown.append(f"... and {count - len(shown)} more")
            raise UsageError(
                f"{counted(count, 'bad line')}; nothing was sent:\n  " + "\n  ".join(shown)
            )
        if not index.lines_in_file:
            raise UsageError("the batch file has no lines")
        if existing:
            raise UsageError("; ".join(existing[:5]), hint="pass --force to overwrite")
        return index

    def _checked_lines(self) -> Iterator[tuple[int, str]]:
        try:
            yield from self.raw_lines()
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def lines(self, env: Env, shard: Shard, index: Index) -> Iterator[Line]:
        """The shard's lines again, parsed, one at a time: as the check saw them, or an error
        if the file changed since."""
        expected = iter(index.numbers)
        for number, raw in self._checked_lines():
            if not shard.takes(number):
                continue
            try:
                if next(expected, None) != number:
                    raise UsageError("")
                yield parse_line(number, raw, self.identity, self.base_dir, env)
            except UsageError:
                raise UsageError(
                    f"the batch file changed while it ran (line {number})",
                    hint="run the same command again: lines already sent are not sent twice",
                ) from None


def parse_line(number: int, raw: str, source: str, base_dir: Path, env: Env) -> Line:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError("must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise UsageError(
            f"unknown field {', '.join(map(repr, unknown))} (known: {', '.join(FIELDS)})"
        )
    wanted = request.from_line(data, base_dir, env.setting)
    output = data.get("output")
    if output is not None and (
        not isinstance(output, str) or download.safe_filename(output, "") != output
    ):
        raise UsageError("`output` must be a plain file name (letters, digits, . _ -)")
    key = hashlib.sha256(f"{source}\0{number}\0{raw}".encode()).hexdigest()
    return Line(number, key=key, body=wanted.body(), request=wanted, output=output)

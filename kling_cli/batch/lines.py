"""A batch file's lines: opened once, checked whole before anything is sent, then read again a
line at a time as the run takes them, so memory holds the lines in flight and a compact index,
whatever the file's length.

A line's number counts every line of the file from 1 (empty ones too); `--shard K/N` takes
the lines L with (L - 1) % N == K - 1.

A line is known to the journal by what it asks, not by its number or its file: its request
(the body as it would be sent, local images by their content's hash instead of an upload URL;
its `output` name; the service it goes to) and its occurrence among the file's lines that ask
the same (two "a fox" lines are two videos). Lines inserted, removed or reordered, another
path, a copy or stdin: a line already sent is known wherever it stands.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import os
import re
import tempfile
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from .. import download, present, uploads
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

    key: str  # the line's journal key: REQUEST_HASH:OCCURRENCE (see `request_hash`)
    request: request.Request
    output: str | None = None  # the file name the line asked for
    occurrence: int = 1  # which of the file's lines asking the same it is, from 1
    legacy_key: str | None = None  # the key an earlier kling gave it: path, number and text

    @property
    def number(self) -> int:
        return self.order

    def document(self) -> dict[str, Any]:
        """What --json prints for the line: its task document, kling's error where there is
        one (present.document)."""
        doc = present.document(self.view, self.files, error=self.error, line=self.number)
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
    """What the check learned, compactly: the numbers of the shard's lines, in order, with
    each one's occurrence and the start of its request's hash (to see that the file did not
    change when it is read again), and the numbers of those with local images to upload."""

    numbers: array[int] = field(default_factory=lambda: array("l"))
    occurrences: array[int] = field(default_factory=lambda: array("l"))
    requests: array[int] = field(default_factory=lambda: array("q"))
    with_images: array[int] = field(default_factory=lambda: array("l"))
    lines_in_file: int = 0

    def add(self, line: Line) -> None:
        self.numbers.append(line.number)
        self.occurrences.append(line.occurrence)
        self.requests.append(_short(line.key))
        if line.request.local_files():
            self.with_images.append(line.number)


def _short(key: str) -> int:
    """The first 8 bytes of a key's request hash, as a signed 64-bit number."""
    return int.from_bytes(bytes.fromhex(key[:16]), "big", signed=True)


class Source:
    """The batch file, open for reading (stdin is copied to a temporary file first, so it can
    be read twice). `identity`: which file it is, for people reading the journal: its absolute
    path; for stdin, its content's hash. `lock_names`: what two runs at once must not share
    (see lock.py): the file's device and inode, its path and its content; stdin's content."""

    def __init__(self, env: Env, file: str):
        self.fh: IO[bytes]
        digest = hashlib.sha256()
        if file == "-":
            stdin = env.ui.piped_stdin("the batch file `-`")
            self.fh = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            while chunk := stdin.read(1 << 16):
                digest.update(chunk)
                self.fh.write(chunk)
            self.path: Path | None = None
            self.identity = "stdin:" + digest.hexdigest()
            self.base_dir = Path.cwd()
            self.lock_names = [f"content:{digest.hexdigest()}"]
        else:
            path = Path(file).expanduser()
            try:
                self.fh = path.open("rb")
            except OSError as exc:
                raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
            try:
                while chunk := self.fh.read(1 << 16):
                    digest.update(chunk)
                stat = os.fstat(self.fh.fileno())
            except OSError as exc:
                self.fh.close()
                raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
            self.path = path
            self.identity = str(path.resolve())
            self.base_dir = path.parent
            self.lock_names = [
                f"file:{stat.st_dev}:{stat.st_ino}",
                f"path:{self.identity}",
                f"content:{digest.hexdigest()}",
            ]
        self.service = service_of(env)  # where the requests go: part of what a line asks
        # a local image's content hash, by path: a few thousand images hashed once each
        self._image_digest = lru_cache(maxsize=4096)(uploads.file_sha256)

    def close(self) -> None:
        self.fh.close()

    def check(
        self, env: Env, shard: Shard, named: Callable[[Line], str | None] = lambda line: None
    ) -> Index:
        """Every line checked before anything is sent: all problems at once, with line
        numbers. Each shard checks the whole file, so a bad line stops all N runs before any
        pays. `named(line)`: a problem with a line's `output` file, if any (one that exists)."""
        index = Index()
        problems: list[str] = []
        count = 0
        outputs: dict[str, int] = {}  # two things kept a line: named outputs must differ,
        seen: dict[bytes, int] = {}  # and the lines asking the same are counted (16 bytes each)

        def occurrence(digest: str) -> int:
            short = bytes.fromhex(digest[:32])
            seen[short] = seen.get(short, 0) + 1
            return seen[short]

        existing: list[str] = []
        for number, raw in self._checked_lines():
            index.lines_in_file += 1
            try:
                line = self._parse(env, number, raw, occurrence)
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
                index.add(line)
                problem = named(line) if line.output is not None and not count else None
                if problem is not None:
                    existing.append(f"line {number}: {problem}")
        if count:
            if count > len(problems):  # the ones past MAX_PROBLEMS are counted
                problems.append(f"... and {count - len(problems)} more")
            raise UsageError(f"{counted(count, 'bad line')}; nothing was sent", details=problems)
        if existing:
            raise UsageError("; ".join(existing[:5]), hint="pass --force to overwrite")
        return index

    def _checked_lines(self) -> Iterator[tuple[int, str]]:
        """(number, text) of every line that is not blank, from the start of the file (a
        UTF-8 byte order mark before the first line is not part of it)."""
        try:
            self.fh.seek(0)
            for number, data in enumerate(self.fh, start=1):
                if number == 1 and data.startswith(codecs.BOM_UTF8):
                    data = data[len(codecs.BOM_UTF8) :]
                try:
                    text = data.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    raise UsageError(f"line {number} is not UTF-8 text ({exc.reason})") from None
                if text.strip():
                    yield number, text
        except OSError as exc:
            raise UsageError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def lines(self, env: Env, shard: Shard, index: Index) -> Iterator[Line]:
        """The shard's lines again, parsed, one at a time: as the check saw them, or an error
        if the file changed since (a line added, broken or gone, the end cut off included)."""
        expected = zip(index.numbers, index.occurrences, index.requests, strict=True)
        for number, raw in self._checked_lines():
            if not shard.takes(number):
                continue
            try:
                wanted, occurrence, short = next(expected, (None, 0, 0))
                if wanted != number:
                    raise UsageError("")
                line = self._parse(env, number, raw, _always(occurrence))
                if _short(line.key) != short:
                    raise UsageError("")
                yield line
            except UsageError:
                raise _changed(number) from None
        for number, _occurrence, _short_key in expected:  # lines the file no longer has
            raise _changed(number)

    def _parse(self, env: Env, number: int, raw: str, occurrence: Callable[[str], int]) -> Line:
        """The line, checked, with its key: `occurrence(request hash)` says which of the
        file's lines with that request it is."""
        wanted, output = parse_line(raw, self.base_dir, env)
        body = wanted.body()
        try:
            images = {path: "sha256:" + self._image_digest(path) for path in wanted.local_files()}
        except OSError as exc:
            raise UsageError(f"cannot read {exc.filename}: {exc.strerror or exc}") from None
        digest = request_hash(self.service, wanted.body(images) if images else body, output)
        nth = occurrence(digest)
        return Line(
            number,
            key=f"{digest}:{nth}",
            occurrence=nth,
            legacy_key=hashlib.sha256(f"{self.identity}\0{number}\0{raw}".encode()).hexdigest(),
            body=body,
            request=wanted,
            output=output,
        )


def _changed(number: int) -> UsageError:
    return UsageError(
        f"the batch file changed while it ran (line {number})",
        hint="run the same command again: lines already sent are not sent twice",
    )


def _always(occurrence: int) -> Callable[[str], int]:
    return lambda digest: occurrence


def service_of(env: Env) -> str:
    """The service the requests go to, as part of what a line asks: the same body sent to the
    sandbox and to the API are two requests. (A --sandbox run keeps a journal of its own.)"""
    return "sandbox" if env.use_sandbox else str(env.setting("base_url")).rstrip("/")


def request_hash(service: str, body: Mapping[str, Any], output: str | None) -> str:
    """What identifies a line's request: the body as it would be sent (local images by their
    content), the name its video is saved as, and the service."""
    text = json.dumps(
        {"service": service, "body": body, "output": output},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_line(raw: str, base_dir: Path, env: Env) -> tuple[request.Request, str | None]:
    """A line's text -> its request and `output` name, or a UsageError saying what is wrong."""
    if raw.startswith("\ufeff"):
        raise UsageError("starts with a byte order mark (U+FEFF), as if two files were joined")
    try:
        data = json.loads(raw, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError("must be a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise UsageError(
            f"unknown field {', '.join(map(repr, unknown))} (known: {', '.join(FIELDS)})"
        )
    _whole_numbers(data)
    wanted = request.from_line(data, base_dir, env.setting, env.set_in("duration"))
    output = data.get("output")
    if output is not None and (
        not isinstance(output, str) or download.safe_filename(output, "") != output
    ):
        raise UsageError("`output` must be a plain file name (letters, digits, . _ -)")
    return wanted, output


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys all differ: a key given twice would silently take the last
    value."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise UsageError(f"the key {key!r} is given twice")
        data[key] = value
    return data


def _whole_numbers(data: dict[str, Any]) -> None:
    """`duration` is a whole number of seconds: 5.0 is 5; 5.5, or 1e309 (which JSON readers
    take as infinity), is refused by its name rather than as "not a number"."""
    value = data.get("duration")
    if not isinstance(value, float):
        return
    if not math.isfinite(value):
        raise UsageError(
            "`duration` must be a whole number of seconds; this one is too large to read (infinity)"
        )
    if not value.is_integer():
        raise UsageError(f"`duration` must be a whole number of seconds, not {value!r}")
    data["duration"] = int(value)

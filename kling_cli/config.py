"""The per-user config file: where it lives, its keys, atomic writes, and precedence.

Precedence for every key: command-line flag > environment (KLING_<KEY>) > config file > default.
"""

from __future__ import annotations

import errno
import math
import re
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import paths
from .errors import ConfigError, LocalFileError
from .text import check_utf8

if TYPE_CHECKING:
    from tomlkit import TOMLDocument

DEFAULT_BASE_URL = "https://toapis.com"
DEFAULT_MODEL = "kling-v3-omni"
MODES = ("std", "pro")
# The seconds each model takes (API.md 1c); a model kling does not know: any whole number.
MODEL_DURATIONS: dict[str, tuple[int, ...]] = {
    "kling-v3-omni": tuple(range(3, 16)),
    "kling-v3": tuple(range(3, 16)),
    "kling-video-o1": tuple(range(3, 11)),
    "kling-v2-6": (5, 10),
    "kling-3.0-turbo": tuple(range(3, 16)),
}
DURATIONS = MODEL_DURATIONS[DEFAULT_MODEL]  # what TAB offers
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
VIDEO_REFERS = ("base", "feature")  # video_list refer_type (API.md 1b)
CONFIG_FILE = "config.toml"
MIN_POLL_INTERVAL = 0.05  # seconds: less polls the service in a tight loop


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    return paths.config_dir(environ) / CONFIG_FILE


def _nonempty(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    return value


def _duration(value: str) -> int:
    """A whole number of seconds above 0 (the model's own range is checked with the request)."""
    text = str(value).strip()
    if not text.isdigit() or int(text) < 1:
        raise ValueError("must be a whole number of seconds, e.g. 5 (3 to 15 for kling-v3-omni)")
    return int(text)


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not math.isfinite(seconds):  # nan passes every comparison; inf would mean "never"
        raise ValueError(f"must be a finite number of seconds, not {value}")
    if not seconds > 0:
        raise ValueError("must be a positive number of seconds")
    return seconds


def _timeout_seconds(value: str) -> float:
    """--timeout's value: 0 means "look once" (each task polled once, as it stands)."""
    if str(value).strip() in ("0", "0.0"):
        return 0.0
    return _positive_seconds(value)


def _poll_seconds(value: str) -> float:
    seconds = _positive_seconds(value)
    if seconds < MIN_POLL_INTERVAL:
        raise ValueError(f"must be at least {MIN_POLL_INTERVAL} seconds")
    return seconds


def _url(value: str) -> str:
    """An http(s) URL the key may be sent to: plain http:// only to this machine (the
    sandbox), found when it is set, not when a command first uses it."""
    from .api.urls import is_loopback

    value = value.strip()
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise ValueError("must be an http:// or https:// URL")
    host = urlsplit(value).hostname or ""
    if value.startswith("http://") and not is_loopback(host):
        raise ValueError(
            f"plain http:// to {host} would send the API key where anyone on the way could "
            "read it: use https:// (plain http is for loopback hosts only, such as the sandbox)"
        )
    return value


def _api_key(value: str) -> str:
    """A key goes into an HTTP header, which carries printable ASCII: anything else is a paste
    gone wrong (a smart quote, a Cyrillic letter), caught here before anything is sent."""
    value = _nonempty(value)
    for position, char in enumerate(value, 1):
        if not "!" <= char <= "~":
            what = (
                "a space" if char == " "
                else "a line break or tab" if char.isspace()
                else "a character that is not printable ASCII"
            )  # fmt: skip
            raise ValueError(
                f"has {what} at position {position}, which an HTTP header cannot carry: "
                "paste the key again"
            )
    return value


def _bool(value: str) -> bool:
    """TOML's true/false (`gallery = true`); yes/no, on/off, 1/0 for the environment too."""
    word = str(value).strip().lower()
    if word in ("true", "yes", "on", "1"):
        return True
    if word in ("false", "no", "off", "0"):
        return False
    raise ValueError("must be true or false")


def _path(value: str) -> str:
    return str(Path(_nonempty(value)).expanduser())


@dataclass(frozen=True)
class Key:
    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    secret: bool = False
    choices: tuple[object, ...] = ()  # what TAB offers for its value (kling_cli.completion)

    @property
    def env_var(self) -> str:
        return f"KLING_{self.name.upper()}"


def _one_of(name: str, choices: tuple[str, ...], default: str, help: str) -> Key:
    """A key whose value is one of `choices`, whatever its case (`PRO` is `pro`)."""

    def parse(value: str) -> str:
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
        raise ValueError(f"must be one of {', '.join(choices)}")

    return Key(name, parse, default, help, choices=choices)


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("api_key", _api_key, None, "your ToAPIs API key", secret=True),
        Key("base_url", _url, DEFAULT_BASE_URL, "the API's base URL"),
        Key("model", _nonempty, DEFAULT_MODEL, "model name sent with each generation"),
        _one_of("mode", MODES, "std", "std (720p) or pro (1080p)"),
        Key("duration", _duration, 5, "video length in seconds: 3 to 15", choices=DURATIONS),
        _one_of("aspect_ratio", ASPECT_RATIOS, "16:9", "16:9, 9:16 or 1:1"),
        Key("poll_interval", _poll_seconds, None, "fixed seconds between polls"),
        Key("timeout", _timeout_seconds, None, "seconds to wait before giving up (0: look once)"),
        Key(
            "stall_timeout",
            _positive_seconds,
            None,
            "seconds a task's status and progress may stand still before giving up",
        ),
        Key("output_dir", _path, None, "folder for downloaded videos"),
        Key(
            "gallery",
            _bool,
            False,
            "true: batch writes index.html in its folder, as with --gallery",
            choices=("true", "false"),
        ),
    )
}


def key(name: str) -> Key:
    if name not in KEYS:
        raise ConfigError(f"unknown config key {name!r}", hint=f"known keys: {', '.join(KEYS)}")
    return KEYS[name]


def validate(name: str, value: Any, source: str) -> Any:
    text = check_utf8(str(value), f"{name} from {source}")  # an argument or variable's bytes
    try:
        return key(name).parse(text)
    except ValueError as exc:
        raise ConfigError(f"{name} from {source}: {exc}") from None


def mask(value: str) -> str:
    """Show enough of a key to recognise it, never enough to use it."""
    return "****" if len(value) < 12 else f"{value[:3]}...{value[-4:]}"


def read_plain(path: Path) -> dict[str, Any]:
    """The file as plain dicts, for reading settings: the standard library's tomllib where there
    is one (3.11+), which every command pays for at start-up; tomlkit only to edit the file."""
    # A version check, not `except ImportError`: mypy (checking for 3.10) follows it.
    if sys.version_info >= (3, 11):
        text = _text(path)
        if not text:  # no file: no parser to import
            return {}
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return load_document(path).unwrap()


def load_document(path: Path) -> TOMLDocument:
    """The file as a tomlkit document (keeps comments), empty when there is none."""
    import tomlkit

    try:
        return tomlkit.parse(_text(path))
    except tomlkit.exceptions.TOMLKitError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def _text(path: Path) -> str:
    """The file's text, "" when there is none."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset "
            f"{exc.start})",
            hint=f"move it aside and set the keys again: mv {path} {path}.bad",
        ) from None


def check_profile(profile: str | None) -> str | None:
    if profile is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", profile):
        raise ConfigError(f"profile name {profile!r}: use letters, digits, - and _")
    return profile


def load_values(
    path: Path, profile: str | None = None, warn: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Plain values of the known keys in the file. Unknown keys (a typo such as `moed`) are
    kept in the file but ignored, each named to `warn`.

    A profile's table `[profiles.NAME]` overrides the top-level keys, which are the default
    profile: another account or gateway needs only the keys that differ.
    """
    doc = read_plain(path)
    if warn is not None:
        for name in unknown_keys(doc):
            warn(f"unknown key {name!r} in {path} is ignored{_did_you_mean(name)}")
    values = {name: doc[name] for name in KEYS if name in doc}
    if profile is not None:
        table = _profile_table(doc, profile)
        if table is None:
            raise ConfigError(
                f"no profile {profile!r} in {path}",
                hint=f"create it with: kling config set --profile {profile} KEY VALUE",
            )
        values.update({name: table[name] for name in KEYS if name in table})
    return values


def unknown_keys(doc: Mapping[str, Any]) -> list[str]:
    """The file's keys that kling does not know, each [profiles.NAME]'s as `profiles.NAME.KEY`."""
    unknown = [name for name in doc if name not in KEYS and name != "profiles"]
    profiles = doc.get("profiles")
    if isinstance(profiles, dict):
        for profile, table in profiles.items():
            if isinstance(table, dict):
                unknown += [f"profiles.{profile}.{name}" for name in table if name not in KEYS]
    return unknown


def _did_you_mean(dotted: str) -> str:
    import difflib

    close = difflib.get_close_matches(dotted.rsplit(".", 1)[-1], KEYS, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known keys: {', '.join(KEYS)})"


def profile_names(path: Path) -> list[str]:
    profiles = read_plain(path).get("profiles")
    return sorted(profiles) if isinstance(profiles, dict) else []


def _profile_table(doc: Any, profile: str) -> Any:
    profiles = doc.get("profiles")
    table = profiles.get(profile) if isinstance(profiles, dict) else None
    return table if isinstance(table, dict) else None


def save_document(path: Path, doc: Any) -> None:
    """Write atomically: a private temporary file beside the target, then rename. A folder that
    cannot be written, or a write that fails on the way (a full disk), is exit 8."""
    import tomlkit

    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.write_atomically(path, tomlkit.dumps(doc).encode(), mode=0o600, sync=True)
    except OSError as exc:
        refused = isinstance(exc, PermissionError) or exc.errno == errno.EROFS
        raise LocalFileError(
            f"cannot write config file {path}: {exc.strerror or exc}",
            hint="KLING_HOME (or the per-user config folder) must be a folder you can write to"
            if refused
            else None,
        ) from None


def readable_by_others(path: Path) -> bool:
    if not paths.POSIX_MODES:  # Windows reports 0o666 for every file: its ACLs decide
        return False
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False


def set_value(
    path: Path, name: str, raw: str, profile: str | None = None, source: str = "the command line"
) -> Any:
    """`source`: where `raw` came from, for the message when it does not validate."""
    import tomlkit

    value = validate(name, raw, source)
    doc = load_document(path)
    if profile is None:
        doc[name] = value
    else:
        profiles = doc.setdefault("profiles", tomlkit.table(is_super_table=True))
        profiles.setdefault(profile, tomlkit.table())[name] = value
    save_document(path, doc)
    return value


def unset_value(path: Path, name: str, profile: str | None = None) -> bool:
    key(name)
    doc = load_document(path)
    table = doc if profile is None else _profile_table(doc, profile)
    if table is None or name not in table:
        return False
    del table[name]
    save_document(path, doc)
    return True


@dataclass(frozen=True)
class Setting:
    value: Any
    source: str  # "flag", "env", "file" or "default"


def resolve(
    flags: Mapping[str, Any], environ: Mapping[str, str], file_values: Mapping[str, Any]
) -> dict[str, Setting]:
    """Every key's value and where it came from: flag > environment > file > default."""
    resolved: dict[str, Setting] = {}
    for name, k in KEYS.items():
        if flags.get(name) is not None:
            resolved[name] = Setting(validate(name, flags[name], "the command line"), "flag")
        elif environ.get(k.env_var):
            resolved[name] = Setting(validate(name, environ[k.env_var], k.env_var), "env")
        elif name in file_values:
            resolved[name] = Setting(validate(name, file_values[name], "the config file"), "file")
        else:
            resolved[name] = Setting(k.default, "default")
    return resolved

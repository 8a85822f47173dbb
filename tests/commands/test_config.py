"""kling config: set/get/unset/list/path, validation, masking, file modes, precedence."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

KEY = "sk-live-0123456789abcdef"


def test_path_is_under_kling_home(kling, isolated: Path) -> None:
    result = kling("config", "path")
    assert result.exit_code == 0
    assert result.stdout.strip() == str(isolated / "config.toml")


def test_set_then_get(kling) -> None:
    assert kling("config", "set", "mode", "pro").exit_code == 0
    result = kling("config", "get", "mode")
    assert (result.exit_code, result.stdout) == (0, "pro\n")


def test_file_is_private_and_folder_too(kling, isolated: Path) -> None:
    kling("config", "set", "duration", "10")
    path = isolated / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(isolated.stat().st_mode) == 0o700
    assert "duration = 10" in path.read_text()


def test_set_keeps_comments_and_other_lines(kling, isolated: Path) -> None:
    isolated.mkdir(mode=0o700)
    path = isolated / "config.toml"
    path.write_text('# my settings\nmode = "pro"  # 1080p for clients\n')
    path.chmod(0o600)
    kling("config", "set", "aspect_ratio", "9:16")
    text = path.read_text()
    assert "# my settings" in text and "# 1080p for clients" in text
    assert 'aspect_ratio = "9:16"' in text


def test_no_temporary_files_left_behind(kling, isolated: Path) -> None:
    kling("config", "set", "mode", "pro")
    kling("config", "set", "mode", "std")
    assert sorted(p.name for p in isolated.iterdir()) == ["config.toml"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("mode", "ultra"), ("duration", "7.5"), ("aspect_ratio", "4:3"), ("base_url", "ftp://x"),
     ("poll_interval", "0"), ("timeout", "soon"), ("nonsense", "1")],
)  # fmt: skip
def test_set_validates(kling, isolated: Path, key: str, value: str) -> None:
    result = kling("config", "set", key, value)
    assert result.exit_code == 2
    assert key in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert not (isolated / "config.toml").exists()


def test_api_key_from_stdin_and_masked(kling, isolated: Path) -> None:
    result = kling("config", "set", "api_key", input=KEY + "\n")
    assert result.exit_code == 0
    assert KEY not in result.stdout + result.stderr
    assert f'api_key = "{KEY}"' in (isolated / "config.toml").read_text()
    for args in (("config", "get", "api_key"), ("config", "list"), ("config", "list", "--json")):
        shown = kling(*args)
        assert shown.exit_code == 0
        assert KEY not in shown.stdout + shown.stderr
        assert KEY[-4:] in shown.stdout


def test_api_key_on_the_command_line_warns(kling) -> None:
    result = kling("config", "set", "api_key", KEY)
    assert result.exit_code == 0
    assert "shell history" in result.stderr


def test_unset(kling, isolated: Path) -> None:
    kling("config", "set", "mode", "pro")
    assert kling("config", "unset", "mode").exit_code == 0
    assert kling("config", "get", "mode").stdout == "std\n"  # the default again
    assert kling("config", "unset", "mode").exit_code == 0  # already gone: still fine


def test_precedence_flag_env_file_default(kling) -> None:
    assert kling("config", "get", "base_url").stdout == "https://toapis.com\n"
    kling("config", "set", "base_url", "https://file.example")
    assert kling("config", "get", "base_url").stdout == "https://file.example\n"
    env = {"KLING_BASE_URL": "https://env.example"}
    assert kling("config", "get", "base_url", env=env).stdout == "https://env.example\n"
    flagged = kling("--base-url", "https://flag.example", "config", "get", "base_url", env=env)
    assert flagged.stdout == "https://flag.example\n"


def test_list_shows_sources(kling) -> None:
    kling("config", "set", "mode", "pro")
    result = kling("config", "list", env={"KLING_DURATION": "10"})
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert lines["mode"].endswith("(file)")
    assert lines["duration"].endswith("(env)")
    assert lines["aspect_ratio"].endswith("(default)")


def test_broken_file_is_a_clear_error_but_config_still_works(kling, isolated: Path) -> None:
    isolated.mkdir(mode=0o700)
    (isolated / "config.toml").write_text("mode = \n")
    result = kling("config", "list")
    assert result.exit_code == 2 and "not valid TOML" in result.stderr
    assert kling("config", "path").exit_code == 0


def test_bad_value_in_file_names_its_source(kling, isolated: Path) -> None:
    isolated.mkdir(mode=0o700)
    (isolated / "config.toml").write_text('mode = "ultra"\n')
    result = kling("config", "get", "mode")
    assert result.exit_code == 2 and "config file" in result.stderr


def test_world_readable_file_warns_when_it_holds_the_key(kling, isolated: Path) -> None:
    kling("config", "set", "mode", "pro")
    (isolated / "config.toml").chmod(0o644)
    assert kling("config", "get", "mode").stderr == ""  # nothing secret in it
    kling("config", "set", "api_key", input="sk-test-0123456789abcdef\n")
    (isolated / "config.toml").chmod(0o644)
    warned = kling("config", "get", "mode").stderr
    assert "holds the key and can be read by other users" in warned and "chmod 600" in warned


def test_profiles_override_the_top_level_keys(kling, isolated: Path) -> None:
    kling("config", "set", "mode", "pro")
    kling("config", "set", "base_url", "https://toapis.example")
    assert (
        kling("config", "set", "--profile", "work", "base_url", "https://gw.example").exit_code == 0
    )
    text = (isolated / "config.toml").read_text()
    assert "[profiles.work]" in text and 'mode = "pro"' in text
    assert kling("config", "get", "base_url").stdout == "https://toapis.example\n"
    assert kling("--profile", "work", "config", "get", "base_url").stdout == "https://gw.example\n"
    assert kling("config", "get", "--profile", "work", "base_url").stdout == "https://gw.example\n"
    env = {"KLING_PROFILE": "work"}
    assert kling("config", "get", "base_url", env=env).stdout == "https://gw.example\n"
    assert kling("config", "get", "mode", env=env).stdout == "pro\n"  # inherited
    assert kling("config", "unset", "--profile", "work", "base_url").exit_code == 0
    assert kling("config", "get", "base_url", env=env).stdout == "https://toapis.example\n"


def test_unknown_profile_is_exit_2(kling) -> None:
    result = kling("--profile", "nope", "config", "list")
    assert result.exit_code == 2 and "no profile 'nope'" in result.stderr
    assert kling("--profile", "../x", "config", "get", "mode").exit_code == 2


def test_a_profile_name_ending_in_a_newline_is_refused(kling, isolated: Path) -> None:
    result = kling("config", "set", "--profile", "work\n", "mode", "pro")
    assert result.exit_code == 2 and "profile name 'work\\n'" in result.stderr
    assert not (isolated / "config.toml").exists()


def test_profile_key_is_used_for_requests(kling, sandbox, isolated: Path) -> None:
    kling("config", "set", "--profile", "sb", "base_url", sandbox.base_url)
    kling("config", "set", "--profile", "sb", "api_key", input="sk-profile-0123456789\n")
    result = kling("--profile", "sb", "generate", "a fox", "-q")
    assert result.exit_code == 0, result.stderr
    assert sandbox.tasks_created == 1
    assert kling("generate", "a fox").exit_code == 3  # the default profile has no key


# --- setup problems are not internal errors (issue 12, item 5) ------------------------------


def test_a_folder_that_cannot_be_written_is_a_local_file_error(
    kling, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 8 (a local file that cannot be written) with a plain message, not "internal
    error"."""
    import tempfile

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")  # what a read-only KLING_HOME gives

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    result = kling("config", "set", "mode", "pro")
    assert result.exit_code == 8
    assert result.stderr.startswith("kling: error: cannot write config file ")
    assert "Permission denied" in result.stderr and "internal error" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder anyway")
def test_a_read_only_kling_home(kling, isolated: Path) -> None:
    """The real thing, where the tests do not run as root."""
    isolated.mkdir(mode=0o500)
    try:
        result = kling("config", "set", "mode", "pro")
    finally:
        isolated.chmod(0o700)
    assert result.exit_code == 2 and "cannot write config file" in result.stderr
    assert "internal error" not in result.stderr


def test_a_binary_config_file_is_a_config_error(kling, isolated: Path) -> None:
    isolated.mkdir(mode=0o700)
    (isolated / "config.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    for args in (("config", "list"), ("config", "set", "mode", "pro"), ("status", "video_x")):
        result = kling(*args)
        assert result.exit_code == 2, args
        assert "is not UTF-8 text" in result.stderr and "mv " in result.stderr
        assert "internal error" not in result.stderr
    assert kling("config", "path").exit_code == 0


@pytest.mark.parametrize(
    "key", ["sk-ключ-0123456789", "sk-“0123456789”", "sk-0123 456789", "sk-0123\n456789"]
)
def test_a_key_no_http_header_can_carry_is_refused_before_sending(kling, against, key: str) -> None:
    for args, env in (
        (("--api-key", key, "status", "video_x"), {}),
        (("status", "video_x"), {"KLING_API_KEY": key}),
        (("generate", "a fox"), {"KLING_API_KEY": key}),
    ):
        sent = len(against.log)
        result = kling(*args, env=env)
        assert result.exit_code == 2, result.stderr
        assert "api_key from " in result.stderr and "HTTP header" in result.stderr
        assert key not in result.stderr and len(against.log) == sent
    if "\n" not in key:  # typed in, a line break ends the key
        refused = kling("config", "set", "api_key", input=key + "\n")
        assert refused.exit_code == 2 and "HTTP header" in refused.stderr


# --- unknown keys (issue 12, item 18) -------------------------------------------------------


def test_unknown_keys_are_named_with_their_file_once(kling, isolated: Path, against) -> None:
    isolated.mkdir(mode=0o700)
    path = isolated / "config.toml"
    path.write_text('moed = "pro"\n\n[profiles.work]\ntimout = 30\n')
    path.chmod(0o600)
    result = kling("generate", "a fox", "--dry-run")
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if "unknown key" in line]
    assert warnings == [
        f"kling: warning: unknown key 'moed' in {path} is ignored (did you mean 'mode'?)",
        f"kling: warning: unknown key 'profiles.work.timout' in {path} is ignored"
        " (did you mean 'timeout'?)",
    ]
    assert '"mode":"std"' in result.stdout.replace(" ", "")  # the typo did not set the mode
    assert "unknown key" not in kling("config", "set", "mode", "pro").stderr  # set: no lecture


# --- polish (issue 12) ----------------------------------------------------------------------


def test_a_negative_number_is_a_value_and_checked(kling, isolated: Path) -> None:
    result = kling("config", "set", "timeout", "-1")
    assert result.exit_code == 2
    assert (
        result.stderr
        == "kling: error: timeout from the command line: must be a positive number of seconds\n"
    )
    assert kling("config", "set", "poll_interval", "-0.5", "--profile", "w").exit_code == 2
    assert kling("config", "set", "timeout", "2", "--bogus").stderr.startswith(
        "kling: error: no such option: --bogus\n"
    )
    assert not (isolated / "config.toml").exists()


def test_the_shell_history_warning_reads_well(kling) -> None:
    result = kling("config", "set", "api_key", KEY)
    assert "kling: warning: the api_key given on the command line may stay" in result.stderr


def test_a_file_in_the_way_of_kling_home(kling, tmp_path: Path) -> None:
    """KLING_HOME naming a file: every config command says so (exit 2), none crashes."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = {"KLING_HOME": str(blocker)}
    for args in (("config", "set", "mode", "pro"), ("config", "list"), ("config", "get", "mode")):
        result = kling(*args, env=env)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("kling: error: cannot ") and "config file" in result.stderr

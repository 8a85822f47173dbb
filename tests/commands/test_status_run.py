"""The second level of command tests (STYLE.md 11): a run function against Env.test()."""

from __future__ import annotations

from kling_cli.commands.status import StatusOptions, run_status
from kling_cli.env import Env
from kling_cli.output import Format


def test_run_status_writes_exactly_the_status(sandbox, tmp_path) -> None:
    home = tmp_path / "own-home"  # Env.test's environment, not the process's, decides
    environ = {
        "KLING_BASE_URL": sandbox.base_url,
        "KLING_API_KEY": "k" * 20,
        "KLING_HOME": str(home),
    }
    env = Env.test(environ)
    task = env.client.create_task({"model": "kling-v3-omni", "prompt": "a fox"})
    code = run_status(env, StatusOptions([task.id, "video_GONE"], Format.QUIET))
    env.close()
    assert code == 4  # the second id is unknown
    assert env.ui.stdout.getvalue() in ("queued\n", "in_progress\n")
    assert (
        env.ui.stderr.getvalue()
        == "kling: error: video_GONE: the service answered 404: task not found\n"
    )

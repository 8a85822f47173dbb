#!/usr/bin/env bash
# The action's install step: kling from the action's own checkout, into a virtual environment
# of its own (a runner's system Python may refuse `pip install`, PEP 668). Its python goes to
# the step's outputs for the run step; its bin folder to GITHUB_PATH, so later steps of the job
# can call `kling` (kling doctor, kling list ...).
set -euo pipefail
venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/kling-action-venv"
python="$(command -v python3 || command -v python || true)"
if [ -z "$python" ]; then
  echo "::error::kling needs Python 3.10 or newer: add actions/setup-python before this step"
  exit 1
fi
"$python" -m venv "$venv"
bin="$venv/bin"
[ -d "$bin" ] || bin="$venv/Scripts"  # Windows
"$bin/python" -m pip install --quiet --disable-pip-version-check "$GITHUB_ACTION_PATH"
echo "python=$bin/python" >> "$GITHUB_OUTPUT"
echo "$bin" >> "$GITHUB_PATH"
"$bin/python" -m kling_cli --version

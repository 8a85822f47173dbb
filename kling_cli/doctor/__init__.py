"""kling doctor's checks: each looks at one thing a run depends on and says ok, warning or
problem, what it saw, and what to do. They only look: nothing is written (the journal is opened
read-only, the output folder is probed with a temporary file that is removed at once)."""

from .checks import Check, Status, exit_code
from .local import Settings, check_config, check_journal, check_output, key_source
from .service import PROBE_TIMEOUT, check_base_url, check_key, check_proxies

__all__ = [
    "PROBE_TIMEOUT", "Check", "Settings", "Status", "check_base_url", "check_config",
    "check_journal", "check_key", "check_output", "check_proxies", "exit_code", "key_source",
]  # fmt: skip

"""The quota of the API key (API.md section 4), read tolerantly."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

UNLIMITED = "unlimited"


@dataclass(frozen=True)
class Balance:
    remaining: Any  # as the service gave it (a number; -1 with unlimited_quota)
    used: Any
    unlimited: bool
    raw: Mapping[str, Any]

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Balance:
        remaining = raw.get("remain_balance")
        unlimited = raw.get("unlimited_quota") is True
        return cls(remaining, raw.get("used_balance"), unlimited, raw)

    @property
    def remaining_text(self) -> str:
        return UNLIMITED if self.unlimited else _amount(self.remaining)

    @property
    def used_text(self) -> str:
        return _amount(self.used)

    @property
    def exhausted(self) -> bool:
        """True when the service says nothing is left (unknown shapes: not exhausted)."""
        remaining = self.remaining
        if self.unlimited or isinstance(remaining, bool):
            return False
        if isinstance(remaining, str):
            try:
                remaining = float(remaining)
            except ValueError:
                return False
        return isinstance(remaining, (int, float)) and remaining <= 0


def _amount(value: Any) -> str:
    """A number as JSON writes it (10.5, 3); anything else as it came; `-` when missing."""
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return json.dumps(value)
    return str(value)

"""What a sandbox task costs: the sandbox's own plausible prices, in the account's unit (the
real service's prices are its own; API.md section 4 only says the balance goes down)."""

from __future__ import annotations

from .rules import DEFAULT_DURATION, JsonObj

DEFAULT_BALANCE = 100.0
BASE_COST = 1.0  # std, 5 s
PRO_FACTOR = 1.5  # 1080P
VIDEO_FACTOR = 1.5  # a non-empty video_list: billed as "Video"
SOUND_FACTOR = 1.25  # audio true: billed as "Sound"
# A model the sandbox does not know takes any whole number of seconds: beyond a day it is
# billed as a day, so the balance stays a finite number (JSON has no infinity).
MAX_BILLED_SECONDS = 24 * 3600


def task_cost(body: JsonObj) -> float:
    """What a task costs: BASE_COST for std 5 s and in proportion to the seconds (0.2 a second:
    2 for 10 s), times PRO_FACTOR for pro, times VIDEO_FACTOR with a non-empty video_list or
    SOUND_FACTOR with audio true."""
    seconds: int = body.get("duration", DEFAULT_DURATION)  # validated: a whole number above 0
    cost = BASE_COST * min(seconds, MAX_BILLED_SECONDS) / DEFAULT_DURATION
    if body.get("mode") == "pro":
        cost *= PRO_FACTOR
    if body.get("video_list"):
        cost *= VIDEO_FACTOR
    elif body.get("audio") is True:
        cost *= SOUND_FACTOR
    return cost

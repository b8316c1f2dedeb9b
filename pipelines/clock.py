"""China's clock (Asia/Shanghai): the day a night is for and every moment the store keeps.

A timestamp is stored as China's wall-clock time without a zone — events, exports, ledger rows,
runs. The server's own zone was used before: on a server in UTC, or a shell with another TZ than
the served night, a later event was stored before an earlier one, and the decisions that compare
them (a sheet issued before a suspect reopened, the latest export of a worklist, the last night's
settings) went the wrong way. DuckDB's `current_timestamp` is held to the same zone
(store.apply_settings)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CHINA_TZ = "Asia/Shanghai"  # the extracts' dates and times are China's too


def china_now() -> dt.datetime:
    """This moment on China's clock, without a zone (as the store keeps it)."""
    return dt.datetime.now(ZoneInfo(CHINA_TZ)).replace(tzinfo=None)


def china_today() -> dt.date:
    return dt.datetime.now(ZoneInfo(CHINA_TZ)).date()


def is_zone_name(name: str) -> bool:
    """Whether `name` is an IANA time zone (Asia/Shanghai) — not a POSIX string such as CST-8,
    which Prefect's schedules and tzlocal refuse."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True

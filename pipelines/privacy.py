"""Masking of personal data (个人信息) for anything that leaves an agency's own worklist."""

from __future__ import annotations

import re


def mask_id(person_id: str | None) -> str | None:
    """360702199001011234 -> 360702********1234: region kept for the province, birth date hidden."""
    if person_id is None:
        return None
    s = str(person_id)
    if len(s) <= 10:
        return "*" * len(s)
    return s[:6] + "*" * (len(s) - 10) + s[-4:]


def mask_account(account: str | None) -> str | None:
    """6217001234567890123 -> 6217***********0123: bank prefix and last four only."""
    if account is None:
        return None
    s = str(account)
    if len(s) <= 8:
        return "*" * len(s)
    return s[:4] + "*" * (len(s) - 8) + s[-4:]


MASK_ID_SQL = "case when {col} is null then null else substr({col}, 1, 6) || repeat('*', length({col}) - 10) || right({col}, 4) end"


# An 18-character (or legacy 15-digit) ID number anywhere in a message. Deliberately greedy: the
# first 18 digits of a longer run (a bank account) are masked too — a log line loses nothing by it.
_ID_IN_TEXT = re.compile(r"\d{17}[\dXx]|\d{15}")


def mask_ids_in_text(text: object) -> str:
    """Any message that may quote a data value (a refused cell, a DuckDB conversion error): every
    ID number in it masked, so no log line, run summary or reason carries a full one."""
    return _ID_IN_TEXT.sub(lambda m: mask_id(m.group(0)), str(text))

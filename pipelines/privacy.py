"""Masking of personal data (个人信息) for anything that leaves an agency's own worklist."""

from __future__ import annotations


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

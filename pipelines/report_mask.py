"""Masking for what leaves an agency: the province dashboard, the 汇总表, analyst notebooks.

pipelines.privacy masks one known value; this module masks values whose kind is not known in
advance — a suspect's subject (person, account, payment or transaction), free text, evidence JSON —
so that no full 公民身份号码 or bank account reaches a page that is read above the agency.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from .normalise import ACCOUNT_DASHES
from .privacy import holds_id_number, mask_account, mask_id, mask_numbers_in_text

# An 18-character 公民身份号码 (last character may be X) not glued to other digits.
_ID_RE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
# Evidence keys whose value is a person or an account, whatever its shape.
_ID_KEYS = ("person_id", "id_no", "公民身份号码")
# (by the key's ending: `account_type` — 收入户, 支出户 — is no account)
_ACCOUNT_KEYS = ("account", "accounts", "account_no", "账号", "账户")
# (经办人 and 复核人 in a payment's evidence are staff, named in full only on their own agency's sheet)
_NAME_KEYS = ("name", "姓名", "counterparty_name", "对方户名", "handled_by", "reviewed_by", "经办人", "复核人")
# A clerk's own words (核实说明) may name anyone — the person's son, a witness: no mask can find
# them, so outside the store only their first character and length are shown.
_FREE_TEXT_KEYS = ("note", "verification_note", "核实说明", "office_reason")  # the last: fundwatch reopen's
# Python's \s is every Unicode space (\p{Z} of ingest's RE2 pattern among them)
_SEPARATORS = re.compile(rf"[\s{ACCOUNT_DASHES}]")


def scrub_text(text: Any) -> Any:
    """Mask every ID-shaped and account-shaped number inside free text: in the forms clerks and
    banks type them (full-width digits, groups) as messages are masked, and without sparing a
    number shaped like a time stamp (free text read above the agency names no file)."""
    if not isinstance(text, str):
        return text
    return mask_numbers_in_text(text, free_text=True)


# An agency code is shown in full — unless it is an ID number or an account: 15 digits or more (an
# 18-digit 公民身份号码 delivered in the 经办机构编码 column, a column shifted by one), or it holds an ID
# number (by its province, birth date and check digit) with more around it (360702…-01, A360702…), in
# full-width digits or typed in groups. Real codes are shorter (360702001) or codes of their own
# shape — grouped (360102-000001-001) or a 统一社会信用代码 (12360100491012345K) — and stay readable.
_CODE_TOO_LONG = re.compile(r"[0-9０-９]{14,}[0-9０-９XxＸｘ]")


def mask_agency_code(code: str | None) -> str | None:
    if code and (_CODE_TOO_LONG.fullmatch(code.strip()) or holds_id_number(code)):
        return scrub_text(code.strip())
    return code


def mask_name(name: str | None) -> str | None:
    """张三丰 -> 张**: the surname is enough for a province page to tell cases apart. The first
    character a reader sees: invisible format characters (a zero-width space before it) are passed
    over, and a combining mark or a variation selector (a 生僻字's glyph variant) stays with it."""
    if name is None:
        return None
    s = "".join(c for c in str(name) if unicodedata.category(c) != "Cf").strip()
    if not s:
        return s
    first = 1
    while first < len(s) and unicodedata.category(s[first]).startswith("M"):  # marks, variation selectors
        first += 1
    return s[:first] + "*" * max(len(s) - first, 1)


def mask_subject(subject: str | None, person_id: str | None = None) -> str | None:
    """A suspect's subject: a person (masked ID), an account (masked), or a payment/txn number."""
    if subject is None:
        return None
    s = str(subject)
    if person_id is not None and s == str(person_id):
        return mask_id(s)
    # a subject without a person is an account or a transaction: 18 digits there are an account
    # (6222**********9012, as its evidence shows it), not an ID number's 622202********9012
    if _ID_RE.fullmatch(s) and not (person_id is None and s.isdigit()):
        return mask_id(s)
    # ingest stores an account as its digits, but a store written before that holds accounts as
    # delivered, grouped: 6222-0212-3456-7890, 6222 0212 3456 7890
    digits = _SEPARATORS.sub("", s)
    if digits.isdigit() and len(digits) >= 9:
        return mask_account(s)
    return scrub_text(s)


def free_text(text: Any) -> Any:
    """A clerk's free text shown outside the store: 已约谈李红国… -> 已…（共 12 字）."""
    if not isinstance(text, str) or not text.strip():
        return text
    s = text.strip()
    return f"{s[0]}…（共 {len(s)} 字）"


def _is_name_key(k: str) -> bool:
    return any(k == t or k.endswith("_" + t) for t in _NAME_KEYS)


def secrets_in(value: Any, key: str = "") -> dict[str, str]:
    """{as written: masked} for the names and accounts the evidence holds under a name or account
    key (a name of 两个字 or more: one character is no name), to be masked too where a sentence
    repeats them. An account an older store holds as delivered (`6222-0212-3456-7890`), or one kept
    as written because it is not digits alone, is found by no pattern of digits."""
    if isinstance(value, dict):
        return {raw: masked for k, v in value.items() for raw, masked in secrets_in(v, str(k)).items()}
    if isinstance(value, list):
        return {raw: masked for v in value for raw, masked in secrets_in(v, key).items()}
    k = key.lower()
    text = value.strip() if isinstance(value, str) else ""
    if _is_name_key(k) and len(text) >= 2:
        return {text: mask_name(text)}
    # an account of a few digits ("1000") would mask every amount or date that holds them
    if k.endswith(_ACCOUNT_KEYS) and sum(c.isdigit() for c in text) >= 9:
        return {text: mask_account(text)}
    return {}


def mask_evidence(value: Any, also: dict[str, str] | None = None) -> Any:
    """Evidence JSON with every ID, account and name masked, structure kept for the drill-down —
    also a name or account the rule wrote into its summary sentence (…向个人 李建华 转出…), and each
    of `also` ({as written: masked}: the suspect's own, for an event's detail) wherever it appears."""
    secrets = {**secrets_in(value), **(also or {})}
    # the longest first: a name inside a longer one is masked with it
    return _masked(value, "", sorted(secrets.items(), key=lambda item: len(item[0]), reverse=True))


def _masked(value: Any, key: str, secrets: list[tuple[str, str]]) -> Any:
    k = key.lower()
    if isinstance(value, dict):
        return {name: _masked(v, str(name), secrets) for name, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, key, secrets) for v in value]
    if isinstance(value, str):
        if any(t in k for t in _ID_KEYS):
            return mask_id(value) if len(value) > 10 else scrub_text(value)
        if k.endswith(_ACCOUNT_KEYS):
            return mask_account(value)
        if _is_name_key(k):
            return mask_name(value)
        if k in _FREE_TEXT_KEYS:
            return free_text(value)
        for raw, masked in secrets:  # before scrub_text: it would change a long account before it is found
            value = value.replace(raw, masked)
        return scrub_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and len(str(abs(value))) >= 12:
        return mask_account(str(value))
    return value

"""Masking of personal data (个人信息) for anything that leaves an agency's own worklist."""

from __future__ import annotations

import datetime as dt
import re

from .normalise import ACCOUNT_DASHES, check_digit


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


# A run of 12 or more digits anywhere in a message (ASCII or full-width, as clerks' systems export
# them), not glued to other digits: an 18-character or legacy 15-digit ID number is masked as one,
# any other — a 16- or 19-digit card number, an account, the digits Excel kept of a number it
# turned into 3.6010219390129E+17 — as an account (the ID mask would show 11 digits of a card).
_D, _X = "[0-9０-９]", "[0-9０-９XxＸｘ]"
_NUMBER_IN_TEXT = re.compile(f"(?<![0-9０-９]){_D}{{12,}}[XxＸｘ]?(?![0-9０-９])")
# The same numbers as clerks type them into the wrong column: in groups (360702 19720202 0224,
# 360702 1972 0202 0224, 6222 0000 0000 0004 4444) — only the groupings of an ID number or a card
# number, so that dates and periods in a message (2026-11-21) stay as they are.
# Between the groups: a space (also no-break or ideographic) or any dash ingest takes in an account.
_SEP = f"[ \u00a0\u3000{ACCOUNT_DASHES}]"
_GROUPED_IN_TEXT = re.compile(
    f"(?<![0-9０-９])(?:{_D}{{6}}({_SEP}){_D}{{8}}\\1{_D}{{3}}{_X}|{_D}{{6}}({_SEP}){_D}{{6}}\\2{_D}{{3}}"
    f"|{_D}{{4}}({_SEP}){_D}{{4}}(?:\\3{_D}{{4}}){{2,3}}(?:\\3{_D}{{1,3}})?"
    f"|{_D}{{6}}({_SEP}){_D}{{4}}\\4{_D}{{4}}\\4{_D}{{3}}{_X})(?![0-9０-９])")
# A mobile number (手机号, 11 digits from 13 to 19) in a bank's memo or a refused cell: shown as
# 138****5678, as Chinese services show one. Whole, with a space or dash after its first three and
# seventh digits, or full-width; an amount with decimals (15000000000.00) is none.
_MOBILE_IN_TEXT = re.compile(
    f"(?<![0-9０-９.．])[1１][3-9３-９]{_D}(?:({_SEP})?{_D}{{4}}(?(1)\\1){_D}{{4}})(?![0-9０-９]|[.．]{_D})")
_ASCII = str.maketrans("０１２３４５６７８９Ｘｘ", "0123456789Xx", " \u00a0\u3000" + ACCOUNT_DASHES.replace("\\", ""))


def mask_ids_in_text(text: object) -> str:
    """Any message that may quote a data value (a refused cell, a DuckDB conversion error): every
    ID number in it masked — also in full-width digits or typed in groups — so no log line, run
    summary or reason carries a full one, and every other run of 12 or more digits masked as an
    account (a bank card number, the digits of one Excel turned into scientific notation); the
    name in a file named after a person too (a number so masked is in it), and the value a DuckDB
    conversion error quotes but its first character. The rest of the message is left as it was
    written."""
    # a card number (the alternative in groups of four) masked as an account, as everywhere else
    text = _CONVERTED_VALUE.sub(lambda m: m.group(1) + _first_character_only(m.group(3) if m.group(4) else m.group(5))
                                + (m.group(4) or ""), str(text))
    # strptime's error says the value again on a line of its own, a caret line under it
    text = _ECHOED_VALUE.sub(lambda m: _first_character_only(m.group(1)) + m.group(2), text)
    text = _REGEX_PATTERN.sub(lambda m: m.group(1) + _first_character_only(m.group(2)), text)
    text = _FILE_NAME_IN_TEXT.sub(_file_name_masked, text)
    return mask_numbers_in_text(text)


def mask_numbers_in_text(text: str, free_text: bool = False) -> str:
    """Every ID number in `text` masked as an ID — also in full-width digits or typed in groups —
    and every other run of 12 or more digits (or card number in groups) as an account; a mobile
    number as 138****5678. A message
    keeps an export's time stamp (20261202093015: it names its file by it) and masks 15 digits as
    the legacy ID they mostly are there; free text read above the agency (a bank's memo,
    free_text=True) keeps no number it need not, and shows 15 digits — as likely a company's account
    as a legacy ID — as an account, by their first and last four."""
    text = _GROUPED_IN_TEXT.sub(lambda m: (mask_account if m.group(3) else mask_id)(m.group(0).translate(_ASCII)),
                                text)
    text = _NUMBER_IN_TEXT.sub(lambda m: _number_masked(m.group(0).translate(_ASCII), free_text), text)
    return _MOBILE_IN_TEXT.sub(lambda m: _mobile_masked(m.group(0).translate(_ASCII), free_text), text)


def holds_id_number(text: str) -> bool:
    """Whether `text` holds an 18-character ID number whose check digit is right and whose birth date
    is a day, written plainly, in full-width digits or in groups (360102 19510103 8028). A code is
    written in groups of its own (360102-000001-001, 360102-261121-001): only one shaped so is a person's."""
    for m in (*_NUMBER_IN_TEXT.finditer(text), *_GROUPED_IN_TEXT.finditer(text)):
        digits = "".join(c for c in m.group(0).translate(_ASCII) if c.isalnum()).upper()
        if len(digits) == 17 and text[m.end():m.end() + 1].translate(_ASCII).upper() == "X":
            digits += "X"  # in groups of four, the card pattern's last group leaves the check character out
        if digits[:2] in _PROVINCES and _check_digit_ok(digits) and _a_day(digits[6:14]):
            return True
    return False


def _check_digit_ok(digits: str) -> bool:
    """An 18-character ID number's last character is its check digit (GB 11643)."""
    return len(digits) == 18 and digits[:17].isdigit() and check_digit(digits[:17]) == digits[17]


def _holds_a_persons_number(name: str, digits: int) -> bool:
    """Whether a name holds a number that may be a person's: a run of `digits` digits or more that is
    no time stamp (an ID number, also one Excel or a clerk mistyped; a bank card), a mobile number
    (also +86 and one whose digits read as a date, 19901011234), or in groups an ID number or a card
    number by its check digit (codes and stamps are grouped too: 360102-000001-001, 2026 1121 1430 0001)."""
    def a_persons(grouped: str) -> bool:
        d = grouped.translate(_ASCII).upper()
        return _check_digit_ok(d) if len(d) == 18 else 16 <= len(d) <= 19 and d.isdigit() and _luhn(d)

    return any(len(n) >= digits and not _stamped(n)
               for n in (m.group(0).translate(_ASCII) for m in _NUMBER_IN_TEXT.finditer(name))) \
        or _MOBILE_IN_TEXT.search(name) is not None or _MOBILE_86.search(name) is not None \
        or any(a_persons(m.group(0)) for m in _GROUPED_IN_TEXT.finditer(name))


_MOBILE_86 = re.compile(r"(?<![0-9０-９])\+?86 ?1[3-9][0-9]{9}(?![0-9０-９])")


def _luhn(digits: str) -> bool:
    """A bank card number's check digit (ISO/IEC 7812)."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


# The provinces' codes an ID number opens with (GB/T 2260): no time stamp opens so (19…, 20…)
_PROVINCES = {"11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41", "42",
              "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71", "81", "82"}


def _a_day(yyyymmdd: str) -> bool:
    try:
        return dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])).year >= 1900
    except ValueError:
        return False


def _mobile_masked(digits: str, free_text: bool) -> str:
    # an export's time stamp of the 1990s (19951202093) keeps its digits in a message, as above
    if not free_text and _stamped(digits):
        return digits
    return digits[:3] + "****" + digits[-4:]


# The value a DuckDB conversion quotes (a rule's SQL casting a name, a memo): anything a row held
# — a name glued to an ID number, a counterparty's name — so only its first character is said.
# (DuckDB's wordings: "Could not convert/parse/decode string '…'", "… conversion of string "…"",
# "Type VARCHAR with value '…'", "time field value out of range: "…"", "invalid date field format:
# "…"", JSON's "Input: "…""; a message cut at its first line may have lost the closing quote)
# A value may hold its own quote marks (张' 三丰): it runs to the line's last such mark that ends a
# quotation (a space, a stop, the line's end after it; not can't) — past one, in strptime's wording,
# the format specifier is masked with it (the rule's author has it in the SQL).
_CONVERTED_VALUE = re.compile(
    r"""((?:Could not (?:convert|parse|decode) string|conversion of string|Type VARCHAR with value|"""
    r"""field value out of range:|field format:|Input:|Failed to cast value to numerical:|extract specifier|"""
    r"""Unknown TimeZone|but got VARCHAR:) (['"]))(?:([^\n]*)(\2)(?=[\s,.!:;)]|$)|([^\n]*)$)""", re.MULTILINE)
_ECHOED_VALUE = re.compile(r"^([^\n]+)(\n[ \t]*\^[ \t]*)$", re.MULTILINE)
# A regular expression a rule built from a value (name || '('): RE2's error quotes it, or a piece of
# it, unquoted — RE2's own wordings only (a loose pattern masked fundwatch's `missing key(s): params`)
_REGEX_PATTERN = re.compile(
    r"((?:missing \)|unexpected \)|missing \]|bad repetition operator|invalid escape sequence|invalid named capture group"
    r"|invalid repetition size|invalid character class range|invalid character class|invalid perl operator"
    r"|missing argument to repetition operator|invalid nested repetition operator|invalid UTF-8): )([^\n]+)$", re.MULTILINE)


def _first_character_only(value: str) -> str:
    return value[:1] + "*" * max(len(value) - 1, 0)


def _number_masked(digits: str, free_text: bool = False) -> str:
    if len(digits) == 18 and digits[:17].isdigit() or len(digits) == 15 and digits.isdigit() and not free_text:
        return mask_id(digits)
    if not free_text and _stamped(digits):
        return digits
    return mask_account(digits)


def _stamped(digits: str) -> bool:
    """A time stamp an export names its file with (20261202093015, 202612021030): up to 17 digits
    opening with a date of 1990–2100. No ID number opens so (no region code starts 19 or 20), nor a
    bank card (its issuer's prefix)."""
    if len(digits) > 17 or not digits[:8].isdigit():
        return False
    try:
        return 1990 <= int(digits[:4]) <= 2100 and bool(dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8])))
    except ValueError:
        return False


# A delivered file's name in a message, with its delivery folder where said (2026-12-24/x.csv); one
# named after a person (张三丰_<ID number>.csv, or in such a folder) shows the name's first character
# only, as the dashboard shows a name.
# At most 255 characters each, as a file system's name, and starting where a name can (after a
# separator): unbounded, a 9,000-character refused cell was scanned to its end from each of its
# characters (100 such rows took 25 s to mask; bounded but not anchored 2.4 s; both 0.02 s).
# A name written before the number with a space (张三丰 360702….csv) is taken with it.
_NAME_CHAR = r"[^\s/\\'\":：,，;；]"
_FILE_NAME_IN_TEXT = re.compile(rf"(?<!{_NAME_CHAR})(?:[\u3400-\u9fff]{{2,8}}[ \u3000])?"
                                rf"(?:{_NAME_CHAR}{{1,255}}[/\\])?{_NAME_CHAR}{{1,255}}"
                                r"\.(?:csv|xlsx|xlsm|xls|et|ods|parquet|txt|tsv|json|zip|7z|rar)\b", re.IGNORECASE)
_HAN_RUN = re.compile(r"[\u3400-\u9fff\U00020000-\U0003ffff]{2,}")


def _file_name_masked(m: re.Match) -> str:
    # its folder judged as a folder (mask_folder_name: 批次123456789012 is no person's), the file as a file
    folder, sep, name = m.group(0).rpartition("/" if "/" in m.group(0) else "\\")
    return (_named_after_a_person_masked(folder, 15) if sep else "") + sep + _named_after_a_person_masked(name)


def _named_after_a_person_masked(name: str, digits: int = 12) -> str:
    return _chinese_masked(name) if _holds_a_persons_number(name, digits) else name


def _chinese_masked(name: str) -> str:
    return _HAN_RUN.sub(lambda h: _first_character_only(h.group(0)), name)


def mask_path(path: str) -> str:
    """A path in a message (an inbox entry that is a link or a FIFO): each folder of it as a folder."""
    return mask_ids_in_text("/".join(mask_folder_name(part) for part in str(path).split("/")))


def mask_folder_name(name: str) -> str:
    """A delivery folder's name as shown anywhere — console, logs, Data Docs, the dashboard: one named
    after a person (2026-12-21_张三丰_<ID number>, a supplementary delivery about one case: it holds a
    number of 15 digits or more, a mobile number, or one in groups) as a file so named is shown (the
    name's first character, the numbers masked); any other (2026-11-21, 2026-11-21_批次123456789012,
    a stamp 202612020930150) as it is."""
    # (its numbers as free text's: a mobile whose digits read as a date, 19901011234, is no stamp here)
    return mask_numbers_in_text(_chinese_masked(name), free_text=True) if _holds_a_persons_number(name, 15) else name

"""A small, readable inbox for the nightly tests: two monthly deliveries with planted cases.

Night 1 (2026-10-21): one agency, three pensioners; 王死 died 2026-08-15 yet is paid for
202609 and 202610 (PAID_AFTER_DEATH); one payment row carries a wrong check digit (rejected).
Night 2 (2026-11-21): November's payments only; 王死 is paid again for 202611, so the same
suspect grows. 李正常 is paid every month (the look-alike that must stay clean).
"""

from __future__ import annotations

import csv
from pathlib import Path

from pipelines.normalise import check_digit


def person(first17: str) -> str:
    return first17 + check_digit(first17)


DEAD = person("36070219500101001")
ALIVE = person("36070219520202002")
OTHER = person("36070219540303003")
BAD_ID = DEAD[:-1] + ("0" if DEAD[-1] != "0" else "1")  # wrong check digit
AGENCY = "360702"


def _write(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


PAY_HEADER = ["payment_id", "person_id", "name", "insurance_type", "item", "period", "paid_on", "amount",
              "bank_account", "agency_code", "handled_by", "reviewed_by", "reviewed_at"]


def _pay(pid: str, person_id: str, name: str, period: str, amount: str, account: str, item: str = "基本养老金"):
    paid_on = f"{period[:4]}-{period[4:]}-10"
    return [pid, person_id, name, "110", item, period, paid_on, amount, account, AGENCY, "张经办", "赵复核", paid_on]


def delivery_1(inbox: Path, item: str = "基本养老金", skip_other_in: str | None = None) -> Path:
    d = inbox / "2026-10-21"
    _write(d / "agencies_360700_202610.csv", ["agency_code", "agency_name", "region_code", "parent_code"],
           [[AGENCY, "章贡区社保局", "360702", "360700"]])
    _write(d / "beneficiaries_360700_202610.csv",
           ["person_id", "name", "insurance_type", "agency_code", "status", "status_date", "start_period",
            "bank_account", "last_certified_on"],
           [[DEAD, "王死", "110", AGENCY, "正常", "", "201001", "6217000000000001", "2026-06-01"],
            [ALIVE, "李正常", "110", AGENCY, "正常", "", "201201", "6217000000000002", "2026-06-01"],
            [OTHER, "陈其他", "110", AGENCY, "正常", "", "201401", "6217000000000003", "2026-06-01"]])
    rows = []
    for period in ("202608", "202609", "202610"):
        rows.append(_pay(f"P{period}-1", DEAD, "王死", period, "3000.00", "6217000000000001"))
        rows.append(_pay(f"P{period}-2", ALIVE, "李正常", period, "2800.00", "6217000000000002", item))
        if period != skip_other_in:  # a hole in 陈其他's monthly stream, for the quality checks
            rows.append(_pay(f"P{period}-3", OTHER, "陈其他", period, "2600.00", "6217000000000003"))
    rows.append(_pay("P202610-9", BAD_ID, "坏号码", "202610", "100.00", "6217000000000009"))
    _write(d / "payments_360700_202610.csv", PAY_HEADER, rows)
    _write(d / "deaths_360700_202610.csv", ["person_id", "name", "death_date", "source", "cremated_on"],
           [[DEAD, "王死", "2026-08-15", "民政", "2026-08-18"]])
    return d


def delivery_2(inbox: Path) -> Path:
    d = inbox / "2026-11-21"
    _write(d / "payments_360700_202611.csv", PAY_HEADER,
           [_pay("P202611-1", DEAD, "王死", "202611", "3000.00", "6217000000000001"),
            _pay("P202611-2", ALIVE, "李正常", "202611", "2800.00", "6217000000000002"),
            _pay("P202611-3", OTHER, "陈其他", "202611", "2600.00", "6217000000000003")])
    return d

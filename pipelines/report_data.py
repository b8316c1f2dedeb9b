"""The numbers behind the dashboard and the 汇总表: plain queries over the store, masked for display.

Every function takes a connection and returns plain Python rows (dicts). Money stays Decimal here;
only the chart layer turns it into floats. Nothing here returns a full ID number or bank account.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from .casework import loss_answered_sql, overdue_sql
from .config import rule_folders
from .privacy import mask_folder_name
from .quality import described, extract_words
from .report_mask import mask_agency_code, mask_name, mask_subject, scrub_text
from .rules import rule_texts
from .store import scalar, table_exists

STATUSES = ("待下发", "已下发", "核查中", "已重开", "已移送", "已销号")
UNKNOWN_AGENCY = "（未知机构）"
# Long lists (逾期, 要情) are cut here on the page; the count says how many there are in all.
LIST_LIMIT = 200
# 要情 are verified losses the office must report upward by a date, and once verified they are on no
# worklist (closed or transferred): the dashboard is the one list of them, so it is shown whole — 200
# of 882 were shown with "see the agencies' worklists", where none of them was (a scale probe).
# A bound remains only against a runaway own rule.
MAJOR_LIST_LIMIT = 5000
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
# Aging buckets (days open = as-of − first detected), upper bounds inclusive.
AGING_BUCKETS = ((30, "30天以内"), (60, "31–60天"), (90, "61–90天"), (180, "91–180天"), (365, "181–365天"), (None, "365天以上"))


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def resolve_as_of(con: duckdb.DuckDBPyConnection, as_of: date | str | None) -> date:
    """The report's as-of: given, else the night whose data the suspects show (data_night), else
    today in Asia/Shanghai.

    A report re-drawn the morning after (`fundwatch report`) must age suspects to the night that
    produced them, not to the day someone happened to open it.
    """
    if isinstance(as_of, str):
        return date.fromisoformat(as_of)
    if isinstance(as_of, datetime):
        return as_of.date()
    if isinstance(as_of, date):
        return as_of
    return data_night(con) or datetime.now(ZoneInfo("Asia/Shanghai")).date()


def data_night(con: duckdb.DuckDBPyConnection) -> date | None:
    """The night whose detection the suspects show: that of the last merged detection (detect_state,
    committed with the merge), else the last completed night's. Not the last night started: one
    killed before its merge changed nothing, and one that failed after it (in its report, say)
    left its suspects, worklists and flags."""
    if table_exists(con, "detect_state"):
        merged = scalar(con, "select as_of from detect_state where id = 1")
        if merged is not None:
            return merged
    if table_exists(con, "runs"):
        return scalar(con, "select max(as_of) from runs where status = 'completed'")
    return None


def night_completed(con: duckdb.DuckDBPyConnection, night: date) -> bool:
    """Whether a night for that as-of ran to the end (its casework set the stored flags)."""
    return table_exists(con, "runs") and bool(
        scalar(con, "select count(*) from runs where as_of = ? and status = 'completed'", [night]))


def rule_titles(con: duckdb.DuckDBPyConnection, config: Any = None) -> dict[str, str]:
    """rule_id -> Chinese title (rules.rule_texts): the shipped rules, the config's rule folders,
    then the store's record of the rules earlier nights ran."""
    return {rule_id: text.title for rule_id, text in rule_texts(rule_folders(config), con).items()}


def recovery_rate(recovered: Decimal | None, amount: Decimal | None) -> Decimal | None:
    """追回率 = 追回金额 / 涉及金额; undefined (None) when nothing is at risk. Not rounded here:
    rounded once, by rate_shown."""
    amount = Decimal(amount or 0)
    if amount <= 0:
        return None
    return Decimal(recovered or 0) / amount


def rate_shown(rate: Decimal | None) -> Decimal | None:
    """A 追回率 as the dashboard and the 汇总表 show it: to 0.1 % (three places), half up, rounded
    once — a rate first cut to four places and then shown to 0.1 % was rounded twice (33.451 %
    shown as 33.4 %). The 汇总表's cell holds this value, so that what Excel shows is what it holds."""
    return None if rate is None else Decimal(rate).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


# A suspect's 追回金额 as the report counts it: up to its 涉及金额. A recovery is recorded up to the
# amount when it is applied (returns), but a later night may lower the amount (a reversal, a
# corrected payment) below what was recovered by then; the figures weigh what was recovered of the
# loss, and the rest (such as interest) is in the verification record, as the 说明 says. Nothing of
# it where the loss has moved since wholly to months the answer was not for
# (casework.loss_answered_sql: for casework it is not recovered either).
RECOVERED_COUNTED = (f"case when {loss_answered_sql('s', partly=True)}"
                     " then least(coalesce(s.recovered_amount, 0), greatest(coalesce(s.amount, 0), 0)) else 0 end")


_AGENCIES = """(select agency_code, any_value(agency_name) as agency_name, any_value(region_code) as region_code
               from agencies group by agency_code)"""

_COUNTS = f"""
    count(s.suspect_id) as suspects,
    count(*) filter (where s.issued_on is not null or s.status <> '待下发') as issued,
    -- (not a suspect 已重开: its answer was sent back, or new evidence came; counted again once answered)
    count(*) filter (where (s.verified_on is not null or s.outcome is not null) and s.status <> '已重开') as verified,
    count(*) filter (where s.status = '核查中') as in_progress,
    count(*) filter (where s.status = '已销号') as closed,
    count(*) filter (where s.status = '已重开') as reopened,
    count(*) filter (where coalesce(s.overdue, false)) as overdue,
    count(*) filter (where coalesce(s.escalated, false)) as escalated,
    count(*) filter (where s.status = '已移送') as transferred,
    count(*) filter (where s.major_class is not null) as major,
    count(*) filter (where s.major_class like '重大要情%') as major_serious,
    coalesce(sum(s.amount), 0)::decimal(18,2) as amount,
    -- what is still being worked on: every status but 已销号 (已移送 cases are not closed)
    coalesce(sum(s.amount) filter (where s.status <> '已销号'), 0)::decimal(18,2) as open_amount,
    coalesce(sum({RECOVERED_COUNTED}), 0)::decimal(18,2) as recovered
"""

COUNT_FIELDS = ("suspects", "issued", "verified", "in_progress", "closed", "reopened", "overdue", "escalated",
                "transferred", "major", "major_serious")
MONEY_FIELDS = ("amount", "open_amount", "recovered")


def _finish(items: list[dict], titles: dict[str, str]) -> list[dict]:
    for r in items:
        if "rule_id" in r:
            r["rule_title"] = titles.get(r["rule_id"], r["rule_id"])
        if "agency_code" in r:
            r["agency_code"] = mask_agency_code(r["agency_code"]) or ""
            r["agency_name"] = scrub_text(r.get("agency_name") or r["agency_code"] or UNKNOWN_AGENCY)
        r["rate"] = recovery_rate(r["recovered"], r["amount"])
    return items


def summary_rows(con, titles: dict[str, str]) -> list[dict]:
    """One row per agency × rule with the 汇总表 counts and money (no person-level data)."""
    return _finish(rows(con, f"""
        select coalesce(s.agency_code, '') as agency_code, a.agency_name, a.region_code, s.rule_id, {_COUNTS}
        from suspects s left join {_AGENCIES} a using (agency_code)
        group by all order by agency_code, rule_id"""), titles)


def by_rule(con, titles: dict[str, str]) -> list[dict]:
    return _finish(rows(con, f"select s.rule_id, {_COUNTS} from suspects s group by all order by amount desc, rule_id"), titles)


def by_agency(con, titles: dict[str, str]) -> list[dict]:
    """Every agency of the register, with or without suspects (a 汇总表 lists every unit it covers:
    an agency left out read as one not covered), and the agencies of suspects the register lacks."""
    return _finish(rows(con, f"""
        with listed as (select agency_code from suspects union select agency_code from {_AGENCIES})
        select coalesce(l.agency_code, '') as agency_code, a.agency_name, a.region_code, {_COUNTS}
        from listed l left join suspects s on s.agency_code is not distinct from l.agency_code
        left join {_AGENCIES} a on a.agency_code = l.agency_code
        group by all order by amount desc, suspects desc, agency_code"""), titles)


def total_of(items: list[dict]) -> dict:
    out: dict = {f: sum(r[f] for r in items) for f in COUNT_FIELDS}
    out.update({f: sum((r[f] for r in items), Decimal(0)) for f in MONEY_FIELDS})
    out["rate"] = recovery_rate(out["recovered"], out["amount"])
    return out


def by_status(con) -> list[dict]:
    found = {r["status"]: r for r in rows(con, """
        select status, count(*) as suspects, coalesce(sum(amount), 0)::decimal(18,2) as amount
        from suspects group by status""")}
    ordered = [found.pop(s, {"status": s, "suspects": 0, "amount": Decimal(0)}) for s in STATUSES]
    return ordered + sorted(found.values(), key=lambda r: str(r["status"]))


def headline(con, night: date) -> dict:
    """The page's headline counts; new_today: the suspects first found by `night`, the night whose
    data the page shows (also when 逾期 and 挂牌督办 are counted to another date)."""
    h = rows(con, f"""
        select {_COUNTS},
          -- open = every status but 已销号, as the console, the trend and the 汇总表 count it
          -- (a 已移送 case is not closed)
          count(*) filter (where s.status <> '已销号') as open,
          count(*) filter (where s.first_detected_on = $night) as new_today
        from suspects s""", {"night": night})[0]
    h["rate"] = recovery_rate(h["recovered"], h["amount"])
    return h


def aging(con, as_of: date) -> list[dict]:
    """Open suspects by days since first detection, per status (stacked on the page)."""
    cases, lower = [], -10**9
    for upper, label in AGING_BUCKETS:
        cond = f"d > {lower}" + (f" and d <= {upper}" if upper is not None else "")
        cases.append(f"when {cond} then '{label}'")
        lower = upper if upper is not None else lower
    order = "case bucket " + " ".join(f"when '{label}' then {i}" for i, (_, label) in enumerate(AGING_BUCKETS)) + " end"
    return rows(con, f"""
        with open_ as (
            select status, amount, date_diff('day', first_detected_on, $as_of::date) as d
            from suspects where status <> '已销号' and first_detected_on is not null)
        select * from (
            select case {' '.join(cases)} end as bucket, status, count(*) as suspects,
                   coalesce(sum(amount), 0)::decimal(18,2) as amount
            from open_ group by all)
        order by {order}, status""", {"as_of": as_of})  # one order whatever the night's plan


def _display(r: dict, titles: dict[str, str]) -> dict:
    r["rule_title"] = titles.get(r["rule_id"], r["rule_id"])
    r["subject"] = mask_subject(r.pop("subject"), r.pop("person_id"))
    r["name"] = mask_name(r.get("name"))
    r["suspect_id"] = scrub_text(r["suspect_id"])
    r["agency_code"] = mask_agency_code(r.get("agency_code"))
    r["agency_name"] = scrub_text(r.get("agency_name") or r.get("agency_code") or UNKNOWN_AGENCY)
    return r


def flagged_list(con, as_of: date, titles: dict[str, str]) -> tuple[int, list[dict]]:
    """逾期 and 挂牌督办 suspects still open, most overdue first; (count in all, first LIST_LIMIT)."""
    where = "where (coalesce(s.overdue, false) or coalesce(s.escalated, false)) and s.status <> '已销号'"
    n = scalar(con, f"select count(*) from suspects s {where}")
    items = rows(con, f"""
        select s.suspect_id, s.rule_id, s.subject, s.person_id, s.name, s.agency_code, a.agency_name,
               s.amount, {RECOVERED_COUNTED}::decimal(18,2) as recovered, s.status,
               s.issued_on, s.deadline, coalesce(s.overdue, false) as overdue,
               coalesce(s.escalated, false) as escalated, s.first_detected_on,
               -- days past the 核查期限 while 逾期 (with the agency: a transferred one is not)
               case when {overdue_sql("$as_of::date")}
                    then date_diff('day', s.deadline, $as_of::date) end as days_overdue,
               date_diff('day', s.first_detected_on, $as_of::date) as days_open
        from suspects s left join {_AGENCIES} a using (agency_code) {where}
        order by s.escalated desc, days_overdue desc nulls last, s.amount desc, s.suspect_id
        limit {LIST_LIMIT}""", {"as_of": as_of})
    return n, [_display(r, titles) for r in items]


def major_list(con, as_of: date, titles: dict[str, str]) -> tuple[int, list[dict]]:
    """要情 / 重大要情 with their report due dates, the most urgent first."""
    n = scalar(con, "select count(*) from suspects where major_class is not null")
    items = rows(con, f"""
        select s.suspect_id, s.rule_id, s.subject, s.person_id, s.name, s.agency_code, a.agency_name,
               s.amount, {RECOVERED_COUNTED}::decimal(18,2) as recovered, s.status,
               -- the verification the class (and its report date) counts from, not a later one of the same class
               s.major_class, coalesce(s.class_verified_on, s.verified_on) as verified_on, s.report_due,
               -- the loss the class is by (casework: what the answer verified), beside 涉及金额 as now:
               -- a case whose amount fell after its answer showed 95,000.00 beside 重大要情
               coalesce(s.verified_amount, s.amount)::decimal(18,2) as class_amount,
               s.report_due is not null and s.report_due < $as_of::date as report_late
        from suspects s left join {_AGENCIES} a using (agency_code)
        where s.major_class is not null
        order by s.report_due nulls last, s.amount desc, s.suspect_id
        limit {MAJOR_LIST_LIMIT}""", {"as_of": as_of})
    return n, [_display(r, titles) for r in items]


def _flatten(obj, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}." if isinstance(v, dict) else f"{prefix}{k}"))
    elif isinstance(obj, (int, float, Decimal)) and not isinstance(obj, bool):
        out[prefix.rstrip(".")] = float(obj)
    elif isinstance(obj, str) and _NUMBER.fullmatch(obj.strip()):
        out[prefix.rstrip(".")] = float(obj)  # money serialised as text ("12345.00")
    return out


def run_history(con) -> list[dict]:
    """Each night's run with the numeric entries of its summary JSON flattened (a.b.c -> value).

    The summary's keys belong to the nightly flow and may change or be missing; whatever numbers
    are there are charted, and a run without a readable summary still counts as a night.
    """
    if not table_exists(con, "runs"):
        return []
    out = []
    for r in rows(con, """select run_id, command, started_at, as_of, status, summary::varchar as summary
                          from runs order by coalesce(as_of, started_at::date), started_at"""):
        try:
            summary = json.loads(r["summary"]) if r["summary"] else {}
        except (TypeError, ValueError):
            summary = {}
        r["metrics"] = _flatten(summary) if isinstance(summary, dict) else {}
        out.append(r)
    return out


def _failed_check_words(r: dict) -> dict:
    """A failed check as the page shows it: in Chinese, masked, each text at most 300 characters."""
    check, field, said = described(r["extract"] or "", r["expectation"] or "", r["column_name"], r["detail"])
    words = {"extract": extract_words(r["extract"] or ""), "expectation": check, "column_name": field, "detail": said}
    return {k: scrub_text(v)[:300] for k, v in words.items()}


def quality(con) -> dict:
    """Failed data-quality expectations of the last delivery, and its rejected rows by reason."""
    out: dict = {"available": table_exists(con, "quality_results"), "delivery": None, "checks": 0, "failed": []}
    if out["available"]:
        cols = {r["column_name"] for r in rows(con, "select column_name from information_schema.columns where table_name = 'quality_results'")}
        if {"delivery", "success"} <= cols:
            # the latest delivery by when it came in (a folder need not be named by its date):
            # checked, or — when every row of it was refused — only rejected
            stamped = [f"select delivery, {'checked_at' if 'checked_at' in cols else 'null'} as seen_at from quality_results"]
            if table_exists(con, "rejected_rows"):
                stamped.append("select delivery, rejected_at from rejected_rows")
            out["delivery"] = scalar(con, f"""select delivery from ({' union all '.join(stamped)}) where delivery is not null
                                               order by seen_at desc nulls last, delivery desc limit 1""")
            where = "where delivery = $d" if out["delivery"] is not None else "where delivery is null"
            params = {"d": out["delivery"]} if out["delivery"] is not None else {}
            out["checks"] = scalar(con, f"select count(*) from quality_results {where}", params)
            pick = ", ".join(f"{c}::varchar as {c}" if c in cols else f"null as {c}" for c in ("extract", "expectation", "column_name", "detail"))
            failed = rows(con, f"select {pick} from quality_results {where} and not coalesce(try_cast(success as boolean), false) order by all", params)
            out["failed"] = [_failed_check_words(r) for r in failed]
        else:
            out["available"] = False
    delivery = out["delivery"]
    if delivery is None and table_exists(con, "rejected_rows"):
        # the latest read (by its name, an inbox's loose files would sort after every dated folder)
        delivery = scalar(con, "select delivery from rejected_rows where delivery is not null"
                               " order by rejected_at desc nulls last, delivery desc limit 1")
        out["delivery"] = delivery
    out["rejected"] = []
    if delivery is not None and table_exists(con, "rejected_rows"):
        # The kind of reason only: `raw` holds the row as delivered, and a reason quotes the refused
        # cell — which may be a name or an ID number typed into the wrong column. The quoted value
        # is left out, so the page counts rows by what was wrong, not by value.
        out["rejected"] = [
            {**r, "extract": extract_words(r["extract"]), "reason": scrub_text(r["reason"])}
            for r in rows(con, """select extract, regexp_replace(reason, '''[^'']*''', '…', 'g') as reason,
                                         count(*) as n
                                  from rejected_rows where delivery = $d
                                  -- every column sorted: tied counts came in the hash table's order, and
                                  -- the cut at 50 kept other reasons from one run to the next
                                  group by all order by n desc, extract, reason limit 50""", {"d": delivery})
        ]
    if out["delivery"] is not None:
        out["delivery"] = mask_folder_name(out["delivery"])  # a folder named after a person, as shown anywhere
    return out

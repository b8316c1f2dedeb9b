"""Casework (核查): the suspect lifecycle, verification outcomes and the nightly flags.

Lifecycle (CONTRACT §4–5):
    待下发 (new) → 已下发 (issued in a worklist) → 核查中 (partly verified) → 已销号 (closed)
                                                                      ↘ 已移送 (transferred)
    已销号 → 已重开 (new evidence; issued again with a fresh 核查期限, it stays 已重开 until answered) → 核查中/已销号/已移送
    已销号/已移送 → 已重开 by the supervision office (`fundwatch reopen`: an answer to correct)

`refresh()` recomputes, each night and after returns, the flags the supervisor watches:
逾期 (overdue past the 核查期限), 挂牌督办 (escalated: loss not recovered long after detection),
and the 要情 class of a verified loss with the 重大要情 report date.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import re
from decimal import Decimal
from typing import Any, Iterator

import duckdb

from .clock import china_now
from .store import audit, insert_many, scalar, table_exists
from .workdays import calendar_from

NEW, ISSUED, IN_PROGRESS, TRANSFERRED, CLOSED, REOPENED = "待下发", "已下发", "核查中", "已移送", "已销号", "已重开"
STATUSES = (NEW, ISSUED, IN_PROGRESS, TRANSFERRED, CLOSED, REOPENED)  # every status a suspect can have
OPEN_STATUSES = (NEW, ISSUED, IN_PROGRESS, REOPENED)  # still to be verified: they go in worklists
# At each closing: what it was closed on, for telling new evidence later (suspects.py reopens on it)
RECORD_CLOSED_STATE_SQL = ("update suspects set closed_amount = amount, closed_period_from = period_from,"
                           " closed_period_to = period_to where suspect_id = ?")
OPEN_STATUSES_SQL = ", ".join(f"'{x}'" for x in OPEN_STATUSES)  # for `status in (...)`
AWAITING_AGENCY = (ISSUED, IN_PROGRESS, REOPENED)  # in an agency's hands: a deadline can pass
# Not closed: a loss still to be recovered can be escalated (挂牌督办), a transferred case too —
# handed to 稽核 or the police, its money is still out (CONTRACT §5 names no exception).
NOT_CLOSED_SQL = ", ".join(f"'{x}'" for x in (*OPEN_STATUSES, TRANSFERRED))

# 核实结果 — the seven outcomes of CONTRACT §5, exactly as worded there.
OUTCOMES: dict[int, str] = {
    1: "经办操作或后台修改导致数据错误，已更正",
    2: "数据转换导致数据错误，已更正",
    3: "用人单位未依法办理参保登记，已告知",
    4: "不符合待遇领取条件，已暂停发放并追回",
    5: "违规领取金额较大，已转稽核",
    6: "涉嫌欺诈骗保，已移送查处",
    7: "经核实无问题",
}
# The drop-down strings of the worklist and the form stored in suspects.outcome: "4. 不符合…".
OUTCOME_LABELS: dict[int, str] = {k: f"{k}. {v}" for k, v in OUTCOMES.items()}
CLOSE_WITH_NOTE = (1, 2, 3, 7)  # closed once explained
NO_PROBLEM = 7  # 经核实无问题: nothing to recover
RECOVER = 4  # closed once 追回金额 covers 涉及金额
TRANSFER = (5, 6)  # 已移送 to 稽核 or 查处
CONFIRMED_LOSS = (4, 5, 6)  # a verified loss: classed 要情 / 重大要情 / 重大要情（报部）

MINOR, MAJOR, MAJOR_MINISTRY = "要情", "重大要情", "重大要情（报部）"

# "4. …", "4、…", "4)…", and in brackets as typed by hand: "(4)…", "（4）…"
# (also "4-…", "4。" and "4—…": typed so by clerks, refused until 2026-12-07 — an agency-side probe)
_NUMBER_PREFIX = re.compile(r"^\s*(?:[(（]\s*([1-7一二三四五六七])\s*[)）]|([1-7一二三四五六七])\s*(?:[.、．:：)）。\-－—]|\s|$))")
# A clerk numbering the outcome as a document's heading does: "四、不符合…", "（四）".
_CHINESE_DIGITS = {c: i for i, c in enumerate("一二三四五六七", start=1)}


def _norm_text(s: str) -> str:
    # WPS and hand typing turn the full-width comma into "," or add spaces; compare without them.
    return re.sub(r"[\s,，;；。.]", "", s)


_BY_TEXT = {_norm_text(v): k for k, v in OUTCOMES.items()}
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def parse_outcome(value: Any) -> int | None:
    """The outcome number for a returned 核实结果 cell, or None if it is not one of the seven.

    Accepted: the drop-down text "4. 不符合…", the text without its number, or the number alone
    (4, 4.0, "4", "4、", "四、…", "（四）"). A number with the wrong text ("4. 经核实无问题") is not accepted.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        if isinstance(value, (float, Decimal)) and not math.isfinite(value):  # NaN/∞ from a damaged cell
            return None
        return int(value) if value == int(value) and int(value) in OUTCOMES else None
    text = str(value).strip().translate(_FULL_WIDTH_DIGITS)
    if not text:
        return None
    numbered = _numbered(text)
    if numbered:
        number, rest = numbered
        return number if not rest or rest == _norm_text(OUTCOMES[number]) else None
    return _BY_TEXT.get(_norm_text(text))


def _numbered(text: str) -> tuple[int, str] | None:
    """(the outcome number a 核实结果 text starts with, the rest as compared), or None."""
    m = _NUMBER_PREFIX.match(text)
    if not m:
        return None
    digit = m.group(1) or m.group(2)
    return _CHINESE_DIGITS.get(digit) or int(digit), _norm_text(text[m.end():])


def outcome_mismatch(value: Any) -> tuple[int, int] | None:
    """(the number typed, the number of the text beside it) for a 核实结果 whose number and text are
    two outcomes ("5. 不符合待遇领取条件…": a drag-fill in Excel or LibreOffice counts the number up
    and keeps the text), else None. parse_outcome refuses it; the refusal says which two."""
    if value is None or isinstance(value, (bool, int, float, Decimal)):
        return None
    numbered = _numbered(str(value).strip().translate(_FULL_WIDTH_DIGITS))
    if not numbered:
        return None
    of_text = _BY_TEXT.get(numbered[1])
    return (numbered[0], of_text) if of_text is not None and of_text != numbered[0] else None


def outcome_number(stored: str | None) -> int | None:
    """The number of an outcome as stored in suspects.outcome ("4. …" → 4)."""
    return parse_outcome(stored) if stored else None


def settings(config: Any = None) -> dict[str, Any]:
    """config.casework with the contract's defaults for anything missing."""
    from .config import DEFAULTS

    out = dict(DEFAULTS["casework"])
    if config is not None:
        section = config.get("casework") if hasattr(config, "get") else None
        out.update(section or {})
    return out


def recorded_settings(config: Any = None) -> dict[str, Any]:
    """settings() as a night records them in runs.summary (dates as YYYY-MM-DD texts, which the
    config reads back alike) — those `returns` and `report` count with: not the cover's `contact`."""
    return json.loads(json.dumps({k: v for k, v in settings(config).items() if k != "contact"}, default=str))


def settings_of_last_night(con: duckdb.DuckDBPyConnection) -> tuple[str, dict[str, Any]] | None:
    """(as-of, casework settings) of the last completed night that recorded them, or None (no
    night yet, or nights older than the record)."""
    if not table_exists(con, "runs"):
        return None
    found = con.execute("""
        select as_of, json_extract(summary, '$.casework_settings')::varchar from runs
        where status = 'completed' and json_extract(summary, '$.casework_settings') is not null
        order by as_of desc, started_at desc limit 1""").fetchall()
    return (str(found[0][0]), json.loads(found[0][1])) if found else None


def as_the_nights_ran(con: duckdb.DuckDBPyConnection, config: Any, config_given: bool) -> tuple[Any, str | None]:
    """The config to recompute casework with outside a night (returns, report), and a line to say.

    Without --config, the casework settings of the last night — not the contract's defaults: an
    office that escalates after 30 days would otherwise have its returns lift 挂牌督办 by the
    90-day default and date reports by another count, until the next night put them back (and
    the events kept the false lift). With --config, the config's, said when they differ. The office
    the night named (config `office`) too: a report redrawn after returns lost its 填报单位."""
    if not config_given and config.get("office") is None and table_exists(con, "runs"):
        office = scalar(con, "select json_extract_string(summary, '$.office') from runs where status = 'completed'"
                             " order by as_of desc, started_at desc limit 1")
        if office:
            config = dataclasses.replace(config, data={**config.data, "office": office})
    if not config_given and table_exists(con, "runs"):
        # and its late_delivery_days (数据报送), which the dashboard counts by
        late = con.execute("select json_extract(summary, '$.late_delivery_days')::varchar from runs"
                           " where status = 'completed' and json_exists(summary, '$.late_delivery_days')"
                           " order by as_of desc, started_at desc limit 1").fetchall()
        if late:
            config = dataclasses.replace(config, data={**config.data, "late_delivery_days": json.loads(late[0][0])})
    last = settings_of_last_night(con)
    if last is None:
        return config, None
    night, recorded = last
    current = recorded_settings(config)
    differing = sorted(k for k in set(recorded) | set(current) if recorded.get(k) != current.get(k))
    if not differing:
        return config, None

    def shown(values: dict[str, Any]) -> str:
        return ", ".join(f"{k} {values.get(k)!r}" if isinstance(values.get(k), list) else f"{k} {values.get(k)}"
                         for k in differing)

    if config_given:
        return config, (f"note: the casework settings of --config ({shown(current)}) differ from those the night of "
                        f"{night} ran with ({shown(recorded)}); the config's are used")
    adopted = dataclasses.replace(config, data={**config.data, "casework": recorded})
    return adopted, (f"casework settings of the night of {night} used ({shown(recorded)}; the defaults would be "
                     f"{shown(current)}): pass --config to use another")


def major_class_for(amount: Decimal | float | int | None, config: Any = None) -> str | None:
    """要情 below major_from, 重大要情 from major_from, 重大要情（报部） from ministry_from; none for a
    loss of nothing (a lapsed certification with no payment after it, answered 4: no money to report)."""
    if amount is None:
        return None
    amount = Decimal(str(amount))
    if amount <= 0:
        return None
    s = settings(config)
    if amount >= Decimal(str(s["ministry_from"])):
        return MAJOR_MINISTRY
    if amount >= Decimal(str(s["major_from"])):
        return MAJOR
    return MINOR


def add_event(
    con: duckdb.DuckDBPyConnection,
    suspect_id: str,
    event: str,
    detail: dict | None = None,
    run_id: str | None = None,
    happened_at: dt.datetime | None = None,
) -> None:
    """Append one row to suspect_events (the history is append-only; nothing here updates it)."""
    add_events(con, [(suspect_id, event, detail or {})], run_id, happened_at or china_now())


def add_events(con: duckdb.DuckDBPyConnection, events: list[tuple[str, str, dict]], run_id: str | None,
               happened_at: dt.datetime) -> None:
    """Append many (suspect_id, event, detail) to suspect_events at once, in one statement."""
    insert_many(con, "suspect_events", ["suspect_id", "happened_at", "event", "detail", "run_id"],
                [[sid, happened_at, event, json.dumps(detail, ensure_ascii=False, default=str), run_id]
                 for sid, event, detail in events])


REOPEN_REASON_MAX = 500  # characters of the office's reason (`fundwatch reopen --reason`)


class NotReopenable(ValueError):
    """A suspect `reopen_by_office` cannot reopen: unknown, or still open (its agency answers it)."""


def reopen_by_office(con: duckdb.DuckDBPyConnection, suspect_ids: list[str], reason: str, as_of: dt.date,
                     actor: str, run_id: str | None = None) -> list[str]:
    """The supervision office sends closed or transferred suspects back to their agency to be
    verified again (`fundwatch reopen`): an answer 5 or 6 chosen by mistake, a transfer 稽核 cleared,
    a closing the office does not accept. Each becomes 已重开 as one new evidence reopens — issued
    again on its agency's next worklist with a fresh 核查期限, an answer on an older sheet refused —
    its answer on record shown for the agency to correct, the office's reason on the row. Its 挂牌督办
    days still count from its detection (or its last reopening by new evidence): the loss is the
    same old one. Returned ids in order; NotReopenable before anything is changed."""
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise NotReopenable("give the reason (--reason): it is shown to the agency on its worklist row")
    if len(reason) > REOPEN_REASON_MAX:
        raise NotReopenable(f"the reason is {len(reason)} characters: at most {REOPEN_REASON_MAX} (it opens the "
                            "row's 证据摘要, whose cell holds 32,767)")
    ids = list(dict.fromkeys(s.strip() for s in suspect_ids))
    found = {sid: (status, closed_on, verified_on) for sid, status, closed_on, verified_on in con.execute(
        "select suspect_id, status, closed_on, verified_on from suspects where list_contains(?, suspect_id)",
        [ids]).fetchall()}
    for sid in ids:
        if sid not in found:
            raise NotReopenable(f"suspect {sid} not found in the store")
        status, closed_on, verified_on = found[sid]
        since = closed_on or verified_on
        if status not in (CLOSED, TRANSFERRED):
            raise NotReopenable(f"suspect {sid} is {status}, not 已销号 or 已移送: its agency answers it on "
                                "its worklist")
        if since is not None and as_of < since:
            raise NotReopenable(f"suspect {sid} was {status} on {since}: it cannot be reopened on {as_of}, before that")
    now = china_now()
    with atomic(con):
        # its 逾期 and 挂牌督办 are lifted by refresh, each with its event (`fundwatch reopen` runs it;
        # else the next returns or night), as after an answer
        con.execute(f"""update suspects set status = '{REOPENED}', closed_on = null, deadline = null
                        where list_contains(?, suspect_id)""", [ids])
        con.execute("insert or ignore into casework_pending select unnest(cast(? as varchar[]))", [ids])
        add_events(con, [(sid, "reopened", {"as_of": as_of.isoformat(), "by_office": True, "office_reason": reason,
                                            "old_status": found[sid][0], "closed_on": found[sid][1],
                                            # a transfer's day (it has no closing): an answer is later
                                            "verified_on": found[sid][2]})
                         for sid in ids], run_id, now)
        audit(con, "reopen_by_office", actor, {"as_of": as_of.isoformat(), "office_reason": reason, "run_id": run_id},
              happened_at=now, suspect_ids=ids)
    return ids


@contextlib.contextmanager
def atomic(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """A transaction, or nothing if the caller already opened one (DuckDB does not nest them)."""
    try:
        con.execute("begin transaction")
    except duckdb.TransactionException:
        yield
        return
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def overdue_sql(as_of: str) -> str:
    """SQL (over a suspects row): 逾期 on the date `as_of` (an SQL date expression) — still in the
    agency's hands after its 核查期限."""
    awaiting = ", ".join(f"'{x}'" for x in AWAITING_AGENCY)
    return f"coalesce(status in ({awaiting}) and deadline is not null and {as_of} > deadline, false)"


def escalated_sql(as_of: str, days: str) -> str:
    """SQL (over a suspects row): 挂牌督办 on `as_of` — not closed (open or transferred), loss not
    recovered, `days` days or more after first detection: flagged on that day (detected 11-21, 90
    days: from 2027-02-19), as the contract reads ("not recovered 90 days after detection"). A
    suspect reopened after its closing counts from the night it reopened: the loss it now has was
    detected then (the closing had met the one before), and was flagged the very night it came back.
    粤社保函〔2022〕28号's "自发现之日起超过90日" read strictly (民法典 第一千二百五十九条: 超过 does
    not include the number) flags a day later: escalate_after_days 91 gives that reading."""
    return (f"coalesce(status in ({NOT_CLOSED_SQL})"
            f" and (coalesce(recovered_amount, 0) < coalesce(amount, 0) or not {loss_answered_sql()})"
            f" and date_diff('day', coalesce(reopened_on, first_detected_on), {as_of}) >= {days}, false)")


def loss_within(shown_periods: tuple | list | None, period_from: str | None, period_to: str | None) -> bool:
    """Whether the loss on record lies in the months the answered sheet showed (所属期起–止): only
    then does the recovery its agency reported cover it. A loss moved to a month no sheet showed (a
    death date corrected after the answer: the months answered were no loss, the one after is) is
    one no agency has verified, whatever was recovered for the others — it stays with the agency.
    Months not known (an answer on no sheet on record, a suspect without periods): as before, yes."""
    shown_from, shown_to = (tuple(shown_periods) + (None, None))[:2] if shown_periods else (None, None)
    if not (shown_from and shown_to and period_from and period_to):
        return True
    return str(shown_from) <= str(period_from) and str(period_to) <= str(shown_to)


def loss_answered_sql(row: str = "", partly: bool = False) -> str:
    """loss_within as SQL over a suspects row (`row`: its alias, if any): the months of the last
    answer's sheet (answered_period_*, set by returns) hold the loss now on record — else a recovery
    does not cover it, for closing and for 挂牌督办 alike (a loss moved to a month no sheet showed is
    not recovered, whatever was). `partly`: the months share one at least — what the report counts a
    recovery against (a loss grown by a month since keeps what was recovered of the others; one
    moved wholly to other months, nothing)."""
    t = f"{row}." if row else ""
    held = (f"({t}period_to >= {t}answered_period_from and {t}period_from <= {t}answered_period_to)" if partly
            else f"({t}period_from >= {t}answered_period_from and {t}period_to <= {t}answered_period_to)")
    return (f"({t}answered_period_from is null or {t}answered_period_to is null or {t}period_from is null"
            f" or {t}period_to is null or {held})")


def refresh(con: duckdb.DuckDBPyConnection, as_of: dt.date, config: Any = None, run_id: str | None = None,
            only: list[str] | None = None) -> dict:
    """Recompute 逾期, 挂牌督办, 要情 class and report date for every suspect (or only the suspects
    `only` names: those a return just changed); one event per change.

    Idempotent: a second call on the same day finds nothing to change and writes no event.
    Returns how many flags were newly set (and cleared) this time.
    """
    chosen = "true" if only is None else "list_contains(cast($only as varchar[]), suspect_id)"
    s = settings(config)
    calendar = calendar_from(config)
    now = china_now()
    counts = {"closed_recovered": 0, "overdue": 0, "overdue_cleared": 0, "escalated": 0, "escalation_lifted": 0,
              "major_class": 0, "report_due_moved": 0}
    with atomic(con):
        con.execute(f"delete from casework_pending where {chosen}", _only(only))  # recomputed below, committed alike
        # Outcome 4 closes a suspect once 追回金额 covers 涉及金额 (CONTRACT §5) — also when the amount
        # fell after the answer (a reversal delivered later): it would otherwise stay 核查中 for good,
        # its sheet row showing more recovered than at risk. Not a reopened one: what it recovered
        # was for the evidence before (often by the very reversals that took it away), and what
        # came back since is a new loss the agency has yet to answer. Nor one whose loss is now in a
        # month the answered sheet did not show (loss_answered_sql).
        for suspect_id, outcome, amount, recovered in con.execute(
                f"select suspect_id, outcome, amount, recovered_amount from suspects"
                f" where status = '{IN_PROGRESS}' and recovered_amount >= coalesce(amount, 0)"
                f" and {loss_answered_sql()} and {chosen}",
                _only(only)).fetchall():
            if outcome_number(outcome) != RECOVER:
                continue
            con.execute("update suspects set status = ?, closed_on = ? where suspect_id = ?", [CLOSED, as_of, suspect_id])
            con.execute(RECORD_CLOSED_STATE_SQL, [suspect_id])
            add_event(con, suspect_id, "closed", {"closed_on": as_of, "outcome": outcome, "amount": amount,
                                                  "recovered_amount": recovered,
                                                  "reason": "追回金额已覆盖涉及金额（涉及金额在核实后减少）"}, run_id, now)
            counts["closed_recovered"] += 1

        # 逾期: still in the agency's hands after its 核查期限.
        updates, events = [], []
        for suspect_id, want, deadline in con.execute(
            f"""
            select suspect_id, want, deadline from (
                select suspect_id, deadline, coalesce(overdue, false) as have, {overdue_sql("$as_of::date")} as want
                from suspects where {chosen})
            where want <> have
            """,
            {"as_of": as_of, **_only(only)},
        ).fetchall():
            updates.append([suspect_id, want])
            event = "overdue" if want else "overdue_cleared"
            events.append((suspect_id, event, {"deadline": deadline, "as_of": as_of}))
            counts[event] += 1
        set_suspect_columns(con, ["overdue"], updates, events, run_id, now)

        # 挂牌督办: not closed, loss not recovered escalate_after_days after first detection (or reopening).
        days = int(s["escalate_after_days"])
        updates, events = [], []
        for suspect_id, want, first, reopened in con.execute(
            f"""
            select suspect_id, want, first_detected_on, reopened_on from (
                select suspect_id, first_detected_on, reopened_on, coalesce(escalated, false) as have,
                       {escalated_sql("$as_of::date", "$days")} as want
                from suspects where {chosen})
            where want <> have
            """,
            {"as_of": as_of, "days": days, **_only(only)},
        ).fetchall():
            updates.append([suspect_id, want])
            event = "escalated" if want else "escalation_lifted"
            events.append((suspect_id, event, {"first_detected_on": first, "as_of": as_of, "escalate_after_days": days,
                                               **({"reopened_on": reopened} if reopened else {})}))
            counts[event] += 1
        set_suspect_columns(con, ["escalated"], updates, events, run_id, now)

        # 要情 class of a confirmed loss (outcome 4/5/6) by the amount its last answer verified
        # (verified_amount; the amount at risk in a store from before it was kept): what the nights
        # add since — a 已移送 case paid on, a reopened suspect's new evidence — is nobody's finding
        # yet. A 重大要情 is reported report_working_days after the verification that classed it; a
        # later answer of the same class or a lower one (a further recovery, a reversal) does not
        # move that date — the report was due then; one that moves the class up dates a new report.
        # An answer to a reopened suspect clears class_verified_on (returns): a report of its own.
        # Recomputed from that verification each night, so that the date follows a holiday notice.
        updates, events = [], []
        for suspect_id, outcome, amount, verified_on, closed_on, have_class, have_due, class_from in con.execute(
            "select suspect_id, outcome, coalesce(verified_amount, amount), verified_on, closed_on, major_class,"
            " report_due, class_verified_on"
            f" from suspects where (outcome is not null or major_class is not null) and status <> '{REOPENED}'"
            f" and {chosen}",
            _only(only),
        ).fetchall():
            want_class = major_class_for(amount, config) if outcome_number(outcome) in CONFIRMED_LOSS else None
            verification = verified_on or closed_on or as_of
            kept = class_from and CLASS_RANK.get(want_class, 0) <= CLASS_RANK.get(have_class, 0)
            want_from = None if want_class is None else class_from if kept else verification
            want_due = None
            if want_class in (MAJOR, MAJOR_MINISTRY):
                want_due = calendar.add_working_days(want_from, int(s["report_working_days"]))
            if want_class == have_class and want_due == have_due and want_from == class_from:
                continue
            updates.append([suspect_id, want_class, want_due, want_from])
            if want_class == have_class and want_due == have_due:
                continue  # only where it comes from is now on record (a store from before): no change to tell
            events.append((suspect_id, "major_class",
                           {"from": have_class, "to": want_class, "amount": amount, "report_due": want_due}))
            # a class, or a report of a new verification (a reopened one answered again), is news; the
            # same report's day moved by the settings (a holiday notice entered since) is told apart
            counts["major_class" if want_class != have_class or want_from != class_from else "report_due_moved"] += 1
        set_suspect_columns(con, ["major_class", "report_due", "class_verified_on"], updates, events, run_id, now)
    return counts


def set_suspect_columns(con: duckdb.DuckDBPyConnection, columns: list[str], rows: list[list],
                        events: list[tuple[str, str, dict]], run_id: str | None, now: dt.datetime) -> None:
    """Set `columns` of each suspect (rows: [suspect_id, *values]) and add the events, one statement
    each: a night that makes 2,000 suspects 逾期 at once took 7.5 s a row at a time."""
    if rows:
        types = dict(con.execute("select column_name, data_type from duckdb_columns()"
                                 " where table_name = 'suspects' and database_name = current_database()").fetchall())
        values = ", ".join(f"unnest(cast(? as {types[c]}[])) as {c}" for c in columns)
        con.execute(f"update suspects set {', '.join(f'{c} = u.{c}' for c in columns)}"
                    f" from (select unnest(cast(? as varchar[])) as suspect_id, {values}) u"
                    " where suspects.suspect_id = u.suspect_id", [list(c) for c in zip(*rows)])
    add_events(con, events, run_id, now)


CLASS_RANK = {c: rank for rank, c in enumerate((MINOR, MAJOR, MAJOR_MINISTRY), start=1)}


def _only(only: list[str] | None) -> dict[str, list[str]]:
    return {} if only is None else {"only": list(only)}


def years_counted_by_the_week(con: duckdb.DuckDBPyConnection, config: Any = None) -> list[int]:
    """Years of open suspects' 核查期限 and 重大要情 report dates that no holiday notice covers
    (neither chinesecalendar nor the config): those dates were counted Monday–Friday (less the holidays on fixed dates)."""
    dates = con.execute(f"""
        select deadline from suspects where status in ({OPEN_STATUSES_SQL})
        union select report_due from suspects""").fetchall()
    return calendar_from(config).unknown_years(d for (d,) in dates)

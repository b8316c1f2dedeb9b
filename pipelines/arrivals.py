"""数据报送: has every agency's month of benefit payments come in?

A month one agency did not deliver is silent otherwise: its rules find nothing in rows that are
not there, and the continuity check speaks only when the agency's next month arrives. The office
has no delivery plan to hold the inbox to (deliveries may be split over days, an agency may merge
into another), so the data say what to expect: once most payment streams (险种 × 经办机构) of the
month before have delivered a month, and the first of them came in `late_delivery_days` nights
ago, a stream still without it is late — if people it paid last are still owed it: paid by no
agency for that month under the same 险种, not 暂停/终止 in the register, with no death record. A
stream whose people all moved to another agency (机构改革), stopped or died is not waited for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb

from .config import DEFAULTS
from .extracts import INSURANCE_TYPES, ONE_OFF_ITEMS
from .report_mask import mask_agency_code
from .store import table_exists

# Months before the latest delivered one in which a stream counts as still paying.
LOOKBACK_MONTHS = 3


@dataclass(frozen=True)
class LateStream:
    agency_code: str        # masked where a code holds an ID number (as on every province page)
    agency_name: str | None
    insurance_type: str
    last_period: str        # the stream's latest 待遇所属期 in the store
    missing_period: str     # the month the other streams delivered
    persons_owed: int       # people it paid in last_period who are still owed missing_period
    others_since: dt.date   # the night the missing month first came in from another stream
    others: int             # streams that delivered missing_period


def grace_days(config) -> int | None:
    """config `late_delivery_days` (its default without a config)."""
    days = DEFAULTS["late_delivery_days"] if config is None else config.get("late_delivery_days")
    return None if days is None else int(days)


def by_agency(late: list[LateStream]) -> list[dict]:
    """The late streams an agency at a time, as the night's summary and the dashboard say them."""
    out: dict[str, dict] = {}
    for s in late:
        a = out.setdefault(s.agency_code, {"agency_code": s.agency_code, "agency_name": s.agency_name,
                                            "missing_period": s.missing_period, "others_since": s.others_since.isoformat(),
                                            "others": s.others, "streams": [], "persons_owed": 0})
        a["streams"].append({"insurance_type": s.insurance_type,
                             "insurance_name": INSURANCE_TYPES.get(s.insurance_type, s.insurance_type),
                             "last_period": s.last_period, "persons_owed": s.persons_owed})
        a["persons_owed"] += s.persons_owed
    return list(out.values())


def _month(period: str, k: int) -> str:
    y, m = divmod(int(period[:4]) * 12 + int(period[4:]) - 1 + k, 12)
    return f"{y:04d}{m + 1:02d}"


def late_streams(con: duckdb.DuckDBPyConnection, as_of: dt.date, grace_days: int | None) -> list[LateStream]:
    """The payment streams whose latest month has not come in (see the module's note); [] when
    switched off (`grace_days` None) or before any payments. Reads only the last few months'
    row groups of `payments` (a filter on 所属期)."""
    if grace_days is None or not table_exists(con, "payments") or not table_exists(con, "ingest_ledger"):
        return []
    this_month = f"{as_of.year:04d}{as_of.month:02d}"
    # a month paid ahead (the next month's pension on the 25th) counts; a typo years ahead does not
    window = (_month(this_month, -(LOOKBACK_MONTHS + 2)), _month(this_month, 1))
    nights = ("select l.file_hash, coalesce(r.as_of, cast(l.ingested_at as date)) as night "
              "from ingest_ledger l left join runs r on r.run_id = l.run_id where l.extract = 'payments'"
              if table_exists(con, "runs") else
              "select file_hash, cast(ingested_at as date) as night from ingest_ledger where extract = 'payments'")
    streams = con.execute(f"""
        with nights as ({nights})
        select p.agency_code, p.insurance_type, p.period, min(n.night) as first_night
        from payments p left join nights n on n.file_hash = p._file_hash
        where p.period between $low and $high and not list_contains($one_off, p.item)
          and p.agency_code is not null and p.insurance_type is not null
        group by all""", {"low": window[0], "high": window[1], "one_off": list(ONE_OFF_ITEMS)}).fetchall()
    by_period: dict[str, dict[tuple[str, str], dt.date | None]] = {}
    for agency, itype, period, night in streams:
        by_period.setdefault(period, {})[(agency, itype)] = night
    due = as_of - dt.timedelta(days=grace_days)
    current = None
    for period in sorted(by_period, reverse=True):
        before = by_period.get(_month(period, -1), {})
        arrived = [n for n in by_period[period].values() if n is not None]
        # more than half the streams of the month before have it (one stray row of a month to come is not "the
        # month"), and its first delivery is past the grace
        if before and 2 * len(by_period[period]) > len(before) and arrived and min(arrived) <= due:
            current = period
            break
    if current is None:
        return []
    have = set(by_period[current])
    last_seen: dict[tuple[str, str], str] = {}
    for k in range(1, LOOKBACK_MONTHS + 1):
        for stream in by_period.get(_month(current, -k), {}):
            if stream not in have:
                last_seen.setdefault(stream, _month(current, -k))
    if not last_seen:
        return []
    owed = _persons_owed(con, current, last_seen)
    names = _agency_names(con)
    since = min(n for n in by_period[current].values() if n is not None)
    return [LateStream(mask_agency_code(agency), names.get(agency), itype, last, current, owed[(agency, itype)],
                       since, len(have))
            for (agency, itype), last in sorted(last_seen.items()) if owed.get((agency, itype))]


def _persons_owed(con, current: str, last_seen: dict[tuple[str, str], str]) -> dict[tuple[str, str], int]:
    """Per late stream, the people it paid (net) in its last month who are still owed `current`."""
    con.execute("create or replace temp table _late_streams (agency_code varchar, insurance_type varchar, "
                "period varchar)")
    con.executemany("insert into _late_streams values (?, ?, ?)", [(*k, v) for k, v in last_seen.items()])
    stopped = ("or exists (select 1 from beneficiaries b where b.person_id = paid.person_id "
               "and b.insurance_type = paid.insurance_type and b.status in ('暂停', '终止'))"
               if table_exists(con, "beneficiaries") else "")
    died = ("or exists (select 1 from deaths d where d.person_id = paid.person_id)"
            if table_exists(con, "deaths") else "")
    try:
        rows = con.execute(f"""
            with paid as (
                select p.agency_code, p.insurance_type, p.person_id
                from payments p join _late_streams s using (agency_code, insurance_type, period)
                where not list_contains($one_off, p.item) and p.person_id is not null
                group by all having sum(p.amount) > 0
            )
            select agency_code, insurance_type, count(*)
            from paid
            where not (exists (select 1 from payments c where c.period = $current and c.person_id = paid.person_id
                                                        and c.insurance_type = paid.insurance_type)
                       {stopped} {died})
            group by all""", {"one_off": list(ONE_OFF_ITEMS), "current": current}).fetchall()
    finally:
        con.execute("drop table if exists _late_streams")
    return {(agency, itype): int(n) for agency, itype, n in rows}


def _agency_names(con) -> dict[str, str]:
    if not table_exists(con, "agencies"):
        return {}
    return dict(con.execute("select agency_code, any_value(agency_name) from agencies group by 1").fetchall())

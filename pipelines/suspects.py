"""Suspects (疑点): merge tonight's `detections` into the `suspects` table, set-based.

One suspect per rule × subject, with a stable suspect_id (rule initials + 10 hex of
md5(rule_id|subject): no ID number in it). Every change appends to `suspect_events`:

- detected            a new suspect (status 待下发)
- updated             amount, periods or evidence changed (old and new amount in the detail)
- reopened            a closed (已销号) suspect got new evidence — the amount grew or new periods
                      appeared — so it becomes 已重开
- no_longer_detected  a rule that ran cleanly no longer finds it. The suspect is kept with its
                      status: only an agency's verification closes a suspect, and the history
                      must survive. Written once per disappearance.
- redetected          found again after a no_longer_detected (changed: with old and new amounts)
- handed_over         (移交) an open suspect whose finding is now another agency's — the person
                      moved and is paid there, or a corrected row moved the agency's code — goes to
                      that agency once its own no longer pays what it is about, issued to it afresh
                      (old and new agency in the detail; _find_handovers)

Re-running on the same data changes nothing. A suspect 已移送 or 已销号 keeps the agency it had.

An incremental night (rules.detect(incremental=True)) runs some rules only for their subjects in
temp table detection_subjects (those tonight's new rows can change), and does not re-run rules
nothing of whose inputs changed. For the first only subjects inside the scope can be "no longer
detected", for the second none; a suspect outside the scope keeps its state, and — as nothing it
depends on changed — counts as detected again tonight (last_detected_on moves on, exactly as a
full run would leave it). After a clean merge the detection's state (as-of, rules fingerprint,
files seen) is recorded for the next night.
"""

from __future__ import annotations

import hashlib
from datetime import date

import duckdb

from .casework import OPEN_STATUSES_SQL
from .clock import china_now
from .extracts import DATED_DELIVERY
from .store import of_files, scalar, table_exists

CHANGES = ("new", "updated", "reopened", "unchanged", "redetected", "no_longer_detected", "handed_over")
# SQL: the payments, transactions and persons a suspect's evidence lists, by id (DuckDB's to_json
# writes "payment_id":"…", Python's json.dumps "payment_id": "…"; SHARED_BANK_ACCOUNT lists persons)
_EVIDENCE_IDS = """regexp_extract_all(cast({evidence} as varchar), '"(?:payment_id|txn_id|person_id)": ?"([^"]*)"', 1)"""

# SQL: each ingested file's place in the order its rows were delivered — a delivery folder named by
# its date at that date (one that arrives late is older data), any other (the inbox's loose files,
# a folder named otherwise) at the as-of of the night that read it — then in the order files were
# read. Its delivery's name alone put the loose files of an inbox named `inbox` after every dated
# folder, and the same files gave another name as the inbox folder was named (a determinism probe).
FILE_ORDER = f"""(select l.file_hash,
       case when regexp_matches(l.delivery, '{DATED_DELIVERY}') then left(l.delivery, 10)
            else coalesce(cast(r.as_of as varchar), '') end as delivered_on,
       l.ingested_at
  from ingest_ledger l left join runs r on r.run_id = l.run_id)"""


def _registered_names(persons: str) -> str:
    """SQL: (person_id, name) in the register of the persons in CTE or table `persons` — the name
    delivered last (a person has a row per insurance type, each from its own system: a correction
    delivered for one stream is the name now; the smallest of the spellings kept a stale one). Rows
    without lineage come first."""
    return f"""select b.person_id,
                      arg_max(b.name, struct_pack(d := coalesce(o.delivered_on, ''),
                                                  t := coalesce(o.ingested_at, timestamp '0001-01-01'),
                                                  f := coalesce(b._source_file, ''), r := coalesce(b._row_number, 0))) as name
               from beneficiaries b left join {FILE_ORDER} o on o.file_hash = b._file_hash
               where b.name is not null and b.person_id in (select person_id from {persons})
               group by b.person_id"""

SUSPECT_ID_SQL = ("array_to_string(list_transform(string_split({rule}, '_'), lambda w: left(w, 1)), '')"
                  " || '-' || left(md5({rule} || '|' || {subject}), 10)")


def suspect_id(rule_id: str, subject: str) -> str:
    """PAID_AFTER_DEATH + 3607… -> 'PAD-1f3a…' (same formula as SUSPECT_ID_SQL)."""
    prefix = "".join(word[:1] for word in rule_id.split("_"))
    return f"{prefix}-{hashlib.md5(f'{rule_id}|{subject}'.encode('utf-8')).hexdigest()[:10]}"


def reported_gone_sql(alias: str) -> str:
    """SQL: suspect `alias` was reported no_longer_detected since it was last found (the event's
    detail keeps the last_detected_on it had then) — not merely unseen since, as the suspects of a
    rule that failed are."""
    # ...and not found again since: back changed (redetected) or, closed, with more (reopened — a
    # night run for an earlier date leaves last_detected_on at the later day); a re-run for the
    # same as-of finds it unchanged on the day it was last found. The office sending a suspect back
    # (`fundwatch reopen`, by_office) finds nothing: it stays gone (a differential probe: an
    # incremental night then dated it found that night and its sheet lost the banner, while a full
    # night reported it gone a second time)
    return f"""exists (select 1 from suspect_events e
                       where e.suspect_id = {alias}.suspect_id and e.event = 'no_longer_detected'
                         and json_extract_string(e.detail, '$.last_detected_on')
                             = cast({alias}.last_detected_on as varchar)
                         and not exists (select 1 from suspect_events r
                                         where r.suspect_id = e.suspect_id and r.event in ('redetected', 'reopened')
                                           and r.happened_at > e.happened_at
                                           and json_extract_string(r.detail, '$.by_office') is distinct from 'true'))"""


def _stage(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    has_rules = table_exists(con, "detection_rules")
    severity = "r.severity" if has_rules else "cast(null as varchar)"
    join_rules = "left join detection_rules r on r.rule_id = d.rule_id" if has_rules else ""
    con.execute(f"""
        create or replace temp table _incoming as
        with found as (
            -- a suspect is found by rule × subject; a new one gets its id from them. (A suspect whose
            -- subject the store's one-time account migration rewrote keeps the id it was issued under.)
            select d.*, coalesce(known.suspect_id, {SUSPECT_ID_SQL.format(rule='d.rule_id', subject='d.subject')})
                        as suspect_id, known.name as known_name
            from detections d
            left join suspects known on known.rule_id = d.rule_id and known.subject = d.subject
        ),
        detected_persons as (
            -- a suspect keeps the name it has: only persons of suspects without one are looked up
            -- (reading every payment's name for every detected person each night was most of a merge)
            select distinct person_id from found where person_id is not null and known_name is null
        ),
        registered_names as (
            -- 待遇享受人员 is the register of record
            {_registered_names("detected_persons")}
        ),
        names as (
            select * from registered_names
            union all
            -- a payment's name only when the register lacks one (no payment is read when none lacks)
            select person_id, min(name) from payments
            where name is not null
              and person_id in (select person_id from detected_persons
                                where person_id not in (select person_id from registered_names))
            group by person_id
        )
        select d.suspect_id, d.rule_id, d.subject, d.person_id, d.agency_code, d.period_from, d.period_to, d.amount,
               d.evidence, n.name, {severity} as severity
        from found d
        left join names n on n.person_id = d.person_id
        {join_rules}""")
    ran_clean = ("select rule_id from detection_rules where ok" if has_rules
                 else "select distinct rule_id from detections")
    con.execute(f"create or replace temp table _gone as select s.suspect_id from suspects s where {reported_gone_sql('s')}")
    con.execute(f"""
        create or replace temp table _changes as
        select i.*,
               s.amount as old_amount, s.period_from as old_period_from, s.period_to as old_period_to,
               s.status as old_status, s.closed_on as old_closed_on,
               case
                   when s.suspect_id is null then 'new'
                   when s.amount is not distinct from i.amount
                        and s.period_from is not distinct from i.period_from
                        and s.period_to is not distinct from i.period_to
                        and cast(s.evidence as varchar) is not distinct from cast(i.evidence as varchar)
                       then case when i.suspect_id in (select suspect_id from _gone) then 'redetected' else 'unchanged' end
                   -- new evidence after the closing: more at risk than it was closed on, a wider
                   -- span than then (not than the nights since moved it to: a corrected payment
                   -- put back is nothing new) — or, for one that
                   -- had gone (reversed, say) and is back, a payment, transaction or person its
                   -- evidence did not list when it went: its stored amount is that of before it
                   -- went, so less money may still be new money (a score or a source that moved is not)
                   when s.status = '已销号'
                        and (i.amount > coalesce(s.closed_amount, s.amount)
                             or i.period_to > coalesce(s.closed_period_to, s.period_to)
                             or i.period_from < coalesce(s.closed_period_from, s.period_from)
                             or (i.suspect_id in (select suspect_id from _gone)
                                 and not list_has_all({_EVIDENCE_IDS.format(evidence="s.evidence")},
                                                      {_EVIDENCE_IDS.format(evidence="i.evidence")})))
                       then 'reopened'
                   else 'updated'
               end as change
        from _incoming i
        left join suspects s on s.suspect_id = i.suspect_id""")
    con.execute(f"""
        insert into _changes (suspect_id, rule_id, subject, person_id, agency_code, period_from, period_to,
                              amount, old_amount, old_period_from, old_period_to, old_status, change)
        select s.suspect_id, s.rule_id, s.subject, s.person_id, s.agency_code, s.period_from, s.period_to,
               s.amount, s.amount, s.period_from, s.period_to, s.status, 'no_longer_detected'
        from suspects s
        where s.rule_id in ({ran_clean})
          and s.suspect_id not in (select suspect_id from _incoming)
          -- also one found earlier the same day: a night re-run with another config no longer finds
          -- it (not one found at a later as-of: a night run for an earlier day knows less)
          and s.last_detected_on <= $as_of
          and s.suspect_id not in (select suspect_id from _gone)
          and {_rechecked(con, "s")}""",
                {"as_of": as_of})


def _rechecked(con: duckdb.DuckDBPyConnection, alias: str) -> str:
    """SQL: tonight's detection looked at the subject of suspect `alias` — its rule ran in full, or
    for its subjects and this is one of them. A rule run only for tonight's subjects knows nothing
    of the others; a rule not re-run (nothing it reads changed) knows nothing new of anyone."""
    return f"""({alias}.rule_id not in ({_scoped_rules(con)})
                or ({alias}.rule_id in ({_scoped_rules(con, "subjects")})
                    and exists (select 1 from detection_subjects d
                                where d.rule_id = {alias}.rule_id and d.subject = {alias}.subject)))"""


def _scoped_rules(con: duckdb.DuckDBPyConnection, scope: str | None = None) -> str:
    """SQL for the ids of the rules that ran scoped tonight — run for their subjects in temp table
    detection_subjects only ('subjects') or not re-run as nothing they read changed ('unchanged');
    all of them when `scope` is None. None when detect ran in full."""
    if table_exists(con, "detection_rules") and table_exists(con, "detection_subjects"):
        return "select rule_id from detection_rules where ok and scoped" + (f" and scope = '{scope}'" if scope else "")
    return "select null::varchar where false"


def _apply(con: duckdb.DuckDBPyConnection, as_of: date, run_id: str | None) -> None:
    con.execute("""
        insert into suspects (suspect_id, rule_id, subject, person_id, agency_code, period_from, period_to, amount,
                              status, first_detected_on, last_detected_on, evidence, name, severity, finding_agency)
        select suspect_id, rule_id, subject, person_id, agency_code, period_from, period_to, amount,
               '待下发', $as_of, $as_of, evidence, name, severity, agency_code
        from _changes where change = 'new'""", {"as_of": as_of})
    # the agency each finding names, kept for every suspect found tonight (also one that stays
    # where it is, 已移送 say): a night that does not re-run its subject still knows it
    con.execute("""
        update suspects set finding_agency = c.agency_code
        from _changes c
        where suspects.suspect_id = c.suspect_id and c.change <> 'no_longer_detected' and c.agency_code is not null
          and suspects.finding_agency is distinct from c.agency_code""")
    con.execute("""
        update suspects set
            period_from = c.period_from, period_to = c.period_to, amount = c.amount, evidence = c.evidence,
            name = coalesce(suspects.name, c.name), severity = coalesce(c.severity, suspects.severity),
            last_detected_on = greatest(suspects.last_detected_on, $as_of),
            status = case when c.change = 'reopened' then '已重开' else suspects.status end,
            closed_on = case when c.change = 'reopened' then null else suspects.closed_on end,
            reopened_on = case when c.change = 'reopened' then $as_of else suspects.reopened_on end,
            -- the old 核查期限 was met by the closing; the re-issue sets a fresh one (else the night's
            -- casework would flag the reopened suspect 逾期 by a deadline it no longer has)
            deadline = case when c.change = 'reopened' then null else suspects.deadline end
        from _changes c
        where suspects.suspect_id = c.suspect_id and c.change in ('updated', 'reopened')""", {"as_of": as_of})
    con.execute("""
        update suspects set last_detected_on = $as_of
        from _changes c
        where suspects.suspect_id = c.suspect_id and c.change in ('unchanged', 'redetected')
          and suspects.last_detected_on < $as_of""", {"as_of": as_of})
    if table_exists(con, "detection_rules"):
        # a rule's severity edited in its file holds for the suspects it found before, not only
        # for those found or changed since (they kept the old word on the worklist and in the store)
        con.execute("""
            update suspects set severity = r.severity
            from detection_rules r
            where suspects.rule_id = r.rule_id and r.ok and r.severity is not null
              and suspects.severity is distinct from r.severity""")
    con.execute(f"""
        update suspects set last_detected_on = $as_of
        where not {_rechecked(con, "suspects")}
          and suspect_id not in (select suspect_id from _changes)
          and suspect_id not in (select suspect_id from _gone)
          and last_detected_on < $as_of""", {"as_of": as_of})
    con.execute(f"""
        insert into suspect_events (suspect_id, happened_at, event, detail, run_id)
        select suspect_id, $now,
               case when change = 'new' then 'detected' else {_CHANGE_SAID} end,
               case change
                   -- (its agency too: where it was first sent stays on record if the night stops before its worklists)
                   when 'new' then to_json(struct_pack(as_of := $as_of, amount := amount,
                                                       period_from := period_from, period_to := period_to,
                                                       agency_code := agency_code))
                   when 'no_longer_detected' then to_json(struct_pack(as_of := $as_of, amount := amount,
                                                       last_detected_on := (select last_detected_on from suspects s
                                                                            where s.suspect_id = _changes.suspect_id)))
                   when 'redetected' then to_json(struct_pack(as_of := $as_of, amount := amount))
                   else to_json(struct_pack(as_of := $as_of, old_amount := old_amount, new_amount := amount,
                                            old_period_from := old_period_from, new_period_from := period_from,
                                            old_period_to := old_period_to, new_period_to := period_to,
                                            old_status := old_status, closed_on := old_closed_on))
               end,
               $run_id
        from _changes
        where change <> 'unchanged'
        order by suspect_id""", {"as_of": as_of, "now": china_now(), "run_id": run_id})
    _find_handovers(con)
    _hand_over(con, as_of, run_id)
    _correct_names(con, as_of, run_id)


def _find_handovers(con: duckdb.DuckDBPyConnection) -> None:
    """The suspects to hand over (移交) tonight: open ones (also one reopened tonight, or by the
    office since) whose finding names another agency than theirs — the person moved and is paid
    there now, or a re-delivered row corrected the agency's code — where their agency no longer pays
    what the suspect is about (the person's streams it lists, the account, the payment) in its
    latest month paid, net of reversals. Kept with the
    agency that first had it, the agency now paying was never told (only it can stop the payment),
    and a code no data carries kept getting worklists; while both still pay (a duplicate pension, an
    account two agencies pay into) the suspect stays: the one that paid most could change every
    month, and each move was a fresh 核查期限 that never ran out. Read from `finding_agency`, kept
    for every suspect found: an incremental night that does not re-run a subject decides as a full
    night does. A suspect 已移送 or 已销号 stays where it was."""
    # the handovers held tonight for want of a registered agency (below), which the night's summary
    # says (runsummary.handovers_waiting): made anew each night, empty where there are none
    con.execute("create or replace temp table _handover_held (suspect_id varchar, to_agency varchar)")
    con.execute(f"""
        create or replace temp table _handed as
        select suspect_id, subject, agency_code as from_agency, finding_agency as to_agency, status as old_status
        from suspects
        where status in ({OPEN_STATUSES_SQL}) and finding_agency is not null
          and finding_agency is distinct from agency_code""")
    if not scalar(con, "select count(*) from _handed"):
        return
    # What the suspect is about, by what its subject is: a person's payments in the streams its
    # evidence lists (insurance type and item — not a 伤残津贴 the same agency rightly pays, nor a
    # one-off 丧葬补助金; a reversal is of its stream, and nets its month), each stream by its own
    # latest month (one agency's stream delivered before another's is no stop of the other); not the
    # payments listed beside them as context, under a key ending `_payments` (UNEMPLOYMENT_WHILE_
    # WORKING's pension_payments: the agency paying the pension is not paying the 失业保险金); an
    # account's payments into it; a payment itself. Three joins on equality (one on an OR read the
    # whole payments table once per candidate).
    con.execute("""
        create or replace temp table _still_paying as
        with listed as (
            select h.suspect_id,
                   unnest(regexp_extract_all(
                       regexp_replace(cast(s.evidence as varchar), '"[A-Za-z0-9_]+_payments": ?\\[[^\\]]*\\]', '', 'g'),
                       '"payment_id": ?"([^"]*)"', 1)) as payment_id
            from _handed h join suspects s on s.suspect_id = h.suspect_id
            where s.person_id is not null and s.subject = s.person_id
        ),
        streams as (
            select distinct l.suspect_id, p.person_id, p.insurance_type, p.item
            from listed l join payments p on p.payment_id = l.payment_id
        ),
        paid as (
            select st.suspect_id, st.insurance_type as stream_type, st.item as stream_item, p.period, p.agency_code, p.amount
            from streams st join payments p on p.person_id = st.person_id and p.insurance_type = st.insurance_type
                                            and p.item = st.item
            union all
            select h.suspect_id, '', '', p.period, p.agency_code, p.amount
            from _handed h join payments p on p.bank_account = h.subject
            union all
            select h.suspect_id, '', '', p.period, p.agency_code, p.amount
            from _handed h join payments p on p.payment_id = h.subject
        ),
        latest as (select suspect_id, stream_type, stream_item, max(period) as period from paid group by all)
        select distinct suspect_id from (
            select p.suspect_id
            from paid p
            join latest l on l.suspect_id = p.suspect_id and l.stream_type = p.stream_type
                         and l.stream_item = p.stream_item and l.period = p.period
            join _handed h on h.suspect_id = p.suspect_id and p.agency_code = h.from_agency
            group by p.suspect_id, p.stream_type, p.stream_item having sum(p.amount) > 0)""")
    con.execute("delete from _handed where suspect_id in (select suspect_id from _still_paying)")
    con.execute("drop table _still_paying")
    # Never to a code the register (agencies) does not list: a source system that changed its codes'
    # form (9 digits to 12) handed every open suspect to agencies without a name, each issued afresh
    # with its 逾期 lifted (a data-drift probe). Such a suspect stays where it is and is said in the
    # night's summary; once the register lists the code it goes over. (No register at all: as before.)
    if scalar(con, "select count(*) from agencies where agency_code is not null"):
        con.execute("""insert into _handover_held select suspect_id, to_agency from _handed
                       where to_agency not in (select agency_code from agencies where agency_code is not null)""")
        con.execute("delete from _handed where suspect_id in (select suspect_id from _handover_held)")


def _hand_over(con: duckdb.DuckDBPyConnection, as_of: date, run_id: str | None) -> None:
    """Move tonight's handovers (_find_handovers) to their new agency. One already issued is issued
    to it afresh — tonight's 下发日期 and a fresh 核查期限 on its next worklist (the old agency's
    deadline was the old agency's) — keeping its status, answers and recoveries so far; 挂牌督办 still
    counts from its detection (the fund's loss is as old as it was). The old agency's sheet, sent
    back, has an answered row refused, naming the agency that has it now (returns)."""
    con.execute("""
        update suspects set agency_code = h.to_agency, issued_on = null, deadline = null
        from _handed h where suspects.suspect_id = h.suspect_id""")
    con.execute("""
        insert into suspect_events (suspect_id, happened_at, event, detail, run_id)
        select suspect_id, $now, 'handed_over',
               to_json(struct_pack(as_of := $as_of, from_agency := from_agency, to_agency := to_agency,
                                   status := old_status)), $run_id
        from _handed order by suspect_id""", {"as_of": as_of, "now": china_now(), "run_id": run_id})


def _correct_names(con: duckdb.DuckDBPyConnection, as_of: date, run_id: str | None) -> None:
    """A suspect's name follows the register (待遇享受人员): one corrected there — a 生僻字 an older
    export carried as a private-use character, a typo — reaches the suspect and its next worklist,
    whose 姓名 is locked (the agency cannot mend it). Only the persons with a register row in a file
    delivered since the last merge are looked up; the old name is kept in the event."""
    if not table_exists(con, "beneficiaries"):
        return
    new_files = [h for (h,) in con.execute(
        "select file_hash from ingest_ledger where extract = 'beneficiaries' and rows_accepted > 0"
        + (" and file_hash not in (select file_hash from detect_seen_files)"
           if table_exists(con, "detect_seen_files") else "")).fetchall()]
    if not new_files:
        return
    con.execute(f"""
        create or replace temp table _renamed as
        with touched as (
            select distinct person_id from beneficiaries
            where {of_files(new_files)} and person_id in (select person_id from suspects)
        ),
        registered as ({_registered_names("touched")})
        select s.suspect_id, s.name as old_name, r.name as new_name
        from suspects s join registered r on r.person_id = s.person_id
        where s.name is distinct from r.name""")
    con.execute("update suspects set name = r.new_name from _renamed r where suspects.suspect_id = r.suspect_id")
    con.execute("""
        insert into suspect_events (suspect_id, happened_at, event, detail, run_id)
        select suspect_id, $now, 'name_corrected',
               to_json(struct_pack(as_of := $as_of, old_name := old_name, new_name := new_name)), $run_id
        from _renamed order by suspect_id""", {"as_of": as_of, "now": china_now(), "run_id": run_id})
    con.execute("drop table _renamed")


def _record_state(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """What the next incremental night starts from, and the night the suspects now show (the
    report's data night). When a rule failed tonight the merge still happened — the other rules'
    suspects are tonight's — but no night may start from it: its fingerprint is left empty, so
    the next night detects in full."""
    if not (table_exists(con, "detection_files") and table_exists(con, "detection_fingerprint")
            and table_exists(con, "detection_rules")):
        return
    from .rules import ensure_detect_schema  # noqa: PLC0415 — rules imports nothing from here; keep it so

    ensure_detect_schema(con)
    if scalar(con, "select count(*) from detection_rules where not ok"):
        con.execute("insert or replace into detect_state select 1, $as_of, null, current_timestamp", {"as_of": as_of})
        return
    con.execute("""insert or replace into detect_state
                   select 1, $as_of, fingerprint, current_timestamp from detection_fingerprint""", {"as_of": as_of})
    con.execute("""insert into detect_seen_files
                   select distinct file_hash from detection_files
                   where file_hash not in (select file_hash from detect_seen_files)""")


# A row of _changes as its event and the night's counts say it: one back changed after it had gone
# (a no_longer_detected) is 'redetected' — found again, its event with the old and new amounts.
_CHANGE_SAID = ("case when change = 'updated' and suspect_id in (select suspect_id from _gone)"
                " then 'redetected' else change end")


def update_suspects(con: duckdb.DuckDBPyConnection, as_of: date, run_id: str | None = None) -> dict[str, dict[str, int]]:
    """Merge temp table `detections` (from rules.detect) into suspects; {rule_id: {new, updated, reopened, unchanged, …}}
    (a suspect handed over is counted as `handed_over` besides its change)."""
    if not table_exists(con, "detections"):
        raise ValueError("no detections on this connection: run pipelines.rules.detect first")
    own_transaction = True
    try:
        con.execute("begin transaction")
    except duckdb.TransactionException:
        own_transaction = False  # the caller holds one
    try:
        _stage(con, as_of)
        _apply(con, as_of, run_id)
        # counted as the events say (_CHANGE_SAID)
        counts = con.execute(f"""select rule_id, {_CHANGE_SAID}, count(*) from _changes group by all
                                 union all
                                 select s.rule_id, 'handed_over', count(*) from _handed h
                                 join suspects s on s.suspect_id = h.suspect_id group by all""").fetchall()
        rule_ids = [r[0] for r in con.execute(
            "select rule_id from detection_rules" if table_exists(con, "detection_rules")
            else "select distinct rule_id from detections").fetchall()]
        for table in ("_incoming", "_changes", "_gone", "_handed"):
            con.execute(f"drop table if exists {table}")
        _record_state(con, as_of)
    except BaseException:
        if own_transaction:
            con.execute("rollback")
            # the rollback brought back an earlier night's held handovers: nothing is said of tonight's
            con.execute("drop table if exists _handover_held")
        raise
    if own_transaction:
        con.execute("commit")
    out: dict[str, dict[str, int]] = {rule_id: dict.fromkeys(CHANGES, 0) for rule_id in sorted(rule_ids)}
    for rule_id, change, n in counts:
        out.setdefault(rule_id, dict.fromkeys(CHANGES, 0))[change] = int(n)
    return out

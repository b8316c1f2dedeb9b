"""The run summary (运行摘要): what one night did, stored as runs.summary JSON and printed.

Top-level numbers are the ones the dashboard charts night by night (files, rows, suspects new /
updated / reopened, open suspects and their amount, quality warnings, worklists); per-rule and
per-reason detail sits one level down.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from .extracts import DATED_DELIVERY
from .privacy import mask_folder_name, mask_ids_in_text
from .report_mask import mask_agency_code
from .store import LOW_DISK_MB, one_line, path_text, table_exists
from .suspects import CHANGES

REASON_CHARS = 120  # a reason on the console; the whole one is in rejected_rows / ingest_ledger


def _scrub(text: str) -> str:
    """A rejection reason may quote the value it refused; never let a full ID number through. A
    reason cut short says so (…) and closes the brackets it was cut inside."""
    text = mask_ids_in_text(text)
    if len(text) <= REASON_CHARS:
        return text
    cut = text[:REASON_CHARS - 1] + "…"
    return cut + ")" * max(0, cut.count("(") - cut.count(")")) + "）" * max(0, cut.count("（") - cut.count("）"))


def _failed_reason(f) -> str:
    """What is wrong with a failed file, cut as every reason is — but where its rejected rows were
    recorded before (a file delivered again) is said whole: it is what the reader looks for."""
    if not f.already_recorded:
        return _scrub(f.message or "")
    problem = (f.message or "").removesuffix(f" ({f.already_recorded})")
    return f"{_scrub(problem)} ({mask_ids_in_text(f.already_recorded)})"


# What the night changed, as counted by suspects.update_suspects: a suspect that a changed rule
# parameter or a corrected record no longer raises is said as loudly as a new one, and so is one
# found again as it was (the parameter set back).
CHANGE_KINDS = tuple(k for k in CHANGES if k != "unchanged")
QUALITY_WARNINGS_SHOWN = 20  # on the console; the rest are said to be left off
_CHANGE_WORDS = {"redetected": "found again", "no_longer_detected": "no longer detected",
                 "handed_over": "handed over to another agency"}


def _changes_text(v: dict[str, Any]) -> str:
    return ", ".join(f"{v.get(k, 0)} {_CHANGE_WORDS.get(k, k)}" for k in CHANGE_KINDS)


def suspects_by_rule(con) -> dict[str, dict[str, Any]]:
    """Open suspects (not 已销号) per rule: count and amount at risk (涉及金额)."""
    rows = con.execute("""
        select rule_id, count(*), coalesce(sum(amount), 0)
        from suspects where status <> '已销号' group by rule_id order by rule_id""").fetchall()
    return {r: {"count": int(n), "amount": Decimal(a).quantize(Decimal("0.01"))} for r, n, a in rows}


def handovers_waiting(con) -> list[dict[str, Any]]:
    """The suspects the night would have handed over (suspects._find_handovers) but for their new
    agency's code, which the register (agencies) does not list: by that code. (Counted from the state
    alone, it also counted suspects staying for another reason — the old agency still paying — and
    said a register would hand them over: a regression probe.)"""
    if not table_exists(con, "_handover_held"):
        return []
    rows = con.execute("select to_agency, count(*) from _handover_held group by all order by 1").fetchall()
    return [{"agency_code": mask_agency_code(code), "suspects": int(n)} for code, n in rows]


def summarise(con, parts: dict[str, Any], failed: str | None = None) -> dict[str, Any]:
    """Whatever steps ran (a failed night has only some of `parts`) into one JSON-able dict."""
    s: dict[str, Any] = {"run_id": parts["run_id"], "as_of": str(parts["as_of"]),
                         "status": "failed" if failed else "completed"}
    if failed:
        s["error"] = failed
    if parts.get("store_settings"):
        s["store_settings"] = parts["store_settings"]
    if parts.get("store_disk"):
        s["store_disk"] = parts["store_disk"]
    if parts.get("casework_settings"):
        s["casework_settings"] = parts["casework_settings"]
    if parts.get("office"):
        s["office"] = parts["office"]
    if "late_delivery_days" in parts:
        s["late_delivery_days"] = parts["late_delivery_days"]
    ingested = parts.get("ingest")
    if ingested is not None:
        files = list(ingested.files)
        s["files_ingested"] = sum(f.status == "ingested" for f in files)
        # files that are no extract at all (a readme, a .txt beside the exports) apart from those
        # skipped as seen before
        s["files_not_extracts"] = sum(f.not_extract for f in files)
        s["files_skipped"] = sum(f.status == "skipped" and not f.not_extract for f in files)
        s["files_failed"] = sum(f.status == "failed" for f in files)
        s["rows_accepted"] = sum(f.rows_accepted or 0 for f in files if f.status == "ingested")
        # every row tonight added to rejected_rows: those of ingested files and of files refused whole
        s["rows_rejected"] = sum(f.rows_rejected or 0 for f in files if f.status in ("ingested", "failed"))
        s["rows_replaced"] = sum(f.rows_replaced or 0 for f in files if f.status == "ingested")
        # (the folders' names as shown: one named after a person masked, as everywhere it is said)
        deliveries = sorted({f.delivery for f in files if f.status == "ingested"})
        s["deliveries"] = [mask_folder_name(d) for d in deliveries]
        # A night run for an earlier day (catching up) reads every new delivery in the inbox, also
        # those dated after it: said, so that a replay of history is done one delivery a night.
        s["deliveries_after_as_of"] = [mask_folder_name(d) for d in deliveries
                                       if re.match(DATED_DELIVERY, d) and d[:10] > str(parts["as_of"])]
        s["rejected_by_reason"] = {_scrub(k): v for k, v in ingested.rejected_by_reason.items()}
        s["deliveries_dated_ahead"] = [mask_folder_name(d) for d in ingested.dated_ahead]
        s["failed_files"] = [{"file": mask_ids_in_text(path_text(Path(f.path).name)), "reason": _failed_reason(f)}
                             for f in files if f.status == "failed"]
        # by its path within the inbox: two deliveries holding a copy of one file read as two lines alike
        s["copies_skipped"] = [{"file": _shown_path(f.source or path_text(Path(f.path).name)),
                                "same_as": _shown_path(f.duplicate_of)}
                               for f in files if f.status == "skipped" and f.duplicate_of]
        s["file_notes"] = [{"file": mask_ids_in_text(path_text(Path(f.path).name)), "note": mask_ids_in_text(n)}
                           for f in files for n in f.notes]
    checked = parts.get("quality")
    if checked is not None:
        s["warnings"] = len(checked.warnings)
        s["quality_warnings"] = checked.warnings
        s["data_docs"] = str(checked.docs) if checked.docs else None
    if parts.get("arrivals") is not None:
        s["arrivals"] = parts["arrivals"]
    changes = parts.get("changes")
    if changes is not None:
        for kind in CHANGE_KINDS:
            s[kind] = sum(int(c.get(kind, 0)) for c in changes.values())
    detected = parts.get("detect")
    if detected is not None and detected.scope_note:
        # how tonight detected: in full (and why) or for the subjects new rows can change
        s["detect_scope"] = detected.scope_note
    if detected is not None and detected.skipped:
        s["rules_disabled"] = list(detected.skipped)
    if detected is not None and detected.errors:
        # every rule that failed, with its reason (the night's one-line failure names the first)
        s["rule_errors"] = [{"file": mask_ids_in_text(e.rule_file), "error": mask_ids_in_text(e.message)}
                            for e in detected.errors]
    if detected is not None or changes is not None:
        open_now = suspects_by_rule(con)
        s["suspects"] = sum(v["count"] for v in open_now.values())
        s["amount"] = sum((v["amount"] for v in open_now.values()), Decimal("0.00"))
        by_rule: dict[str, dict[str, Any]] = {}
        for r in (detected.results if detected is not None else []):
            by_rule[r.rule_id] = {"title": r.title, "detected": r.count, "detected_amount": r.amount,
                                  "not_rerun": r.unchanged, "parameters": r.parameters,
                                  **({"error": mask_ids_in_text(r.error)} if r.error else {})}
        for rule_id, v in open_now.items():
            by_rule.setdefault(rule_id, {}).update({"open": v["count"], "open_amount": v["amount"]})
        for rule_id, c in (changes or {}).items():
            by_rule.setdefault(rule_id, {}).update({k: int(c.get(k, 0)) for k in CHANGE_KINDS})
        s["by_rule"] = by_rule
        held = handovers_waiting(con)
        if held:
            s["handovers_waiting"] = held
        if detected is not None:
            # e.g. an office's own rule on a night its config (rule_folders) was not given; a file
            # that failed to load is named in the error already (its id is its file name)
            loaded = {rule.id for rule in detected.rules} | {Path(e.rule_file).stem for e in detected.errors}
            s["rules_not_loaded"] = sorted(rule_id for rule_id in open_now if rule_id not in loaded)
    if parts.get("casework") is not None:
        s["casework"] = parts["casework"]
    if parts.get("worklists") is not None:
        s["worklists"] = len(parts["worklists"])
        # (a worklist is named by its agency code, which may be an ID number delivered in the wrong column)
        s["worklist_files"] = [mask_ids_in_text(str(p)) for p in parts["worklists"]]
        s["worklists_retired"] = len(parts.get("worklists_retired") or [])
        # (names found in OUT, not given by fundwatch: an ID number in one is masked as in failed files')
        s["worklists_left_changed"] = [mask_ids_in_text(path_text(p)) for p in parts.get("worklists_changed") or []]
        s["worklists_left_unknown"] = [mask_ids_in_text(path_text(p)) for p in parts.get("worklists_unknown") or []]
    if parts.get("calendar_assumed_years"):
        s["calendar_assumed_years"] = parts["calendar_assumed_years"]
    if parts.get("report") is not None:
        s["dashboard"] = str(parts["report"].dashboard)
        s["summary_xlsx"] = str(parts["report"].summary)
    # Money leaves as exact text ("1234.50"), never as a float: the same form runs.summary stores.
    return json.loads(json.dumps(s, ensure_ascii=False, default=str))


ARRIVALS_SHOWN = 20  # late agencies listed on the console (as the quality warnings)


def _money(v) -> str:
    return f"{Decimal(str(v or 0)):,.2f}"


CASEWORK_SAID = {"overdue": "newly 逾期", "overdue_cleared": "逾期 lifted", "escalated": "newly 挂牌督办",
                 "escalation_lifted": "挂牌督办 lifted", "closed_recovered": "closed as recovered",
                 "major_class": "要情 classed or re-classed", "report_due_moved": "重大要情 report day moved"}


def _shown_path(source: str) -> str:
    """A file's path within the inbox as shown: each folder (and the file) named after a person
    masked as delivery folders are (privacy.mask_folder_name), ID numbers as in any text."""
    return mask_ids_in_text("/".join(mask_folder_name(part) for part in source.split("/")))


def format_summary(s: dict[str, Any]) -> str:
    """The run summary as a clerk reads it at the end of the night."""
    lines = [f"fundwatch nightly {s.get('run_id')} as of {s.get('as_of')}: {s.get('status')}"]
    if "files_ingested" in s:
        other = s.get("files_not_extracts", 0)
        lines.append(f"  files: {s['files_ingested']} ingested, {s['files_skipped']} skipped (seen before), "
                     f"{s['files_failed']} failed" + (f", {other} not extract files (ignored)" if other else ""))
        lines.append(f"  rows: {s['rows_accepted']} accepted ({s.get('rows_replaced', 0)} replaced earlier rows), "
                     f"{s['rows_rejected']} rejected")
        reasons = list(s.get("rejected_by_reason", {}).items())
        for reason, n in reasons[:10]:
            lines.append(f"    rejected {n:>6}  {reason}")
        if len(reasons) > 10:
            lines.append(f"    rejected {sum(n for _, n in reasons[10:]):>6}  for {len(reasons) - 10} other kind(s) "
                         f"of problem (all in rejected_rows and runs.summary)")
        for f in s.get("failed_files", []):
            lines.append(f"    failed file {f['file']}: {f['reason']}")
        for f in s.get("copies_skipped", []):
            lines.append(f"    skipped {f['file']}: same content as {f['same_as']}, already ingested")
        for f in s.get("file_notes", []):
            lines.append(f"    note {f['file']}: {f['note']}")
        if s.get("deliveries_after_as_of"):
            lines.append(f"  note: deliveries dated after as-of {s.get('as_of')} were read tonight: "
                         f"{', '.join(s['deliveries_after_as_of'])} (a night reads every new delivery in the inbox; "
                         "to replay past nights, give each night only its own delivery)")
        if s.get("deliveries_dated_ahead"):
            lines.append(f"  warning: deliveries named for a day after today were not read: "
                         f"{', '.join(s['deliveries_dated_ahead'])} (a mistyped date? as the latest delivery its rows "
                         "would outrank every later one: rename the folder to the day it was delivered; it is read "
                         "the next night)")
    if "new" in s:
        lines.append(f"  suspects tonight: {_changes_text(s)}")
    if s.get("rules_disabled"):
        lines.append(f"  rules disabled by config: {', '.join(s['rules_disabled'])} (not run; their open suspects "
                     "stay as last detected)")
    if s.get("rules_not_loaded"):
        lines.append(f"  rules not loaded tonight: {', '.join(s['rules_not_loaded'])} (not run; their open suspects "
                     "stay as last detected — no rule file has their id tonight: an office's own rule runs on the "
                     "nights given the config whose rule_folders holds it)")
    if "by_rule" in s:
        lines.append(f"  open suspects: {s.get('suspects', 0)}, amount at risk {_money(s.get('amount'))} yuan")
        for rule_id, v in sorted(s["by_rule"].items()):
            lines.append(f"    {rule_id:<28} {v.get('open', 0):>6} open  {_money(v.get('open_amount')):>18} yuan"
                         f"  (+{_changes_text(v)})")
    if s.get("handovers_waiting"):
        waiting = s["handovers_waiting"]
        lines.append(f"  warning: {sum(w['suspects'] for w in waiting)} open suspect(s) not handed over: the data now "
                     f"name agency code(s) {', '.join(w['agency_code'] for w in waiting)}, which the register "
                     "(agencies) does not list — a code changed in form? They stay with their agency; a register "
                     "listing the code hands them over")
    changed = {k: v for k, v in (s.get("casework") or {}).items() if v and k in CASEWORK_SAID}
    if changed:
        # the night's changes of flags (逾期 and 挂牌督办 raised or lifted, closings by recovery,
        # 要情 classes), so that a flag lifted — a night for an earlier day, an upgrade — is seen
        lines.append("  casework: " + ", ".join(f"{n} {CASEWORK_SAID[k]}" for k, n in changed.items()))
    if "worklists" in s:
        where = str(Path(s["worklist_files"][0]).parent) if s.get("worklist_files") else "-"
        retired = f"; {s['worklists_retired']} of other nights removed, superseded (on record in audit_log)" \
            if s.get("worklists_retired") else ""
        lines.append(f"  worklists: {s['worklists']} written ({where}){retired}")
        if s.get("worklists_left_changed"):
            lines.append(f"  worklists: {len(s['worklists_left_changed'])} earlier worklist(s) changed since issued, "
                         f"left in place: {', '.join(Path(p).name for p in s['worklists_left_changed'])}")
        if s.get("worklists_left_unknown"):
            lines.append(f"  worklists: {len(s['worklists_left_unknown'])} worklist(s) this store has no record of "
                         "(issued by a night it does not hold — restored from a backup? — or copied here), left in place: "
                         f"{', '.join(Path(p).name for p in s['worklists_left_unknown'])}")
    for year in s.get("calendar_assumed_years", []):
        lines.append(f"  working days: no holiday notice for {year} (chinesecalendar or config casework.holidays): "
                     f"its 核查期限 and report dates were counted Monday–Friday less the holidays the law fixes, "
                     "without the notice's 调休 and 补假")
    if "warnings" in s:
        lines.append(f"  data quality: {s['warnings']} warning(s)" + (f"; Data Docs {s['data_docs']}" if s.get("data_docs") else ""))
        shown = s.get("quality_warnings", [])[:QUALITY_WARNINGS_SHOWN]
        for w in shown:
            lines.append(f"    warning: {w}")
        if len(s.get("quality_warnings", [])) > len(shown):
            lines.append(f"    … and {len(s['quality_warnings']) - len(shown)} more warning(s) "
                         "(all in quality_results and runs.summary; the Data Docs show the checks great-expectations ran)")
    arrived = s.get("arrivals") or {}
    late = arrived.get("late") or []
    if late:
        lines.append(f"  data arrivals: {len(late)} agency(ies) late with a month of payments, by the day their "
                     "recent months came in (late_delivery_days in the config):")
        for a in late[:ARRIVALS_SHOWN]:
            streams = "; ".join(
                f"{t['insurance_type']} {t['missing_period']} "
                + (f"in part ({t['persons_owed']} of {t['persons_last']} owed)" if t["in_part"]
                   else f"missing (last {t['last_period']}, {t['persons_owed']} owed)")
                + f", due {t['expected_on']}" for t in a["streams"])
            name = f" {a['agency_name']}" if a["agency_name"] else ""
            lines.append(f"    warning: {a['agency_code']}{name}: 险种 {streams} — {a['persons_owed']:,} person(s) "
                         "it paid still owed the month (paid by no agency for it, not 暂停/终止 nor dead before it): "
                         "ask the agency for its delivery")
        if len(late) > ARRIVALS_SHOWN:
            lines.append(f"    … and {len(late) - ARRIVALS_SHOWN} more agency(ies) (all in runs.summary arrivals and on "
                         "the dashboard)")
    feeds = arrived.get("late_feeds") or []
    if feeds:
        lines.append(f"  data arrivals: {len(feeds)} feed(s) silent longer than their rhythm — late_delivery_days working "
                     "days past the longest of their last six intervals:")
        for f in feeds[:ARRIVALS_SHOWN]:
            part = f" from {f['part']}" + (f" {f['part_name']}" if f["part_name"] else "") if f["part"] else ""
            since = "no new rows since" if f["part"] else "nothing since"  # (a sender: of keys new to the store)
            lines.append(f"    warning: {f['extract']} {f['extract_name']}{part}: {since} {f['last_on']}, "
                         f"{f['silent_days']} working day(s) (its intervals at most {f['longest_days']}; due by "
                         f"{f['due_by']}) — rules reading it find nothing it did not bring: ask its sender")
        if len(feeds) > ARRIVALS_SHOWN:
            lines.append(f"    … and {len(feeds) - ARRIVALS_SHOWN} more feed(s) (all in runs.summary arrivals and on "
                         "the dashboard)")
    if (late or feeds) and s.get("deliveries_dated_ahead"):
        # the warning above it says so, but not beside the late ones: a month typed into a folder of
        # 2027-11-21 read as an agency that never sent, asked for what it had sent
        lines.append(f"  note: what is late may be in the deliveries named for a day after today, left unread: "
                     f"{', '.join(s['deliveries_dated_ahead'])} — look there before asking the sender")
    for year in arrived.get("calendar_assumed_years") or []:
        lines.append(f"  data arrivals: no holiday notice for {year} (chinesecalendar or config casework.holidays): "
                     "the feeds' working days were counted Monday–Friday less the holidays the law fixes, without "
                     "the notice's 调休 and 补假 — a feed may read late over a holiday")
    if s.get("store_settings"):
        # where DuckDB spills rows of the extracts (personal data) when a night outgrows the limit
        lines.append(f"  store: DuckDB memory limit {s['store_settings']['memory_limit']}, "
                     f"spills beyond it to {s['store_settings']['temp_directory']}")
    disk = s.get("store_disk") or {}
    if disk.get("free_mb") is not None and disk["free_mb"] < LOW_DISK_MB:
        lines.append(f"  note: the store's disk has {disk['free_mb']:,.1f} MB free: the next night may fail to write "
                     f"its changes; free some space first")
    if s.get("dashboard"):
        lines.append(f"  dashboard: {s['dashboard']}")
        lines.append(f"  summary:   {s['summary_xlsx']}")
    if s.get("error"):
        lines.append(f"  error: {s['error']}")
    # a name or reason holding a line break (a file's name can) is no line of its own: such a
    # file forged "fundwatch nightly … completed, 0 failed" in the summary (a security probe)
    return "\n".join(one_line(line) for line in lines)

"""The report (报告): the province dashboard (监督看板) and the 汇总表, drawn from the store alone.

`write_report` never re-runs detection: `fundwatch report` and the last step of the nightly flow
both call it. Outputs (under OUT):
  dashboard.html            — self-contained plotly page, works offline, identifiers masked
  汇总表_YYYYMMDD.xlsx       — agency × rule summary for the as-of date, no person-level data
Each file is written to a temp file beside it and moved into place (a reader never sees half a
file), owner-only (0600), and its export is recorded in audit_log with its sha256.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Callable

import duckdb

from . import arrivals, casework, report_dashboard, report_data, report_summary, runlock, worklists
from .config import office_name
from .store import audit, current_actor, path_text, store_catalog

DASHBOARD_NAME = "dashboard.html"


@dataclass(frozen=True)
class ReportPaths:
    dashboard: Path
    summary: Path


def summary_name(as_of: date) -> str:
    return f"汇总表_{as_of:%Y%m%d}.xlsx"


# A night's 汇总表 (summary_name)
_SUMMARY_FILE = re.compile(r"汇总表_(\d{8})\.xlsx")


def outputs_after(con: duckdb.DuckDBPyConnection, out_dir: Path, night: date) -> list[str]:
    """The names of the 汇总表 and worklists in out_dir dated after `night` that this store did not
    write (their sha256 is not on record), sorted: outputs of a night the store does not hold —
    drawn from an older copy of the store (a backup, an analyst's copy), its report would replace
    the live dashboard and 汇总表 with older figures. (A report this store drew for a later day,
    `--as-of`, is its own; a 汇总表 filed away, the night's worklists still tell.)"""
    after = f"{night:%Y%m%d}"
    found = [path for path in (out_dir.iterdir() if out_dir.is_dir() else ())  # (names as worklist_files reads them)
             if (m := _SUMMARY_FILE.fullmatch(path_text(path.name))) and m.group(1) > after and path.is_file()]
    found += [path for path, day in worklists.worklist_files(con, out_dir) if day > after]
    if not found:
        return []
    own = {h for (h,) in con.execute("select file_hash from audit_log where action in"
                                     " ('export_summary', 'export_worklist') and file_hash is not null").fetchall()}
    return sorted(path_text(path.name) for path in found if worklists.file_sha256(path) not in own)


def collect(con: duckdb.DuckDBPyConnection, as_of: date | str | None = None, config: Any = None) -> dict:
    """Everything the page and the workbook show, masked, as plain rows."""
    as_of = report_data.resolve_as_of(con, as_of)
    night = report_data.data_night(con) or as_of  # the night whose data the page shows
    if as_of == night and report_data.night_completed(con, night):
        return _collect(con, as_of, night, config)  # the flags that night's casework stored
    # Drawn for another date: 逾期 and 挂牌督办 are those of that date, not of the last night's
    # casework — and so, too, for a night that did not finish (its casework may not have run).
    # Computed in a temp view that shadows `suspects` for this connection only (DuckDB
    # resolves an unqualified name to a temp object first); nothing in the store is written.
    days = int(casework.settings(config)["escalate_after_days"])
    day = f"date '{as_of.isoformat()}'"
    store_db = store_catalog(con)
    con.execute(f"""create or replace temp view suspects as
                    select * replace ({casework.overdue_sql(day)} as overdue,
                                      {casework.escalated_sql(day, str(days))} as escalated)
                    from {store_db}.main.suspects""")
    try:
        return _collect(con, as_of, night, config)
    finally:
        con.execute("drop view if exists temp.main.suspects")


def _collect(con: duckdb.DuckDBPyConnection, as_of: date, data_as_of: date, config: Any = None) -> dict:
    """`as_of`: the date 逾期, 挂牌督办 and ages are counted to; `data_as_of`: the last night, whose
    data and statuses the page shows (the store keeps no earlier state to draw)."""
    titles = report_data.rule_titles(con, config)
    return {
        "as_of": as_of,
        "data_as_of": data_as_of,
        "headline": report_data.headline(con, data_as_of),
        "summary": report_data.summary_rows(con, titles),
        "by_rule": report_data.by_rule(con, titles),
        "by_agency": report_data.by_agency(con, titles),
        "by_status": report_data.by_status(con),
        "aging": report_data.aging(con, as_of),
        "flagged": report_data.flagged_list(con, as_of, titles),
        "major": report_data.major_list(con, as_of, titles),
        "history": report_data.run_history(con),
        "quality": report_data.quality(con),
        "arrivals": arrivals.said(con, as_of, config),  # as of the page's date
        "office": office_name(config),
    }


def _publish(con, target: Path, write: Callable[[Path], None], action: str, actor: str, detail: dict) -> Path:
    """Write via a 0600 temp file, record the audit row, then move it into place.

    The audit row is written before the file appears, so there is never an export without its
    record; if the audit cannot be written (e.g. a read-only store) no file is published.
    """
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=runlock.temp_prefix(target.name), suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o600)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # on disk before the rename makes it the real file
        finally:
            os.close(fd)
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        audit(con, action, actor, detail, file=str(target.absolute()), file_hash=digest)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def write_report(con: duckdb.DuckDBPyConnection, out_dir: str | Path, as_of: date | str | None = None,
                 actor: str | None = None, config: Any = None) -> ReportPaths:
    """Write the dashboard and the 汇总表 under out_dir; as_of defaults to the last night's. For
    another date, 逾期 and 挂牌督办 are shown as of that date (config: the escalation period)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    runlock.remove_stale_temps(out_dir)  # a killed run's unpublished files
    data = collect(con, as_of, config)
    as_of, who = data["as_of"], current_actor(actor)
    page = report_dashboard.render(data)

    def write_page(path: Path) -> None:
        path.write_text(page, encoding="utf-8")

    def write_book(path: Path) -> None:
        report_summary.write_summary(path, as_of, data["summary"], data["by_agency"], data["by_rule"],
                                     data_as_of=data["data_as_of"], office=data["office"])

    common = {"as_of": as_of.isoformat(), "suspects": data["headline"]["suspects"]}
    dashboard = _publish(con, out_dir / DASHBOARD_NAME, write_page, "export_dashboard", who, common)
    summary = _publish(con, out_dir / summary_name(as_of), write_book, "export_summary", who,
                       {**common, "rows": len(data["summary"])})
    return ReportPaths(dashboard=dashboard, summary=summary)

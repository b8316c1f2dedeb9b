"""Returns in: worklists filled in by agencies (核查结果回收), applied to suspects.

A returned workbook is read by returned_workbooks.py (by header names, not positions, so it still
reads after Excel, WPS or LibreOffice re-saved it or its protection was removed). The export it came from is told by
the 台账编号 on its cover sheet (or the workbook properties, or its rows). Each row is applied
by the outcome rules of CONTRACT §5 or refused with file, row, column and reason; the other rows
still apply. A workbook already applied (same sha256) is not applied again — only the rows refused then are
looked at again — and a row whose answer equals what is already recorded changes nothing, so a
re-saved copy is harmless too; a row of a sheet issued before the one whose answer is on record
(an earlier return saved again) is refused where it differs, not applied over the later answer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import duckdb

from . import casework
from .casework import (CLOSE_WITH_NOTE, CLOSED, IN_PROGRESS, OUTCOME_LABELS, RECOVER, REOPENED, TRANSFER,
                       TRANSFERRED, outcome_number, parse_outcome)
from .clock import china_now
from .extracts import TOTAL_ROW_SPACING, TOTAL_ROW_WORDS
from .privacy import mask_ids_in_text
from .returned_workbooks import Sheet, Uncalculated, missing_column, read_workbook
from .store import LAST_ANSWERED_SHEET, audit, current_actor, insert_many, new_run_id, scalar
from .worklists import (EARLIEST_VERIFIED_ON, EDITABLE, EXPORT_ID_PATTERN, HEADER, LOCKED, SHEET, answer_text,
                        canonical, cell_text, file_sha256, parse_date, parse_money)

RETURNS_DDL = """
create table if not exists return_refusals (
    file        varchar,
    file_hash   varchar,
    row_number  integer,      -- the Excel row the clerk sees (header is row 1); 0 = the whole file
    column_name varchar,
    suspect_id  varchar,
    reason      varchar,
    refused_at  timestamp,
    actor       varchar
)
"""

# Locked columns whose values may be quoted in a refusal; the others hold personal data.
_QUOTABLE = {"规则编号", "规则名称", "涉及金额", "所属期起", "所属期止", "下发日期", "核查期限", "疑点状态",
             "逾期", "挂牌督办", "要情类别"}


def ensure_returns_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RETURNS_DDL)  # (the worklists' tables, which returns reads: store.ensure_schema)


@dataclass
class Refusal:
    file: str
    row: int
    column: str
    reason: str
    suspect_id: str | None = None

    def __post_init__(self) -> None:
        # a reason may quote what a clerk typed — an ID number in the wrong cell: printed, stored
        # in return_refusals, it is masked like every message
        self.reason = mask_ids_in_text(self.reason)

    def line(self, name: str | None = None) -> str:
        where = f"第{self.row}行" if self.row else "整个文件"
        return f"{name or Path(self.file).name} {where} [{self.column or '-'}] {self.reason}"


@dataclass
class AppliedRow:
    file: str
    row: int
    suspect_id: str
    outcome: str
    status: str
    events: list[str]
    notice: str | None = None  # applied, but for the supervisor to look at (printed)

    def line(self, name: str | None = None) -> str:
        return mask_ids_in_text(f"{name or Path(self.file).name} 第{self.row}行 疑点 {self.suspect_id} {self.notice}")


@dataclass
class FileResult:
    file: str
    file_hash: str | None
    agency_code: str | None = None
    export_id: str | None = None
    status: str = "applied"  # applied / already_applied / unreadable / lock_file
    applied: int = 0
    unchanged: int = 0
    pending: int = 0  # rows not yet verified (nothing filled in)
    refused: int = 0
    missing: list[str] = field(default_factory=list)  # issued on the sheet, still open, not among its rows


def _listed(ids: list[str], most: int = 20) -> str:
    return "、".join(ids[:most]) + (f" 等 {len(ids)} 个疑点" if len(ids) > most else "")


@dataclass
class ReturnsReport:
    files: list[FileResult] = field(default_factory=list)
    applied: list[AppliedRow] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # file: how it is named in messages (_names_shown)
    # this command's changes: each event it writes (and the recomputation after) and each audit_log row
    run_id: str | None = None
    # what the office acts on next, named (an agency-side probe: the summary counted rows but named
    # no suspect closed or transferred, nor a 重大要情 raised and the day its report is due)
    closed: list[str] = field(default_factory=list)  # 已销号 by these returns
    transferred: list[str] = field(default_factory=list)  # 已移送 by these returns
    major: list[tuple[str, str, Any]] = field(default_factory=list)  # (suspect, class, report due) newly classed

    def name(self, file: str) -> str:
        return self.names.get(file) or Path(file).name

    @property
    def pending(self) -> int:
        return sum(f.pending for f in self.files)

    @property
    def unchanged(self) -> int:
        return sum(f.unchanged for f in self.files)

    def lines(self) -> list[str]:
        """What `fundwatch returns` prints: one line per workbook, then every refusal."""
        out = []
        for f in self.files:
            name = self.name(f.file)
            if f.status == "already_applied":
                out.append(f"{name}: 已回收过（相同文件），未重复处理")
            elif f.status == "lock_file":
                out.append(f"{name}: Excel/WPS 打开工作簿时生成的临时锁定文件（~$ 开头），不是台账，已跳过")
            elif f.status == "unreadable":
                out.append(f"{name}: 无法读取")
            else:
                out.append(f"{name}: 机构 {f.agency_code or '?'}，应用 {f.applied} 行，无变化 {f.unchanged} 行，"
                           f"未核实 {f.pending} 行，退回 {f.refused} 行"
                           + (f"，缺少 {len(f.missing)} 行" if f.missing else ""))
        if self.closed:
            out.append(f"本次销号 {len(self.closed)} 个：{_listed(self.closed)}")
        if self.transferred:
            out.append(f"本次移送 {len(self.transferred)} 个（稽核/查处，在移送台账上继续报送）：{_listed(self.transferred)}")
        if self.major:
            out.append(f"本次定为重大要情 {len(self.major)} 个（按规定时限报告）：")
            out.extend(f"  疑点 {sid} {cls}，报告期限 {due}" for sid, cls, due in self.major)
        if lacking := [f for f in self.files if f.missing]:
            out.append(f"回收表中缺少下发的行 {sum(len(f.missing) for f in lacking)} 行（仍待核实，将随下一份台账再次下发）：")
            out.extend(f"  {self.name(f.file)}：{_listed(f.missing)}" for f in lacking)
        if noticed := [a for a in self.applied if a.notice]:
            out.append(f"已应用、请核对 {len(noticed)} 处：")
            out.extend("  " + a.line(self.name(a.file)) for a in noticed)
        if self.refusals:
            out.append(f"退回 {len(self.refusals)} 处（请更正后重新报送）：")
            out.extend("  " + r.line(self.name(r.file)) for r in self.refusals)
        return [mask_ids_in_text(line) for line in out]  # a file may be named after a person


def _own_cover(con, sheet: Sheet) -> Sheet:
    """The sheet, its 台账编号 set aside where that export holds none of its rows' suspects: a
    cover copied from another sheet (a colleague's, another agency's) — read by it, every row of
    the agency's own sheet was refused as another agency's."""
    ids = _sheet_ids(sheet)
    if not sheet.export_id or not ids:
        return sheet
    issued_to, shared = con.execute(
        "select any_value(agency_code), count(*) filter (where list_contains(?, suspect_id))"
        " from worklist_rows where export_id = ?", [ids, sheet.export_id]).fetchall()[0]
    if issued_to is None or shared:
        return sheet
    return replace(sheet, export_id=None, other_cover=(sheet.export_id, issued_to))


def _with_rows_above(con, sheet: Sheet) -> Sheet:
    """The sheet with its rows above the header that name a suspect on record read as rows: a sort
    that took the header row with the data ("数据包含标题" left unticked) put answered rows above it,
    which were said to be missing from the sheet and their answers lost. A title a clerk typed
    above the header names none; a suspect's row also below the header is the row (one copied
    above it as an example, or a memo, made the real one a duplicate and lost its answer)."""
    at = sheet.columns["疑点编号"]
    below = set(_sheet_ids(sheet))
    named = {n: sid for n, values in sheet.above
             if (sid := canonical("疑点编号", values[at])) and sid not in below}
    known = {sid for (sid,) in con.execute("select suspect_id from suspects where list_contains(?, suspect_id)",
                                           [sorted(set(named.values()))]).fetchall()} if named else set()
    rows = [(n, values) for n, values in sheet.above if named.get(n) in known]
    return replace(sheet, rows=rows + sheet.rows) if rows else sheet


def _load(con, path: Path) -> Sheet:
    """The worklist sheet of a returned workbook: the one sheet with the header, or of several (a
    clerk copied the sheet) the one with answers given — an answer pre-filled on the export and left
    as it was is none. Two or more with answers are refused: which was meant cannot be told, and
    taking the first would drop the others' answers silently."""
    sheets = [_own_cover(con, _with_rows_above(con, sheet)) for sheet in read_workbook(path)]
    if len(sheets) == 1:
        return sheets[0]
    prefilled = _prefilled(con, _export_of(con, sheets[0]))
    answered = [sheet for sheet in sheets
                if any(answer != prefilled.get(sid) for sid, answer in _sheet_answers(sheet).items())]
    if len(answered) > 1:
        names = "、".join(f"“{sheet.title}”" for sheet in answered)
        raise ValueError(f"工作簿中 {len(answered)} 张工作表（{names}）都有“疑点编号”表头并填写了核实内容，"
                         "无法确定以哪一张为准：请把核实内容填在一张工作表中，删除其他副本后重新报送")
    if answered:
        return answered[0]
    return next((sheet for sheet in sheets if sheet.title == SHEET), sheets[0])


# ---------------------------------------------------------------- applying

def apply_returns(con: duckdb.DuckDBPyConnection, workbooks: list[Path], as_of: dt.date, actor: str | None = None,
                  config: Any = None, run_id: str | None = None) -> ReturnsReport:
    """Apply every returned workbook (each in its own transaction); refused rows are kept in
    return_refusals. With config, casework.refresh runs afterwards for the suspects the returns
    changed, so their 要情 class, report date and flags follow the new statuses at once (the others
    wait for the night: re-applying a workbook, or one that changed nothing, writes no event)."""
    ensure_returns_schema(con)
    actor = current_actor(actor)
    report = ReturnsReport(run_id=run_id or new_run_id(as_of, "returns"))
    # A file named twice in one call (a shell glob and its name, say) is one workbook: applied once
    # (the second was counted again as a workbook of its own, its refusals printed and audited twice).
    named: dict[Path, Path] = {}
    for given in workbooks:
        named.setdefault(Path(given).resolve(), Path(given))
    workbooks = list(named.values())
    report.names = _names_shown(workbooks)
    # where each classed loss's report counts from, before: a 重大要情 is named as raised where that
    # changed (a new report), not where only its due day moved or its class went down (_outcomes)
    classed_from = dict(con.execute("select suspect_id, class_verified_on from suspects"
                                    " where class_verified_on is not null").fetchall())
    sheets: dict[str, Sheet] = {}  # each workbook is read once: by the conflict check, then applied
    locks = {path for path in map(Path, workbooks) if _an_office_lock_file(path)}
    conflicts = _conflicting_answers(con, [p for p in workbooks if Path(p) not in locks], sheets, as_of, report.names)
    for path in workbooks:
        path = Path(path)
        if path in locks:
            report.files.append(FileResult(str(path), None, status="lock_file"))
            continue
        before = (len(report.files), len(report.applied), len(report.refusals))
        try:
            _apply_workbook(con, path, as_of, actor, report, conflicts, sheets.get(str(path)))
        except (duckdb.Error, OSError) as exc:  # a full disk, say: this workbook is undone, those before stand
            del report.files[before[0]:], report.applied[before[1]:], report.refusals[before[2]:]
            _outcomes(con, report, classed_from)  # what those before closed and transferred stands too
            raise ReturnsStopped(report, path, exc) from exc
    # Only what these returns changed: re-applying a workbook changes nothing (CONTRACT §5) — not
    # even flags of its suspects that another day would set; those are the night's. Also what an
    # earlier returns run changed and was stopped before recomputing (casework_pending).
    changed = sorted({row.suspect_id for row in report.applied}
                     | {sid for (sid,) in con.execute("select suspect_id from casework_pending").fetchall()})
    if config is not None and changed:
        try:
            casework.refresh(con, as_of, config, run_id=report.run_id, only=changed)
        except duckdb.Error as exc:
            _outcomes(con, report, classed_from)  # the answers stand: what they closed and transferred
            raise CaseworkNotRecomputed(report, exc) from exc
    _outcomes(con, report, classed_from)
    return report


def _outcomes(con, report: ReturnsReport, classed_from: dict[str, dt.date]) -> None:
    """Name what these returns closed and transferred (also where they stopped part way: what was
    applied stands), and the 重大要情 they raised: a suspect of a class reported to the province
    whose report now counts from another verification than before — classed for the first time,
    moved up a class, or a reopened one answered again; not one whose class went down or whose
    due day only moved with the settings (its report was due already). Never raises: it only
    says, and a store that just failed a write may fail a read too."""
    try:
        applied = sorted({row.suspect_id for row in report.applied})
        report.closed, report.transferred = [], []
        if applied:
            for suspect_id, status in con.execute("select suspect_id, status from suspects"
                                                  " where list_contains(?, suspect_id) order by suspect_id",
                                                  [applied]).fetchall():
                if status == casework.CLOSED:
                    report.closed.append(suspect_id)
                elif status == casework.TRANSFERRED:
                    report.transferred.append(suspect_id)
        rank = casework.CLASS_RANK
        report.major = [(sid, cls, due) for sid, cls, due, since, was in con.execute(
            "select s.suspect_id, s.major_class, s.report_due, s.class_verified_on,"
            "       arg_max(e.detail->>'from', e.happened_at)"
            " from suspects s join suspect_events e on e.suspect_id = s.suspect_id"
            " where s.major_class in (?, ?) and e.run_id = ? and e.event = 'major_class'"
            " group by all order by s.report_due, s.suspect_id",
            [casework.MAJOR, casework.MAJOR_MINISTRY, report.run_id]).fetchall()
            if classed_from.get(sid) != since or rank.get(was, 0) < rank[cls]]
    except duckdb.Error:
        pass


def _an_office_lock_file(path: Path) -> bool:
    """Excel's or WPS's owner file (~$台账.xlsx: who has the workbook open, ~165 bytes), which a glob
    of a folder a clerk's workbook is open in picks up: no workbook, passed over with a line — it
    was refused as an unrecognised file and counted among the agency's corrections to make."""
    try:
        return (path.name.startswith("~$") and 0 < path.stat().st_size < 4096
                and not path.read_bytes().startswith(b"PK"))
    except OSError:
        return False


class ReturnsStopped(RuntimeError):
    """A workbook could not be applied (its transaction undone); `report` holds those applied before it."""

    def __init__(self, report: ReturnsReport, path: Path, exc: BaseException):
        first = (str(exc).strip().splitlines() or [""])[0]
        super().__init__(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)
        self.report, self.path = report, path


class CaseworkNotRecomputed(RuntimeError):
    """The answers were applied and kept; recomputing their 要情 class and flags failed."""

    def __init__(self, report: ReturnsReport, exc: BaseException):
        super().__init__(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        self.report = report


# A 追回金额 above this many times the amount at risk is taken for a typo (an extra digit), not money
# recovered: principal and interest stay well under it.
RECOVERED_CEILING_FACTOR = 2

# A suspect as the checks of an answer read it (by position: _read_answer, _over_amount, _apply_answer)
_SUSPECT_FIELDS = ("s.suspect_id, s.agency_code, s.status, s.amount, s.outcome, s.recovered_amount,"
                   " s.verification_note, s.verified_on")


def _names_shown(workbooks: list[Path]) -> dict[str, str]:
    """{file: its name in messages}: the file name, or — where two files of one call share it (two
    clerks' copies, each kept under the name the 说明 asks for) — the path as given, so that which
    copy a line speaks of can be told."""
    by_name = Counter(Path(path).name for path in workbooks)
    return {str(path): str(path) if by_name[Path(path).name] > 1 else Path(path).name for path in workbooks}


def _conflicting_answers(con, workbooks: list[Path], sheets: dict[str, Sheet], as_of: dt.date,
                         names: dict[str, str]) -> dict[str, dict[str, str]]:
    """{suspect: {workbook path: reason}} for the rows refused because another workbook applied
    together answers the suspect differently. Of sheets issued on different nights the latest
    issued one is the answer (as when they come one after the other: an earlier sheet's differing
    answer is refused), whatever the order of the file names; copies of one sheet (two clerks'),
    or of sheets whose issue is not on record, cannot be told apart: each is refused. Workbooks
    already applied without a refusal, or unreadable, take no part (they apply nothing now). The sheets read are left
    in `sheets` by path, for applying."""
    answers: dict[str, dict[str, tuple]] = {}
    issued_at: dict[str, tuple] = {}  # path: (exported_at, as_of) of the export it is a copy of
    for path in workbooks:
        try:
            retry_rows = _earlier_application(con, file_sha256(path))
            if retry_rows == set():
                continue
            sheet = sheets[str(path)] = _load(con, path)
        except Exception:  # noqa: BLE001 — reported when the file itself is applied
            continue
        if any(c not in sheet.columns for c in HEADER):
            continue  # refused whole (a contract column deleted): it applies nothing, so vetoes nothing
        export_id = _export_of(con, sheet)  # its 台账编号, or the export its rows were copied from
        prefilled = _prefilled(con, export_id)
        # only an export the workbook names (its 台账编号) dates it: one inferred from the rows may
        # be either of two nights that showed them alike
        issued_at[str(path)] = con.execute("select max(exported_at), max(as_of) from worklist_rows where export_id = ?",
                                           [sheet.export_id]).fetchall()[0]
        # of a workbook sent again only the rows refused the last time are answers now; an answer
        # that cannot apply by its own cells (_could_apply) is refused for what it is, and vetoes no
        # other copy's
        given = {sid: answer for sid, answer in _sheet_answers(sheet, retry_rows).items()
                 if answer != prefilled.get(sid) and _could_apply(answer, as_of)}
        # A row of another agency's suspect (pasted into this sheet) is refused as that whatever it
        # says: it must not veto the owning agency's own answer sent in the same call.
        agency = _sheet_agency(con, sheet, _sheet_ids(sheet))
        owned = {r[0]: r for r in con.execute(
            f"select {_SUSPECT_FIELDS}, s.first_detected_on from suspects s where list_contains(?, suspect_id)"
            " and agency_code is not distinct from ?", [sorted(given), agency]).fetchall()}
        issued = _as_issued(con, export_id, sorted(owned))
        for sid, answer in given.items():
            if sid in owned and _could_apply_to(answer, owned[sid], *_amount_and_months(issued.get(sid))):
                answers.setdefault(sid, {})[str(path)] = answer
    # The answer on record, shown pre-filled on a 核查中 or 已重开 suspect's row, is no answer: a
    # sheet that leaves it untouched does not conflict with one that completes it.
    on_record = {sid: tuple(_comparable(c, v) for c, v in zip(EDITABLE, stored)) for sid, *stored in con.execute(
        "select suspect_id, outcome, recovered_amount, verification_note, verified_on from suspects"
        " where list_contains(?, suspect_id)", [sorted(answers)]).fetchall()}
    # ...nor are the cells the last answer applied was given (its 追回金额 above the amount was
    # recorded as the amount): a re-saved copy of that sheet sent again says nothing new
    last_given: dict[str, tuple] = {}
    for sid, detail in con.execute(
            "select suspect_id, arg_max(detail, happened_at) from suspect_events where event = 'returned'"
            " and list_contains(?, suspect_id) group by suspect_id", [sorted(answers)]).fetchall():
        d = json.loads(detail)
        last_given[sid] = tuple(_comparable(c, v) for c, v in zip(EDITABLE, (
            d.get("outcome"), d.get("given_recovered_amount", d.get("recovered_amount")), d.get("note"),
            d.get("given_verified_on", d.get("verified_on")))))
    conflicts: dict[str, dict[str, str]] = {}
    for sid, by_file in answers.items():
        given = {file: answer for file, answer in by_file.items()
                 if answer != on_record.get(sid) and answer != last_given.get(sid)}
        if len(set(given.values())) < 2:
            continue
        dated = all(issued_at[f][0] is not None for f in given)
        latest_issue = max(issued_at[f] for f in given) if dated else None
        latest_answers = {a for f, a in given.items() if issued_at[f] == latest_issue}
        if dated and len(latest_answers) == 1:
            # the later-issued sheet answers; an earlier one that says otherwise is refused
            later = "、".join(names.get(f, Path(f).name) for f in sorted(given) if issued_at[f] == latest_issue)
            for file, answer in given.items():
                if answer not in latest_answers:
                    conflicts.setdefault(sid, {})[file] = (
                        f"疑点 {sid} 在同时报送的台账 {later}（{latest_issue[1]} 下发）中核实内容不同，本台账下发在其之前："
                        "以后下发的台账为准")
            continue
        # copies of one sheet (two clerks'), or sheets not told apart, answering otherwise: each refused
        copies = "、".join(names.get(f, Path(f).name) for f in sorted(given))
        for file in given:
            conflicts.setdefault(sid, {})[file] = (f"疑点 {sid} 在同时报送的台账 {copies} 中核实内容不同，"
                                                   "无法确定以哪一份为准：请只报送其中一份")
    return conflicts


def _export_of(con, sheet: Sheet) -> str | None:
    """The export a returned sheet is a copy of: its 台账编号, else — a sheet copied into a new
    workbook carries neither cover nor properties — the export whose locked cells most of its rows
    equal (of several alike, the one whose pre-filled answers it shows, then the later). Without it, a pre-filled answer left untouched on such a copy
    read as a new answer and undid one given since on another copy (found by an outside
    model-based test of returns)."""
    if sheet.export_id:
        return sheet.export_id
    mine: dict[str, dict[str, str]] = {}
    for _, values in sheet.rows:
        cells = {c: values[i] if i < len(values) else None for c, i in sheet.columns.items()}
        if sid := canonical("疑点编号", cells.get("疑点编号")):
            mine[sid] = {c: canonical(c, cells.get(c)) for c in LOCKED if c in sheet.columns and c != "疑点编号"}
    if not mine:
        return None
    score: Counter = Counter()
    order: dict[str, int] = {}
    for n, (export_id, sid, locked) in enumerate(con.execute(
            "select export_id, suspect_id, locked from worklist_rows where list_contains(?, suspect_id)"
            " order by exported_at, export_id", [sorted(mine)]).fetchall()):
        order[export_id] = n
        issued = json.loads(locked)
        if all(text == canonical(c, issued[c]) for c, text in mine[sid].items() if c in issued):
            score[export_id] += 1
    if not score:
        return None
    best = [e for e in score if score[e] == max(score.values())]
    if len(best) > 1:
        # Nights whose rows did not change issue sheets alike but for what they show pre-filled (an
        # answer given between them): the copy is of the one whose pre-filled answers it shows.
        answers = _sheet_answers(sheet)

        def shows(export_id: str) -> int:
            return sum(answers.get(sid) == cells for sid, cells in _prefilled(con, export_id).items())
        return max(best, key=lambda e: (shows(e), order[e]))
    return best[0]


def _could_apply(answer: tuple, as_of: dt.date) -> bool:
    """Whether an answer's four cells (in EDITABLE's order, as _comparable gives them) could apply,
    as far as the cells alone tell: an outcome of the list, an amount and a date that are ones (not
    negative, not in the future), a 核实说明 and no 追回金额 where the outcome closes without a loss.
    (What needs the suspect — a recovery of more than twice its amount, a date before its 所属期 — is told by
    _could_apply_to.)"""
    cells = dict(zip(EDITABLE, answer))
    try:
        recovered = parse_money(cells["追回金额"] or None)
        verified = parse_date(cells["核实日期"] or None)
    except ValueError:
        return False
    number = parse_outcome(cells["核实结果"] or None)
    return (number is not None and (recovered is None or recovered >= 0)
            and (verified is None or EARLIEST_VERIFIED_ON <= verified <= as_of)
            and not (number in CLOSE_WITH_NOTE and (not cells["核实说明"].strip() or recovered)))


def _could_apply_to(answer: tuple, suspect, shown: Decimal | None, period_from: str | None,
                    period_to: str | None) -> bool:
    """Whether an answer that could apply by its cells (_could_apply) could apply to its suspect:
    a 追回金额 not above twice its amount, a 核实日期 not before its 所属期, a 核实说明 that is one
    (the checks _read_answer makes). A copy that cannot is refused for that, and vetoes no other
    copy's answer."""
    cells = dict(zip(EDITABLE, answer))
    return not (_over_amount(parse_money(cells["追回金额"] or None), suspect, shown)
                or _note_problem(cell_text(cells["核实说明"] or "").strip(), suspect[6])
                or _before_its_period(parse_date(cells["核实日期"] or None), suspect, period_from, period_to))


_EXPORT_ID = re.compile(EXPORT_ID_PATTERN)
# The locked cells an answer rests on: what it verified (the rule, the amount, the months)
_ANSWER_BASIS = ("规则编号", "涉及金额", "所属期起", "所属期止")


def _issued_day(export_id: str) -> dt.date | None:
    """The day a 台账编号 of ours says its sheet was issued (None: not one of ours, or no such day)."""
    match = _EXPORT_ID.fullmatch(export_id)
    try:
        return dt.datetime.strptime(match.group(1), "%Y%m%d").date() if match else None
    except ValueError:
        return None


def _as_issued(con, export_id: str | None, suspects: list[str]) -> dict[str, tuple[str, dict]]:
    """{suspect: (agency, locked cells)} as the export issued its row — else as the suspect's latest
    sheet did: what a row answers (its 涉及金额 and 所属期), and whose it is."""
    issued = {sid: (agency, json.loads(locked)) for sid, agency, locked in con.execute(
        "select suspect_id, arg_max(agency_code, exported_at), arg_max(locked, exported_at) from worklist_rows"
        " where list_contains(?, suspect_id) group by suspect_id", [suspects]).fetchall()}
    if export_id:
        issued.update({sid: (agency, json.loads(locked)) for sid, agency, locked in con.execute(
            "select suspect_id, agency_code, locked from worklist_rows where export_id = ? and list_contains(?, suspect_id)",
            [export_id, suspects]).fetchall()})
    return issued


def _amount_and_months(issued: tuple[str, dict] | None) -> tuple[Decimal | None, str | None, str | None]:
    """The 涉及金额, 所属期起 and 所属期止 a row was issued with (None where not on record)."""
    cells = issued[1] if issued else {}
    return ((Decimal(cells["涉及金额"]) if cells.get("涉及金额") else None), cells.get("所属期起") or None,
            cells.get("所属期止") or None)


def _sheet_ids(sheet: Sheet) -> list[str]:
    """The distinct 疑点编号 on a sheet's rows."""
    at = sheet.columns.get("疑点编号")
    if at is None:
        return []
    cells = (values[at] if at < len(values) else None for _, values in sheet.rows)
    return sorted({sid for v in cells if not (isinstance(v, str) and not v.strip()) and (sid := canonical("疑点编号", v))})


def _sheet_agency(con, sheet: Sheet, suspect_ids: list[str]) -> str | None:
    """The agency a returned sheet belongs to: the one its export (台账编号) was issued to; for a
    sheet whose export is not on record, the agency most of its suspects were last issued to (or,
    never issued, belong to)."""
    if sheet.export_id:
        recorded = scalar(con, "select any_value(agency_code) from worklist_rows where export_id = ?",
                          [sheet.export_id])
        if recorded is not None:
            return recorded
    votes = Counter(agency for _, agency in con.execute(
        "select suspect_id, arg_max(agency_code, exported_at) from worklist_rows"
        " where list_contains(?, suspect_id) group by suspect_id order by suspect_id", [suspect_ids]).fetchall())
    if not votes:  # (a tie goes to the agency of the first suspect by 疑点编号)
        votes = Counter(agency for (agency,) in con.execute(
            "select agency_code from suspects where list_contains(?, suspect_id) order by suspect_id",
            [suspect_ids]).fetchall())
    return votes.most_common(1)[0][0] if votes else None


def _comparable(column: str, value: Any) -> str:
    """One answer cell in a form equal for equal answers (worklists.answer_text)."""
    return value.formula if isinstance(value, Uncalculated) else answer_text(column, value)


def _sheet_answers(sheet: Sheet, rows: set[int] | None = None) -> dict[str, tuple]:
    """{suspect: its four answer cells in one comparable form} for the rows with an answer (of
    `rows` only, when given)."""
    if "疑点编号" not in sheet.columns:
        return {}
    out: dict[str, tuple] = {}
    for row_number, values in sheet.rows:
        if rows is not None and row_number not in rows:
            continue
        cells = {c: values[i] if i < len(values) else None for c, i in sheet.columns.items()}
        sid = canonical("疑点编号", cells.get("疑点编号"))
        answer = tuple(_comparable(c, cells.get(c)) for c in EDITABLE)
        if sid and any(answer):
            out[sid] = answer
    return out


def _prefilled(con, export_id: str | None) -> dict[str, tuple]:
    """{suspect: its answer cells as pre-filled on that export} (a 核查中 or 已重开 row shows the
    answer on record then). Left untouched they are no answer — also when the record has changed
    since (another copy answered later): taken as one, they would undo that newer answer."""
    if not export_id:
        return {}
    # answer_text again: a sheet issued before it dropped control characters (a note's CR)
    return {sid: tuple(answer_text(c, json.loads(cells).get(c, "")) for c in EDITABLE) for sid, cells in con.execute(
        "select suspect_id, prefilled from worklist_rows where export_id = ? and prefilled is not null",
        [export_id]).fetchall()}


def _earlier_application(con, file_hash: str) -> set[int] | None:
    """None if these bytes were never applied; else the rows of them refused the last time (empty:
    every row applied, so applying them again could change nothing). Sent again, only the refused rows
    are looked at again: what refused them may have passed (the other of two conflicting copies
    withdrawn, a 核实日期 no longer in the future); the rows applied then are not applied over
    answers the agency has given since."""
    last = scalar(con, "select max(happened_at) from audit_log where action = 'apply_return' and file_hash = ?",
                  [file_hash])
    if last is None:
        return None
    # the refusals of that last application (written with the audit row, at the same moment)
    return {row for (row,) in con.execute(
        "select distinct row_number from return_refusals where file_hash = ? and refused_at = ?",
        [file_hash, last]).fetchall()}


def _apply_workbook(con, path: Path, as_of: dt.date, actor: str, report: ReturnsReport,
                    conflicts: dict[str, dict[str, str]], sheet: Sheet | None = None) -> None:
    now = china_now()
    try:
        file_hash = file_sha256(path)
    except OSError as exc:
        report.files.append(FileResult(str(path), None, status="unreadable"))
        report.refusals.append(Refusal(str(path), 0, "", f"无法打开文件：{exc.strerror or exc}"))
        return
    # stored as a full path, as worklist exports are: "clerkA/台账.xlsx" said nothing once the
    # command's folder was forgotten, and two clerks' copies share the name the 说明 asks for
    stored = str(path.absolute())
    retry_rows = _earlier_application(con, file_hash)
    if retry_rows == set():
        report.files.append(FileResult(str(path), file_hash, status="already_applied"))
        # nothing to apply, but the file came in again: the audit log says so (the README promised it)
        con.execute(
            "insert into audit_log (happened_at, actor, action, file, file_hash, agency_code, suspect_ids, detail)"
            " select ?, ?, 'apply_return', ?, ?, arg_max(agency_code, happened_at), '[]', ? from audit_log"
            " where action = 'apply_return' and file_hash = ?",
            [now, actor, stored, file_hash, json.dumps({"already_applied": True, "as_of": as_of.isoformat(),
                                                        "run_id": report.run_id}), file_hash])
        return
    result = FileResult(str(path), file_hash)
    report.files.append(result)
    refusals: list[Refusal] = []

    def refuse(row: int, column: str, reason: str, suspect_id: str | None = None) -> None:
        refusals.append(Refusal(str(path), row, column, reason, suspect_id))

    with casework.atomic(con):
        if sheet is None:  # not read by the conflict check
            try:
                sheet = _load(con, path)
            except Exception as exc:  # not an XLSX, damaged, or no worklist sheet: say so, go on with the others
                result.status = "unreadable"
                refuse(0, "", f"不是可读取的核查台账：{str(exc) or type(exc).__name__}")
        if sheet is not None:
            _apply_sheet(con, path, sheet, as_of, result, report, refuse, now, conflicts, retry_rows)
            con.execute("insert or ignore into casework_pending select unnest(cast(? as varchar[]))",
                        [sorted({a.suspect_id for a in report.applied if a.file == str(path)})])
        if refusals:
            insert_many(con, "return_refusals",
                        ["file", "file_hash", "row_number", "column_name", "suspect_id", "reason", "refused_at", "actor"],
                        [[stored, file_hash, r.row, r.column, r.suspect_id, r.reason, now, actor] for r in refusals])
        if sheet is not None:
            audit(con, "apply_return", actor,
                  {"export_id": result.export_id, "applied": result.applied, "unchanged": result.unchanged,
                   "pending": result.pending, "refused": result.refused, "as_of": as_of.isoformat(),
                   "missing": result.missing, "run_id": report.run_id,
                   # what was printed for the supervisor to look at (AppliedRow.notice)
                   "notices": [a.line(report.name(a.file)) for a in report.applied if a.file == str(path) and a.notice]},
                  happened_at=now, file=stored, file_hash=file_hash, agency_code=result.agency_code,
                  suspect_ids=[a.suspect_id for a in report.applied if a.file == str(path)])
    report.refusals.extend(refusals)


def _apply_sheet(con, path: Path, sheet: Sheet, as_of, result: FileResult, report: ReturnsReport, refuse, now,
                 conflicts: dict[str, dict[str, str]], retry_rows: set[int] | None = None) -> None:
    missing = [c for c in HEADER if c not in sheet.columns]
    if missing:
        for c in missing:
            refuse(sheet.header_row, c, missing_column(c))
        result.refused = len(sheet.rows)
        # whose sheet it was is still known (its 台账编号, else its rows): the summary and audit_log name it
        result.agency_code, result.export_id = _sheet_agency(con, sheet, _sheet_ids(sheet)), sheet.export_id
        return

    def cell(values: tuple, column: str) -> Any:
        i = sheet.columns.get(column)
        v = values[i] if i is not None and i < len(values) else None
        return None if isinstance(v, str) and not v.strip() else v

    ids = [canonical("疑点编号", cell(v, "疑点编号")) for _, v in sheet.rows]
    export_id = _export_of(con, sheet)  # its 台账编号, or the export its rows were copied from
    prefilled = _prefilled(con, export_id)
    wanted = _sheet_ids(sheet)
    suspects = {r[0]: r for r in con.execute(
        f"select {_SUSPECT_FIELDS}, r.undone,"
        " s.period_from, s.period_to,"  # the months of the loss now on record (casework.loss_within)
        " r.old_status,"  # what its last reopening reopened
        " s.first_detected_on"  # (last, as in _could_apply_to's: _before_its_period reads it so)
        " from suspects s left join ("
        # a reopened suspect: the closing its new evidence undid (an answer to that evidence is later) —
        # or the transfer (its 核实日期) the office sent back: it had none, and an answer the clerk left
        # dated as the transfer closed the case on that day, before the office reopened it (an
        # agency-side probe); an office's reopening recorded before its date was kept: that day
        "   select e.suspect_id,"
        "          arg_max(cast(coalesce(json_extract_string(e.detail, '$.closed_on'),"
        "                                json_extract_string(e.detail, '$.verified_on'),"
        "                                case when json_extract_string(e.detail, '$.by_office') = 'true'"
        "                                     then json_extract_string(e.detail, '$.as_of') end) as date),"
        "                  e.happened_at) as undone,"
        "          arg_max(json_extract_string(e.detail, '$.old_status'), e.happened_at) as old_status"
        "   from suspect_events e where e.event = 'reopened' and list_contains(?, e.suspect_id) group by all"
        " ) r on r.suspect_id = s.suspect_id"
        " where list_contains(?, s.suspect_id)", [wanted, wanted]).fetchall()}
    issued = _as_issued(con, export_id, wanted)
    # the agency and day of this export (worklist_rows.as_of), when it is on record
    export_agency, issued_on = con.execute("select any_value(agency_code), any_value(as_of) from worklist_rows"
                                           " where export_id = ?", [export_id]).fetchall()[0]
    # Handed over (移交, suspects._hand_over) from this sheet's agency since: {suspect: the day it
    # left it} (where it is now is the suspect's agency: it may have moved on since)
    handed_over = dict(con.execute(
        """select suspect_id, arg_max(json_extract_string(detail, '$.as_of'), happened_at)
           from suspect_events
           where event = 'handed_over' and list_contains(?, suspect_id)
             and json_extract_string(detail, '$.from_agency') = ?
           group by suspect_id""", [wanted, export_agency]).fetchall())
    # A suspect reopened (new evidence) after this workbook was issued: the row answers evidence
    # the agency has since been sent again, changed — {suspect: day it reopened}.
    reopened_since: dict[str, str] = {}  # the as-of of the night that reopened it
    sent_back: set[str] = set()  # of those, reopened by the supervision office (fundwatch reopen)
    answered_since: dict[str, str] = {}
    if export_id:
        reopenings = con.execute(
            """select e.suspect_id,
                      arg_max(coalesce(json_extract_string(e.detail, '$.as_of'), cast(cast(e.happened_at as date) as varchar)),
                              e.happened_at),
                      arg_max(coalesce(json_extract_string(e.detail, '$.by_office') = 'true', false), e.happened_at)
               from suspect_events e
               join worklist_rows w on w.suspect_id = e.suspect_id and w.export_id = ?
               where e.event = 'reopened' and e.happened_at > w.exported_at
               group by e.suspect_id""", [export_id]).fetchall()
        reopened_since = {sid: on for sid, on, _ in reopenings}
        sent_back = {sid for sid, _, by_office in reopenings if by_office}
        # The answer on record came from a sheet issued after this one: this row is older than it
        # (a re-saved copy of an earlier return, say) — {suspect: as-of of that later sheet}.
        answered_since = dict(con.execute(
            f"""select e.suspect_id, cast(w2.as_of as varchar)
               from ({LAST_ANSWERED_SHEET}) e
               join worklist_rows w on w.suspect_id = e.suspect_id and w.export_id = ?
               join worklist_rows w2 on w2.suspect_id = e.suspect_id and w2.export_id = e.export_id
               where w2.exported_at > w.exported_at""", [export_id]).fetchall())
    unrecorded_day = _issued_day(sheet.export_id) if sheet.export_id and issued_on is None else None
    if unrecorded_day is not None:
        # A sheet this store has no record of, though it is one of ours by its 台账编号: issued by a
        # night the store no longer holds (restored from a backup taken before it). What it showed
        # cannot be checked, but its day can: an answer on record from another sheet issued on that
        # day or after is later than this row (a sheet the store holds for the same day was issued
        # after the restore: the night run again), which is refused where it differs (as for a
        # recorded sheet above). An older sheet's untouched pre-filled answer undid a later recovery
        # (an operations probe; the same day's catch-up, a regression probe).
        answered_since = dict(con.execute(
            # (the answer's sheet dated as recorded, else by its own 台账编号; the same day's said so:
            # issued later that day, the night run again)
            f"""select suspect_id, cast(day as varchar) || case when day = $day then '（同日重新下发）' else '' end
               from (select e.suspect_id, e.export_id,
                            coalesce(w2.as_of, try_strptime(regexp_extract(e.export_id, $pattern, 1), '%Y%m%d')::date) as day
                     from ({LAST_ANSWERED_SHEET}) e
                     left join (select export_id, any_value(as_of) as as_of from worklist_rows group by export_id) w2
                       on w2.export_id = e.export_id
                     where list_contains($wanted, e.suspect_id))
               where export_id is distinct from $sheet and day >= $day""",
            {"day": unrecorded_day, "pattern": f"^{EXPORT_ID_PATTERN}$", "wanted": wanted,
             "sheet": sheet.export_id}).fetchall())
    if sheet.other_cover:
        number, issued_to = sheet.other_cover
        refuse(0, "", f"“说明”页的台账编号 {number} 是下发给机构 {issued_to} 的另一份台账的编号，本表各行都不在其中："
                      "已按行内疑点判断台账，请更正“说明”页")
    if export_agency is None:  # export not recorded on the workbook: the agency its rows were issued to
        export_agency = _sheet_agency(con, sheet, wanted)
        if sheet.export_id and unrecorded_day is None:  # (one of ours not on record: said after its rows)
            refuse(0, "", f"台账编号 {sheet.export_id} 未有下发记录，按行内疑点判断机构")
    result.agency_code, result.export_id = export_agency, sheet.export_id

    # A suspect on two rows of one workbook (a copied row) may carry two answers: neither can be
    # told to be the one meant, so every such row is refused, naming the others.
    def blank(values: tuple) -> bool:
        return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)

    day_issued = issued_on or unrecorded_day
    if day_issued is not None and day_issued > as_of:
        # The workbook did not exist on the day its answers would be dated: a mistyped --as-of. Each
        # row is refused, so that the same bytes applied again as of a right day are looked at again.
        for row_number, values in sheet.rows:
            if not blank(values):
                refuse(row_number, "下发日期", f"本台账于 {day_issued} 下发，晚于本次回收日期 {as_of}：请检查回收日期（--as-of）")
                result.refused += 1
        return

    # each suspect's answers as applied, to tell a re-saved copy of this sheet (_says)
    answers_before: dict[str, list[dict]] = {}
    for sid, detail in con.execute(
            "select suspect_id, detail from suspect_events where event = 'returned' and list_contains(?, suspect_id)"
            " order by suspect_id, happened_at", [wanted]).fetchall():
        answers_before.setdefault(sid, []).append(json.loads(detail))
    events: list[tuple[str, str, dict]] = []
    on_sheet = SheetAnswers(path, result.file_hash, export_id, issued_on, as_of, refuse, events)
    rows_of: dict[str, list[int]] = {}
    for (row_number, values), sid in zip(sheet.rows, ids):
        if sid and not blank(values):
            rows_of.setdefault(sid, []).append(row_number)

    for (row_number, values), sid in zip(sheet.rows, ids):
        if _a_total_row(sid, values, cell):
            continue  # a sum the clerk added (合计行, merged across its first cells or not): nothing to correct
        span, column, covers_id = sheet.merged.get(row_number, (None, None, False))
        if span and (sid in suspects or covers_id):
            # what the clerk sees on a suspect's row is not what it holds: only a merged range's
            # first cell has a value (an answer merged down two rows read as blank on the second,
            # said nowhere); a title or footer merged across a row is no suspect's, read as before
            refuse(row_number, column, f"单元格 {span} 是合并单元格：合并后只有其第一个单元格有内容，其余行、列读作空白，"
                                       "本行未读取：请取消合并，逐行逐格填写后重新报送", sid if sid in suspects else None)
            result.refused += 1
            continue
        if blank(values):
            continue
        if not sid:
            refuse(row_number, "疑点编号", "疑点编号为空")
            result.refused += 1
            continue
        problems: list[tuple[str, str]] = []
        suspect = suspects.get(sid)
        if len(rows_of[sid]) > 1:
            shown = "、".join(str(r) for r in rows_of[sid])
            problems.append(("疑点编号", f"疑点 {sid if suspect is not None else _quote(sid)} 在本表出现 {len(rows_of[sid])} 次（第 {shown} 行），无法确定以哪一行为准："
                                        "请只保留一行后重新报送"))
        elif suspect is None:
            # quoted as any wrong cell: a name typed into it is not repeated (nor kept as its id)
            problems.append(("疑点编号", f"疑点编号“{_quote(sid)}”不存在"))
        elif str(path) in conflicts.get(sid, {}):
            problems.append(("核实结果", conflicts[sid][str(path)]))
        elif suspect[1] != export_agency and sid in handed_over and sid in issued:
            pass  # refused below if it carries a new answer: a row left blank, or applied before, is none
        elif suspect[1] != export_agency:
            problems.append(("疑点编号", f"疑点 {sid} 属于其他经办机构（{suspect[1]}），不在本机构台账内"))
        elif sid not in issued:
            problems.append(("疑点编号", f"疑点 {sid} 未曾下发"))
        elif unrecorded_day is not None and all(cell(values, c) is None for c in EDITABLE):
            pass  # unanswered: nothing to check it for (its day-bound cells differ from any later sheet's)
        else:
            locked = issued[sid][1]
            # a sheet not on record is held to what an answer rests on, not to the cells that change
            # with the day it was issued (下发日期, 逾期, the status, the evidence's wording)
            for column in LOCKED if unrecorded_day is None else _ANSWER_BASIS:
                if column == "疑点编号" or column not in sheet.columns or column not in locked:
                    continue
                now_text = canonical(column, cell(values, column))
                # canonical again: a sheet issued before canonical() dropped control characters
                if now_text == canonical(column, locked[column]):
                    continue
                quoted = column in _QUOTABLE
                if unrecorded_day is None:
                    shown = f"：下发为“{locked[column]}”，现为“{_quote(now_text)}”" if quoted else ""
                    problems.append((column, f"锁定列“{column}”被修改{shown}，请恢复下发时的内容"))
                else:  # not the clerk's doing: the sheet is not on record
                    shown = f"：最近下发为“{locked[column]}”，本表为“{_quote(now_text)}”" if quoted else ""
                    problems.append((column, f"锁定列“{column}”与本库最近下发的台账不一致{shown}（本台账不在本库的"
                                             "下发记录中，无法核对）：请在最新下发的台账中填写本行后报送"))
        if problems:
            for column, reason in problems:
                # an id not on record is kept as quoted in the reason only (a name typed into it)
                refuse(row_number, column, reason, sid if suspect is not None else None)
            result.refused += 1
            continue
        shown = issued[sid][1]  # what the answered sheet showed: the amount and periods verified
        shown_amount, *shown_months = _amount_and_months(issued[sid])
        answer, problems = _read_answer(cell, values, suspect, shown_amount, as_of, *shown_months)
        said = [a for a in answers_before.get(sid, []) if answer is not None and answer["number"] is not None
                and _says(a, export_id, OUTCOME_LABELS[answer["number"]], answer)]
        if said and said[-1] is answers_before[sid][-1]:
            # this sheet's row as applied before, the last answer on record: the workbook sent again —
            # as it was, or with another row changed (a transfer's recovery added, as its 说明 asks) —
            # says nothing new; not refused for what happened to the suspect since (reopened, its date
            # now before the closing it undid: told to correct rows the clerk never touched, an
            # agency-side probe)
            result.unchanged += 1
            continue
        if problems and sid in answered_since:
            # answered on a later sheet since: that is what to correct, not this older row's cells
            # (told to set 追回金额 to 0, a clerk who did was then refused as an older sheet)
            problems = [("核实结果", _answered_on_a_later_sheet(sid, answered_since[sid]))]
        handed = suspect[1] != export_agency  # (only one handed over from this agency gets here)
        if answer is None and not problems:
            if not handed:  # (one handed over is no longer this agency's to verify)
                result.pending += 1
            continue
        if sid in prefilled and tuple(_comparable(c, cell(values, c)) for c in EDITABLE) == prefilled[sid]:
            result.unchanged += 1  # the answer pre-filled on this export, untouched: no new answer
            continue
        if handed and answer is not None and any(_says(a, export_id, OUTCOME_LABELS[answer["number"]], answer)
                                                 for a in answers_before.get(sid, [])):
            result.unchanged += 1  # applied from this sheet before it was handed over (a re-saved copy)
            continue
        if handed:
            problems = [("疑点编号", f"疑点 {sid} 已于 {handed_over[sid]} 移交，现由经办机构 {suspect[1]} 核查，"
                                     f"本行未予采用：请将已核实和追回的情况告知 {suspect[1]}，由其在该机构的台账中报送")]
        elif sid in sent_back:  # (one message a row: the handover's says what the agency is to do)
            problems.append(("核实结果", f"疑点 {sid} 已于 {reopened_since[sid]} 由监督部门退回重新核实，本台账下发在此之前："
                                          "请按此后下发的台账（证据摘要载明退回原因）核查后报送"))
        elif sid in reopened_since:
            problems.append(("核实结果", f"疑点 {sid} 已于 {reopened_since[sid]} 因新证据重开，本台账下发在重开之前："
                                          "请按重开后下发的台账（涉及金额、所属期已更新）核查后报送"))
        if problems:
            for column, reason in problems:
                refuse(row_number, column, reason, sid)
            result.refused += 1
            continue
        if retry_rows is not None and row_number not in retry_rows:
            result.unchanged += 1  # applied when these bytes came before (see _earlier_application)
            continue
        answer["shown_amount"] = shown_amount
        answer["shown_periods"] = (shown.get("所属期起") or None, shown.get("所属期止") or None)
        outcome = _apply_answer(on_sheet, row_number, suspect, answer, answers_before.get(sid, []),
                                answered_since.get(sid))
        if outcome is None:
            result.refused += 1
        elif outcome == "unchanged":
            result.unchanged += 1
        else:
            result.applied += 1
            report.applied.append(outcome)
    if unrecorded_day is not None and result.refused:
        # why its rows were refused; a sheet whose every row applied gets no "correct and send again"
        last = scalar(con, "select max(as_of) from worklist_rows")
        refuse(0, "", f"台账编号 {sheet.export_id}（{unrecorded_day} 下发）不在本库的下发记录中（本库最近一次下发为 {last}）："
                      "编号可能被改动，或该台账来自本库没有的一次夜间运行（数据库从此前的备份恢复）。已按行内疑点判断机构；"
                      "无法核对其下发内容、或本库已有更新核实结果的已填行未予采用，请机构在最新下发的台账中填写后报送")
    _write_answers(con, on_sheet.answers)
    _recovered_on_another_rule(con, [a for a in report.applied if a.file == str(path) and "recovered" in a.events])
    casework.add_events(con, events, report.run_id, now)
    _not_on_the_sheet(con, sheet, ids, export_id, result, refuse)


def _recovered_on_another_rule(con, applied: list[AppliedRow]) -> None:
    """A recovery recorded on a suspect whose object (the person, payment, transaction or account)
    is another rule's suspect's too, with a recovery on record: told for the supervisor to look at
    (AppliedRow.notice). Each rule counts its suspects, so one transaction both rules found, each
    row answered 追回 8,800, counted 17,600 recovered in the 汇总表 (an audit probe); the clerk may
    have recovered it once and answered both rows."""
    if not applied:
        return
    others: dict[str, list[str]] = {}
    for sid, other, rule_id, recovered in con.execute(
            """select a.suspect_id, b.suspect_id, b.rule_id, b.recovered_amount
               from suspects a join suspects b on b.subject = a.subject and b.rule_id <> a.rule_id
               where list_contains(?, a.suspect_id) and coalesce(b.recovered_amount, 0) > 0
               order by a.suspect_id, b.suspect_id""", [[a.suspect_id for a in applied]]).fetchall():
        others.setdefault(sid, []).append(f"{other}（{rule_id}）已填报追回 {_money(recovered)} 元")
    for row in applied:
        if row.suspect_id in others:
            said = (f"疑点对象同时是疑点 {'、'.join(others[row.suspect_id])}：同一笔款项只应追回、填报一次，"
                    "如两行填报的是同一笔，请更正其中一行后重新报送")
            row.notice = f"{row.notice}；{said}" if row.notice else said


def _not_on_the_sheet(con, sheet: Sheet, ids: list[str], export_id: str | None, result: FileResult, refuse) -> None:
    """What the export issued that the returned sheet does not answer: rows deleted (said, in
    `result.missing`: they stay to be verified), and rows a clerk moved to another sheet — their
    answers are read nowhere, so each is refused, naming where it is. Said rather than passed over:
    such a suspect went on to 逾期 and 挂牌督办 against an agency that believed it had answered."""
    if export_id is None:
        return
    open_issued = [sid for (sid,) in con.execute(
        f"select w.suspect_id from worklist_rows w join suspects s using (suspect_id) where w.export_id = ?"
        f" and s.status in ({casework.OPEN_STATUSES_SQL}) order by w.row_number", [export_id]).fetchall()]
    on_sheet = set(ids)
    moved: dict[str, tuple[str, int]] = {}
    # only a row gone from the sheet: one left on it unanswered is pending (a clerk's to-do list on
    # a sheet of notes names it too)
    wanted = {sid for sid in open_issued if sid not in on_sheet}
    for title, row, text in sheet.elsewhere:
        sid = canonical("疑点编号", text)
        if sid in wanted and sid not in moved:
            moved[sid] = (title, row)
    for sid, (title, row) in moved.items():
        refuse(row, "疑点编号", f"疑点 {sid} 写在工作表“{title}”第{row}行，不在“{SHEET}”的该疑点行中，未读取："
                              f"请把核实内容填在“{SHEET}”该疑点的行中后重新报送", sid)
        result.refused += 1
    result.missing = [sid for sid in open_issued if sid not in on_sheet and sid not in moved]


# What a wrong answer cell may be quoted with in a refusal: digits, ASCII, date words. Anything else
# typed into the wrong cell (a name, a note) is quoted by its first character only: refusals are
# printed and kept in return_refusals, which hold no names.
_QUOTABLE_TEXT = re.compile(r"[0-9A-Za-z\s.,:;/\\\-+*=()%#&\"'年月日号元]*")


def _quote(value: Any) -> str:
    text = str(value)
    return mask_ids_in_text(text) if _QUOTABLE_TEXT.fullmatch(text) else text[:1] + "…"


def _quote_amount(value: Any) -> str:
    """A refused 追回金额 as quoted: a number's fraction cut after six places (=1000/3 was quoted as
    333.3333*****3333, its thirteen places masked as an account number)."""
    if isinstance(value, float):
        whole, dot, fraction = repr(value).partition(".")
        if dot and len(fraction) > 6 and "e" not in fraction:
            return _quote(f"{whole}.{fraction[:6]}") + "…"
    return _quote(value)


# What Excel shows in a cell whose formula failed (a VLOOKUP that found nothing: #N/A): in 核实说明
# it is no explanation, though a text; the other answer cells refuse it as no outcome, amount or date.
_EXCEL_ERRORS = {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA", "#SPILL!",
                 "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!"}


# A formula typed into a cell formatted as text (核实说明 is, so a long note is never read as a
# number): Excel, WPS and LibreOffice keep "=NA()" or "=B4" as the text typed, no value worked out.
# Refused only where it plainly is one, since a note in words refused is an answer sent back (three
# probes found telling them apart by characters wrong both ways): the note, on one line, parses
# whole as a formula — "=" (or "+", "-", "@" before it), operands (a cell or range on the sheet's
# grid, with a sheet as 疑点清单!B4, '核对表'!C3 or LibreOffice's $说明.A1; a call of a function Excel
# has, written NAME( ; numbers, quoted strings, error values) joined by operators, brackets balanced,
# argument commas inside calls — and refers to a cell or calls a function. So =OK(已电话核实),
# =A1 已核实!, =A1(2), =V1->V2, =P1,P2, =Tel(138…), =PZ2026001 and a bulleted list are notes. Left
# taken as notes (not told from words): a workbook's own names, table columns, array constants.
_EXCEL_FUNCTIONS = frozenset("""
    ABS ADDRESS AGGREGATE AND AREAS AVERAGE AVERAGEA AVERAGEIF AVERAGEIFS BYCOL BYROW CEILING CELL CHAR
    CHOOSE CHOOSECOLS CHOOSEROWS CLEAN CODE COLUMN COLUMNS CONCAT CONCATENATE COUNT COUNTA COUNTBLANK
    COUNTIF COUNTIFS DATE DATEDIF DATEVALUE DAY DAYS DAYS360 DOLLAR DROP EDATE EOMONTH ERROR.TYPE EXACT
    EXPAND FILTER FIND FIXED FLOOR FORMULATEXT FV HLOOKUP HOUR HSTACK HYPERLINK IF IFERROR IFNA IFS INDEX
    INDIRECT INT ISBLANK ISERR ISERROR ISEVEN ISFORMULA ISLOGICAL ISNA ISNONTEXT ISNUMBER ISODD ISOWEEKNUM
    ISREF ISTEXT LAMBDA LARGE LEFT LEN LET LOOKUP LOWER MAX MAXIFS MEDIAN MID MIN MINIFS MINUTE MOD MONTH N
    NA NETWORKDAYS NOT NOW NUMBERSTRING OFFSET OR PMT POWER PRODUCT PROPER PV RAND RANDBETWEEN RANK RATE
    REPLACE REPT RIGHT RMB ROUND ROUNDDOWN ROUNDUP ROW ROWS SEARCH SECOND SEQUENCE SHEET SHEETS SIGN SMALL
    SORT SQRT STDEV SUBSTITUTE SUBTOTAL SUM SUMIF SUMIFS SUMPRODUCT SWITCH T TAKE TEXT TEXTAFTER TEXTBEFORE
    TEXTJOIN TEXTSPLIT TIME TIMEVALUE TOCOL TODAY TOROW TRANSPOSE TRIM TRUNC UNIQUE UPPER VALUE VAR VLOOKUP
    VSTACK WEEKDAY WEEKNUM WORKDAY XLOOKUP XMATCH YEAR YEARFRAC""".split())
_SHEET = r"(?:'(?:[^'\n]|'')+'|(?:\[[^\]\n]+\])?[A-Za-z0-9_.\u3400-\u4dbf\u4e00-\u9fff]+)"
_CELL = r"\$?[A-Za-z]{1,3}\$?[0-9]{1,7}(?![A-Za-z0-9_])"
_GRID = (rf"{_CELL}(?::{_CELL})?#?|\$?[A-Za-z]{{1,3}}:\$?[A-Za-z]{{1,3}}(?![A-Za-z0-9_])"
         r"|R(?:\[-?[0-9]+\]|[0-9]*)C(?:\[-?[0-9]+\]|[0-9]*)(?![A-Za-z0-9_])")
_FORMULA_TOKEN = re.compile(
    rf"[ \t]*(?:(?P<reference>(?:{_SHEET}!|\${_SHEET}\.)?(?:{_GRID}))"
    r"|(?P<call>(?:_xlfn\.)?[A-Za-z][A-Za-z0-9.]*)\("
    r'|(?P<operand>(?:TRUE|FALSE)(?![A-Za-z0-9_])|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|"(?:[^"\n]|"")*"'
    r"|#(?:NULL!|DIV/0!|VALUE!|REF!|NAME\?|NUM!|N/A|SPILL!|CALC!|GETTING_DATA)(?![A-Za-z0-9_]))"
    r"|(?P<operator><>|<=|>=|[-+*/^&=<>%,;()@]))")
_BINARY = {"+", "-", "*", "/", "^", "&", "=", "<>", "<", ">", "<=", ">="}


def _on_the_grid(reference: str) -> bool:
    """Whether each cell of a reference is on Excel's grid (columns to XFD, rows to 1,048,576): a
    voucher number (PZ2026001) or an id (FF2026…) is none."""
    for cell in re.finditer(r"\$?([A-Za-z]{1,3})\$?([0-9]+)(?![A-Za-z0-9_])", reference.rsplit("!", 1)[-1].rsplit(".", 1)[-1]):
        column = 0
        for letter in cell.group(1).upper():
            column = column * 26 + ord(letter) - 64
        if column > 16384 or not 1 <= int(cell.group(2)) <= 1048576:
            return False
    return True


def _typed_formula(note: str) -> bool:
    """Whether the note plainly is a formula (above)."""
    if "\n" in note or "\r" in note or not note[:1] in ("=", "+", "-", "@"):
        return False  # (a list over lines is no formula)
    at = 1 if note[0] == "=" else 0  # a leading +, - or @ is read as the operator it is
    expecting, open_, refers, previous = True, [], False, ""
    while at < len(note):
        token = _FORMULA_TOKEN.match(note, at)
        if not token:
            return False if note[at:].strip() else not expecting and not open_ and refers
        text, kind = token.group().strip(), token.lastgroup
        if kind == "call":
            if not expecting or token.group("call").upper().removeprefix("_XLFN.") not in _EXCEL_FUNCTIONS:
                return False
            open_.append("call")
            refers = True
        elif kind in ("reference", "operand"):
            if not expecting or (kind == "reference" and not _on_the_grid(text)):
                return False
            expecting, refers = False, refers or kind == "reference" or text.startswith("#")
        elif expecting:  # an operator where an operand is due
            if text == "(":
                open_.append("(")
            elif text == ")" and open_ and open_[-1] == "call" and previous in ("call", ",", ";"):
                open_.pop()  # NA(), or an empty last argument
                expecting = False
            elif text in (",", ";") and open_ and open_[-1] == "call":
                pass  # an empty argument
            elif text not in ("+", "-", "@"):
                return False
        elif text == ")":
            if not open_:
                return False
            open_.pop()
        elif text in (",", ";"):
            if not open_ or open_[-1] != "call":
                return False
            expecting = True
        elif text in _BINARY:
            expecting = True
        elif text != "%":
            return False
        previous = kind if kind == "call" else text
        at = token.end()
    return not expecting and not open_ and refers


def _note_problem(note: str, on_record: str | None) -> str | None:
    """Why a 核实说明 is no explanation: an Excel error value, or a formula typed into its text cell.
    None for the note on record (pre-filled, as an earlier version took it: the clerk did not type it)."""
    if note == (on_record or "").strip():
        return None
    if note.upper() in _EXCEL_ERRORS:
        return f"核实说明“{note}”是 Excel 的错误值（公式出错），不是说明：请填写核实情况"
    if _typed_formula(note):
        return f"核实说明“{_quote(note)}”是公式，单元格为文本格式，没有计算，也不是说明：请填写核实情况"
    return None


def _excel_error(column: str, value: Any) -> str | None:
    """The refusal of an answer cell showing Excel's error value (a formula that failed), said as
    such: quoted "#…" alone, a clerk was not told the cell showed #VALUE!."""
    text = value.strip().upper() if isinstance(value, str) else None
    if text in _EXCEL_ERRORS:
        return f"{column}“{text}”是 Excel 的错误值（公式出错）：请改为直接填写{column}"
    return None


def _read_answer(cell, values, suspect, shown: Decimal | None, as_of,
                 period_from: str | None = None,
                 period_to: str | None = None) -> tuple[dict | None, list[tuple[str, str]]]:
    """The four filled-in cells, checked; (None, []) when nothing is filled in yet. `shown`: the
    涉及金额 the answered sheet showed; `period_from`, `period_to`: its 所属期起 and 止 (YYYYMM)."""
    raw = {c: cell(values, c) for c in EDITABLE}
    if all(v is None for v in raw.values()):
        return None, []
    problems = [(c, f"“{_quote(v.formula)}”是没有保存计算结果的公式：请在 Excel/WPS 中打开并保存，或直接填写数值")
                for c, v in raw.items() if isinstance(v, Uncalculated)]
    if problems:
        return {}, problems
    number = parse_outcome(raw["核实结果"])
    if raw["核实结果"] is None:
        problems.append(("核实结果", "已填写其他核实内容但未选择核实结果"))
    elif said := _excel_error("核实结果", raw["核实结果"]):
        problems.append(("核实结果", said))
    elif pair := casework.outcome_mismatch(raw["核实结果"]):
        problems.append(("核实结果", f"核实结果的编号 {pair[0]} 与其文字（第 {pair[1]} 种：{casework.OUTCOMES[pair[1]]}）不一致"
                                    "（下拉填充会把编号递增）：请从下拉列表重新选择"))
    elif number is None:
        problems.append(("核实结果", f"“{_quote(raw['核实结果'])}”不是七种核实结果之一，请从下拉列表选择"))
    recovered = verified = None
    try:
        recovered = parse_money(raw["追回金额"])
        if recovered is not None and recovered < 0:
            problems.append(("追回金额", "追回金额不能为负数"))
        elif problem := _over_amount(recovered, suspect, shown):
            problems.append(("追回金额", problem))
    except ValueError:
        problems.append(("追回金额", _excel_error("追回金额", raw["追回金额"]) or
                         f"追回金额“{_quote_amount(raw['追回金额'])}”不是金额（元，最多两位小数）"
                                     + ("：单元格显示的是四舍五入后的数，请直接填写最多两位小数的金额"
                                        if isinstance(raw["追回金额"], float) else "")))
    try:
        verified = parse_date(raw["核实日期"])
        if verified is not None and verified > as_of:
            problems.append(("核实日期", f"核实日期 {verified} 晚于今天 {as_of}"))
        elif verified is not None and verified < EARLIEST_VERIFIED_ON:
            problems.append(("核实日期", f"核实日期 {verified} 早于 {EARLIEST_VERIFIED_ON}，请检查年份"))
        elif problem := _before_its_period(verified, suspect, period_from, period_to):
            problems.append(("核实日期", problem))
        elif verified is not None and suspect[8] is not None and verified <= suspect[8]:
            # the reopened sheet shows the earlier answer's date, which a clerk may leave as it is
            problems.append(("核实日期", f"本疑点于 {suspect[8]} 移送，后由监督部门退回重新核实，核实日期 {verified} 不在移送之后："
                                        "请填写本次核实的日期" if suspect[11] == TRANSFERRED else
                             f"本疑点于 {suspect[8]} 销号后因新证据重开，核实日期 {verified} 不在销号之后："
                             "请填写本次核实的日期"))
    except ValueError:
        problems.append(("核实日期", _excel_error("核实日期", raw["核实日期"]) or
                         f"核实日期“{_quote(raw['核实日期'])}”不是日期（如 2026-11-20）"))
    # as a cell holds it: a note pre-filled on a sheet issued before reads back with _x000D_ escapes
    note = cell_text(str(raw["核实说明"])).strip() if raw["核实说明"] is not None else ""
    if said := _note_problem(note, suspect[6]):
        problems.append(("核实说明", said))
    if number in CLOSE_WITH_NOTE and not note:
        problems.append(("核实说明", f"核实结果为 {number} 的须填写核实说明"))
    # Outcomes 1, 2, 3 and 7 close a suspect without a loss (a data error corrected, an employer
    # told, no problem): money recovered there would count as a recovered loss on a suspect with no
    # verified loss — also a recovery on record (a 核查中 sheet shows it; an empty cell keeps it)
    # unless set to 0. A real overpayment recovered is outcome 4.
    # (not a closed or transferred one: no answer changes it, and the refusal says so — an older
    # sheet answered 7, the cell empty or as pre-filled, was told to clear a recovery it never typed)
    kept = recovered if recovered is not None else suspect[5]
    if number in CLOSE_WITH_NOTE and kept and suspect[2] not in (CLOSED, TRANSFERRED):
        label = OUTCOME_LABELS[number].split("，")[0].split(". ", 1)[-1]
        problems.append(("追回金额", f"核实结果为 {number}（{label}）时不应有追回金额（现为 {_money(kept)}）；"
                                    "如有多发并已追回，请选择核实结果 4，否则请把追回金额改为 0"))
    return {"number": number, "recovered": recovered, "verified": verified, "note": note or None}, problems


def _over_amount(recovered: Decimal | None, suspect, shown: Decimal | None) -> str | None:
    """A typo guard (60000 typed 600000): a 追回金额 more than twice the amount at risk. Up to that it
    covers the amount (CONTRACT §5) and is taken: an agency may recover the overpayment with its
    interest (本金及利息; recorded as the amount, _apply_answer); a 罚款 is no money of the fund's. The
    agency recovered against the amount its sheet showed, which a reversal or a changed rule parameter
    may have lowered since; and the amount recorded before, shown on the sheet, returned unchanged is
    no new claim."""
    ceiling = _amount_recovered_against(suspect, shown)
    if (recovered is not None and ceiling is not None and recovered > RECOVERED_CEILING_FACTOR * ceiling
            and _money(recovered) != _money(suspect[5])):
        if not ceiling:
            return f"涉及金额为 {_money(ceiling)}，追回金额 {recovered} 无从追回：请核对"
        return (f"追回金额 {recovered} 大于涉及金额 {ceiling} 的 {RECOVERED_CEILING_FACTOR} 倍，疑为笔误："
                "请核对（利息可计入，罚款不计入追回金额）")
    return None


def _amount_recovered_against(suspect, shown: Decimal | None) -> Decimal | None:
    """The amount a 追回金额 is weighed against: the larger of the current 涉及金额 and the sheet's."""
    return max((a for a in (suspect[3], shown) if a is not None), default=None)


def _before_its_period(verified: dt.date | None, suspect, period_from: str | None,
                       period_to: str | None = None) -> str | None:
    """No one verifies payments months before they were due: a mistyped year, 2001 for 2026, would
    close the suspect back then (a month's grace before 所属期起: some are paid ahead). The slip of
    January — last year's number typed, 2026-01-05 for 2027-01-05 — on a finding running back to
    early last year passed that bound (a year-boundary probe): a date also more than two months
    before its 所属期止 (春节's months are paid in December) and half a year before fundwatch first
    found the suspect is refused too — a verification before the payments it verifies and long
    before anyone asked. (Either alone is no slip: a year's pension paid ahead in January makes a
    late 所属期止; a death registered late makes a late detection of money an agency stopped long
    before.) The date on record stands (the span may have grown or narrowed since). `suspect`: a
    row of _SUSPECT_FIELDS … first_detected_on (its last field)."""
    if verified is None or verified == suspect[7]:
        return None
    if (floor := _months_before(period_from, 1)) and verified < floor:
        return f"核实日期 {verified} 早于疑点所属期 {period_from} 一个多月，请检查年份"
    detected = suspect[-1]
    if ((floor := _months_before(period_to, 2)) and verified < floor
            and isinstance(detected, dt.date) and verified < detected - dt.timedelta(days=183)):
        return (f"核实日期 {verified} 早于疑点所属期止 {period_to} 两个多月，也早于疑点发现（{detected}）半年多："
                "台账所列发放在此日期之后，请检查年份，填写本次核实的日期")
    return None


def _months_before(period: str | None, months: int) -> dt.date | None:
    """The first day of the month `months` before a YYYYMM period (None for anything else)."""
    if not period or not re.fullmatch(r"\d{6}", str(period)) or not 1 <= int(str(period)[4:]) <= 12:
        return None
    index = int(str(period)[:4]) * 12 + int(str(period)[4:]) - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1) if index >= 12 else None  # (no year 0)


@dataclass
class SheetAnswers:
    """The sheet a row's answer comes on, as applying the answer needs it: where it came from, the
    export it answers (its 台账编号) and the day that was issued, the day of the return, where a
    refusal goes and where the events and the suspects' new values are gathered (written once a
    sheet: a statement a row cost 1–2.5 ms, a 60,000-row return minutes)."""
    path: Path
    file_hash: str  # the returned file's sha256, in each answer's event (audit_log has it with who sent it)
    export_id: str | None
    issued_on: dt.date | None
    as_of: dt.date
    refuse: Callable[..., None]
    events: list[tuple[str, str, dict]]
    answers: list[list] = field(default_factory=list)  # _ANSWER_COLUMNS, a row an answer applied


# What an applied answer sets, a list each (one statement a sheet, _write_answers). The suspects
# were read before the sheet's rows were looked at, and a suspect answered on two rows is refused:
# no row's answer depends on another's written first.
_ANSWER_COLUMNS = ("suspect_id varchar", "status varchar", "outcome varchar", "recovered decimal(18,2)",
                   "note varchar", "verified date", "closed_on date", "shown_amount decimal(18,2)",
                   "reopened boolean", "shown_from varchar", "shown_to varchar", "closing boolean")


def _write_answers(con, answers: list[list]) -> None:
    if not answers:
        return
    values = ", ".join(f"cast(unnest(?) as {c.split()[1]}) as a_{c.split()[0]}" for c in _ANSWER_COLUMNS)
    con.execute(
        # The loss as the agency verified it — the 涉及金额 its sheet showed, or less where the amount
        # fell since (a reversal) — classes it, whatever the nights add later. An answer to a reopened
        # suspect is a verification of its own: a 重大要情 report is due from it (casework.refresh).
        "update suspects set status = a_status, outcome = a_outcome, recovered_amount = a_recovered,"
        " verification_note = a_note, verified_on = a_verified, closed_on = a_closed_on,"
        " verified_amount = least(coalesce(a_shown_amount, amount), amount),"
        " class_verified_on = if(a_reopened, null, class_verified_on),"
        " answered_period_from = a_shown_from, answered_period_to = a_shown_to,"
        # Closing: what it closed on (casework.RECORD_CLOSED_STATE_SQL) — or what the answered sheet
        # showed, where the nights since lowered or narrowed it: the agency closed it on that, and
        # the same money back (a reversal undone, a parameter set back) is no new evidence to reopen it on.
        " closed_amount = if(a_closing, greatest(amount, coalesce(a_shown_amount, amount)), closed_amount),"
        " closed_period_from = if(a_closing, least(period_from, coalesce(a_shown_from, period_from)), closed_period_from),"
        " closed_period_to = if(a_closing, greatest(period_to, coalesce(a_shown_to, period_to)), closed_period_to)"
        f" from (select {values}) a where suspects.suspect_id = a.a_suspect_id",
        [list(column) for column in zip(*answers)])


def _apply_answer(sheet: SheetAnswers, row_number: int, suspect, answer: dict,
                  answers_before: list[dict] = (), answered_on_later_sheet: str | None = None):
    """One row's answer applied to its suspect: the AppliedRow, "unchanged", or None when refused.
    Its events are added to `sheet.events` (written together, one statement a sheet);
    `answers_before`: the details of the suspect's 'returned' events, oldest first."""
    (sid, _agency, status, amount, stored_outcome, stored_recovered, stored_note, stored_verified, closed_before,
     period_from, period_to, _reopened_from, _first_detected_on) = suspect
    number = answer["number"]
    label = OUTCOME_LABELS[number]
    recovered = answer["recovered"] if answer["recovered"] is not None else stored_recovered
    # More than the amount at risk (the overpayment with its interest) covers it, and is recorded as
    # the amount: 追回金额 stays the loss recovered — what closing, 挂牌督办, a reopened suspect's
    # new loss and the 追回率 weigh it against (interest on the old amount would cover evidence found
    # later). What was above it stays in the 'returned' event and is told (AppliedRow.notice).
    ceiling = _amount_recovered_against(suspect, answer["shown_amount"])
    above = None
    if (answer["recovered"] is not None and ceiling is not None and answer["recovered"] > ceiling
            and _money(answer["recovered"]) != _money(stored_recovered)):
        above, recovered = answer["recovered"] - ceiling, ceiling
    # an empty 核实日期 keeps the one on record for the same outcome — not one from before a reopening
    kept_date = stored_verified if closed_before is None or (stored_verified and stored_verified > closed_before) else None
    verified = answer["verified"] or (kept_date if outcome_number(stored_outcome) == number else None) or sheet.as_of
    same = (outcome_number(stored_outcome) == number and (answer["note"] or None) == (stored_note or None)
            and _money(recovered) == _money(stored_recovered) and verified == stored_verified)
    # this sheet's row as applied before: the workbook re-saved (by LibreOffice, say) and sent again
    # says what it said — also where its date was re-dated (below), so the answer on record differs
    said_before = [a for a in answers_before if _says(a, sheet.export_id, label, answer)]
    if same or (said_before and said_before[-1] is answers_before[-1]):
        return "unchanged"
    if answered_on_later_sheet:
        sheet.refuse(row_number, "核实结果", _answered_on_a_later_sheet(sid, answered_on_later_sheet), sid)
        return None
    if said_before:
        # an earlier version of this very workbook, sent again after a later one was applied: it
        # would undo the later answer (a transferred case's recovery back to 已移送, say)
        sheet.refuse(row_number, "核实结果", f"本行与本台账此前报送的核实结果相同，其后已报送新的核实结果（{answers_before[-1].get('outcome')}）："
                                     "本表是此前的版本；如需更正请联系监督部门", sid)
        return None
    if status == CLOSED or (status == TRANSFERRED and number != RECOVER):
        sheet.refuse(row_number, "核实结果", f"疑点{status}，不再接受变更；如需更正请联系监督部门"
               + ("（稽核或查处追回的资金，请以核实结果 4 填写追回金额报送）" if status == TRANSFERRED else ""), sid)
        return None
    if status == TRANSFERRED and not ((recovered or 0) > (stored_recovered or 0) or (recovered or 0) >= (amount or 0)):
        # Money 稽核 or the police got back after the transfer: the agency reports it on the sheet the
        # case went out on (a transferred case is on no later sheet), as outcome 4 — else such a case
        # could never close and stayed 挂牌督办 for good. It then follows outcome 4's rule: closed once
        # covered, else 核查中, back in the agency's hands for the rest.
        sheet.refuse(row_number, "追回金额", f"疑点已移送：以核实结果 4 报送的，请填写移送后追回的金额（高于已记录的 "
                                     f"{_money(stored_recovered) or Decimal('0.00')} 元）", sid)
        return None
    given = answer["verified"]
    covers = _covers(recovered, amount, answer, period_from, period_to)
    # (also a recovery on record that covers the loss only now — its months on this sheet — closed
    # by a row whose date the clerk left as the sheet showed it: not dated back to the earlier answer)
    if (number == RECOVER and stored_verified is not None
            and (_money(recovered) != _money(stored_recovered) or (covers and status == IN_PROGRESS))
            and (status == TRANSFERRED or (status == IN_PROGRESS and outcome_number(stored_outcome) == RECOVER))):
        # Money recovered since an answer on record. A date left in the row from an earlier answer is
        # not this recovery's — the transfer's, one this sheet's row gave before, or the partial's
        # shown pre-filled on a sheet issued after it (a clerk types only the new 追回金额): a
        # closing on it would date the suspect closed on a day it was still partly open (found by an
        # outside model-based test of returns). Such a recovery that closes the suspect, or the first
        # after a transfer, is dated the day of the return — never before the answer on record; a
        # partial one keeps the date on record. Typed earlier than that, it is refused.
        closes = covers
        left = (given is None or (status == TRANSFERRED and given == stored_verified)
                or any(_given(a, "verified_on") == given.isoformat() for a in answers_before
                       if sheet.export_id is not None and a.get("export_id") == sheet.export_id)
                or (given == stored_verified and sheet.issued_on is not None and stored_verified < sheet.issued_on))
        if left:
            verified = max(sheet.as_of, stored_verified) if closes or status == TRANSFERRED else stored_verified
        elif given < stored_verified and (closes or status == TRANSFERRED):
            earlier = "移送的核实日期" if status == TRANSFERRED else "上次部分追回的核实日期"
            sheet.refuse(row_number, "核实日期", f"核实日期 {given} 早于{earlier} {stored_verified}：请填写本次追回的日期", sid)
            return None
    if number in CLOSE_WITH_NOTE:
        new_status = CLOSED
    elif number == RECOVER:
        new_status = CLOSED if covers else IN_PROGRESS
    elif number in TRANSFER:
        new_status = TRANSFERRED
    closed_on = verified if new_status == CLOSED else None
    sheet.answers.append([sid, new_status, label, None if recovered is None else format(recovered, "f"), answer["note"],
                          verified, closed_on,
                          None if answer["shown_amount"] is None else format(answer["shown_amount"], "f"),
                          status == REOPENED, *answer["shown_periods"], new_status == CLOSED])
    events = ["returned"]
    sheet.events.append((sid, "returned", {
        "file": Path(sheet.path).name, "file_hash": sheet.file_hash, "row": row_number, "export_id": sheet.export_id,
        "outcome": label,
        "recovered_amount": recovered, "verified_on": verified, "note": answer["note"],
        # the cells as given, for telling this row sent again (_says): the date may be re-dated above
        "given_verified_on": answer["verified"].isoformat() if answer["verified"] else None,
        "given_recovered_amount": answer["recovered"],
        "recovered_above_amount": above,  # of the 追回金额 given, above the amount at risk (interest)
        # the months the answered sheet showed, what the recovery is for: each answer's in its event,
        # the last one's on the suspect (answered_period_*, weighed by casework.loss_answered_sql)
        "shown_periods": list(answer["shown_periods"]),
        "status_from": status, "status_to": new_status}))
    if _money(recovered) != _money(stored_recovered):
        sheet.events.append((sid, "recovered", {"from": stored_recovered, "to": recovered, "amount": amount}))
        events.append("recovered")
    if new_status == CLOSED:
        sheet.events.append((sid, "closed", {"closed_on": closed_on, "outcome": label}))
        events.append("closed")
    elif new_status == TRANSFERRED and status != TRANSFERRED:
        sheet.events.append((sid, "transferred", {"outcome": label, "verified_on": verified}))
        events.append("transferred")
    notices = [f"追回金额 {_money(answer['recovered'])} 高于涉及金额 {_money(ceiling)}：记为追回 {_money(ceiling)} 元，"
               f"超出的 {_money(above)} 元（如利息）记入核实记录；如为笔误请联系监督部门更正"] if above else []
    if number == RECOVER and new_status == IN_PROGRESS and (recovered or 0) >= (amount or 0):
        shown_from, shown_to = answer["shown_periods"]
        notices.append(f"追回金额已达涉及金额，但疑点的损失现在所属期 {period_from}–{period_to}，不在本台账所列的 "
                       f"{shown_from}–{shown_to} 内（本台账下发后数据有变）：仍为核查中，将随下期台账下发，请核实后报送")
    elif (number == RECOVER and new_status == IN_PROGRESS and answer["shown_amount"] is not None
          and (recovered or 0) >= answer["shown_amount"] and (amount or 0) > answer["shown_amount"]):
        # the sheet's whole loss recovered, yet the suspect stays open: its loss grew after the
        # sheet was issued (another month paid) — "应用" alone left the clerk thinking it closed
        notices.append(f"追回金额已达本台账所列涉及金额 {_money(answer['shown_amount'])} 元，但本台账下发后疑点的涉及金额"
                       f"增至 {_money(amount)} 元（所属期 {period_from}–{period_to}）：仍为核查中，将随下期台账下发，"
                       "请核实新增部分后报送")
    elif (number in CLOSE_WITH_NOTE and new_status == CLOSED
          and ((answer["shown_amount"] is not None and amount is not None and amount > answer["shown_amount"])
               or not casework.loss_within(answer["shown_periods"], period_from, period_to))):
        # Closed on what it is now (the larger of the sheet's and the current evidence): a loss grown,
        # or in months the sheet did not show (a month paid after it went out), which the agency never
        # saw, is closed with it — said, as outcome 4's is, so the office can send it back (fundwatch
        # reopen) where the new month is no like case
        shown = answer["shown_amount"]
        moved = ("增至" if shown is None or (amount or 0) > shown else "减为" if (amount or 0) < shown else "仍为")
        notices.append(f"本台账下发后疑点的涉及金额{moved} {_money(amount)} 元（所属期 {period_from}–{period_to}，本台账所列 "
                       f"{_money(shown)} 元、{answer['shown_periods'][0]}–{answer['shown_periods'][1]}），"
                       "已按本行核实结果一并销号：本台账未列的部分如另有问题，请监督部门重开")
    typed = answer["recovered"]  # (one above a fallen 涉及金额, recorded as that, lowers nothing)
    if typed is not None and stored_recovered is not None and _money(typed) < _money(stored_recovered):
        # 追回金额 is the total recovered: a clerk typing this month's instalment lowered the record
        # without a word (applied: a figure typed too high is corrected so)
        notices.append(f"追回金额由 {_money(stored_recovered)} 元减为 {_money(typed)} 元：本栏应填累计追回金额"
                       "（含以前追回的），如只填了本次追回的，请改填累计数后重新报送")
    return AppliedRow(str(sheet.path), row_number, sid, label, new_status, events, "；".join(notices) or None)


def _answered_on_a_later_sheet(sid: str, day: str) -> str:
    return (f"疑点 {sid} 已按 {day} 下发的台账报送了核实结果，本台账下发在其之前，"
            "内容与之不同：如需更正，请在最新下发的台账中填写")


def _a_total_row(sid: str | None, values: tuple, cell) -> bool:
    """A total line a clerk added under the rows (a cell reads 合计, 总计…: extracts.TOTAL_ROW_WORDS;
    the 疑点编号 that or empty), with no outcome or note: passed over — refused as an unknown or
    empty 疑点编号, it asked the agency to correct a sum."""
    def total(v) -> bool:
        return isinstance(v, str) and re.sub(TOTAL_ROW_SPACING, "", v) in TOTAL_ROW_WORDS
    return ((not sid or total(sid)) and any(total(v) for v in values)
            and cell(values, "核实结果") is None and cell(values, "核实说明") is None)


def _covers(recovered: Decimal | None, amount: Decimal | None, answer: dict, period_from: str | None,
            period_to: str | None) -> bool:
    """Outcome 4 closes once 追回金额 covers 涉及金额 (CONTRACT §5) — a loss in the months the answered
    sheet showed (casework.loss_within)."""
    return (recovered or 0) >= (amount or 0) and casework.loss_within(answer["shown_periods"], period_from, period_to)


def _given(applied: dict, name: str):
    """A cell of an applied answer as the row gave it (events before 2026-12-05 kept what was stored)."""
    return applied.get(f"given_{name}", applied.get(name))


def _says(applied: dict, export_id: str | None, label: str, answer: dict) -> bool:
    """Whether a row of the export `export_id` says what `applied` (a 'returned' event's detail) said."""
    given_date = answer["verified"].isoformat() if answer["verified"] else None
    return (export_id is not None and applied.get("export_id") == export_id and applied.get("outcome") == label
            and _given(applied, "verified_on") == given_date
            and (applied.get("note") or None) == (answer["note"] or None)
            and _money(_given(applied, "recovered_amount")) == _money(answer["recovered"]))


def _money(v) -> Decimal | None:
    return None if v is None else Decimal(v).quantize(Decimal("0.01"))

"""Helpers for analyst notebooks (notebooks/*.ipynb): a read-only store and masked frames.

Notebooks call these instead of writing SQL against personal data themselves, so that every
frame they show has 公民身份号码, bank accounts and names masked, and the store is never written.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

import duckdb
import numpy as np
import pandas as pd

from .casework import NO_PROBLEM, REOPENED, STATUSES, outcome_number  # NO_PROBLEM: 7 经核实无问题, a false positive
from .clock import china_today
from .config import param_problem
from .privacy import mask_ids_in_text
from .report_data import RECOVERED_COUNTED, rule_titles
from .report_mask import free_text, mask_agency_code, mask_evidence, mask_name, mask_subject, scrub_text, secrets_in
from .resources import rules_dir
from .store import NotAStore, connect, scalar, table_exists

DEFAULT_DB = Path("demo-output") / "fundwatch.duckdb"
ENV_DB = "FUNDWATCH_DB"


def number_text(value: float) -> str:
    """A float in the notebooks' tables (pandas' display.float_format): yuan to the fen with
    separators, as the dashboard shows them; a share below 1 to four significant places. pandas'
    own turned a whole column into 4.742721e+08, the fen lost, once one value reached 1 亿 (a scale
    probe)."""
    return f"{value:,.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4g}"


def _given(path: str | Path | None) -> str | Path | None:
    """The store named by the notebook's DB_PATH or $FUNDWATCH_DB, if either is set."""
    return path or os.environ.get(ENV_DB) or None


def _default_stores() -> list[Path]:
    # `make demo` writes demo-output/ at the top of the checkout, while Jupyter starts a kernel in
    # the notebook's own folder (notebooks/): the demo's store is looked for here, then one up.
    return [Path(os.path.abspath(where / DEFAULT_DB)) for where in (Path("."), Path(".."))]


def store_path(path: str | Path | None = None) -> Path:
    """The store a notebook reads: its DB_PATH parameter, else $FUNDWATCH_DB, else the demo output
    (demo-output/fundwatch.duckdb in the current folder or its parent; the current one if neither)."""
    if given := _given(path):
        return Path(given)
    defaults = _default_stores()
    return next((p for p in defaults if p.exists()), defaults[0])


def open_store(path: str | Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open the store read-only (an analyst can never change casework from a notebook)."""
    p = store_path(path)
    if not p.exists():
        looked = str(p.resolve()) if _given(path) else " or ".join(dict.fromkeys(str(d) for d in _default_stores()))
        raise FileNotFoundError(
            f"no fundwatch store at {looked}: run `fundwatch demo` (or `make demo`) first, "
            f"or set DB_PATH in the notebook's parameters cell or the {ENV_DB} environment variable")
    con = connect(p, read_only=True)
    if not table_exists(con, "suspects"):
        # (the notebook failed two cells on, on DuckDB's "Table with name suspects does not exist",
        # holding the file)
        con.close()
        raise NotAStore(f"{p} is a DuckDB database but no fundwatch store (it has no suspects table): set "
                        f"DB_PATH or {ENV_DB} to the store a night keeps (--db, e.g. demo-output/fundwatch.duckdb)")
    return con


def latest_run(con: duckdb.DuckDBPyConnection, completed: bool = True) -> dict[str, Any] | None:
    """The last completed run (as-of, when, what it found), or None before the first night;
    completed=False: the last run whatever became of it (a failed night; one still 'running',
    which a notebook — it cannot open the store while a night holds it — sees only when that
    night was killed and no night since has marked it failed). "Last" is the one started last, as
    the suspects show it (the dashboard's 数据截至): a night run `--any-day` for an earlier day after
    a later one was no longer the latest by its as-of, and the header, LATEST_RUN_ONLY and the
    tuning's value in force were another night's."""
    if not table_exists(con, "runs"):
        return None
    which = "where status = 'completed'" if completed else ""
    cur = con.execute(f"""select run_id, command, started_at, finished_at, as_of, status, summary::varchar as summary_text
                          from runs {which}
                          order by started_at desc limit 1""")
    found = cur.fetchall()
    if not found:
        return None
    run = dict(zip([d[0] for d in cur.description], found[0]))
    try:
        run["summary"] = json.loads(run.pop("summary_text") or "null")
    except ValueError:
        run["summary"] = None
    return run


def run_parameters(run: dict[str, Any] | None, rule_id: str) -> list[dict[str, Any]] | None:
    """The parameter sets a run's detection ran `rule_id` with (runs.summary: by_rule.<id>.parameters
    — [{"params": {...}, "regions": None or [行政区划代码…]}], the first for every region without its
    own), or None: no run, the rule not run that night, or a night recorded before they were kept."""
    summary = (run or {}).get("summary") or {}
    sets = ((summary.get("by_rule") or {}).get(_as_named(rule_id)) or {}).get("parameters")
    return sets if isinstance(sets, list) and sets else None


def open_now(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The store's open suspects now, counted as the dashboard and the 汇总表 count them (在办:
    every status but 已销号, also those the latest night no longer raised): not a run's summary,
    which is as of its night, before the returns since."""
    suspects_n, open_n, open_amount = con.execute(
        "select count(*), count(*) filter (where status <> '已销号'),"
        " coalesce(sum(amount) filter (where status <> '已销号'), 0) from suspects").fetchall()[0]
    return {"suspects": int(suspects_n), "open": int(open_n), "open_amount": float(open_amount)}


# The Chinese term of each column the notebooks show, as the worklist and the 汇总表 name it: the frames
# keep their English names for code (suspects["amount"]); a table shown to a reader says 涉及金额.
COLUMN_TERMS = {
    "suspect_id": "疑点编号", "rule_id": "规则编号", "rule_title": "规则名称", "subject": "疑点对象",
    "person_id": "公民身份号码", "name": "姓名", "agency_code": "经办机构编码", "agency_name": "经办机构名称",
    "agency": "经办机构", "period_from": "所属期起", "period_to": "所属期止", "amount": "涉及金额",
    "status": "疑点状态", "first_detected_on": "首次发现日期", "last_detected_on": "最近发现日期",
    "issued_on": "下发日期", "deadline": "核查期限", "verified_on": "核实日期", "outcome": "核实结果",
    "recovered_amount": "追回金额", "recovered_counted": "计入追回金额", "recovered": "计入追回金额",
    "closed_on": "销号日期", "overdue": "逾期", "escalated": "挂牌督办", "major_class": "要情类别",
    "report_due": "要情报送期限", "suspects": "疑点数", "verified": "已核实", "no_problem": "经核实无问题",
    "confirmed": "核实属实", "precision": "查准率", "threshold": "阈值", "findings": "规则命中",
    "findings_amount": "命中金额", "happened_at": "发生时间", "event": "事件", "detail": "详情",
    "run_id": "运行编号", "as_of": "数据日期", "rows": "行数", "verification_note": "核实说明",
}


def shown(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """A copy of `frame` as a reader sees it: its columns (a Series: its labels and name) and its axes'
    names in Chinese where COLUMN_TERMS has them; a column of an office's own is shown as it is."""
    term = lambda name: COLUMN_TERMS.get(name, name) if isinstance(name, str) else name  # noqa: E731
    if isinstance(frame, pd.Series):
        out = frame.rename(index=term)  # (a Series of a suspect's fields: their names are its labels)
        out.name = term(frame.name)
        return out.rename_axis(index=term(frame.index.name))
    return frame.rename(columns=term).rename_axis(index=term(frame.index.name), columns=term(frame.columns.name))


def suspects_frame(con: duckdb.DuckDBPyConnection, rule_id: str | None = None, agency_code: str | None = None,
                   status: str | None = None, detected_on: date | None = None) -> pd.DataFrame:
    """Suspects with masked identifiers and rule titles; evidence is left out (see suspect_detail).
    `recovered_counted` is the 追回金额 the dashboard and the 汇总表 count for the suspect: up to its
    涉及金额, and nothing when its loss has moved wholly to months the answered sheet did not show.

    detected_on keeps the suspects still found on that night (last_detected_on = it): pass the
    latest run's as_of for "the suspects of the latest run". A later night killed after it updated
    the suspects (not a completed run; its findings are in the store) moved theirs on: they are
    kept too (last_detected_on ≥ it). None keeps all.
    """
    where, params = ["true"], {}
    if rule_id is not None:
        rule_id = known_rule_id(con, rule_id)
    if agency_code is not None:
        agency_code = known_agency_code(con, agency_code)
    if status is not None and status not in STATUSES:
        # an empty frame would read as "none found" ('closed', '已核销' for 已销号)
        raise KeyError(mask_ids_in_text(f"no status {status!r}: the statuses are {', '.join(STATUSES)}"))
    for column, value in (("rule_id", rule_id), ("agency_code", agency_code), ("status", status)):
        if value is not None:
            where.append(f"s.{column} = ${column}")
            params[column] = value
    if detected_on is not None:
        where.append("s.last_detected_on >= $detected_on")
        params["detected_on"] = detected_on
    df = con.execute(f"""
        select s.suspect_id, s.rule_id, s.subject, s.person_id, s.name, s.agency_code, a.agency_name,
               s.period_from, s.period_to, s.amount, s.status, s.first_detected_on, s.last_detected_on,
               s.issued_on, s.deadline, s.verified_on, s.outcome, s.recovered_amount,
               {RECOVERED_COUNTED} as recovered_counted, s.closed_on,
               coalesce(s.overdue, false) as overdue, coalesce(s.escalated, false) as escalated,
               s.major_class, s.report_due
        from suspects s
        left join (select agency_code, any_value(agency_name) as agency_name from agencies group by 1) a using (agency_code)
        where {' and '.join(where)}
        order by s.amount desc nulls last, s.suspect_id""", params).df()
    titles = rule_titles(con)
    df.insert(2, "rule_title", df["rule_id"].map(lambda r: titles.get(r, r)))
    df["subject"] = [mask_subject(s, p) for s, p in zip(df["subject"], df["person_id"])]
    df["person_id"] = df["person_id"].map(lambda v: mask_subject(v, v) if isinstance(v, str) else v)
    df["name"] = df["name"].map(lambda v: mask_name(v) if isinstance(v, str) else v)
    # an ID number delivered as an agency code is masked here as on the dashboard
    df["agency_code"] = df["agency_code"].map(lambda v: mask_agency_code(v) if isinstance(v, str) else v)
    df["suspect_id"] = df["suspect_id"].map(scrub_text)
    for col in ("amount", "recovered_amount", "recovered_counted"):
        df[col] = df[col].map(lambda v: float(v) if v is not None and not pd.isna(v) else None)
    return df


def suspect_detail(con: duckdb.DuckDBPyConnection, suspect_id: str) -> dict[str, Any]:
    """One suspect for the drill-down: its fields, evidence and event history, all masked."""
    suspect_id = str(suspect_id).strip()  # (pasted with the spaces around it)
    cur = con.execute("select * from suspects where suspect_id = ?", [suspect_id])
    found = cur.fetchall()
    if not found:
        # an ID number typed for a 疑点编号 is not echoed into the executed notebook
        raise KeyError(mask_ids_in_text(f"no suspect {suspect_id!r} in this store"))
    row = dict(zip([d[0] for d in cur.description], found[0]))
    evidence = row.pop("evidence")
    try:
        evidence = json.loads(evidence) if isinstance(evidence, str) else evidence
    except ValueError:
        evidence = {"text": evidence}
    raw_subject, raw_person = row["subject"], row["person_id"]
    row["subject"] = mask_subject(row["subject"], row["person_id"])
    row["person_id"] = mask_subject(row["person_id"], row["person_id"])
    # the evidence's names and accounts, the suspect's name — and its subject when that is masked (an
    # account SHARED_BANK_ACCOUNT's sentence repeats) — masked wherever the evidence or a detail repeats them
    secrets = {**secrets_in(evidence), **secrets_in({"name": row["name"]})}
    if raw_subject and row["subject"] != raw_subject and raw_subject != raw_person:
        secrets[str(raw_subject)] = row["subject"]
    raw_agency, row["agency_code"] = row["agency_code"], mask_agency_code(row["agency_code"])
    if raw_agency and row["agency_code"] != raw_agency:  # an ID number delivered as an agency code
        secrets[str(raw_agency)] = row["agency_code"]
    row["name"] = mask_name(row["name"])
    row["verification_note"] = free_text(row.get("verification_note"))
    row["rule_title"] = rule_titles(con).get(row["rule_id"], row["rule_id"])
    events = con.execute("""select happened_at, event, detail::varchar as detail, run_id from suspect_events
                            where suspect_id = ? order by happened_at""", [suspect_id]).fetchall()
    history = []
    for happened_at, event, detail, run_id in events:
        try:
            detail = json.loads(detail) if detail else None
        except ValueError:
            pass
        history.append({"happened_at": happened_at, "event": event, "detail": mask_evidence(detail, also=secrets),
                        "run_id": run_id})
    return {"suspect": row, "evidence": mask_evidence(evidence, also=secrets), "events": history}


def _verdicts(con, rule_id: str | None = None) -> pd.DataFrame:
    """The rule's suspects (amount, agency) and the agencies' verdicts: none for a suspect 已重开 —
    the office sent its answer back to be corrected, or new evidence came after it was closed — until
    the agency answers again (its earlier answer stays on record, not counted as a verdict)."""
    where = "where rule_id = $rule_id" if rule_id else ""
    df = con.execute(f"select rule_id, agency_code, amount, case when status = '{REOPENED}' then null else outcome end"
                     f" as outcome, recovered_amount from suspects {where}",
                     {"rule_id": rule_id} if rule_id else {}).df()
    df["amount"] = df["amount"].map(lambda v: Decimal(str(v)) if v is not None and not pd.isna(v) else Decimal(0))
    df["verdict"] = df["outcome"].map(lambda o: outcome_number(o) if isinstance(o, str) else None)
    return df


def _precision(verified: int, no_problem: int) -> float | None:
    """Share of verified suspects the agency confirmed as real (outcome 1–6); None with no verdicts."""
    return None if verified == 0 else round((verified - no_problem) / verified, 4)


def rule_precision(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per rule: suspects, verdicts returned, 经核实无问题 count and precision from those verdicts."""
    df = _verdicts(con)
    titles = rule_titles(con)
    out = []
    for rule_id, g in df.groupby("rule_id", sort=True):
        verified = int(g["verdict"].notna().sum())
        no_problem = int((g["verdict"] == NO_PROBLEM).sum())
        out.append({"rule_id": rule_id, "rule_title": titles.get(rule_id, rule_id), "suspects": len(g),
                    "verified": verified, "no_problem": no_problem, "precision": _precision(verified, no_problem)})
    return pd.DataFrame(out, columns=["rule_id", "rule_title", "suspects", "verified", "no_problem", "precision"])


def is_amount_param(param: str) -> bool:
    """A parameter in yuan (the config's rule for them: `*_threshold`, `*_amount`)."""
    return param.endswith(("_threshold", "_amount"))


def backtest_threshold(con: duckdb.DuckDBPyConnection, rule_id: str, thresholds: Iterable[float | int | Decimal],
                       param: str | None = None) -> pd.DataFrame:
    """For each threshold, the rule's recorded suspects with amount ≥ it and the agencies' verdicts.

    Only suspects the rule actually raised have verdicts, so a threshold below the one in force
    adds no verdicts here (rule_flags_at counts what it would add). The suspects' 涉及金额 is
    what is compared, so `param`, when named, must be an amount: a count of days or persons
    compared with yuan would "recommend" nonsense.
    """
    loaded = _shipped_and_own_rules()
    rule_id = known_rule_id(con, rule_id, loaded)
    if param is not None:
        params = _param_names(con, rule_id, loaded)
        if params is not None and param not in params:
            raise KeyError(f"{rule_id} has no parameter {param!r} (it has {', '.join(params) or 'none'})")
    if param is not None and not is_amount_param(param):
        raise ValueError(f"{param} is not an amount in yuan: the back-test compares suspects' 涉及金额 with each "
                         f"threshold; for {param}, rule_flags_at shows how many findings each value yields")
    limits = [yuan(t) for t in value_list(thresholds)]  # every one checked before any is computed
    df = _verdicts(con, rule_id)
    own = _own_region_values(con, rule_id, param, loaded, df)
    out = []
    for limit in limits:
        # a suspect of a region with its own value of `param` is measured against that value, which
        # a change of the config's `rules.<ID>` leaves as it is (as rule_flags_at counts findings)
        kept = df[pd.Series([a >= (o if o is not None else limit) for a, o in zip(df["amount"], own)],
                            index=df.index, dtype=bool)]
        verified = int(kept["verdict"].notna().sum())
        no_problem = int((kept["verdict"] == NO_PROBLEM).sum())
        out.append({"threshold": float(limit), "suspects": len(kept), "amount": float(sum(kept["amount"], Decimal(0))),
                    "verified": verified, "no_problem": no_problem, "confirmed": verified - no_problem,
                    "precision": _precision(verified, no_problem)})
    return pd.DataFrame(out, columns=["threshold", "suspects", "amount", "verified", "no_problem", "confirmed", "precision"])


def _own_region_values(con, rule_id: str, param: str | None, loaded, df: pd.DataFrame) -> list[Decimal | None]:
    """For each suspect of `df`, its region's own value of `param` where the latest night ran the
    rule there with a value of its own (config `regions.<code>.rules`), else None."""
    if param is None or df.empty:
        return [None] * len(df)
    from .rules import AGENCY_REGION

    try:
        rule = find_rule(rule_id, con, loaded)
    except KeyError:  # its file gone: the parameter sets cannot be bound, nor a region's value read
        return [None] * len(df)
    sets = _sets_ran(rule, latest_run(con))
    base = sets[0][0].get(param)
    own = {region: yuan(params[param]) for params, regions in sets if regions and params.get(param) != base
           for region in regions}
    if not own:
        return [None] * len(df)
    region_of = dict(con.execute(f"select agency_code, region_code from {AGENCY_REGION}").fetchall())
    return [own.get(region_of.get(code)) for code in df["agency_code"]]


# The largest amount the store holds (DECIMAL(18,2)): a threshold beyond it compares with nothing.
_MAX_YUAN = Decimal("9999999999999999.99")
_GROUPED = re.compile(r"[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?")  # 50,000 or 1,234,567.89


def yuan(value: Any) -> Decimal:
    """A threshold in yuan as a number: 50000, 50000.5, '50000', '50,000' or Decimal; refused in
    words otherwise ('5万' was Python's decimal.InvalidOperation, naming neither value nor fix), as
    is one below 0 or beyond any amount the store can hold. A NumPy number is the number it is."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (int, float, Decimal, str)) and not isinstance(value, bool):  # (True is 1 to Python)
        text = str(value).strip()
        if _GROUPED.fullmatch(text):
            text = text.replace(",", "")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            amount = None
        if amount is not None and amount.is_finite():
            if amount < 0:
                raise ValueError(f"threshold {value!r} is below 0: an amount of yuan at risk is never negative")
            if amount > _MAX_YUAN:
                raise ValueError(f"threshold {value!r} is beyond any amount the store can hold (up to {_MAX_YUAN:,})")
            return amount
    raise ValueError(f"threshold {value!r} is not a number of yuan: write it in digits, e.g. 50000 or 50,000 "
                     "(5万 is 50000)")


def _number(amount: Decimal) -> int | float:
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def value_list(values: Any) -> list:
    """The thresholds or values asked for: one given alone (50000, or '50000' — which is not the five
    values '5', '0', '0', '0', '0') is a list of one; NumPy's numbers (np.arange(40000, 60001, 10000),
    a pandas column) are the Python numbers they are (np.int64 was "not a number of yuan")."""
    if isinstance(values, (str, bytes, int, float, Decimal, np.generic)):
        values = [values]
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def known_agency_code(con: duckdb.DuckDBPyConnection, agency_code: str) -> str:
    """The agency code as given (trimmed), refused when neither the agencies extract nor any suspect
    has it: a mistyped code showed "0 suspects", read as an agency with nothing found."""
    code = str(agency_code).strip()
    known = con.execute("select count(*) > 0 from suspects where agency_code = $c", {"c": code}).fetchall()[0][0]
    if not known and table_exists(con, "agencies"):
        known = con.execute("select count(*) > 0 from agencies where agency_code = $c", {"c": code}).fetchall()[0][0]
    if not known:
        shown = mask_agency_code(code)  # (an ID number typed for a code is not echoed)
        raise KeyError(mask_ids_in_text(f"no agency {shown!r} in this store's agencies or suspects "
                                        "(经办机构编码, e.g. 360702001)"))
    return code


def _as_named(rule_id: Any) -> str:
    """A rule id as rules are named: upper case, the only case a rule id can have (rules.py's
    _RULE_ID), so 'paid_after_death' is PAID_AFTER_DEATH."""
    return str(rule_id).strip().upper()


def _shipped_and_own_rules() -> list:
    """The rules of the rules directory that load (pipelines.rules.Rule), read once per call of
    a function here that needs them more than once."""
    from .rules import load_rules

    return load_rules()[0]


def known_rule_id(con: duckdb.DuckDBPyConnection, rule_id: str, loaded: list | None = None) -> str:
    """The rule id as rules are named (_as_named). KeyError for an id that no rule of the
    rules directory, of the store's catalogue or of its suspects has: a misspelt id would give an
    empty frame or a back-test of zeros, which read as "nothing found"."""
    wanted = _as_named(rule_id)
    known = {rule.id for rule in (loaded if loaded is not None else _shipped_and_own_rules())}
    known |= {r for (r,) in con.execute("select distinct rule_id from suspects").fetchall()}
    if table_exists(con, "rule_catalogue"):
        known |= {r for (r,) in con.execute("select rule_id from rule_catalogue").fetchall()}
    if wanted not in known:
        # (an ID number typed for a rule id is not echoed into the executed notebook)
        raise KeyError(mask_ids_in_text(f"no rule {rule_id!r}: the rules are {', '.join(sorted(known))}"))
    return wanted


def _param_names(con: duckdb.DuckDBPyConnection, rule_id: str, loaded: list | None = None) -> list[str] | None:
    """The rule's parameters: its file's, else — the file gone — those the latest night ran it with
    (runs.summary); None when neither is known (nothing to check a parameter's name against)."""
    try:
        return list(find_rule(rule_id, con, loaded).params)
    except KeyError:
        sets = run_parameters(latest_run(con), rule_id)
        return sorted({name for s in sets for name in s.get("params") or {}}) if sets else None


def find_rule(rule_id: str, con: duckdb.DuckDBPyConnection | None = None, loaded: list | None = None):
    """The rule (pipelines.rules.Rule: title, params, sql) with this id from the rules directory —
    or, with a store, from the file the last night that ran it read it from (an office's own rule,
    config `rule_folders`), as that file is now. KeyError when there is none that loads."""
    from .rules import parse_rule

    rule_id = _as_named(rule_id)
    for rule in (loaded if loaded is not None else _shipped_and_own_rules()):
        if rule.id == rule_id:
            return rule
    if con is not None and table_exists(con, "rule_catalogue"):
        recorded = con.execute("select rule_file from rule_catalogue where rule_id = ?", [rule_id]).fetchall()
        if recorded:
            file = recorded[0][0]
            if not file or not Path(file).is_file():
                raise KeyError(f"rule {rule_id}: its file {file} (as the last night that ran it read it) is gone")
            try:
                return parse_rule(Path(file))
            except (ValueError, OSError) as exc:
                raise KeyError(f"rule {rule_id}: its file {file} no longer loads: {mask_ids_in_text(exc)}") from None
    raise KeyError(f"no loadable rule {rule_id} under {rules_dir()}")


def rule_flags_at(con: duckdb.DuckDBPyConnection, rule_id: str, param: str, values: Iterable[Any],
                  as_of: date | None = None) -> pd.DataFrame:
    """How many findings (and how much money) the rule's own SQL yields at each value of `param`:
    what the night would raise with that value in the config's `rules.<ID>` section.

    Runs the rule's query read-only against the store's extracts with the parameter sets the latest
    night ran it with (its config, per region: a region's own value of `param` stays its own, as a
    config change would leave it), `param` set to each value; the findings of each set kept in its
    regions, one a subject, as the night keeps them. Without such a night, the rule file's values.
    as_of defaults to the latest run's. It is the day the rule is run for ($as_of), over the store's
    extracts as they are now: an earlier day does not take back the deliveries read since (a death
    reported later, a corrected row) — what that night found is in its runs.summary (warned).
    """
    from .rules import AGENCY_REGION, bind, region_kept

    loaded = _shipped_and_own_rules()
    rule = find_rule(known_rule_id(con, rule_id, loaded), con, loaded)
    rule_id = rule.id
    if rule.engine != "sql":
        raise ValueError(f"{rule_id} is a model rule; its threshold is not a query parameter")
    if param not in rule.params:
        raise KeyError(f"{rule_id} has no parameter {param!r} (it has {', '.join(rule.params) or 'none'})")
    run = latest_run(con)
    as_of = as_of or (run["as_of"] if run and run.get("as_of") else china_today())
    if isinstance(as_of, str):  # '2026-11-21', as suspects_frame's detected_on takes it
        as_of = date.fromisoformat(as_of)
    if isinstance(as_of, datetime):  # a datetime or a pandas Timestamp: its day, as a night binds $as_of
        as_of = as_of.date()
    if run and run.get("as_of") and as_of < date.fromisoformat(str(run["as_of"])[:10]):
        warnings.warn(f"rule_flags_at as of {as_of} runs {rule_id} over the store's extracts as they are now, "
                      f"with the deliveries read since (up to the night of {str(run['as_of'])[:10]}): "
                      "not what the night "
                      f"of {as_of} found — that night's figures are in its runs.summary (by_rule.{rule_id})",
                      stacklevel=2)
    values = [_param_value(rule, param, v) for v in value_list(values)]  # all checked before any runs
    sets = _sets_ran(rule, run)
    overridden = [r for _, regions in sets if regions for r in regions]
    out = []
    if rule.watch:
        # The nightly gives a watching rule only its watched persons' payments, to read less; the
        # rule's own query picks them out of all payments alike (a temp view: the store is read-only).
        con.execute("create or replace temp view payments_watch as select * from payments")
    try:
        for v in values:
            if not overridden:
                n, amount = con.execute(f"select count(*), coalesce(sum(amount), 0) from ({rule.sql}) r"
                                        " where r.subject is not null", bind(rule, {**sets[0][0], param: v}, as_of)
                                        ).fetchall()[0]
                out.append({param: v, "findings": int(n), "amount": float(amount)})
                continue
            # Each set's findings into a temp table (the store is read-only; temp tables are the
            # connection's), then counted and summed in DuckDB: fetched into a dict, a million
            # persons' findings took 4.8 s and 1 GB of Python (a scale probe), where one set takes 0.1 s.
            con.execute("create or replace temp table _fw_flags (subject varchar, amount decimal(18, 2))")
            for params, regions in sets:
                base = params.get(param) == sets[0][0].get(param)  # a region's own value stays its own
                bound = bind(rule, {**params, param: v} if base else params, as_of)
                # (a name of its own: the rule's query, bound in the same statement, may have a $regions)
                keep, bound["fw_regions"] = region_kept(regions, overridden, "fw_regions")
                con.execute(f"""insert into _fw_flags
                                select cast(r.subject as varchar), coalesce(r.amount, 0) from ({rule.sql}) r
                                left join {AGENCY_REGION} a on a.agency_code = r.agency_code
                                where r.subject is not null and {keep}""", bound)
            # one a subject: the larger where two sets found one
            n, amount = con.execute("""select count(*), coalesce(sum(amount), 0) from (
                                           select subject, max(amount) as amount from _fw_flags group by subject)"""
                                    ).fetchall()[0]
            out.append({param: v, "findings": int(n), "amount": float(amount)})
    finally:
        con.execute("drop view if exists temp.main.payments_watch")
        con.execute("drop table if exists temp.main._fw_flags")
    return pd.DataFrame(out, columns=[param, "findings", "amount"])


def _sets_ran(rule, run: dict[str, Any] | None) -> list[tuple[dict[str, Any], list[str] | None]]:
    """The parameter sets (params, regions; None: every region without its own) the latest night
    ran `rule` with, over the rule file's values — or the file's alone. An account listed in config
    (fiscal_accounts) is masked in the night's record: that parameter keeps the file's value."""
    ran = run_parameters(run, rule.id) or [{"params": {}, "regions": None}]

    def usable(name: str, value: Any) -> bool:
        if name not in rule.params:
            return False
        texts = value if isinstance(value, list) else [value]
        return not any(isinstance(t, str) and "*" in t for t in texts)

    return [({**rule.params, **{k: v for k, v in (s.get("params") or {}).items() if usable(k, v)}},
             s.get("regions") or None) for s in ran]


def _param_value(rule, param: str, value: Any) -> Any:
    """`value` as the night would bind it for `param`, or ValueError saying why it cannot be: the
    kind of the rule file's default and within its `param_bounds`, as config.param_problem checks
    an office's config (a count of days of None, or 1 person for an account shared by "several",
    ran and answered nonsense). An amount written as text ('50,000') is its number; a count as
    text ('30') its whole number."""
    default = rule.params[param]
    if is_amount_param(param):
        # refused in words before the query runs; one written as text ('50,000') run as its number
        amount = yuan(value)
        value = value if isinstance(value, (int, float)) and not isinstance(value, bool) else _number(amount)
    elif isinstance(default, int) and not isinstance(default, bool) and isinstance(value, str) \
            and value.strip().isdigit():
        value = int(value.strip())
    problem = param_problem(param, default, value, rule.param_bounds.get(param))
    if problem:
        hint = (f" — one value of a list parameter is itself a list: [{value!r}]"
                if isinstance(default, list) and not isinstance(value, list) else "")
        raise ValueError(mask_ids_in_text(f"{rule.id}.{param} = {value!r}: {problem}{hint}"))
    return value


def extracts_present(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Row counts of the extract tables (for a notebook's "what is in this store" cell)."""
    from .extracts import EXTRACTS

    return {k: int(scalar(con, f"select count(*) from {k}")) for k in EXTRACTS if table_exists(con, k)}

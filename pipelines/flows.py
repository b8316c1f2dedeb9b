"""The night (夜间批处理) as a Prefect flow: ingest → validate → detect → update suspects →
casework → issue worklists → report.

Each step is a small task that calls one module; the modules work without Prefect. The flow
holds the store's lock for the whole night and one DuckDB connection shared by its tasks: they
run in this process, one after another, and `detect` leaves its findings in temp tables that
only that connection sees. Every night leaves a `runs` row, completed or failed.
"""

from __future__ import annotations

import contextlib
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

import duckdb
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from . import arrivals, casework, ingest, logs, quality, report, rules, runlock, store, suspects, worklists
from .clock import CHINA_TZ, china_today, is_zone_name
from .config import Config, load_config, office_name
from .privacy import mask_folder_name, mask_ids_in_text
from .runsummary import format_summary, summarise


class NightlyError(RuntimeError):
    """The night could not run, or a step failed; the message is the one line a clerk sees."""


class StepFailed(NightlyError):
    def __init__(self, step: str, reason: str):
        super().__init__(f"task {step} failed: {reason}")
        self.step, self.reason = step, reason
        # what the night did before it failed (runs.summary), for the console: set where it is known
        self.summary: dict | None = None


def scrub(text: str) -> str:
    """A message may quote a data value (a DuckDB conversion error does): never a full ID number;
    and a file's name never a line of its own (store.one_line)."""
    return mask_ids_in_text(store.one_line(text))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, store.NotAStore):  # our own words: no type name before them
        return scrub(text[0])
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return scrub(line + store.failure_hint(exc))


def _failure(exc: BaseException) -> bool:
    """An error to report as a step's failure: any Exception, and a Rust library's panic — pyo3's
    PanicException (Polars') derives from BaseException, so `except Exception` let one through,
    a traceback on the console and the night's record left `running`."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def step(name: str):
    """A nightly task: named for the story, never cached, and failing with its own name."""
    def wrap(fn: Callable) -> Any:
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except NightlyError:
                raise
            except BaseException as exc:
                if not _failure(exc):  # Ctrl-C, an exit: not the step's failure
                    raise
                raise StepFailed(name, _one_line(exc) + store.free_space_note(exc, (*args, *kwargs.values()))) from exc
        run.__name__, run.__doc__ = fn.__name__, fn.__doc__
        return task(name=name, cache_policy=NO_CACHE, retries=0)(run)
    return wrap


class Progress:
    """Progress lines on stderr, only when someone is watching a terminal."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"  … {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- the steps


@step("start-run")
def start_run(con, run_id: str, command: str, as_of: date, arguments: dict[str, Any] | None = None) -> None:
    """The night's `runs` row, and its audit_log row: who ran it, with which inbox, store, OUT and
    config (the file's sha256: what it said that night), every event of the night carrying its run_id."""
    # We hold the store's lock, so a run still 'running' is one that was killed (SIGKILL, power
    # loss): say so. Every committed step of it stands; this run redoes the rest.
    con.execute("""update runs set status = 'failed', finished_at = current_timestamp,
                   summary = json_object('run_id', run_id, 'status', 'failed',
                                         'error', 'interrupted: the run did not finish (its process ended, or '
                                                  'its failure could not be recorded: a full disk?)')
                   where status = 'running'""")
    con.execute("insert into runs values (?, ?, current_timestamp, null, ?, 'running', null)",
                [run_id, command, as_of])
    store.audit(con, "run_night", store.current_actor(),
                {"run_id": run_id, "command": command, "as_of": as_of.isoformat(), **(arguments or {})})


@step("ingest")
def ingest_new_deliveries(con, inbox: Path, run_id: str, progress: Progress, as_of: date | None = None):
    log = get_run_logger()

    def on_file(result) -> None:
        progress(f"{result.status} {scrub(store.path_text(Path(result.path).name))}: {result.rows_accepted or 0} rows accepted, "
                 f"{result.rows_rejected or 0} rejected")

    found = ingest.ingest_inbox(con, inbox, run_id=run_id, on_file=on_file, as_of=as_of)
    done = [f for f in found.files if f.status == "ingested"]
    log.info("ingested %d new file(s) of %d; new deliveries: %s", len(done), len(found.files),
             ", ".join(map(mask_folder_name, new_deliveries(found))) or "none")
    for f in found.files:
        if f.status == "failed":
            # INFO: the night's summary says it ("failed file …"), on standard output; a failed
            # night's standard error is its one line (CONTRACT §3), not these lines before it
            log.info("could not read %s: %s", scrub(store.path_text(Path(f.path).name)), scrub(f.message))
    return found


def new_deliveries(found) -> list[str]:
    """Deliveries with at least one file read tonight (the ingest report lists every delivery)."""
    return sorted({f.delivery for f in found.files if f.status == "ingested"})


def to_validate(con, found) -> list[str]:
    """Tonight's new deliveries, and any an interrupted night ingested but never checked."""
    return sorted(set(new_deliveries(found)) | set(quality.unvalidated_deliveries(con)))


@step("validate")
def validate(con, deliveries: list[str], out: Path, run_id: str, progress: Progress):
    checked = quality.check_deliveries(con, deliveries, out, run_id, progress=progress)
    get_run_logger().info("%d expectation(s) checked, %d failed", checked.checked, len(checked.warnings))
    return checked


@step("arrivals")
def data_arrivals(con, as_of: date, config: Config) -> dict | None:
    """数据报送: payment streams late with a month by their own usual day (None: off)."""
    return arrivals.said(con, as_of, config)


@step("detect")
def detect(con, as_of: date, config: Config, progress: Progress):
    progress("running the rules")
    found = rules.detect(con, as_of, config, incremental=True)
    rules.record_catalogue(con, found.rules, as_of)
    log = get_run_logger()
    log.info("%s", found.scope_note)
    for r in found.results:
        if r.unchanged:
            log.info("%s: nothing new since the last night can change its findings: not re-run, its suspects kept",
                     r.rule_id)
        else:
            log.info("%s: %d finding(s), %s yuan%s%s", r.rule_id, r.count, r.amount,
                     f" among the {r.subjects} subject(s) new rows can change" if r.subjects is not None else "",
                     f" — ERROR {scrub(r.error)}" if r.error else "")
    return found


def broken_rules(found) -> StepFailed | None:
    """A broken rule must not pass silently as "no suspects": the night fails, naming the rule —
    but only after the other rules' suspects, worklists and report are out (its own suspects are
    left as they were: update_suspects only retires findings of rules that ran cleanly)."""
    if not found.errors:
        return None
    first = found.errors[0]
    others = sorted({e.rule_file for e in found.errors[1:]} - {first.rule_file})
    more = f" (and {len(others)} more rule(s): {', '.join(others)} — each reason in runs.summary rule_errors)" \
        if others else ""
    return StepFailed("detect", scrub(f"rule {first.rule_file}: {first.message}{more}"))


@step("update-suspects")
def update_suspects(con, as_of: date, run_id: str):
    changes = suspects.update_suspects(con, as_of, run_id)
    get_run_logger().info("suspects changed: %s", json.dumps(changes, ensure_ascii=False))
    return changes


@step("casework")
def refresh_casework(con, as_of: date, config: Config, run_id: str):
    return casework.refresh(con, as_of, config, run_id)


@step("issue-worklists")
def issue_worklists(con, out: Path, as_of: date, config: Config,
                    run_id: str) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """Tonight's worklists, then the earlier nights' ones superseded by them removed from OUT:
    (written, removed, earlier ones left because changed since issued, ones left because not on record)."""
    written = worklists.write_worklists(con, out, as_of, config, actor=store.current_actor(), run_id=run_id)
    get_run_logger().info("%d worklist(s) written under %s", len(written), out)
    return (written, *worklists.retire_superseded(con, out, written, actor=store.current_actor(), run_id=run_id))


@step("report")
def write_report(con, out: Path, as_of: date, config: Config):
    return report.write_report(con, out, as_of, config=config)


def finish_run(con, run_id: str, status: str, summary: dict) -> None:
    with contextlib.suppress(Exception):
        con.execute("rollback")  # a failed step may have left its transaction open
    con.execute("update runs set finished_at = current_timestamp, status = ?, summary = ? where run_id = ?",
                [status, json.dumps(summary, ensure_ascii=False, default=str), run_id])


# ---------------------------------------------------------------------------- the night


@flow(name="fundwatch-nightly", log_prints=False)
def nightly_flow(inbox: str, db: str, out: str, as_of: date | None = None, config_path: str | None = None,
                 progress: bool | None = None, command: str = "nightly", any_day: bool = False) -> dict:
    """One night: everything new in the inbox, every rule, every agency's worklist, the report.
    `any_day`: run even for a day before the store's last night (a replay on purpose)."""
    served = logs.served()
    if served is None:  # `nightly` or `demo`: the CLI reports the outcome
        return _night(inbox, db, out, as_of, config_path, progress, command, any_day)
    # A night `fundwatch serve` started, in a process of Prefect's own: it says what `nightly`
    # would — the summary, or one masked line — and, unless --verbose, Prefect's traceback of
    # the failure (the exception and code around it) stays off the console and the journal.
    if served == "quiet":
        logs.install_filters()
    logs.warnings_on_one_line("serve")  # as `nightly`'s: one line, ID numbers masked
    # The night of the day it was scheduled for: Prefect's runner starts a run up to ten seconds
    # early, which at a midnight schedule would be the day before.
    as_of = as_of or _scheduled_day() or china_today()
    try:
        summary = _served_night(inbox, db, out, as_of, config_path, progress, command, any_day)
    except Exception as exc:
        if isinstance(exc, StepFailed) and exc.summary:  # what it did, as `nightly` prints it
            _say(format_summary(exc.summary))
        shown = exc if isinstance(exc, (NightlyError, runlock.StoreBusy)) else _one_line(exc)
        _say(f"fundwatch serve: nightly run failed: {shown}", sys.stderr)
        raise
    _say(format_summary(summary))
    return summary


def _say(text: str, stream=None) -> None:
    """A served night's lines, each with its line end in one write: print writes the two apart,
    and Prefect's runner, passing the night's standard output and error on to serve's as they
    come, put the failure line between a summary and its line end in a journal holding both."""
    stream = stream or sys.stdout
    stream.write(text + "\n")
    stream.flush()


SERVED_BUSY_WAIT_SECONDS = 3600  # how long a scheduled night waits for a store another run holds
SERVED_BUSY_POLL_SECONDS = 60


def _served_night(inbox, db, out, as_of: date, config_path, progress, command, any_day: bool) -> dict:
    """A scheduled night that finds the store held (a `returns` or `report` by hand, a notebook left
    open) waits for it, up to an hour, instead of failing at once: at a 02:00 schedule the night
    was otherwise lost until the next day."""
    import time

    waited = 0
    while True:
        try:
            return _night(inbox, db, out, as_of, config_path, progress, command, any_day)
        except runlock.StoreBusy as exc:
            if waited >= SERVED_BUSY_WAIT_SECONDS:
                raise
            if not waited:
                _say(f"fundwatch serve: {exc} — waiting for it (up to {SERVED_BUSY_WAIT_SECONDS // 60} min)",
                     sys.stderr)
            time.sleep(SERVED_BUSY_POLL_SECONDS)
            waited += SERVED_BUSY_POLL_SECONDS


def _scheduled_day() -> date | None:
    """The day in China the running flow was scheduled for, when Prefect says."""
    try:
        from prefect.runtime import flow_run

        when = flow_run.scheduled_start_time
    except Exception:  # noqa: BLE001 — not in a flow run, or Prefect cannot tell
        return None
    if not isinstance(when, datetime) or when.tzinfo is None:
        return None
    return when.astimezone(ZoneInfo(CHINA_TZ)).date()


def _arguments(inbox: Path, db: Path, out: Path, config_path: str | None, as_of_given: bool,
               any_day: bool) -> dict[str, Any]:
    """What the night was run with, for its audit_log row (absolute paths: a night may be run from
    any folder)."""
    config = Path(config_path).absolute() if config_path else None
    try:
        config_sha256 = worklists.file_sha256(config) if config else None
    except OSError:  # read a moment ago; gone now: the night goes on, the record says so
        config_sha256 = "unreadable"
    return {"inbox": str(inbox.absolute()), "store": str(db.absolute()), "out": str(out.absolute()),
            "config": str(config) if config else None, "config_sha256": config_sha256,
            "as_of_given": as_of_given, "any_day": any_day}


def _night(inbox: str | Path, db: str | Path, out: str | Path, as_of: date | None, config_path: str | None,
           progress: bool | None, command: str, any_day: bool = False) -> dict:
    inbox, db, out = Path(inbox), Path(db), Path(out)
    as_of_given = as_of is not None
    as_of = as_of or china_today()
    config = _config(config_path)
    if not inbox.is_dir():
        raise NightlyError(f"inbox {inbox} is not a folder; point --inbox at the folder of deliveries")
    show = Progress(progress)
    with runlock.hold(db, command):
        try:
            _private_dir(out)
        except PermissionError as exc:
            raise NightlyError(f"output folder {out} cannot be written to: {_one_line(exc)}") from None
        except OSError as exc:
            why = (f"{store.file_in_the_way(Path(exc.filename))} is a file, not a folder"
                   if isinstance(exc, (FileExistsError, NotADirectoryError)) and exc.filename else _one_line(exc))
            # (one that is there but on a read-only disk was said "cannot be made": a hostile-environment probe)
            raise NightlyError(f"output folder {out} cannot be {'written to' if out.is_dir() else 'made'}: {why}") from None
        try:
            # the store's folder takes its log (.wal) and spill files: said now, not at the first commit
            _writable(db.parent)
        except OSError as exc:
            raise NightlyError(f"store folder {db.parent} cannot be written to: {_one_line(exc)}") from None
        try:
            con = store.connect(db, **config["duckdb"])
        except (OSError, duckdb.Error) as exc:
            # e.g. another program (a notebook) has the file open, or the spill folder cannot be made
            # (a full disk too: an older store's one-time conversion writes as it opens)
            raise NightlyError(f"store {db} cannot be opened: {_one_line(exc)}{store.free_space_note(exc, (db,))}") from None
        # closed however the night ends; a signal met on the way ends it as a Ctrl-C does
        with contextlib.closing(con), store.stopped_by_signals(con):
            if not any_day:
                _not_before_the_last_night(con, as_of, as_of_given)
            run_id = store.new_run_id(as_of)
            parts: dict[str, Any] = {"run_id": run_id, "as_of": as_of, "inbox": inbox, "out": out,
                                     "store_settings": store.settings(con),
                                     # what returns and report recompute casework with when given no --config
                                     "casework_settings": casework.recorded_settings(config),
                                     "office": office_name(config),
                                     "late_delivery_days": arrivals.grace_days(config)}
            try:
                store.claim_out(con, out, db, run_id)
            except store.OutOfAnotherStore as exc:
                raise NightlyError(str(exc)) from None
            start_run(con, run_id, command, as_of, _arguments(inbox, db, out, config_path, as_of_given, any_day))
            try:
                parts["ingest"] = ingest_new_deliveries(con, inbox, run_id, show, as_of)
                parts["quality"] = validate(con, to_validate(con, parts["ingest"]), out, run_id, show)
                parts["arrivals"] = data_arrivals(con, as_of, config)
                parts["detect"] = detect(con, as_of, config, show)
                parts["changes"] = update_suspects(con, as_of, run_id)
                parts["casework"] = refresh_casework(con, as_of, config, run_id)
                (parts["worklists"], parts["worklists_retired"], parts["worklists_changed"],
                 parts["worklists_unknown"]) = \
                    issue_worklists(con, out, as_of, config, run_id)
                parts["calendar_assumed_years"] = casework.years_counted_by_the_week(con, config)
                # the night's figures so far, so that the dashboard's trend has tonight's point
                # (finish_run writes the final summary)
                so_far = {**summarise(con, parts), "status": "running"}
                con.execute("update runs set summary = ? where run_id = ?",
                            [json.dumps(so_far, ensure_ascii=False, default=str), run_id])
                parts["report"] = write_report(con, out, as_of, config)
                broken = broken_rules(parts["detect"])
                if broken is not None:
                    raise broken
            except BaseException as exc:
                if not _failure(exc):
                    raise
                failure = exc if isinstance(exc, NightlyError) else StepFailed("flow", _one_line(exc))
                with contextlib.suppress(Exception):  # the failure is what to report, not its record
                    summary = summarise(con, parts, failed=str(failure))
                    if isinstance(failure, StepFailed):
                        failure.summary = summary
                    finish_run(con, run_id, "failed", summary)
                raise failure from exc
            with contextlib.suppress(Exception):  # a note for the operator, never a failure
                parts["store_disk"] = store.disk_room(db)
            summary = summarise(con, parts)
            try:
                finish_run(con, run_id, "completed", summary)
            except Exception as exc:  # e.g. the store's disk filled up: the night's steps are committed
                raise StepFailed("finish-run", f"{_one_line(exc)} — the night's ingest, suspects, worklists and "
                                               "report are done and kept; only its record in `runs` is not (the next night "
                                               "will read it as interrupted)") from exc
            return summary


def _not_before_the_last_night(con, as_of: date, as_of_given: bool) -> None:
    """A night dated before the store's last one steps every suspect back to that day — amounts,
    逾期 and 挂牌督办 lifted, the agencies' current worklists replaced by ones of the earlier day, a
    suspect found later given an earlier first detection (and so an earlier deadline). Refused unless
    asked for (`any_day`: a replay of past nights) — a served night too, which meets it after a night
    run ahead by hand (`nightly --as-of` a day to come, on the store the deployment serves)."""
    last = store.last_night(con)
    if last is None or as_of >= last:
        return
    step_back = "would step every suspect back to that day (amounts, 逾期 and 挂牌督办, the agencies' worklists)"
    if logs.served() is not None:
        raise NightlyError(f"the store's last night was for {last} (run ahead by hand); this scheduled night for {as_of} "
                           f"{step_back}, so it did not run — served nights run again from {last} on; to go on now, "
                           "restore the store from a backup taken before that night")
    given = f"--as-of {as_of}" if as_of_given else f"today ({as_of}, the default --as-of)"
    raise NightlyError(f"the store's last night was for {last}; a night for {given} {step_back}: give that day or a "
                       "later one — or, to replay a past night on purpose, add --any-day")


def _config(path: str | Path | None) -> Config:
    try:
        return load_config(path)
    except SystemExit as exc:  # load_config speaks to the CLI; inside a flow it is an error
        raise NightlyError(str(exc)) from None


def _private_dir(path: Path) -> None:
    """Output folders hold personal data: owner-only. One that cannot be written to raises
    PermissionError now, at the start, not after the night's ingest and checks (a folder of another
    owner failed the night at its Data Docs)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        path.chmod(0o700)
    except PermissionError:
        pass
    _writable(path)


def _writable(folder: Path) -> None:
    import tempfile

    with tempfile.TemporaryFile(dir=folder):
        pass


def nightly_deployment(inbox: str, db: str, out: str, config_path: str | None = None,
                       cron: str | None = None, timezone: str | None = None, name: str = "nightly"):
    """The served deployment: the same flow on a cron schedule (default config.schedule). A cron
    or time zone that cannot be served raises ValueError saying so."""
    from prefect.schedules import Cron

    schedule = _config(config_path)["schedule"]
    # (an empty --cron or --timezone is a mistake to say, not the default: `is None` only)
    cron = schedule["cron"] if cron is None else cron
    timezone = schedule["timezone"] if timezone is None else timezone
    if not is_zone_name(str(timezone)):
        # Prefect takes any string here and fails only when the server computes the first run
        raise ValueError(f"time zone {timezone!r} is not an IANA time zone name (e.g. Asia/Shanghai)")
    try:
        when = Cron(cron, timezone=timezone)
    except ValueError:
        raise ValueError(f"cron {cron!r} is not a cron expression (e.g. '0 2 * * *': 02:00 every day)") from None
    parameters = {"inbox": str(inbox), "db": str(db), "out": str(out), "config_path": config_path and str(config_path)}
    return nightly_flow.to_deployment(
        name=name, schedules=[when], parameters=parameters,
        description=f"fundwatch nightly at '{cron}' ({timezone})")


if logs.served() == "quiet":
    # the flow's code is imported in the served night's process before the run begins: Prefect's
    # lines from there on ("Beginning flow run …") are off the console like `nightly`'s
    logs.install_filters()

__all__ = ["nightly_flow", "nightly_deployment", "NightlyError", "StepFailed"]

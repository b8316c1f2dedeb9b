"""`fundwatch` — the commands of CONTRACT §3.

Expected failures (missing inbox, bad config, store busy, a failed step) end with one line on
stderr and a non-zero exit, never a traceback. Exit codes: 0 ran; 1 a step failed (the run is
marked failed in `runs`); 2 could not start (bad arguments, missing inbox, bad config);
3 another fundwatch run holds the store.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import sys
from datetime import date, datetime
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3
DEMO_DIR = "demo-output"
DEMO_DB = "fundwatch.duckdb"


class Refused(Exception):
    """An expected failure: one line for the clerk, and its exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def _quiet_prefect(verbose: bool) -> None:
    """Prefect speaks at WARNING on the console unless --verbose; task logs still reach its API.

    Must run before prefect is imported: its logging is configured from these settings then.
    """
    level = "INFO" if verbose else "WARNING"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", level)
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    # The flow and task run loggers (whose one handler sends to Prefect's API) at INFO, whatever the
    # console shows: a flow run configures Prefect's logging again, from these settings — a level
    # set on the logger here was gone by then, and the UI had no log line of a quiet night.
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", "INFO")
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "INFO")
    # Offline machines: no telemetry from the temporary server or great-expectations.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's SDK telemetry (a notice on a terminal, a device id under ~/.prefect) obeys only this
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    import prefect  # noqa: F401
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()  # Prefect's handlers exist from here on (else only at the first flow run)

    if verbose:
        return
    from .logs import install_filters

    install_filters()


# The days an --as-of may name. Before 2000 no extract holds data; more than a year after today
# (China's) is a mistyped year: 2062 for 2026 dated a night's suspects, deadlines and worklists
# decades ahead, for good. Within the year a night may be dated ahead on purpose — a rehearsal, an
# office (or a test) stepping its store to the day its 挂牌督办 falls due.
EARLIEST_AS_OF = date(2000, 1, 1)
AS_OF_AHEAD_DAYS = 366


def _as_of(text: str | None, any_day: bool | None = None, db: str | None = None) -> date | None:
    """The day --as-of names, written YYYY-MM-DD (Python also reads 2026-W47 and 20261121 as dates),
    from 2000 to a year after today — or to the last night of the store `db` (a store whose nights
    were rehearsed further ahead is returned to and reported on as of its own days), or any such day
    with `any_day` (None where the command has no such flag)."""
    import re
    from datetime import timedelta

    if text is None:
        return None
    try:
        day = date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        day = None
    if day is None:
        raise Refused(f"--as-of {text!r} is not a date; write it as YYYY-MM-DD")
    if day < EARLIEST_AS_OF:
        raise Refused(f"--as-of {text} is before {EARLIEST_AS_OF.year}: a mistyped year?")
    today = _today()
    latest = today + timedelta(days=AS_OF_AHEAD_DAYS)
    # the store is read only for a day beyond that (its last night may be later still: a rehearsal)
    last_night = _last_night(Path(db)) if db and day > latest else None
    if day > max(latest, last_night or latest) and not any_day:
        after = f"more than a year after today ({today})" + (
            f" and after the store's last night ({last_night})" if last_night and last_night > latest else "")
        hint = (" (a night rehearsed that far ahead on purpose, on generated data: add --any-day)"
                if any_day is not None else "")
        raise Refused(f"--as-of {text} is {after}: a mistyped year?{hint}")
    return day


def _last_night(db: Path) -> date | None:
    """The store's last night (store.last_night); None without one, or when the store cannot be read
    now (store.glance)."""
    from .store import glance, last_night

    with glance(db) as con:
        return None if con is None else last_night(con)


def _check_config(path: str | None):
    """The config (the contract's defaults without a path), or a one-line refusal naming the entry."""
    from .config import load_config

    try:
        return load_config(path)
    except SystemExit as exc:
        raise Refused(str(exc)) from None


def _quiet_temporary_server() -> None:
    """With no Prefect server configured (PREFECT_API_URL), Prefect runs the night against a
    temporary server of its own — a uvicorn process writing to the console it inherits; stopped as
    the command ends, it could print a shutdown traceback (a database connection cancelled) under
    the night's one line. Started here, once, that process's console is
    PREFECT_HOME/temporary-server.log (only while it is spawned: Prefect's own lines, `--verbose`,
    stay on ours); Prefect then finds it running and uses it. A console descriptor closed (`>&-`)
    is the log for good: the server died on it and the night waited 90 s for it. SIGTERM while it
    starts ends the command as Ctrl-C does, so that the server is stopped too (it was left running)."""
    import signal
    import threading

    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    if server.running:
        return
    home = Path(PREFECT_HOME.value())
    try:
        home.mkdir(parents=True, exist_ok=True)
        log = open(home / "temporary-server.log", "ab")
    except OSError as exc:
        # Prefect's own start then waited 90 s and printed thousands of lines of its server's traceback
        if home.exists() and not home.is_dir():
            raise Refused(f"PREFECT_HOME {home} is a file, not a folder: Prefect keeps its database there — "
                          "point PREFECT_HOME at a folder (default ~/.prefect)") from None
        if not any(os.environ.get(f"PREFECT_{part}_DATABASE_CONNECTION_URL") for part in ("API", "SERVER")):
            # so also for a home that cannot be written: a service account's read-only or missing HOME
            # (4,600 lines and exit 1 after 97 s: a hostile-environment probe)
            raise Refused(f"Prefect's home {home} cannot be written ({exc.strerror or exc}): Prefect keeps its "
                          "database there — set PREFECT_HOME to a folder this user can write (default "
                          "~/.prefect)") from None
        return  # its database elsewhere: Prefect starts it as ever (and says what it cannot write)
    spawn = getattr(server, "_run_uvicorn_command", None)
    main = threading.current_thread() is threading.main_thread()  # (only there can signals be set)

    def spawn_quietly():
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        kept = {}
        for fd in (1, 2):
            try:
                kept[fd] = os.dup(fd)
            except OSError:  # closed: the log stands in for it from now on
                pass
            os.dup2(log.fileno(), fd)  # what the server process inherits as it starts
        try:
            with _dies_with_this_process(main):
                return spawn()
        finally:
            for fd, copy in kept.items():
                os.dup2(copy, fd)
                os.close(copy)

    def interrupted(*_):
        raise KeyboardInterrupt

    on_term = signal.getsignal(signal.SIGTERM)
    with log:
        if callable(spawn):
            server._run_uvicorn_command = spawn_quietly  # (Prefect's own spawn, wrapped for this start)
        if main:
            signal.signal(signal.SIGTERM, interrupted)
        try:
            server.start()
        finally:
            if main:
                signal.signal(signal.SIGTERM, on_term)
            server.__dict__.pop("_run_uvicorn_command", None)


@contextlib.contextmanager
def _dies_with_this_process(main_thread: bool):
    """While Prefect spawns its temporary server: the server is told (Linux's PR_SET_PDEATHSIG) to
    take SIGTERM when this process ends however it ends. Prefect stops it at exit; a night killed
    with `kill -9` (or by the out-of-memory killer) left it running for good, ~200 MB a night.
    The signal follows the thread that spawned it, so only from the main thread, which lives as long
    as the process; elsewhere, or off Linux, Prefect's own stop at exit is all there is."""
    import ctypes
    import signal
    import subprocess

    import prefect.server.api.server as prefect_server

    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    prctl = getattr(libc, "prctl", None)
    if not main_thread or prctl is None or getattr(prefect_server, "subprocess", None) is not subprocess:
        yield
        return
    parent = os.getpid()

    def in_the_child():  # after fork, before exec: nothing here may take a lock
        prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # died already, before the line above
            os._exit(1)

    class Popen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            kwargs.setdefault("preexec_fn", in_the_child)
            super().__init__(*args, **kwargs)

    class Subprocess:  # Prefect's module sees this for the one call; the rest of the process the real one
        def __getattr__(self, name):
            return Popen if name == "Popen" else getattr(subprocess, name)

    prefect_server.subprocess = Subprocess()
    try:
        yield
    finally:
        prefect_server.subprocess = subprocess


def _run_nightly(inbox: Path, db: Path, out: Path, as_of: date | None, config: str | None, progress: bool | None,
                 any_day: bool = False) -> dict:
    from . import flows, runlock

    _quiet_temporary_server()
    try:
        return flows.nightly_flow(inbox=str(inbox), db=str(db), out=str(out), as_of=as_of,
                                  config_path=config, progress=progress, any_day=any_day)
    except runlock.StoreBusy as exc:
        raise Refused(str(exc), EXIT_BUSY) from None
    except flows.StepFailed as exc:
        if exc.summary:  # what did run, as a completed night says it
            from .runsummary import format_summary

            print(format_summary(exc.summary), flush=True)
        raise Refused(f"nightly run failed: {exc}", EXIT_FAILED) from None
    except flows.NightlyError as exc:
        raise Refused(str(exc), EXIT_USAGE) from None


def _out_not_another_stores(out: Path, db: Path) -> None:
    """A store yet to be made given an OUT another store marked, refused before the store and its
    lock are made (store.check_out_before_the_store) — by `serve` too, whose nights would each fail."""
    from .store import OutOfAnotherStore, check_out_before_the_store

    try:
        check_out_before_the_store(out, db)
    except OutOfAnotherStore as exc:
        raise Refused(str(exc)) from None


def _check_inbox(inbox: Path, hint: str = "") -> None:
    if inbox.exists() and not inbox.is_dir():  # (a delivery's file given for the inbox was "not found")
        raise Refused(f"inbox {inbox} is a file, not a folder; point --inbox at the folder of deliveries{hint}")
    if not inbox.is_dir():
        raise Refused(f"inbox {inbox} not found; point --inbox at the folder of deliveries{hint}")


def _check_store(db: Path, not_a_store: str | None = None) -> None:
    """A --db that cannot be the store (a folder, a data file) refused before anything is made —
    by `serve` too, which would otherwise serve nights that each fail. `not_a_store`: the words
    for a path that is no store, where the general ones (which name --db) do not fit."""
    from .store import NewerStore, NotAStore, UnusableStorePath, check_not_newer, check_store_file

    try:
        check_store_file(db)
        check_not_newer(db)
    except NotAStore as exc:
        raise Refused(not_a_store if not_a_store and not isinstance(exc, (NewerStore, UnusableStorePath))
                      else str(exc)) from None


def cmd_nightly(args) -> int:
    inbox, db, out = Path(args.inbox), Path(args.db), Path(args.out)
    _check_inbox(inbox)
    _out_outside_the_inbox(inbox, out)
    _check_store(db)
    _out_not_another_stores(out, db)
    as_of = _as_of(args.as_of, any_day=args.any_day)
    _check_config(args.config)
    from . import runlock
    from .runsummary import format_summary

    try:
        with runlock.hold(db):
            summary = _run_nightly(inbox, db, out, as_of, args.config, None, any_day=args.any_day)
    except runlock.StoreBusy as exc:
        raise Refused(str(exc), EXIT_BUSY) from None
    print(format_summary(summary))
    return EXIT_OK


def _stage_owner_only(delivery: Path, staged: Path) -> None:
    """Copy a sample delivery into the demo's inbox owner-only like the rest of OUT (copytree would
    copy the shipped files' modes, readable by all, onto the copies)."""
    shutil.copytree(delivery, staged, copy_function=shutil.copyfile)  # files: made under umask 077
    for folder in [staged, *(p for p in staged.rglob("*") if p.is_dir())]:
        folder.chmod(0o700)


def cmd_demo(args) -> int:
    from . import resources, runlock
    from .runsummary import format_summary, suspects_by_rule
    from .store import connect

    sample_inbox = resources.sample_dir() / "inbox"
    deliveries = sorted(p for p in sample_inbox.iterdir() if p.is_dir()) if sample_inbox.is_dir() else []
    if not deliveries:
        raise Refused(f"no sample deliveries under {sample_inbox}; is fundwatch installed completely?")
    _check_config(args.config)  # refused before anything is made or copied under OUT
    out = Path(args.out)
    inbox, db = out / "inbox", out / DEMO_DB
    # a file in the store's place, refused before the lock and the staged sample are made (in the
    # demo's words: --db is no option of the demo's)
    _check_store(db, f"{db} is not a DuckDB store, and the demo keeps its store there: choose another --out folder")
    _out_not_another_stores(out, db)  # before the store, its lock and the staged sample are made
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    print(f"fundwatch demo: {len(deliveries)} night(s) from {sample_inbox} into {out}/")
    try:
        with runlock.hold(db, "demo"):
            for delivery in deliveries:
                # One delivery arrives per night: stage it, then run that night as of its date.
                night = _delivery_date(delivery.name)
                if not (inbox / delivery.name).exists():
                    _stage_owner_only(delivery, inbox / delivery.name)
                summary = _run_nightly(inbox, db, out, night, args.config, None, any_day=True)
                print(format_summary(summary))
                print()
    except runlock.StoreBusy as exc:
        raise Refused(str(exc), EXIT_BUSY) from None
    con = connect(db, read_only=True)
    try:
        by_rule = suspects_by_rule(con)
    finally:
        con.close()
    print("open suspects per rule (疑点):")
    for rule_id, v in by_rule.items():
        print(f"  {rule_id:<28} {v['count']:>6}  {v['amount']:>16,.2f} yuan")
    print(f"worklists (核查台账): {out.resolve()}/ (one XLSX per agency, named with its code)")
    print(f"dashboard: {(out / 'dashboard.html').resolve()}")
    print(f"store: {db.resolve()}")
    return EXIT_OK


def _delivery_date(name: str) -> date:
    try:
        return date.fromisoformat(name[:10])
    except ValueError:
        raise Refused(f"sample delivery folder {name!r} is not named by its date (YYYY-MM-DD)") from None


def cmd_serve(args) -> int:
    _check_config(args.config)
    from prefect import serve

    from . import flows

    # absolute: the nights run in processes of Prefect's own, and its UI shows the parameters
    where = {k: None if v is None else os.path.abspath(v) for k, v in
             {"inbox": args.inbox, "db": args.db, "out": args.out, "config": args.config}.items()}
    try:
        deployment = flows.nightly_deployment(where["inbox"], where["db"], where["out"], where["config"], args.cron,
                                              args.timezone)
    except ValueError as exc:
        raise Refused(str(exc)) from None
    # served, a mistyped inbox would fail every night at 02:00 instead
    _check_inbox(Path(args.inbox), " (make it first if none has come yet)")
    _out_outside_the_inbox(Path(args.inbox), Path(args.out))
    _check_store(Path(args.db))
    _out_not_another_stores(Path(args.out), Path(args.db))
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        # Without a server, Prefect serves against a temporary one of its own, which schedules
        # nothing: serve would wait, "polling for scheduled runs", and never run a night.
        raise Refused("no Prefect server to serve against (PREFECT_API_URL is not set): schedules run only from a "
                      "server's scheduler — start one (`prefect server start`), export "
                      "PREFECT_API_URL=http://127.0.0.1:4200/api, then serve again")
    _prefect_api_answers(str(PREFECT_API_URL.value()))
    held = _one_serve_per_store(where["db"])
    _not_served_elsewhere(str(PREFECT_API_URL.value()), f"{deployment.flow_name}/{deployment.name}")
    _sigterm_as_ctrl_c()
    # Each night runs in a process of Prefect's own: this tells it to speak as `nightly` does
    from .logs import SERVED

    os.environ[SERVED] = "verbose" if args.verbose else "quiet"
    # Owner-only for all the serving process writes outside a night's run lock too: Prefect's
    # result of a failed run (its message) and its local files under PREFECT_HOME
    os.umask(0o077)
    from .clock import china_now

    started = china_now()
    print(_serving_line(deployment, where), flush=True)
    try:
        # One night at a time: while a night waits for its store (a notebook holding it; up to an
        # hour), each later scheduled night started a process of its own (~260 MB) and waited too,
        # and they ran out of order once it was free (a probe of serve left running). Later runs
        # wait as scheduled and run one after another.
        serve(deployment, limit=1)
    finally:
        held.close()  # (the lock: as long as serve runs)
    _say_if_a_night_was_stopped(where["db"], started)
    return EXIT_OK


SERVED_POLL_WINDOW_SECONDS = 60  # Prefect's runner polls its deployment every 10 s; 60 s unpolled: not served


def _prefect_api_answers(api_url: str) -> None:
    """Refused in one line: a Prefect server that cannot be reached, or an address that is no
    Prefect API (Prefect's own start printed a traceback of 50–80 lines)."""
    import httpx

    for path in ("health", "admin/version"):  # (a wrong path answers /health, or 404s, as the server it is not)
        try:
            httpx.get(f"{api_url.rstrip('/')}/{path}", timeout=10).raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise Refused(f"the server at {api_url} answered /{path} with {exc.response.status_code}: no Prefect API "
                          "there — PREFECT_API_URL is the API's address, ending in /api "
                          "(http://127.0.0.1:4200/api)") from None
        except httpx.HTTPError as exc:
            raise Refused(f"cannot reach the Prefect server at {api_url} ({type(exc).__name__}): start it "
                          "(`prefect server start`) or correct PREFECT_API_URL, then serve again") from None


def _not_served_elsewhere(api_url: str, name: str) -> None:
    """Refused in one line: a deployment another `serve` polls now — a second serve took over its
    schedule without a word, and once stopped left the deployment paused: the first went on
    polling and never ran a night again (a probe of the served deployment). Polled within the last
    minute, it is watched for one poll more: a serve just stopped, or restarted by systemd after a
    crash, polls no more, and this one goes on."""
    import time
    from datetime import timezone

    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_RUNNER_POLL_FREQUENCY

    def last_polled():
        try:
            with get_client(sync_client=True) as client:
                return getattr(client.read_deployment_by_name(name), "last_polled", None)
        except ObjectNotFound:
            return None  # served for the first time on this server
        except Exception as exc:  # noqa: BLE001 — a server that answers, but not as Prefect's (auth, a proxy)
            raise Refused(f"the Prefect server at {api_url} did not answer as one ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}): check PREFECT_API_URL and, for a "
                          "server with a login, PREFECT_API_AUTH_STRING") from None

    polled = last_polled()
    if polled is None or (datetime.now(timezone.utc) - polled).total_seconds() >= SERVED_POLL_WINDOW_SECONDS:
        return
    time.sleep(PREFECT_RUNNER_POLL_FREQUENCY.value() + 5)
    again = last_polled()
    if again is not None and again > polled:
        ago = (datetime.now(timezone.utc) - again).total_seconds()
        raise Refused(f"the deployment {name} is being served already — another `fundwatch serve` against {api_url} "
                      f"polled it {max(ago, 0):.0f} s ago: stop that one first (a second serve takes over its schedule, "
                      "and stopped, pauses it for both)", EXIT_BUSY) from None


# the nicknames Prefect's scheduler takes, which cronsim does not
_CRON_NICKNAMES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
                   "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _one_serve_per_store(db: str):
    """An open file locked (flock) beside the store for as long as this serve runs: two serves of
    one store started together both passed the check of the deployment's polls (neither had polled
    yet), the second taking over the first's schedule. Held by the process; gone with it, however it
    ends."""
    import fcntl

    path = Path(f"{db}.serve.lock")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # (as the first night would make it)
    handle = open(path, "a")  # noqa: SIM115 — held open, deliberately, until the process ends
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise Refused(f"another `fundwatch serve` serves {db} on this machine (it holds {path}): stop that one first",
                      EXIT_BUSY) from None
    return handle


def _serving_line(deployment, where: dict) -> str:
    """What is served and when the next night runs, in China's time (Prefect's own panel said
    neither: an operator had to ask its API)."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    from .clock import CHINA_TZ

    schedule = deployment.schedules[0].schedule
    zone = ZoneInfo(schedule.timezone or CHINA_TZ)
    cron = _CRON_NICKNAMES.get(schedule.cron.strip().lower(), schedule.cron)
    try:
        upcoming = next(CronSim(cron, datetime.now(zone))).astimezone(ZoneInfo(CHINA_TZ))
        when = f"next night {upcoming:%Y-%m-%d %H:%M} China time"
    except Exception:  # noqa: BLE001 — an expression Prefect takes that cronsim does not: the line without it
        when = "next night as the Prefect UI shows"
    return (f"fundwatch serve: serving {deployment.flow_name}/{deployment.name} at '{schedule.cron}' "
            f"({schedule.timezone}), {when}; inbox {where['inbox']}, store {where['db']}, out {where['out']}"
            + (f", config {where['config']}" if where["config"] else ""))


def _say_if_a_night_was_stopped(db: str, since: datetime) -> None:
    """Stopping `serve` (Ctrl-C, SIGTERM) stops a night it is running with it: said, not left to be
    found. Its committed steps stand; the next night marks it failed and redoes the rest."""
    import time

    from . import runlock

    for _ in range(20):  # the night's process is stopped with serve: a moment to go
        held, started = runlock.lock_state(db)
        if not held:
            break
        time.sleep(0.25)
    else:
        return
    if started and started >= since.isoformat(timespec="seconds"):
        print(f"fundwatch serve: stopped while a night (started {started.replace('T', ' ')}) was running: it did "
              "not finish — what it committed stands, and the next night (or `fundwatch nightly`) marks it failed "
              "and does the rest", file=sys.stderr, flush=True)


def _sigterm_as_ctrl_c() -> None:
    """`kill` (SIGTERM, what systemd and docker send) stops `serve` as Ctrl-C does. Prefect 3.8's
    own SIGTERM handler calls a coroutine without awaiting it and exits from inside the event loop
    ("coroutine 'Runner.astop' was never awaited", and tracebacks when a night was running); on
    Ctrl-C its serve shuts the runner down and returns."""
    import signal

    from prefect.runner import Runner

    def stop(self, *args, **kwargs) -> None:  # noqa: ARG001 — Prefect's handler signature
        os.kill(os.getpid(), signal.SIGINT)

    # A background job of a script starts with Ctrl-C ignored; asyncio then installs no handler of
    # its own, and the interrupt would be ignored (or, raised mid-loop, leave tracebacks). Restored
    # before the loop starts, asyncio's handler stops the runner cleanly.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    Runner.handle_sigterm = stop


def cmd_returns(args) -> int:
    from . import returns, runlock
    from .privacy import mask_ids_in_text
    from .store import connect, current_actor

    folders = [w for w in args.workbooks if Path(w).is_dir()]
    if folders:
        raise Refused(f"{folders[0]} is a folder, not a workbook: name the returned .xlsx files")
    missing = [w for w in args.workbooks if not Path(w).is_file()]
    if missing:
        raise Refused(f"workbook {missing[0]} not found")
    _existing_store(args.db)  # connecting would create an empty store and refuse every row
    as_of = _as_of(args.as_of, db=args.db) or _today()
    config = _check_config(args.config)  # the defaults without --config
    try:
        with runlock.hold(args.db, "returns"):
            con = connect(args.db, **config["duckdb"])
            try:
                config = _casework_as_the_nights_ran(con, config, args.config)
                result = returns.apply_returns(con, [Path(w) for w in args.workbooks], as_of, actor=current_actor(),
                                               config=config)
            finally:
                con.close()
    except runlock.StoreBusy as exc:
        raise Refused(str(exc), EXIT_BUSY) from None
    except returns.ReturnsStopped as exc:
        if exc.report.files:
            print(_describe_returns(exc.report))
        raise Refused(f"{mask_ids_in_text(exc.path.name)} could not be applied and was undone ({mask_ids_in_text(str(exc))})"
                      + ("; the workbooks above were applied and kept" if exc.report.files else "")
                      + ": free disk space if it is full, then run `fundwatch returns` again with the same files "
                        "(those applied change nothing)", EXIT_FAILED) from None
    except returns.CaseworkNotRecomputed as exc:
        print(_describe_returns(exc.report))
        raise Refused(f"the answers above were applied and kept, but their 要情 class and flags were not recomputed "
                      f"({exc}): the next night recomputes them (free disk space first?)", EXIT_FAILED) from None
    print(_describe_returns(result))
    if any(f.applied for f in result.files):
        print(REDRAWN_LATER.format(db=shlex.quote(str(args.db))))
    return EXIT_OK


# (an analyst probe: after returns or a reopening the night's dashboard and 汇总表 disagreed with the
# notebooks, under the same 数据截至 date, and nothing said why)
REDRAWN_LATER = ("the dashboard and 汇总表 in the output folder show the night they were drawn for, without this "
                 "change: `fundwatch report --db {db} --out <OUT>` redraws them now (the next night does too)")


def cmd_reopen(args) -> int:
    """The supervision office sends closed or transferred suspects back to their agency to be
    verified again (casework.reopen_by_office): they are on its next worklist with the reason."""
    from . import casework, runlock
    from .privacy import mask_ids_in_text
    from .store import connect, current_actor, new_run_id

    _existing_store(args.db)
    as_of = _as_of(args.as_of, db=args.db) or _today()
    config = _check_config(args.config)  # the defaults without --config
    try:
        with runlock.hold(args.db, "reopen"):
            con = connect(args.db, **config["duckdb"])
            try:
                run_id = new_run_id(as_of, "reopen")  # its events', the recomputation's, its audit_log row's
                ids = casework.reopen_by_office(con, args.suspect, args.reason, as_of, current_actor(), run_id)
                # its 逾期 and 挂牌督办 lifted now, with their events, by --config's casework settings or
                # the last night's (the note it prints names --config, which it takes as returns does)
                config = _casework_as_the_nights_ran(con, config, args.config)
                casework.refresh(con, as_of, config, run_id=run_id, only=ids)
            finally:
                con.close()
    except runlock.StoreBusy as exc:
        raise Refused(str(exc), EXIT_BUSY) from None
    except casework.NotReopenable as exc:
        raise Refused(mask_ids_in_text(str(exc))) from None
    print(f"reopened {len(ids)} suspect(s) (已重开): {', '.join(ids)} — on their agencies' worklists from the "
          "next night, with a fresh 核查期限 and the reason")
    print(REDRAWN_LATER.format(db=shlex.quote(str(args.db))))
    return EXIT_OK


def _casework_as_the_nights_ran(con, config, config_path: str | None):
    """The casework settings returns and report recompute with: --config's, else the last night's
    (casework.as_the_nights_ran); a difference is said on stdout."""
    from . import casework

    config, said = casework.as_the_nights_ran(con, config, config_given=config_path is not None)
    if said:
        print(said, flush=True)
    return config


def _existing_store(db: str) -> None:
    """returns, report and rules --db read a store a night made: refused in one line when there is
    none."""
    _check_store(Path(db))
    if not Path(db).is_file():
        raise Refused(f"store {db} not found; run `fundwatch nightly` first")


def _describe_returns(result) -> str:
    if hasattr(result, "lines"):
        return "\n".join(result.lines())
    applied = getattr(result, "applied", None)
    refused = getattr(result, "refused", None)
    lines = [f"returns: {len(applied) if isinstance(applied, list) else applied} row(s) applied, "
             f"{len(refused) if isinstance(refused, list) else refused} refused"]
    for r in (refused if isinstance(refused, list) else [])[:50]:
        lines.append(f"  refused {r}")
    return "\n".join(lines)


def cmd_report(args) -> int:
    from . import report, runlock
    from .store import OutOfAnotherStore, claim_out, connect, free_space_note, last_night

    _existing_store(args.db)
    as_of = _as_of(args.as_of, db=args.db)  # refused before the store's lock is taken
    config = _check_config(args.config)  # the escalation period, for a report drawn for another date
    try:
        with runlock.hold(args.db, "report"):
            con = connect(args.db, **config["duckdb"])
            try:
                config = _casework_as_the_nights_ran(con, config, args.config)
                night = last_night(con)
                later = report.outputs_after(con, Path(args.out), night) if night else []
                if later:
                    # (found by an operations probe: a copy taken a month ago replaced the live
                    # dashboard and that night's 汇总表, and the OUT mark then named the copy)
                    shown = "、".join(later[:3]) + (f" 等 {len(later)} 个文件" if len(later) > 3 else "")
                    raise Refused(f"output folder {args.out} holds outputs of a night after this store's last "
                                  f"({night}): {shown} — is {args.db} an older copy of the store (a backup, an "
                                  "analyst's copy)? Draw its report into another --out folder")
                Path(args.out).mkdir(parents=True, exist_ok=True, mode=0o700)
                claim_out(con, Path(args.out), Path(args.db))
                paths = report.write_report(con, Path(args.out), as_of, config=config)
            finally:
                con.close()
    except runlock.StoreBusy as exc:
        raise Refused(str(exc), EXIT_BUSY) from None
    except OutOfAnotherStore as exc:
        raise Refused(str(exc)) from None
    except OSError as exc:
        # the writers' "no space left" names no file: which disk is full, OUT's or the store's
        note = free_space_note(exc, (Path(args.out), Path(args.db)))
        if not note:
            raise
        from .privacy import mask_ids_in_text

        raise Refused(mask_ids_in_text(_machine_refusal(exc)) + note, EXIT_USAGE) from None
    print(f"dashboard: {paths.dashboard}\nsummary:   {paths.summary}")
    return EXIT_OK


def cmd_rules(args) -> int:
    """The rules a night would run with this config — the shipped ones and the office's own
    (`rule_folders`) — and, with --db, their queries planned against the store: a new rule file is
    checked before the night, not at 02:00."""
    from .config import rule_folders
    from .privacy import mask_ids_in_text
    from .rules import check_rules, load_rules, parameter_sets
    from .store import StoreBusy, connect, scalar

    config = _check_config(args.config)
    given_as_of = _as_of(args.as_of, db=args.db)  # a mistyped day is refused with --db or without
    folders = rule_folders(config)
    rules, problems = load_rules(folders)
    disabled = set(config.get("disabled_rules") or [])
    shipped = {rule.id for rule in rules if rule.path and rule.path.parent == folders[0]}
    checked, unmatched = "", []
    if args.db:
        _existing_store(args.db)
        try:
            # planning spills nothing: the config's spill folder is not made (a read-only look
            # created /srv/fundwatch/spill, found by a README audit)
            con = connect(args.db, read_only=True, memory_limit=config["duckdb"]["memory_limit"])
        except StoreBusy as exc:
            raise Refused(str(exc), EXIT_BUSY) from None
        try:
            # the last completed night's day, else the last night tried (a store whose only night
            # failed was run for that day, often not today's), else today
            as_of = given_as_of or scalar(con, "select max(as_of) from runs where status = 'completed'") \
                or scalar(con, "select max(as_of) from runs") or _today()
            problems += check_rules(con, [r for r in rules if r.id not in disabled], config, as_of)
            # a region code no agency has changes nothing, as a misspelt rule id would: said (not
            # refused — its agencies may come in a later delivery)
            known = {code for (code,) in con.execute("select distinct region_code from agencies").fetchall()}
            unmatched = sorted(code for code in (config["regions"] or {}) if code not in known)
        finally:
            con.close()
        checked = f"; queries planned against {args.db} as of {as_of}"
    print(f"fundwatch rules: {len(rules)} rule(s) loaded ({len(shipped)} shipped, "
          f"{len(rules) - len(shipped)} from rule_folders){checked}; {len(problems)} problem(s)")
    width = max([28, *(len(rule.id) for rule in rules)])
    for rule in rules:
        where = "shipped" if rule.id in shipped else str(rule.path)
        try:
            sets = parameter_sets(rule, config)
        except ValueError:
            sets = []  # named among the problems (the config check refuses it before a night)
        state = "disabled by config" if rule.id in disabled else f"{len(sets)} parameter set(s)"
        print(f"  {rule.id:<{width}} {rule.subject:<11} {state:<20} {rule.title}  ({where})")
        for params, regions in sets:
            # the values the night binds, so an office sees its overrides took (runs.summary has
            # them only after the night)
            if params:
                scope = f" (regions {', '.join(regions)})" if regions else " (other regions)" if len(sets) > 1 else ""
                values = ", ".join(f"{name}={_param_text(value)}" for name, value in params.items())
                # an account listed in config (fiscal_accounts) masked, as runs.summary shows it
                print(f"  {'':<{width}} parameters{scope}: {mask_ids_in_text(values)}")
    for problem in problems:
        print(f"  problem {problem.rule_file}: {problem.message}")
    for code in unmatched:
        print(f"  note regions.{code}: no agency in {args.db} has this 行政区划代码 (agencies.region_code); "
              "its values apply to no finding until one has")
    listed = {Path(f).resolve() for f in folders}
    for folder in folders[1:]:
        # an office files old rules away in a sub-folder; one put there by mistake was passed over in
        # silence (a sub-folder listed in rule_folders is read, and not noted)
        for sub in sorted(p for p in (folder.rglob("*") if folder.is_dir() else []) if p.is_dir()):
            inside = sum(1 for p in sub.iterdir() if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
            if inside and sub.resolve() not in listed:
                print(f"  note {sub}: {inside} rule file(s) in this sub-folder are not read (only the files of a "
                      "rule_folders folder itself are; list the sub-folder in rule_folders to run them)")
    return EXIT_FAILED if problems else EXIT_OK


def _param_text(value) -> str:
    """A parameter as the config would write it (YAML): lists in brackets, booleans lower case."""
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(map(_param_text, value))}]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _today() -> date:
    from .clock import china_today

    return china_today()


class OneLineParser(argparse.ArgumentParser):
    """A wrong argument is one line on stderr and exit 2, like every other refusal — not the usage
    block above it (`--help` still prints that)."""

    def error(self, message: str):  # noqa: D401 — argparse's hook
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="fundwatch", description="Off-site inspection (非现场监督) of social-insurance funds")
    p.add_argument("--verbose", "-v", action="store_true", help="show Prefect's own logging")
    sub = p.add_subparsers(dest="command", required=True)

    n = sub.add_parser("nightly", help="ingest new extracts, check them, detect, issue worklists, report")
    n.add_argument("--inbox", required=True)
    n.add_argument("--db", required=True)
    n.add_argument("--out", required=True)
    n.add_argument("--as-of", help="YYYY-MM-DD (default: today in Asia/Shanghai); from 2000, not more than a "
                                   "year after today, nor before the store's last night")
    n.add_argument("--config")
    n.add_argument("--any-day", action="store_true",
                   help="take --as-of as given though it is more than a year ahead (a rehearsal on generated data) or before "
                        "the store's last night (a replay of past nights)")
    n.set_defaults(fn=cmd_nightly)

    d = sub.add_parser("demo", help="nightly on the shipped sample, one night per delivery")
    d.add_argument("--out", default=DEMO_DIR)
    d.add_argument("--config")
    d.set_defaults(fn=cmd_demo)

    s = sub.add_parser("serve", help="serve the nightly deployment on a cron schedule, against the Prefect server "
                                     "PREFECT_API_URL names (`prefect server start`)")
    s.add_argument("--cron", help="default from config schedule.cron (0 2 * * *)")
    s.add_argument("--timezone", help="default from config schedule.timezone (Asia/Shanghai)")
    s.add_argument("--inbox", default="inbox")
    s.add_argument("--db", default="fundwatch.duckdb")
    s.add_argument("--out", default="out")
    s.add_argument("--config")
    s.set_defaults(fn=cmd_serve)

    r = sub.add_parser("returns", help="apply worklists returned by agencies")
    r.add_argument("--db", required=True)
    r.add_argument("--as-of", help="YYYY-MM-DD: the day the answers are applied — an empty 核实日期 is that day, "
                                   "a later one is refused as in the future (default: today in Asia/Shanghai)")
    r.add_argument("--config", help="the nightly's config: its casework settings class the returned suspects (default: the settings the last night ran with)")
    r.add_argument("workbooks", nargs="+")
    r.set_defaults(fn=cmd_returns)

    ro = sub.add_parser("reopen", help="send closed (已销号) or transferred (已移送) suspects back to their agency "
                                       "to be verified again, with the reason (the supervision office's correction)")
    ro.add_argument("--db", required=True)
    ro.add_argument("--suspect", required=True, nargs="+", metavar="ID", help="疑点编号, one or more")
    ro.add_argument("--reason", required=True, help="why: shown on the agency's worklist row")
    ro.add_argument("--as-of", help="YYYY-MM-DD: the day it is reopened (default: today in Asia/Shanghai)")
    ro.add_argument("--config", help="the nightly's config: its casework settings (default: the settings the last "
                                     "night ran with)")
    ro.set_defaults(fn=cmd_reopen)

    rp = sub.add_parser("report", help="dashboard and 汇总表 without re-running detection")
    rp.add_argument("--db", required=True)
    rp.add_argument("--out", required=True)
    rp.add_argument("--as-of", help="YYYY-MM-DD: 逾期, 挂牌督办 and ages counted to that day (default: the last night's)")
    rp.add_argument("--config", help="the nightly's config: its casework settings for a page drawn for another "
                                     "date (default: the settings the last night ran with)")
    rp.set_defaults(fn=cmd_report)

    ru = sub.add_parser("rules", help="the rules a night would run (shipped and config rule_folders); "
                                      "with --db, their queries checked against the store")
    ru.add_argument("--config")
    ru.add_argument("--db", help="plan each rule's queries against this store (read-only)")
    ru.add_argument("--as-of", help="YYYY-MM-DD for $as_of when the queries are planned with --db "
                                    "(default: the last completed night's)")
    ru.set_defaults(fn=cmd_rules)

    sub.add_parser("generate", help="synthetic extracts with planted anomalies (see fundwatch generate --help)",
                   add_help=False)
    # every option that takes a value, in every command, refuses a second one (argparse has no
    # setting for it: its store action is swapped for one that counts)
    for command in (n, d, s, r, ro, rp, ru):
        # also after the command, where a user adds it to a command that failed (`fundwatch nightly
        # … --verbose` was refused as an unrecognised argument); not given there, the top level's stands
        command.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS,
                             help="show Prefect's own logging (as before the command)")
        for action in command._actions:
            if type(action) is argparse._StoreAction and action.option_strings:
                action.__class__ = _GivenOnce
    return p


class _GivenOnce(argparse._StoreAction):
    """An option given twice is refused: argparse keeps the last, so `--config base.yaml --config
    override.yaml` ran without a word of the base's settings."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = namespace.__dict__.setdefault("_given", set())
        if self.dest in given:
            parser.error(f"{option_string or self.dest} given twice: give it once")
        given.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line. `returns` takes its options between its workbooks too (`returns --db s
    a.xlsx -v b.xlsx`, as a user adds one to the line that failed): argparse's plain parse ends the
    workbook list at the first option and refused the next workbook as unrecognised."""
    p = parser()
    command = [a for a in argv if a not in ("--verbose", "-v")][:1]
    if command != ["returns"]:
        return p.parse_args(argv)
    at = argv.index("returns")
    top = p.parse_args([*argv[:at], "returns", "--db", "-", "-"])  # the options before the command
    commands = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    # (intermixed parsing is not offered on a parser with subcommands, so on the command's own)
    return commands.choices["returns"].parse_intermixed_args(
        argv[at + 1:], namespace=argparse.Namespace(command="returns", verbose=top.verbose))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = [a for a in argv if a not in ("--verbose", "-v")][:1]
    if command == ["generate"]:  # the generator owns its arguments
        from . import generate

        # --verbose means nothing to the generator (no Prefect): taken wherever it stands, as elsewhere
        return int(generate.main([a for a in argv[argv.index("generate") + 1:] if a not in ("--verbose", "-v")]) or 0)
    args = parse_args(argv)
    from .logs import SERVED, warnings_on_one_line

    warnings_on_one_line(args.command)
    # Only the nights `serve` starts speak for themselves: a SERVED left in the shell or a
    # service's environment would make a `nightly` print its outcome twice.

    os.environ.pop(SERVED, None)
    try:
        _paths_as_given(args)
        _paths_in_utf8(args)
        if args.command in ("nightly", "demo", "serve"):
            _quiet_prefect(args.verbose)
        return args.fn(args)
    except Refused as exc:
        print(f"fundwatch {args.command}: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"fundwatch {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if isinstance(exc, BrokenPipeError) and _stdout_closed_by_reader():
            # the reader (`fundwatch rules | head -3`) has what it wanted and closed the pipe: not a
            # failure, and nothing more to print (stdout goes nowhere: the exit's flush is quiet too)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        # What the machine refuses outside any step — a folder that is a file, no permission, the
        # store opened by another program — is one line too (a step's failure is already one).
        import duckdb

        if not isinstance(exc, (OSError, duckdb.Error)):
            raise
        from .privacy import mask_ids_in_text
        from .store import free_space_note

        # a full disk: which one (an older store's one-time conversion writes as it is opened)
        note = free_space_note(exc, tuple(Path(getattr(args, name)) for name in ("db", "out")
                                          if isinstance(getattr(args, name, None), str)))
        print(f"fundwatch {args.command}: {mask_ids_in_text(_machine_refusal(exc))}{note}", file=sys.stderr)
        return EXIT_USAGE


PATH_ARGUMENTS = ("inbox", "db", "out", "config")


def _paths_as_given(args) -> None:
    """Path arguments as an administrator means them: `~` is the home folder wherever it is written
    (`--db=~/fw.duckdb`, a systemd unit: no shell expands it there — DuckDB did, the store's lock
    did not, so the two parted), and an empty one (an unset $INBOX in a script) is refused rather
    than read as the working directory."""
    for name in PATH_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            if not value.strip():
                raise Refused(f"--{name} is empty: name a {'file' if name in ('db', 'config') else 'folder'}")
            setattr(args, name, os.path.expanduser(value))
    if isinstance(getattr(args, "workbooks", None), list):
        args.workbooks = [os.path.expanduser(w) for w in args.workbooks]


def _out_outside_the_inbox(inbox: Path, out: Path) -> None:
    """OUT inside the inbox: the next night would read the worklists, the 汇总表 and the Data Docs
    as a delivery of its own (8 failed files, every night). (The store's files there are passed
    over as no extracts.)"""
    if out.resolve() == inbox.resolve() or inbox.resolve() in out.resolve().parents:
        raise Refused(f"--out {out} is inside the inbox {inbox}: each night would read it as a delivery; "
                      "keep OUT outside the inbox")


def _paths_in_utf8(args) -> None:
    """A path argument whose name is not UTF-8 (GB18030 bytes from a Windows share) refused in one
    line: what fundwatch records and sends to Prefect is UTF-8 text, which cannot carry it. (Names
    inside the inbox are read as GB18030 instead: a delivery must not fail a night.)"""
    from .store import path_text

    for name in (*PATH_ARGUMENTS, "workbooks"):
        given = getattr(args, name, None)
        for value in given if isinstance(given, list) else [given]:
            if not isinstance(value, str):
                continue
            flag = "workbook" if name == "workbooks" else f"--{name}"
            try:
                as_utf8 = value.encode("utf-8")
            except UnicodeEncodeError:  # bytes this locale (UTF-8) could not read: held as surrogates
                raise Refused(f"{flag} {path_text(value)!r}: the path's name is not UTF-8 (GB18030 bytes, as a copy "
                              "from a Windows share gives them?): rename it, or mount the share with iocharset=utf8"
                              ) from None
            if name == "db" and as_utf8 != os.fsencode(value):
                # DuckDB names its file by the UTF-8 of the text, Python (the lock, the checks) by the
                # locale's bytes: under a GB18030 locale a Chinese --db made the store under another
                # name than its lock's (a regression probe). (Other paths only Python opens: read as
                # the locale reads them, whatever bytes name them.)
                raise Refused(f"--db {path_text(value)!r}: under this locale ({sys.getfilesystemencoding()}) DuckDB "
                              "would keep the store under another name than the one given: run fundwatch under a "
                              "UTF-8 locale (LC_ALL=C.UTF-8) or give the store a path in ASCII")


def _stdout_closed_by_reader() -> bool:
    """Whether standard output is a pipe whose reader has gone (poll reports an error on it)."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _fd, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _machine_refusal(exc: Exception) -> str:
    """What the machine refused, in words: the path and what is wrong with it."""
    from .store import NotAStore, file_in_the_way

    where = getattr(exc, "filename", None)
    if isinstance(exc, (FileExistsError, NotADirectoryError)) and where:
        return f"{file_in_the_way(Path(where))}: a file is in the way where a folder is needed (move it, or choose another path)"
    if isinstance(exc, NotAStore):
        return str(exc)
    if isinstance(exc, PermissionError) and where:
        return f"{where}: permission denied"
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())

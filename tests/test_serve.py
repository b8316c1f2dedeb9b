"""`fundwatch serve` against a real Prefect server: the server's scheduler creates the deployment's
runs from its cron, and the served process runs them. Nothing here is called by hand: the test
starts `prefect server start` and `fundwatch serve --cron "* * * * *"` and waits for the store to
record a night the schedule started.

(SQLAlchemy 2.1 broke exactly this — the scheduler failed every cycle with "Can't evaluate bulk
DML statement" and a served deployment never ran — while every test that starts a flow by hand
passed; pyproject pins sqlalchemy<2.1.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from conftest import fundwatch_env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prefect() -> str:
    found = shutil.which("prefect", path=os.path.dirname(sys.executable)) or shutil.which("prefect")
    if not found:
        pytest.skip("no prefect executable beside this Python")
    return found


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _completed_nights(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = duckdb.connect(str(db), read_only=True)
    except duckdb.Error:
        return 0  # the night holds the store
    try:
        return con.execute("select count(*) from runs where status = 'completed'").fetchall()[0][0]
    except duckdb.Error:
        return 0
    finally:
        con.close()


def _start_server(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`prefect server start` on a free port; on another if a process took that one first (the
    port is free when chosen, not necessarily when the server binds it seconds later)."""
    for _ in range(3):
        port = _free_port()
        with (tmp_path / "server.log").open("w") as server_log:  # the server keeps its own copy
            server = subprocess.Popen([_prefect(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                      env=env, stdout=server_log, stderr=subprocess.STDOUT, cwd=tmp_path)
        api = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 120
        while server.poll() is None and time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{api}/health", timeout=2).read()
                return server, api
            except OSError:
                time.sleep(1)
        if server.poll() is None:  # running but not answering in time: no port clash, no retry
            _stop(server)
            break
    pytest.fail(f"the Prefect server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")


@pytest.mark.waits
def test_a_served_deployment_runs_on_its_cron_from_the_servers_scheduler(tmp_path):
    env = {**fundwatch_env(tmp_path / "prefect-home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           # the scheduler looks for deployments to schedule every few seconds, not every minute
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
           "PREFECT_RUNNER_POLL_FREQUENCY": "5"}
    server, api = _start_server(tmp_path, env)
    serve = None
    try:
        (tmp_path / "inbox").mkdir()
        db, out = tmp_path / "fw.duckdb", tmp_path / "out"
        out.write_text("a file where the output folder should be: the first night fails")
        serve_log = (tmp_path / "serve.log").open("w")
        serve = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", "serve", "--cron", "* * * * *", "--timezone", "UTC",
             "--inbox", str(tmp_path / "inbox"), "--db", str(db), "--out", str(out)],
            env={**env, "PREFECT_API_URL": api}, stdout=serve_log, stderr=subprocess.STDOUT, cwd=tmp_path,
            # as a background job of a script starts: with Ctrl-C ignored
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        # A night started by hand (as from Prefect's UI) fails: the served process says so in one
        # line, as `fundwatch nightly` would, and prints no traceback of Prefect's.
        deadline = time.monotonic() + 120
        while True:  # once `serve` has registered the deployment
            started = subprocess.run([_prefect(), "deployment", "run", "fundwatch-nightly/nightly"],
                                     env={**env, "PREFECT_API_URL": api}, cwd=tmp_path, capture_output=True,
                                     text=True, timeout=120)
            if started.returncode == 0:
                break
            if time.monotonic() > deadline or serve.poll() is not None:
                pytest.fail(f"no night could be started by hand: {started.stdout[-1000:]} {started.stderr[-1000:]}")
            time.sleep(2)
        # A second serve of the same deployment is refused: it took over the first one's schedule
        # without a word, and once stopped left the deployment paused — the first polled on and
        # never ran a night again (a probe of the served deployment).
        # Of the same store on this machine at once (two started together both passed the check of
        # the deployment's polls, neither had polled yet: a regression probe), by a lock beside it;
        same_store = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "serve", "--cron", "*/2 * * * *",
             "--inbox", str(tmp_path / "inbox"), "--db", str(db), "--out", str(out)],
            env={**env, "PREFECT_API_URL": api}, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert same_store.returncode == 3, same_store.stderr[-2000:]
        assert same_store.stderr.strip() == (f"fundwatch serve: another `fundwatch serve` serves {db} on this machine "
                                             f"(it holds {db}.serve.lock): stop that one first")
        # of another store (another office on the same Prefect server), by the deployment's polls
        second = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "serve", "--cron", "*/2 * * * *",
             "--inbox", str(tmp_path / "inbox"), "--db", str(tmp_path / "other.duckdb"), "--out", str(tmp_path / "o2")],
            env={**env, "PREFECT_API_URL": api}, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert second.returncode == 3, second.stderr[-2000:]
        assert second.stderr.strip().startswith(
            "fundwatch serve: the deployment fundwatch-nightly/nightly is being served already — another "
            f"`fundwatch serve` against {api} polled it "), second.stderr
        # and said, as it starts, what it serves and when the next night runs, in China time
        serving = next(line for line in (tmp_path / "serve.log").read_text().splitlines() if "serving" in line)
        assert serving.startswith("fundwatch serve: serving fundwatch-nightly/nightly at '* * * * *' (UTC), "
                                  "next night 20") and " China time; inbox " in serving, serving
        deadline = time.monotonic() + 120
        while "nightly run failed" not in (said := (tmp_path / "serve.log").read_text()):
            if time.monotonic() > deadline or serve.poll() is not None:
                pytest.fail("the night started by hand did not fail as expected.\nserve: " + said[-2000:])
            time.sleep(2)
        # (the minute's scheduled night may have failed the same way meanwhile)
        failed = {line for line in said.splitlines() if "nightly run failed" in line}
        assert failed == {f"fundwatch serve: nightly run failed: output folder {out} cannot be made: "
                          f"{out} is a file, not a folder"}, said[-2000:]
        assert "Traceback" not in said and "Encountered exception" not in said, said[-2000:]
        out.unlink()
        # The next whole minute, the runner's poll and the night itself: under two minutes, five at
        # most on a machine busy with `make test`'s other process.
        deadline = time.monotonic() + 300
        while _completed_nights(db) == 0:
            if time.monotonic() > deadline or serve.poll() is not None:
                pytest.fail("no scheduled night ran.\nserve: " + (tmp_path / "serve.log").read_text()[-2000:]
                            + "\nserver: " + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(3)
        assert (out / "dashboard.html").exists()
        assert "Can't evaluate" not in (tmp_path / "server.log").read_text()
        # everything the serving process writes outside a night's lock (Prefect's stored result of a
        # failed night, with its message) is owner-only: it serves under umask 077
        status = Path(f"/proc/{serve.pid}/status")
        if status.exists():
            assert "Umask:\t0077" in status.read_text()
        # `kill` (SIGTERM, as systemd stops a service) stops it as Ctrl-C does: cleanly, no traceback,
        # also when it was started with Ctrl-C ignored
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
        said = (tmp_path / "serve.log").read_text()
        assert "never awaited" not in said and "Traceback" not in said, said[-2000:]
        # the scheduled night that completed printed the summary `nightly` prints
        assert f"dashboard: {out / 'dashboard.html'}" in said, said[-2000:]
        # serve stopped a moment ago (systemd restarting it): its deployment, polled seconds ago,
        # polls no more, and a new serve takes it on
        with (tmp_path / "serve2.log").open("w") as log:
            again = subprocess.Popen(
                [sys.executable, "-m", "pipelines.cli", "serve", "--cron", "* * * * *", "--timezone", "UTC",
                 "--inbox", str(tmp_path / "inbox"), "--db", str(db), "--out", str(out)],
                env={**env, "PREFECT_API_URL": api}, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 120
            while "fundwatch serve: serving " not in (said := (tmp_path / "serve2.log").read_text()):
                if time.monotonic() > deadline or again.poll() is not None:
                    pytest.fail("serve restarted at once was refused: " + said[-2000:])
                time.sleep(1)
        finally:
            _stop(again)
    finally:
        if serve is not None:
            _stop(serve)
        _stop(server)


def _night_processes(serve: subprocess.Popen) -> int:
    """The runs the serving process has started and that are still alive (its children)."""
    found = subprocess.run(["ps", "-o", "pid=", "--ppid", str(serve.pid)], capture_output=True, text=True)
    return len(found.stdout.split())


@pytest.mark.waits
def test_a_served_deployment_runs_one_night_at_a_time_while_the_store_is_held(tmp_path):
    """A probe of serve left running: with the store held (a notebook open on it), each scheduled
    night started a process of its own (~260 MB) that waited too — three at once, up to sixty on a
    short schedule — and they ran out of order once it was free. One runs; the next waits its turn."""
    env = {**fundwatch_env(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_RUNNER_POLL_FREQUENCY": "3"}
    server, api = _start_server(tmp_path, env)
    serve = None
    db, out = tmp_path / "fw.duckdb", tmp_path / "out"
    (tmp_path / "inbox").mkdir()
    duckdb.connect(str(db)).close()
    try:
        with (tmp_path / "serve.log").open("w") as log:
            serve = subprocess.Popen(
                [sys.executable, "-m", "pipelines.cli", "serve", "--cron", "0 0 1 1 *", "--inbox",
                 str(tmp_path / "inbox"), "--db", str(db), "--out", str(out)],
                env={**env, "PREFECT_API_URL": api}, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        holder = duckdb.connect(str(db))  # as a notebook opened read-write holds it
        try:
            deadline = time.monotonic() + 120
            started = 0
            while started < 2:  # two nights asked for at once, as two scheduled minutes would
                run = subprocess.run([_prefect(), "deployment", "run", "fundwatch-nightly/nightly"],
                                     env={**env, "PREFECT_API_URL": api}, cwd=tmp_path, capture_output=True,
                                     text=True, timeout=120)
                started += run.returncode == 0
                if time.monotonic() > deadline or serve.poll() is not None:
                    pytest.fail(f"no night could be started: {run.stdout[-1000:]} {run.stderr[-1000:]}")
                if run.returncode:
                    time.sleep(2)
            deadline = time.monotonic() + 120
            while "waiting for it" not in (said := (tmp_path / "serve.log").read_text()):
                if time.monotonic() > deadline or serve.poll() is not None:
                    pytest.fail("no night waited for the store: " + said[-2000:])
                time.sleep(1)
            time.sleep(12)  # four of the runner's polls: the second night would have started by now
            assert _night_processes(serve) == 1, (tmp_path / "serve.log").read_text()[-2000:]
        finally:
            holder.close()
        deadline = time.monotonic() + 240
        while _completed_nights(db) < 2:  # the store free: the first, then the second
            if time.monotonic() > deadline or serve.poll() is not None:
                pytest.fail("the two nights did not both complete: " + (tmp_path / "serve.log").read_text()[-3000:])
            time.sleep(2)
    finally:
        if serve is not None:
            _stop(serve)
        _stop(server)


def test_serving_against_an_address_that_is_no_prefect_api_is_refused_in_one_line(tmp_path):
    """PREFECT_API_URL without its /api (the server's address as the browser shows it): a 404 said
    as "cannot reach", and with /api but a server answering /health only, a traceback after the
    line saying it serves (a regression probe)."""
    import http.server
    import threading

    class HealthOnly(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 — the standard library's name
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()
            self.wfile.write(b"true")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HealthOnly)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (tmp_path / "inbox").mkdir()
    try:
        for api, said in ((f"http://127.0.0.1:{server.server_port}", "/health with 404"),
                          (f"http://127.0.0.1:{server.server_port}/api", "/admin/version with 404")):
            served = subprocess.run(
                [sys.executable, "-m", "pipelines.cli", "serve", "--inbox", str(tmp_path / "inbox"), "--db",
                 str(tmp_path / "fw.duckdb"), "--out", str(tmp_path / "out")],
                env={**fundwatch_env(tmp_path / "prefect-home"), "PREFECT_API_URL": api}, cwd=tmp_path,
                capture_output=True, text=True, timeout=120)
            assert served.returncode == 2 and served.stdout == "", served.stdout
            assert served.stderr.strip() == (f"fundwatch serve: the server at {api} answered {said}: no Prefect API "
                                             "there — PREFECT_API_URL is the API's address, ending in /api "
                                             "(http://127.0.0.1:4200/api)"), served.stderr
    finally:
        server.shutdown()


def test_serving_against_a_prefect_server_that_is_not_there_is_refused_in_one_line(tmp_path):
    """PREFECT_API_URL naming a port nobody listens on: Prefect's own start printed an 80-line
    traceback of httpx after seven seconds (a probe of the served deployment)."""
    (tmp_path / "inbox").mkdir()
    api = f"http://127.0.0.1:{_free_port()}/api"
    served = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "serve", "--inbox", str(tmp_path / "inbox"), "--db",
         str(tmp_path / "fw.duckdb"), "--out", str(tmp_path / "out")],
        env={**fundwatch_env(tmp_path / "prefect-home"), "PREFECT_API_URL": api}, cwd=tmp_path,
        capture_output=True, text=True, timeout=120)
    assert served.returncode == 2
    assert served.stderr.strip() == (f"fundwatch serve: cannot reach the Prefect server at {api} (ConnectError): start it "
                                     "(`prefect server start`) or correct PREFECT_API_URL, then serve again")
    assert not (tmp_path / "fw.duckdb").exists() and not (tmp_path / "out").exists()

"""Shared fixtures: one real `fundwatch demo` run per test session, reused read-only.

The demo is the store an analyst opens first (notebooks default to it) and the dashboard a
supervisor sees, so several test files check it; running the real nightly flow twice (one night
per sample delivery) costs about a minute, so it runs once.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

import pipelines
from pipelines import resources, store

# Property tests draw new random examples on every run, so running them locally keeps looking
# for new failures; CI (.ci/run sets FUNDWATCH_CI) draws the same examples each time, so a
# submission's CI verdict is not a roll of the dice. (A CI run found the "=0" note case of
# test_properties this way; it is now an explicit @example.) Loaded here, before the test modules
# build their own settings on top of the default.
# No deadline there either: an example delayed by `make test`'s other process would fail as flaky.
settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
if os.environ.get("FUNDWATCH_CI"):
    settings.load_profile("ci")


def pytest_collection_modifyitems(items):
    """Tests that mostly wait (a served deployment's minute, a Prefect server's start) go first: the
    last to be handed out, they left `make test`'s last minutes to one worker waiting on a schedule
    while the cores idled. First, they wait while the other workers compute. (pytest-xdist hands out
    tests in this order; the sort is stable, the rest keep theirs.)"""
    items.sort(key=lambda item: item.get_closest_marker("waits") is None)


# The folder that holds the `pipelines` this session imports: the source tree during development,
# site-packages under `make test`. Subprocesses and notebook kernels must import the same one.
PACKAGE_ROOT = str(Path(pipelines.__file__).resolve().parent.parent)


def store_scalar(db: Path, sql: str, params=None):
    """One value from a store file, opened read-only and closed again (a night may run after)."""
    con = store.connect(db, read_only=True)
    try:
        return store.scalar(con, sql, params)
    finally:
        con.close()


def fundwatch_env(home: Path, prefect_api: str | None = None) -> dict[str, str]:
    """Environment for a `fundwatch` subprocess: same package, a private Prefect home, and either
    the session's Prefect API (`prefect_api`) or none, so that the command starts a temporary
    server of its own as a user's first `fundwatch nightly` does."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [PACKAGE_ROOT, os.environ.get("PYTHONPATH")])),
           "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    if prefect_api:
        env["PREFECT_API_URL"] = prefect_api
    return env


@pytest.fixture(autouse=True)
def _environment_restored():
    """A command run in this process (`cli.main`) sets Prefect's logging variables in os.environ for
    the processes it starts; they must not reach the next test's subprocesses (a later
    `fundwatch --verbose` would be quiet), whichever tests ran before it in this worker."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def prefect_api() -> str:
    """One temporary Prefect API, with a database of its own, for the session's flow runs: those
    run in this process and those of the `fundwatch` subprocesses given its URL. Each night run
    without one starts a temporary server of its own and, in a fresh Prefect home, first builds
    its database: about 25 s a night on a 2-core machine. `demo_run` still goes that way, as
    `make demo` does on a fresh machine."""
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    # A flow run's heartbeat thread sleeps in whole seconds and is joined as the run ends: every
    # night run in this process took up to a second more, hundreds of nights in the suite. Heartbeats
    # only tell a server's automations that a run is alive (the nights' own state is in the store's
    # runs table); off here only, for the flows run in this process — nights run as commands keep them.
    with prefect_test_harness(server_startup_timeout=120), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield PREFECT_API_URL.value()


@dataclass(frozen=True)
class DemoRun:
    out: Path
    stdout: str
    stderr: str
    returncode: int

    @property
    def db(self) -> Path:
        return self.out / "fundwatch.duckdb"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> DemoRun:
    if not (resources.sample_dir() / "inbox").is_dir():
        pytest.skip(f"no sample deliveries under {resources.sample_dir()}")
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _run_demo(tmp_path_factory.mktemp("demo"))
    # `make test` runs the suite in worker processes (pytest-xdist); the first to need the demo runs
    # it, the others wait for it and read the same output: their tests only read it.
    shared = tmp_path_factory.getbasetemp().parent  # the folder the workers' temp folders are in
    work = shared / "demo-work"
    with open(shared / "demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        told = shared / "demo-run.json"
        if not told.exists():
            try:
                run = _run_demo(work)
            except subprocess.TimeoutExpired as exc:  # said once, not run again into a half-written folder
                run = DemoRun(work / "demo", "", f"demo did not finish: {exc}", -1)
            told.write_text(json.dumps({"stdout": run.stdout, "stderr": run.stderr, "returncode": run.returncode}),
                            encoding="utf-8")
        said = json.loads(told.read_text(encoding="utf-8"))
    return DemoRun(work / "demo", said["stdout"], said["stderr"], said["returncode"])


def _run_demo(work: Path) -> DemoRun:
    work.mkdir(exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo", "--out", "demo"], cwd=work,
                          env=fundwatch_env(work / "prefect-home"), capture_output=True, text=True, timeout=900)
    return DemoRun(work / "demo", done.stdout, done.stderr, done.returncode)


@pytest.fixture
def broken_rule_checkout(tmp_path) -> Path:
    """A copy of this fundwatch whose SHARED_BANK_ACCOUNT.yaml query fails at detection (a rule file
    an office edited badly); put first on PYTHONPATH, the real command meets a rule that errors.
    Not a stand-in: the product itself, with one rule file changed as a user could change it."""
    import shutil

    src = tmp_path / "fundwatch-src"
    shutil.copytree(Path(PACKAGE_ROOT) / "pipelines", src / "pipelines",
                    ignore=shutil.ignore_patterns("__pycache__"))
    rules = src / "pipelines" / "rules"  # an installed wheel carries its rules inside the package
    if not rules.is_dir():
        rules = src / "rules"
        shutil.copytree(resources.rules_dir(), rules)
    rule = rules / "SHARED_BANK_ACCOUNT.yaml"
    text = rule.read_text(encoding="utf-8")
    assert text.count("  group by p.bank_account\n") == 1
    rule.write_text(text.replace("  group by p.bank_account\n", "  group by p.bank_account, no_such_column\n"),
                    encoding="utf-8")
    return src

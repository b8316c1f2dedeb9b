"""One run at a time per store: an OS file lock on `<db>.lock`, held for the whole run.

DuckDB's own file lock already stops a second writer, but its error names no run; this lock
tells the clerk who holds the store and since when, before anything is opened.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from .clock import china_now
from .store import StoreBusy, owner_only_folder


# Readable by all: it holds a pid, a time and a command — no personal data — and an analyst of a
# group the office shares the store with must see it (runlock.running) to be told a night runs;
# owner-only, it was unreadable to them, and their notebook could fail the night as before.
LOCK_FILE_MODE = 0o644

_HELD: set[Path] = set()  # locks this process holds: a nested hold (CLI, then its flow) is a no-op


def lock_path(db: str | Path) -> Path:
    """Beside the store's file itself: a store reached through a link (fw.duckdb -> another disk)
    and by its own name is one store, with one lock — a lock beside each name let two nights in."""
    db = Path(db).resolve()
    return db.with_name(db.name + ".lock")


@contextlib.contextmanager
def hold(db: str | Path, command: str = "nightly") -> Iterator[Path]:
    """Hold the store's lock for the body; raise StoreBusy at once if another process holds it.

    The lock is released by the OS when the holder exits, even on a crash, so a stale lock file
    never blocks the next night; its text (pid, start time) is only for the message.
    """
    path = lock_path(db).resolve()
    if path in _HELD:
        yield path
        return
    owner_only_folder(path.parent)  # the store's folder, made here before the store is opened
    fd = os.open(path, os.O_RDWR | os.O_CREAT, LOCK_FILE_MODE)
    try:
        with contextlib.suppress(OSError):  # (a lock file another account made stays as it is)
            os.fchmod(fd, LOCK_FILE_MODE)
        if not _take(fd):
            pid, since, command = _holder(fd)
            raise StoreBusy(
                f"another fundwatch run{f' ({command})' if command else ''} holds {db} since "
                f"{since or 'an unknown time'} (pid {pid or '?'}); wait for it to finish, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {china_now().isoformat(timespec='seconds')} {command}\n".encode(), 0)
        _HELD.add(path)
        # Owner-only for everything created while the store is held: DuckDB creates its .wal
        # lazily (and again after each checkpoint), worklists, the 汇总表, Data Docs.
        old_umask = os.umask(0o077)
        try:
            yield path
        finally:
            os.umask(old_umask)
            _HELD.discard(path)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# A reader's look at the lock (running) holds it shared for a moment, and a run that has just
# taken it writes its text a moment later: tried again for this long before a run is refused or
# its holder is named as unknown.
_MOMENT_SECONDS = 0.5
T = TypeVar("T")


def _for_a_moment(attempt: Callable[[], T], seconds: float = _MOMENT_SECONDS) -> T:
    """attempt() again until it gives something true or `seconds` have passed; its last result."""
    deadline = time.monotonic() + seconds
    while not (got := attempt()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return got


def _take(fd: int) -> bool:
    """Whether the lock was taken (exclusive), trying again for a moment."""
    def attempt() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    return _for_a_moment(attempt)


def _holder(fd: int, held: bool = True) -> tuple[str, str, str]:
    """(pid, start time as ISO text, command) the lock's text names, each "" where it names none
    (of a held lock read again for a moment: a run that has just taken the lock writes its text next)."""
    text = _for_a_moment(lambda: os.pread(fd, 400, 0).decode("utf-8", "replace").strip(),
                         _MOMENT_SECONDS if held else 0)
    pid, since, command = (text.split(" ", 2) + ["", ""])[:3]
    return pid, since, command


def running(db: str | Path) -> str | None:
    """What to tell a reader of the store (a notebook, `rules --db`, a command's checks before its
    own lock) while a fundwatch run of another process holds it, or None. A reader that opened the
    store after a night had started held it when the night came to open it, and failed the night.
    The lock is looked at shared, never taken: two readers do not stop each other."""
    path = lock_path(db).resolve()
    if path in _HELD:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)  # (an analyst who may read the lock but not write it)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, since, command = _holder(fd)
            return (f"a fundwatch {command or 'run'} (pid {pid or '?'}, since {since or 'an unknown time'}) "
                    f"is running on {db}: wait for it to finish, then open the store again")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def lock_state(db: str | Path) -> tuple[bool, str]:
    """(whether a process holds the store's lock now, the start time its text names — "" if none).
    A run that ends, however it fails, empties the text; a killed one leaves its own."""
    try:
        fd = os.open(lock_path(db), os.O_RDWR)
    except OSError:
        return False, ""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, ""
        try:
            return False, _holder(fd, held=False)[1]
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- what a killed run leaves behind

# Writers publish a file by writing `.<name>.pid<PID>.<random>.tmp` beside it and renaming it into
# place; a run killed in between leaves such a temp file (never a half-written file under the
# real name).
_TEMP_NAME = re.compile(r"^\..*\.pid(\d+)\.[^.]*\.tmp$")


def temp_prefix(name: str) -> str:
    """The mkstemp prefix for a temp file that will become `name` (see remove_stale_temps)."""
    return f".{name}.pid{os.getpid()}."


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temp files in folder left by writers whose process is gone; the paths removed."""
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        m = _TEMP_NAME.match(entry.name)
        if m and entry.is_file() and not _alive(int(m.group(1))):
            try:
                entry.unlink()
                removed.append(entry)
            except FileNotFoundError:
                pass
    return removed

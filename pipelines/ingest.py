"""Ingest (数据接入): every extract file of the inbox into the store, exactly, or into rejected_rows.

One delivery (a sub-folder of the inbox, ingested in name order) is one transaction: a crash
half-way leaves the store as it was. Each file is read with every column as text, normalised and
validated (pipelines/readers.py reads a file's bytes into text columns, pipelines/validate.py turns
them into accepted and rejected rows), then written delete-then-insert by natural key so that a
re-delivered row replaces the earlier one. A file seen before (same sha256) is skipped. A big file
goes through the same steps a chunk at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl
from polars.exceptions import PanicException

from . import readers
from .clock import china_now, china_today
from .extracts import DATED_DELIVERY, EXTRACTS, FILE_SUFFIXES, SENDER_COLUMNS, kind_of_file
from .normalise import label
from .privacy import mask_folder_name, mask_ids_in_text, mask_path
from .readers import (WHOLE_FILE, CsvPieces, FileProblem, HeaderProblem, RawFrame, ReadWhole, abridge, csv_piece_frame,
                      csv_plan, header_text, in_utf8, is_big_csv, map_headers, parquet_columns, problem_in, read_raw,
                      refuse_parquet_too_large, title_line_hint, unread_columns_note, unreadable_parquet)
from .store import LINEAGE_COLUMNS, ensure_schema, path_text, scalar, transaction
from .validate import REJECT_COLUMNS, normalise_frame, raw_json, reason_categories, reason_category



class IngestError(Exception):
    """Ingest could not run at all (missing inbox, a delivery that could not be written)."""


@dataclass
class FileResult:
    path: Path
    kind: str | None
    delivery: str
    status: str  # 'ingested' | 'skipped' | 'failed'
    rows_total: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_replaced: int = 0
    message: str = ""
    file_hash: str | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    # A skipped file's content came before under another name or in another delivery (source_file)
    duplicate_of: str | None = None
    not_extract: bool = False  # skipped as no extract at all (a readme beside the exports)
    notes: list[str] = field(default_factory=list)  # said in the night's summary (XLSX sheets not read)
    # A failed file's bytes failed before: where their rejected rows are (also the end of message)
    already_recorded: str | None = None
    source: str | None = None  # its path within the inbox, as ingest_ledger.source_file names it
    # per sender (extracts.SENDER_COLUMNS), the rows it brought of keys new to the store (ingest_senders)
    new_by_sender: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)
    dated_ahead: list[str] = field(default_factory=list)  # not read: named for a day that has not come

    def _sum(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    @property
    def rows_total(self) -> int:
        return self._sum("rows_total")

    @property
    def rows_accepted(self) -> int:
        return self._sum("rows_accepted")

    @property
    def rows_rejected(self) -> int:
        return self._sum("rows_rejected")

    @property
    def rows_replaced(self) -> int:
        return self._sum("rows_replaced")

    def with_status(self, status: str) -> list[FileResult]:
        return [f for f in self.files if f.status == status]

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        """Rejected rows counted by the kind of problem (the reason without its values)."""
        out: dict[str, int] = {}
        for f in self.files:
            for reason, n in f.rejected_by_reason.items():
                out[reason] = out.get(reason, 0) + n
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def summary(self) -> str:
        return (
            f"{len(self.with_status('ingested'))} files ingested, {len(self.with_status('skipped'))} skipped, "
            f"{len(self.with_status('failed'))} failed; rows: {self.rows_accepted} accepted "
            f"({self.rows_replaced} replacing earlier rows), {self.rows_rejected} rejected"
        )


# ------------------------------------------------------------------------------- the inbox

_IGNORED_PREFIXES = (".", "~$")  # hidden files, Office lock files of an open workbook


def list_deliveries(inbox: Path) -> list[tuple[str, list[Path]]]:
    """[(delivery name, files)] in the order they are ingested. Loose files in the inbox itself form
    one delivery named after the inbox, ingested before the sub-folders. An entry the machine
    cannot read — a folder without permission, a link to a disk no longer mounted — raises
    IngestError naming it: passed over, its delivery was missing from a night that "completed"."""
    entries = [p for p in _listed(inbox) if not p.name.startswith(_IGNORED_PREFIXES)]
    for p in entries:
        _readable(p)
    out = []
    loose = sorted(_within(p, inbox) for p in entries if p.is_file())
    if loose:
        out.append((path_text(inbox.name or str(inbox)), loose))
    for folder in sorted((d for d in entries if d.is_dir() and not d.name.startswith(".")), key=lambda d: d.name):
        files = []
        for root, dirs, names in os.walk(folder, onerror=_unreadable, followlinks=True):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for d in dirs:
                # a link back to a folder it is in (`loop -> ..`) would be walked until the path grew
                # too long, then named as a link to a disk not mounted
                target = (Path(root) / d).resolve()
                if target == Path(root).resolve() or target in Path(root).resolve().parents:
                    raise IngestError(f"inbox entry {mask_path(path_text(Path(root) / d))} is a link to "
                                      f"{mask_path(path_text(target))}, a folder it is in (a loop): "
                                      "remove the link, then run again")
            for name in names:
                p = Path(root) / name
                if not name.startswith(_IGNORED_PREFIXES) and _readable(p).is_file():
                    files.append(_within(p, folder, Path(root)))
        if files:
            out.append((path_text(folder.name), sorted(files, key=lambda p: p.relative_to(folder).as_posix())))
    return out


def _listed(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as exc:
        _unreadable(exc)


def _within(file: Path, folder: Path, where: Path | None = None) -> Path:
    """`file`, a file of the delivery `folder` (found in its sub-folder `where`) — or IngestError
    where it is a link to a file outside both: a link `deaths_a.csv -> /etc/shadow` put the file's
    every line into rejected_rows (a security probe; whoever may drop files in the inbox could have
    fundwatch read any file the server lets it). A delivery folder, or a sub-folder of one, may itself
    be a link (to a disk the deliveries land on), and a file link to another beside it is read."""
    if file.is_symlink():
        target = file.resolve()
        homes = {folder.resolve(), (where or folder).resolve()}
        if not any(home in target.parents for home in homes):
            raise IngestError(f"inbox entry {mask_path(path_text(file))} is a link to "
                              f"{mask_path(path_text(target))}, outside its delivery folder: fundwatch "
                              "reads no file from outside the inbox through a link — copy the file into the "
                              "folder (or link the whole delivery folder), then run again")
    return file


def _readable(p: Path) -> Path:
    if p.is_symlink() and not p.exists():
        raise IngestError(f"inbox entry {mask_path(path_text(p))} is a link to "
                          f"{mask_path(path_text(os.readlink(p)))}, "
                          "which is not there (a disk not mounted?): mount it or remove the link, then run again")
    if not p.is_file() and not p.is_dir():
        # a named pipe, socket or device: reading one may never end, passing it over lost without
        # a word what a writer was piping in as an extract
        raise IngestError(f"inbox entry {mask_path(path_text(p))} is {_kind_of_entry(p)}, not a file: "
                          "fundwatch reads only files — put the extract there as a file (or remove it), then run again")
    return p


def _kind_of_entry(p: Path) -> str:
    mode = p.stat().st_mode
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "neither a file nor a folder"


def _unreadable(exc: OSError) -> None:
    raise IngestError(f"inbox folder {mask_path(path_text(exc.filename))} cannot be read ({exc.strerror or exc}): "
                      "its files would be passed over — fix its permissions, then run again") from exc


def ingest_inbox(con: duckdb.DuckDBPyConnection, inbox: Path, run_id: str | None = None,
                 on_file: Callable[[FileResult], None] | None = None, as_of: dt.date | None = None) -> IngestReport:
    """Ingest every new file under `inbox`; one transaction per delivery, in delivery-name order —
    but a delivery named for a day after today (and after the as-of) is left unread (`dated_ahead`).

    Values are judged against today (a period more than a year ahead is a typo) — or against the
    night's as-of when it is later: a night run for a later day (generated data, a rehearsal)
    accepts what that day's extracts hold."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise IngestError(f"inbox folder not found: {inbox} (check --inbox)")
    ensure_schema(con)
    report = IngestReport()
    today = max(china_today(), as_of) if as_of is not None else china_today()
    for delivery, files in list_deliveries(inbox):
        if _named_for_a_day_after(delivery, today):
            # A folder named for a day that has not come (2027-11-21 for 2026-11-21) would outrank
            # every later delivery of its keys — a status or death sent the next week set aside as
            # "older" for a year. Left in the inbox, unread and said, until it is renamed.
            report.dated_ahead.append(delivery)
            continue
        try:
            with transaction(con):
                # the files this pass over the delivery has written (_ledger adds each): a row one of
                # them gave that a later one replaces is told (_replace) — not one a night before wrote
                # under the same delivery name (the inbox's loose files, a folder sent to again)
                con.execute("create or replace temp table _fw_delivery_files (file_hash varchar)")
                for path in files:
                    result = _ingest_file(con, inbox, delivery, path, run_id, today)
                    report.files.append(result)
                    if on_file is not None:
                        on_file(result)
        except duckdb.Error as exc:
            cause = exc
            # "Current transaction is aborted" follows the error that aborted it: that one is told
            while isinstance(cause, duckdb.TransactionException) and isinstance(cause.__context__, duckdb.Error):
                cause = cause.__context__
            first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            raise IngestError(f"delivery {mask_folder_name(delivery)} could not be written and was rolled back: "
                              f"{mask_ids_in_text(first)}") from exc
        con.execute("drop table if exists _fw_delivery_files")
        report.deliveries.append(delivery)
    return report


# ------------------------------------------------------------------------------- one file

# A big file is read, normalised and written one chunk at a time, inside the same delivery
# transaction: peak memory follows the chunk, not the file (a whole 2.9-million-row payments file
# took about 1.1 KB a row). A Parquet file of more rows than CHUNK_ROWS goes by chunks of that many
# rows; a CSV file of more bytes than CSV_CHUNK_BYTES by pieces of about that many bytes, each cut
# at a line end outside any quoted field. XLSX files are read whole (a sheet holds at most
# 1,048,576 rows).
CHUNK_ROWS = 500_000


def _ingest_file(con, inbox: Path, delivery: str, path: Path, run_id: str | None, today: dt.date) -> FileResult:
    source = path_text(path.relative_to(inbox).as_posix())
    kind = kind_of_file(path)
    result = FileResult(path=path, kind=kind, delivery=delivery, status="failed", source=source)
    if kind is None and path.suffix.lower() not in FILE_SUFFIXES:
        result.status, result.message, result.not_extract = "skipped", f"{source}: not an extract file (ignored)", True
        return result
    big = _big_parquet(path, kind)
    big_csv = big is None and is_big_csv(path, kind)
    data = None
    if big is not None or big_csv:
        as_hashed = _file_state(path)
        with path.open("rb") as f:  # the bytes of a big file are never held whole
            file_hash = hashlib.file_digest(f, "sha256").hexdigest()
    else:
        data = path.read_bytes()
        file_hash = hashlib.sha256(data).hexdigest()
    result.file_hash = file_hash
    seen = con.execute("select source_file, delivery from ingest_ledger where file_hash = ?", [file_hash]).fetchall()
    if seen:
        result.status = "skipped"
        result.message = (f"{source}: already ingested (same content as {seen[0][0]} in delivery "
                          f"{mask_folder_name(seen[0][1])})")
        if seen[0][0] != source:  # a copy sent again (the same file seen every night is not news)
            result.duplicate_of = seen[0][0]
            con.execute("insert into ingest_copies values (?, ?, ?, ?, ?, ?) on conflict do nothing",
                        [file_hash, source, delivery, kind, china_now(), run_id])
        return result
    lineage = {"_source_file": source, "_delivery": delivery, "_file_hash": file_hash}
    if big is not None or big_csv:
        try:
            if big is not None:
                done = _ingest_parquet_chunks(con, path, *big, kind, result, lineage, today)
            else:
                done = _ingest_csv_pieces(con, path, kind, result, lineage, today)
        except FileProblem as exc:
            return _fail(con, result, source, problem_in(exc, path))
        except (IngestError, duckdb.Error):  # the store's error (its memory limit, a full spill
            raise                               # folder) is no damage in the file: its delivery is undone
        except (Exception, PanicException) as exc:  # a reader library's error (a Parquet column it
            # cannot read as text), or its panic: as for a file read whole, the file fails — or, once
            # rows of it are written in the open transaction, its delivery is undone, in one line
            problem = _could_not_read(exc)
            if not result.rows_total:
                return _fail(con, result, source, problem)
            raise IngestError(f"delivery {mask_folder_name(delivery)} was rolled back: {mask_ids_in_text(source)} "
                              f"{mask_ids_in_text(problem)}") from exc
        # A big file is read again after it was hashed: changed in between (copied over, re-exported
        # in place), its ledger row would vouch for content never read — and the whole file, sent
        # again, would be skipped as seen.
        if done:
            if _file_state(path) != as_hashed:
                raise _changed_while_read(delivery, source)
            return _ledger(con, result, source, run_id)
        data = path.read_bytes()  # a key repeats in the file, or its header fails it: read it whole
        if hashlib.sha256(data).hexdigest() != file_hash:
            raise _changed_while_read(delivery, source)
    try:
        if kind is None:
            known = ", ".join(EXTRACTS)
            raise FileProblem(f"unknown extract kind: the file name must start with one of {known}")
        raw = read_raw(path, data)
        result.notes = [mask_ids_in_text(n) for n in raw.notes]
        del data
        try:
            accepted, rejected = normalise_frame(kind, raw, today)
        except HeaderProblem as exc:
            titled = exc.header_is_data and path.suffix.lower() == ".csv"  # (XLSX: titles are skipped)
            problem = str(exc) + (title_line_hint(raw, kind) if titled else "")
            return _fail(con, result, source, problem, raw=raw, column=exc.column,
                         header_is_data=exc.header_is_data)
        result.notes += unread_columns_note(kind, raw.headers)  # a header known to be one (not a record)
        if raw.data.height == 0 and not raw.bad_rows:
            # an export of nothing (a query run for the wrong month or agency) ingested as 0 rows
            # without a word, where a 0-byte file fails loudly (a data-drift probe)
            result.notes.append("no rows: the file holds its header only (exported for the wrong month or "
                                "agency?); the stored rows stay as they were")
    except FileProblem as exc:
        return _fail(con, result, source, problem_in(exc, path))
    except (Exception, PanicException) as exc:  # a reader library's own error on a damaged file (or a
        # library's panic, which is no Exception): report it, keep going — the other files still ingest
        return _fail(con, result, source, _could_not_read(exc))
    accepted, rejected = _set_aside_older(con, kind, accepted, rejected, lineage, raw)
    spec = EXTRACTS[kind]
    # the columns the file has no header for: those it empties on the rows it replaces are noted
    headed = {spec.column_for(h) for h in raw.headers}
    del raw
    _write_chunk(con, kind, accepted, rejected, result, lineage,
                 absent=frozenset(c.name for c in spec.columns if c.name not in headed))
    return _ledger(con, result, source, run_id)


def _named_for_a_day_after(delivery: str, today: dt.date) -> bool:
    """Whether a delivery's name starts with a real date after `today` (2026-13-45 is no date: read,
    ordered by its name, as before)."""
    if not re.match(DATED_DELIVERY, delivery):
        return False
    try:
        return dt.date.fromisoformat(delivery[:10]) > today
    except ValueError:
        return False


def _file_state(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns, st.st_ino


def _changed_while_read(delivery: str, source: str) -> IngestError:
    """The error (its delivery rolled back) for a file that changed after it was hashed."""
    return IngestError(f"delivery {mask_folder_name(delivery)} was rolled back: {mask_ids_in_text(source)} "
                       "changed while it was being "
                      "read (copied over or exported again during the night?): run again once the file is complete")


def _could_not_read(exc: BaseException) -> str:
    """A file's problem when a reader library failed on it (or panicked), in one line."""
    return f"could not be read ({type(exc).__name__}: {' '.join(str(exc).split())})"


def _set_aside_older(con, kind: str, accepted: pl.DataFrame, rejected: pl.DataFrame, lineage: dict[str, str],
                     raw: RawFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accepted, rejected) with the rows a later-dated delivery already holds moved from the first
    to the second (_superseded), each with its row as delivered from `raw`."""
    accepted, older = _superseded(con, kind, accepted, lineage, raw)
    if older.height:
        rejected = pl.concat([rejected, older], how="vertical_relaxed").sort("_row_number")
    return accepted, rejected


def _superseded(con, kind: str, accepted: pl.DataFrame, lineage: dict[str, str],
                raw: RawFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows to write, rows refused): a row whose natural key a later-dated delivery already holds
    is older data than the stored row — a delivery folder that turned up late — and does not
    replace it ("later delivery wins" by the delivery's date, so the store does not depend on the
    order folders arrive in). Kept in rejected_rows saying which delivery holds the newer row.
    Folders not named by date keep arrival order."""
    delivery = lineage["_delivery"] or ""
    none = accepted.clear().select(pl.col("_row_number"))
    if accepted.height == 0 or not re.match(DATED_DELIVERY, delivery):
        return accepted, none
    # The usual night (deliveries in date order) costs one look at the ledger, not a key join.
    later = scalar(con, "select count(*) from ingest_ledger where extract = ? and delivery > ? "
                        "and regexp_matches(delivery, ?)", [kind, delivery, DATED_DELIVERY])
    if not later:
        return accepted, none
    spec = EXTRACTS[kind]
    _fw_staged = _scannable(con, accepted.select([*spec.key, "_row_number"]))  # noqa: F841 — read by name below
    newer = pl.DataFrame(con.execute(
        f"""select s._row_number, max(t._delivery) as held_by
            from _fw_staged s join {kind} t on {_same_key(spec)}
            where regexp_matches(t._delivery, ?) and t._delivery > ?
            group by s._row_number""", [DATED_DELIVERY, delivery]).fetchall(),
        schema={"_row_number": pl.Int64, "held_by": pl.Utf8}, orient="row")
    if newer.height == 0:
        return accepted, newer
    keep = accepted.join(newer, on="_row_number", how="anti")
    # the row as delivered, as every rejected row keeps it (not its normalised values)
    delivered = raw.data.join(newer.select("_row_number"), on="_row_number", how="semi").select(
        pl.col("_row_number"), raw_json(raw).alias("raw"))
    refused = newer.join(delivered, on="_row_number", how="left").select(
        pl.col("_row_number"), pl.lit(spec.key[0]).alias("column_name"),
        pl.format("较旧的交付: 交付 {} 已有同一记录(按{})的更新版本，本行未替换它", pl.col("held_by"),
                  pl.lit("+".join(spec.key))).alias("reason"),
        pl.col("raw"))
    return keep, refused


def _write_chunk(con, kind: str, accepted: pl.DataFrame, rejected: pl.DataFrame, result: FileResult,
                 lineage: dict[str, str], replace: bool = True, absent: frozenset[str] = frozenset()) -> None:
    """Write one normalised chunk (or the whole file) and add its counts to the file's result.
    replace=False: insert only, the stored rows it replaces are deleted after the file's last
    chunk (_replace_by_file)."""
    result.rows_replaced += _write_rows(con, kind, accepted, lineage, replace, result.notes, absent,
                                        result.new_by_sender)
    if kind in SENDER_COLUMNS and accepted.height:
        for sender, n in accepted.get_column(SENDER_COLUMNS[kind]).drop_nulls().value_counts().iter_rows():
            result.new_by_sender[sender] = result.new_by_sender.get(sender, 0) + n
    _write_rejected(con, kind, rejected, lineage)
    result.rows_accepted += accepted.height
    result.rows_rejected += rejected.height
    result.rows_total += accepted.height + rejected.height
    for reason, n in reason_categories(rejected).items():
        result.rejected_by_reason[reason] = result.rejected_by_reason.get(reason, 0) + n


def _ledger(con, result: FileResult, source: str, run_id: str | None) -> FileResult:
    """The file's one ledger row, with its counts summed over its chunks."""
    result.status = "ingested"
    result.message = (f"{source}: {result.rows_accepted} rows accepted ({result.rows_replaced} replaced), "
                      f"{result.rows_rejected} rejected")
    con.execute(
        "insert into ingest_ledger values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [result.file_hash, source, result.delivery, result.kind, result.rows_total, result.rows_accepted,
         result.rows_rejected, result.rows_replaced, china_now(), run_id],
    )
    con.execute("insert into _fw_delivery_files values (?)", [result.file_hash])
    senders = [(result.file_hash, result.kind, sender, n) for sender, n in sorted(result.new_by_sender.items()) if n > 0]
    if senders:
        con.executemany("insert into ingest_senders values (?, ?, ?, ?)", senders)
    return result


def _big_parquet(path: Path, kind: str | None) -> tuple[int, list[str]] | None:
    """(rows, column names) of a Parquet extract of more than CHUNK_ROWS rows, from its footer;
    None for any other file (read whole, and a damaged one reported as always)."""
    if kind is None or path.suffix.lower() != ".parquet":
        return None
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as pf:
            rows, names = pf.metadata.num_rows, list(pf.schema_arrow.names)
    except Exception:
        return None
    return (rows, names) if rows > CHUNK_ROWS else None


def _ingest_parquet_chunks(con, path: Path, rows: int, names: list[str], kind: str, result: FileResult,
                           lineage: dict[str, str], today: dt.date) -> bool:
    """Ingest a big Parquet file CHUNK_ROWS rows at a time (Polars reads only the row groups of
    each slice, with the same column types as the whole-file reader); False, with nothing
    written, when it must be read whole instead: its header fails it (every row is then rejected
    with the header's problem), or a raw key repeats in it.

    The same key twice in one file is reported and the later row kept; a chunk only sees its own
    rows, so first the key columns of the whole file are read (a hash per row, 8 bytes) and any
    repeated raw key sends the file to the whole-file path, which reports it exactly. Left to the
    chunks: two different raw texts of one key (e.g. a payment id with and without a trailing
    space) in different chunks. The later row then replaces the earlier one as a re-delivered row
    would, and is counted in rows_replaced instead of being reported as an in-file repeat; in the
    same chunk it is reported as always."""
    refuse_parquet_too_large(path)
    headers = [header_text(h) for h in names]
    if len(set(names)) != len(names):
        return False  # a column name given twice: the whole-file reader decides
    try:
        positions = map_headers(kind, headers)  # the header, checked once for the file
    except HeaderProblem:
        return False
    result.notes = unread_columns_note(kind, headers)
    spec = EXTRACTS[kind]
    key_cols = [names[positions[k]] for k in spec.key if k in positions]
    # A row without a required key part is refused in its chunk anyway: never a repeat to report.
    keyed = pl.all_horizontal([pl.col(names[positions[k]]).is_not_null() for k in spec.key
                               if spec.column(k).required] + [pl.lit(True)])
    starts = range(0, rows, CHUNK_ROWS)
    try:
        hashes = pl.concat([pl.scan_parquet(path).slice(start, CHUNK_ROWS).filter(keyed)
                            .select(pl.struct(key_cols).hash().alias("h")).collect().get_column("h")
                            for start in starts])
    except Exception as exc:
        raise FileProblem(unreadable_parquet(exc)) from exc
    if hashes.is_duplicated().any():
        return False
    del hashes

    chunks = iter(starts)

    def next_chunk() -> RawFrame | None:
        start = next(chunks, None)
        if start is None:
            return None
        try:
            chunk = pl.scan_parquet(path).slice(start, CHUNK_ROWS).collect()
        except Exception as exc:
            raise _damaged(lineage, start, unreadable_parquet(exc)) from exc
        return RawFrame(headers, parquet_columns(chunk, start), may_hold_nul=True)

    _write_chunks(con, kind, next_chunk, result, lineage, today)
    return True


def _write_chunks(con, kind: str, next_chunk: Callable[[], RawFrame | None], result: FileResult,
                  lineage: dict[str, str], today: dt.date) -> None:
    """Normalise and write a big file's chunks one at a time, as `next_chunk` reads them (None: no
    more). Only one chunk is held at a time: `next_chunk` keeps no reference to what it returns."""
    while (raw := next_chunk()) is not None:
        accepted, rejected = normalise_frame(kind, raw, today)
        accepted, rejected = _set_aside_older(con, kind, accepted, rejected, lineage, raw)
        del raw
        _write_chunk(con, kind, accepted, rejected, result, lineage, replace=False)
        del accepted, rejected  # freed before the next chunk is read
    result.rows_replaced += _replace_by_file(con, kind, lineage, result.notes, result.new_by_sender)


def _replace_by_file(con, kind: str, lineage: dict[str, str], notes: list[str],
                     new_by_sender: dict[str, int] | None = None) -> int:
    """After a big file's chunks are all inserted, delete the stored rows it replaces: rows of
    other files with one of its natural keys, and a row of its own whose key a later row of it
    gives again in another spelling (e.g. with a trailing space, in another chunk; the later row
    wins, as a re-delivered one does). Returns how many. One join for the file: a delete per
    chunk scanned the whole table each time, which grew with the store (a province's first
    night: 115 chunks of payments, each against up to 57 million rows)."""
    spec = EXTRACTS[kind]
    keys = ", ".join(spec.key)
    this_file = lineage["_file_hash"]
    replacing = "(t._file_hash is distinct from $file or t._row_number < s._row_number)"
    # the stored rows it replaces, by a join on the keys alone (a wide one held every column of a
    # 6-million-row file in its hash table: +340 MB at the bench's first night, which replaces nothing)
    con.execute(f"""
        create or replace temp table _fw_replaced as
        select t.rowid as rid from {kind} t
        semi join (select {keys}, _row_number from {kind} where _file_hash = $file) s
          on {_same_key(spec)} and {replacing}""", {"file": this_file})
    if scalar(con, "select count(*) from _fw_replaced"):
        con.execute(f"""
            create or replace temp table _fw_changed as
            select distinct t.rowid as rid from {kind} t
            join (select * from {kind} where _file_hash = $file) s on {_same_key(spec)} and {replacing}
            where t.rowid in (select rid from _fw_replaced) and ({_differs(spec)})""", {"file": this_file})
        # (its rows that stay: one of its own a later row of it replaced is not the new row)
        _not_news(con, kind, f"(select * from {kind} where _file_hash = $file "
                             "and rowid not in (select rid from _fw_replaced))", new_by_sender, {"file": this_file})
    return _replace(con, kind, lineage, notes)


def _emptied(con, kind: str, staged: pl.DataFrame, absent: frozenset[str]) -> list[str]:
    """A note for each optional column the file has no header for, and so empties on stored rows it
    replaces: a re-export whose 复核人/复核时间 were headed 审核人/审核时间 (not read) replaced 2,336
    reviewed payments with unreviewed ones, and LARGE_PAYMENT_UNREVIEWED raised a payment that had
    been reviewed, the night it came (a data-drift probe). `staged`: the rows _write_rows staged (and
    checked as _scannable). (Files read in pieces replace after their last piece: not looked at.)"""
    spec = EXTRACTS[kind]
    # a column the file has no header for: values cleared under their header (a 暂停 lifted and its
    # status date with it, in a register re-sent whole — even the only one) are corrections, not a
    # column lost (two regression probes)
    optional = [c for c in spec.columns if not c.required and c.name not in spec.key and c.name in absent]
    if not optional:
        return []
    _fw_staged = staged  # noqa: F841 — read by name in the SQL below (see _scannable)
    counts = con.execute(
        "select " + ", ".join(f"count(*) filter (t.{c.name} is not null and s.{c.name} is null)" for c in optional)
        + f" from {kind} t join _fw_staged s on {_same_key(spec)} where t.rowid in (select rid from _fw_changed)"
    ).fetchall()[0]
    return [f"{n} stored row(s) had {label(c)} and the row(s) replacing them have it empty (a column renamed "
            "or left out of the export?); the rows replaced are kept in replaced_rows"
            for c, n in zip(optional, counts) if n]


def _differs(spec) -> str:
    """SQL: stored row t and the row s replacing it differ in a delivered column (not in lineage)."""
    return " or ".join(f"t.{c} is distinct from s.{c}" for c in spec.names)


def _not_news(con, kind: str, new_rows: str, new_by_sender: dict[str, int] | None,
              params: dict | None = None, staged: pl.DataFrame | None = None) -> None:
    """Take off `new_by_sender` the rows of `new_rows` (SQL) whose key the store had (temp table
    _fw_replaced: the rows they replace) — no news from their sender (a cumulative re-export, old rows
    re-sent reformatted), counted by the new row's sender (a statement moved to another agency)."""
    if new_by_sender is None or kind not in SENDER_COLUMNS:
        return
    spec = EXTRACTS[kind]
    _fw_staged = staged  # noqa: F841 — the staged rows, read by name where `new_rows` names them (see _scannable)
    for sender, n in con.execute(f"""
            select s.{SENDER_COLUMNS[kind]}, count(*) from {new_rows} s join {kind} t on {_same_key(spec)}
            where t.rowid in (select rid from _fw_replaced) group by all""", params or {}).fetchall():
        if sender is not None:
            new_by_sender[sender] = new_by_sender.get(sender, 0) - n


def _replace(con, kind: str, lineage: dict[str, str], notes: list[str]) -> int:
    """Delete the stored rows of `kind` whose rowids temp table _fw_replaced lists; those the new
    row changes (temp table _fw_changed, made by the caller where there are any) kept first, as
    stored, in replaced_rows (a corrected re-delivery left no trace of what a suspect's evidence and
    its agency's answer rested on: an audit probe; a row sent again unchanged is not kept — a
    register re-sent whole each month would copy itself). Returns how many were replaced. The usual
    file replaces nothing: one join on the keys finds that, as the delete alone made. Rows another
    file of this pass over the delivery gave are said in `notes` (the night's summary): which of the
    two stands follows the files' names, and a renamed file changed a suspect's amount without a
    word (a determinism probe)."""
    replaced = scalar(con, "select count(*) from _fw_replaced")
    if replaced:
        con.execute(f"""insert into replaced_rows
                        select ?, to_json(t), ?, ? from {kind} t
                        where rowid in (select rid from _fw_changed)""",
                    [kind, lineage["_file_hash"], china_now()])
        for source, n in con.execute(
                f"""select _source_file, count(*) from {kind}
                    where rowid in (select rid from _fw_changed)
                      and _file_hash in (select file_hash from _fw_delivery_files) and _file_hash <> $file
                    group by all order by all""",
                {"file": lineage["_file_hash"]}).fetchall():
            notes.append(f"{n} row(s) with the key of a row of {Path(source or '').name}, in the same delivery, "
                         "and other values replaced it: of one delivery's files, read in name order, the last "
                         "stands — check which is right (the row replaced is kept in replaced_rows)")
        con.execute(f"delete from {kind} where rowid in (select rid from _fw_replaced)")
        con.execute("drop table _fw_changed")
    con.execute("drop table _fw_replaced")
    return int(replaced)


def _damaged(lineage: dict[str, str], rows_before: int, problem: str) -> Exception:
    """The error for a big file that cannot be read on: a file problem while nothing of it is
    written; after that, rows of it are in the open transaction, so the delivery is undone."""
    if rows_before == 0:
        return FileProblem(problem)
    return IngestError(f"delivery {mask_folder_name(lineage['_delivery'])} was rolled back: "
                       f"{mask_ids_in_text(lineage['_source_file'])} "
                       f"is damaged after its row {rows_before}: {mask_ids_in_text(problem)}")


def _ingest_csv_pieces(con, path: Path, kind: str, result: FileResult, lineage: dict[str, str],
                       today: dt.date) -> bool:
    """Ingest a big CSV file piece by piece (CsvPieces), each read by the whole-file reader so that
    the outcome is the whole-file path's: rows keep the file's own numbers (a piece's are offset by
    the records numbered before it: data rows and the rows refused while reading; blank lines are
    not numbered). False, with nothing written, when the file must be read whole instead (see
    csv_plan; the same limit as for Parquet: two spellings of one key in different pieces)."""
    try:
        plan = csv_plan(path, kind)
    except ReadWhole:
        return False
    result.notes = unread_columns_note(kind, plan.headers)
    numbered = 0
    with path.open("rb") as f:
        pieces = CsvPieces(f, readers.CSV_CHUNK_BYTES, replay=plan.lengths)

        def next_piece() -> RawFrame | None:
            nonlocal numbered
            while True:
                try:
                    piece = pieces.read()
                    if piece is None:
                        return None
                    raw = csv_piece_frame(in_utf8(piece, pieces.start, plan.encoding), pieces.start, plan)
                except Exception as exc:
                    problem = str(exc) if isinstance(exc, FileProblem) else \
                        _could_not_read(exc)
                    raise _damaged(lineage, numbered, problem) from exc
                del piece
                offset, numbered = numbered, numbered + raw.data.height + len(raw.bad_rows)
                if raw.data.height or raw.bad_rows:  # (a piece of blank lines has nothing to write)
                    return RawFrame(raw.headers, raw.data.with_columns(pl.col("_row_number") + offset),
                                    [(row + offset, *rest) for row, *rest in raw.bad_rows])

        _write_chunks(con, kind, next_piece, result, lineage, today)
    return True


def _fail(con, result: FileResult, source: str, problem: str,
          raw: RawFrame | None = None, column: str | None = None, header_is_data: bool = False) -> FileResult:
    """A file that cannot be ingested: reported in one line, and kept durably in rejected_rows so
    nothing is lost — every data row with the file's problem when the rows could be read, else one
    row 0 for the file. Not entered in the ledger, so a corrected re-delivery is read; the same
    bytes delivered again add no second copy of their rejections."""
    # One line, whatever a reader library said; and a header that is really a data row (an export
    # without its header) must not put an ID number into the log.
    problem = mask_ids_in_text(" ".join(problem.split()))
    result.status = "failed"
    result.message = f"{source}: {problem}"
    lineage = {"_source_file": source, "_delivery": result.delivery, "_file_hash": result.file_hash}
    rows = None
    if raw is not None:
        rows = raw.data.select(
            pl.col("_row_number"), pl.lit(column, pl.Utf8).alias("column_name"),
            pl.lit(f"整个文件被拒收: {problem}").alias("reason"), raw_json(raw).alias("raw"))
        if raw.bad_rows:
            rows = pl.concat([rows, pl.DataFrame(raw.bad_rows, schema=REJECT_COLUMNS, orient="row")])
        if header_is_data:  # the first record, read as the header, is kept as row 0
            first = [(0, column, f"整个文件被拒收: {problem}",
                      json.dumps([abridge(h) for h in raw.headers], ensure_ascii=False))]
            rows = pl.concat([pl.DataFrame(first, schema=REJECT_COLUMNS, orient="row"), rows])
        rows = rows.sort("_row_number")
        result.rows_total = result.rows_rejected = rows.height
        result.rejected_by_reason = reason_categories(rows)
    else:  # unreadable: the one row-0 record of the file is what rejected_rows gets, counted as one
        result.rows_rejected = 1
        result.rejected_by_reason = {reason_category(f"整个文件被拒收: {problem}"): 1}
    already = [] if result.file_hash is None else con.execute(
        "select source_file, delivery from rejected_rows where file_hash = ? order by rejected_at, source_file limit 1",
        [result.file_hash]).fetchall()
    if already:
        # the same bytes failed before — on an earlier night, or tonight under another name:
        # nothing new is rejected (the night's count is what it added to rejected_rows), and the
        # message names the file whose rejected rows hold them
        result.rows_rejected, result.rejected_by_reason = 0, {}
        (first_source, first_delivery), = already
        result.already_recorded = (f"same content as {first_source} in delivery {mask_folder_name(first_delivery)}: "
                                   "its rejected "
                                   f"rows are recorded under that name" if first_source != source else
                                   f"rejected rows already recorded in delivery {mask_folder_name(first_delivery)}")
        result.message += f" ({result.already_recorded})"
        return result
    if rows is not None and rows.height:
        _write_rejected(con, result.kind, rows, lineage)
    else:
        con.execute(
            "insert into rejected_rows values (?, ?, 0, ?, ?, null, ?, ?, ?)",
            [result.kind, source, column or WHOLE_FILE, problem, result.file_hash, result.delivery, china_now()],
        )
    return result


# ------------------------------------------------------------------------------- writing

def _same_key(spec) -> str:
    """SQL: stored row t and staged row s have the same natural key. `is not distinct from` where a
    key part may be empty (contributions.employer_id) and must still match; plain `=` for a required
    part (never null), which DuckDB joins by hash."""
    return " and ".join(f"t.{k} = s.{k}" if spec.column(k).required else f"t.{k} is not distinct from s.{k}"
                        for k in spec.key)


def _write_rows(con, kind: str, accepted: pl.DataFrame, lineage: dict[str, str], replace: bool = True,
                notes: list[str] | None = None, absent: frozenset[str] = frozenset(),
                new_by_sender: dict[str, int] | None = None) -> int:
    """Delete-then-insert by natural key (replace=False: insert only); returns how many stored
    rows the rows replaced (a replacement within the delivery said in `notes`)."""
    if accepted.height == 0:
        return 0
    spec = EXTRACTS[kind]
    staged = accepted.select([*spec.names, *(n for n, _ in LINEAGE_COLUMNS if n not in lineage)])
    _fw_staged = _scannable(con, staged)  # noqa: F841 — read by name in the SQL below (see _scannable)
    replaced = 0
    if replace:
        # (the staged rows are read by their variable's name: in this frame, where it is) — the
        # stored rows they replace by the keys alone, then, of those few, the ones they change
        con.execute(f"create or replace temp table _fw_replaced as "
                    f"select t.rowid as rid from {kind} t semi join _fw_staged s on {_same_key(spec)}")
        if scalar(con, "select count(*) from _fw_replaced"):
            con.execute(f"create or replace temp table _fw_changed as select distinct t.rowid as rid "
                        f"from {kind} t join _fw_staged s on {_same_key(spec)} "
                        f"where t.rowid in (select rid from _fw_replaced) and ({_differs(spec)})")
            if notes is not None and absent:
                notes += _emptied(con, kind, staged, absent)
            _not_news(con, kind, "_fw_staged", new_by_sender, staged=_fw_staged)
        replaced = _replace(con, kind, lineage, [] if notes is None else notes)
    cols = ", ".join([*spec.names, *(n for n, _ in LINEAGE_COLUMNS)])
    # The file's lineage (source, delivery, hash: one value for all its rows) as query parameters,
    # not as columns of the frame: DuckDB then stores a constant, not 200,000 copies of a 64-character
    # hash handed over from Polars (a 200k-row file written in 0.38 s instead of 0.44 s, medians of 8).
    values = ", ".join([*spec.names, *(f"${n}" if n in lineage else n for n, _ in LINEAGE_COLUMNS)])
    con.execute(f"insert into {kind} ({cols}) select {values} from _fw_staged", dict(lineage)).fetchall()
    return int(replaced or 0)


_SCAN_NAMES = ("_fw_staged", "_fw_rejected")


def _scannable(con, frame: pl.DataFrame) -> pl.DataFrame:
    """`frame`, to be read by SQL through its Python variable name (a DuckDB replacement scan),
    never through con.register: inside the delivery's open transaction a registered view, even
    once unregistered, keeps its frame alive until the commit (its dropped catalog entry holds it
    for a rollback), so every chunk of a big delivery stayed in memory at once (+~2 GB RSS for
    the bench's 5.7M payments rows). A replacement scan holds the frame only while its statement
    runs. A table or view of the same name would be read instead: refused here."""
    clash = scalar(con, "select count(*) from duckdb_tables() where table_name in (?, ?)", list(_SCAN_NAMES)) \
        + scalar(con, "select count(*) from duckdb_views() where view_name in (?, ?)", list(_SCAN_NAMES))
    if clash:
        raise IngestError(f"the store holds a table or view named {' or '.join(_SCAN_NAMES)}: "
                          "drop it (a name ingest reserves for its own rows)")
    return frame


_DIGIT_RUN = re.compile(r"[0-9０-９]{4}")


def _write_rejected(con, kind: str, rejected: pl.DataFrame, lineage: dict[str, str]) -> None:
    if rejected.height == 0:
        return
    # A reason quotes the refused cell, and an ID number or card number may sit in the wrong column
    # (an amount, a date): masked, as in every message (`raw` keeps the row as delivered).
    # Each distinct reason once: a file refused whole gives every row the same one.
    reasons = rejected.get_column("reason").unique().drop_nulls().to_list()
    masked = {r: mask_ids_in_text(r) for r in reasons if _DIGIT_RUN.search(r)}
    if masked:
        rejected = rejected.with_columns(pl.col("reason").replace(masked))
    staged = rejected.select(
        pl.lit(kind).alias("extract"),
        pl.lit(lineage["_source_file"]).alias("source_file"),
        pl.col("_row_number").alias("row_number"),
        "column_name",
        "reason",
        "raw",
        pl.lit(lineage["_file_hash"]).alias("file_hash"),
        pl.lit(lineage["_delivery"]).alias("delivery"),
        pl.lit(china_now()).alias("rejected_at"),
    )
    _fw_rejected = _scannable(con, staged)  # noqa: F841 — read by name in the SQL below (see _scannable)
    con.execute("insert into rejected_rows by name select * from _fw_rejected").fetchall()

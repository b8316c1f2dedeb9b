"""Packed files that unpack to far more than they take (decompression bombs), told before reading.

Extracts come from other departments and worklists back from agencies: a 311 KB workbook held one
shared string of 300 MB (ingest at 7.4 GB), a 1.5 MB one a sheet padded with 1.5 GB of blanks, an
11 KB Parquet file one 300 MB text (a security probe). A real sheet or column packs some 2 to 30
times; what is both large unpacked and packed more than MAX_RATIO times is refused by its size.
"""

from __future__ import annotations

import io
import zipfile

LARGE_BYTES = 64 * 2**20  # unpacked: below this, any ratio reads in moments
MAX_RATIO = 200


def _too_far(unpacked: int, packed: int) -> bool:
    return unpacked > LARGE_BYTES and unpacked > MAX_RATIO * max(packed, 1)


def xlsx_part_too_large(data: bytes) -> str | None:
    """What part of an XLSX package unpacks too far ('xl/sharedStrings.xml: 314,572,800 bytes from
    310,112'), or None (also for no zip at all: the readers say what it is)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for info in z.infolist():
                if _too_far(info.file_size, info.compress_size):
                    return f"{info.filename}: {info.file_size:,} bytes from {info.compress_size:,}"
    except zipfile.BadZipFile:
        return None
    return None


def parquet_column_too_large(source) -> str | None:
    """What column chunk of a Parquet file (bytes, a file object or a path) unpacks too far, or None
    (also for a file whose footer cannot be read: the reader says so)."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(io.BytesIO(source) if isinstance(source, bytes) else source) as pf:
            meta = pf.metadata
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                for c in range(group.num_columns):
                    chunk = group.column(c)
                    if _too_far(chunk.total_uncompressed_size, chunk.total_compressed_size):
                        return (f"column {chunk.path_in_schema}: {chunk.total_uncompressed_size:,} bytes "
                                f"from {chunk.total_compressed_size:,}")
    except Exception:  # noqa: BLE001 — a damaged footer is the reader's to name
        return None
    return None

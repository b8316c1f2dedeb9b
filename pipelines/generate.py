"""`fundwatch generate`: synthetic extracts at any scale, with planted cases and their answer key.

The story of a run: the planted cases of pipelines/generate_planted.py (each in its own group of
persons, accounts and transactions, its answer computed from exactly the rows it wrote), then the
background population in batches (written and forgotten batch by batch, so memory stays flat at
any --persons), then the fund accounts' monthly flows and the agencies extract. All of it is
synthetic: names, 公民身份号码 (valid check digits, unassigned meaning), accounts and amounts are made up.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import shutil
import sys
import time
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

from pipelines import generate_background as background
from pipelines.generate_answer import evaluate
from pipelines.generate_core import Ctx, Group
from pipelines.generate_ids import IdSpace, make_person
from pipelines.generate_planted import CASES
from pipelines.generate_writers import Delivery

DEFAULT_AS_OF = date(2026, 11, 21)
DEFAULT_SEED = 20261121
DEFAULT_MONTHS = 12
MIN_MONTHS = 12  # the planted cases reach back up to 11 months before the as-of month
DELIVERY_NAME = re.compile(r"\d{4}-\d{2}-\d{2}")
# Thirty years of history at most: with as-of from 2000 on, periods stay well after 195001, the
# earliest ingest accepts (benefit start periods reach further back than the payments).
MAX_MONTHS = 360
# The as-of years the identity space serves: persons are born 20–95 years before as-of, and the
# legacy 15-digit ID numbers the generator also writes exist only for births in the 1900s.
AS_OF_YEARS = (2000, 2060)
BATCH = 5_000  # background persons per batch: rows of one batch are all that is held in memory
FORMATS = ("mixed", "parquet", "csv")
SPLITS = ("city", "province")

# which subject a rule's suspects are about (CONTRACT §2), for the look-alikes' subjects
RULE_SUBJECT = {
    "PAID_AFTER_DEATH": "person", "PAID_DURING_CUSTODY": "person", "DUPLICATE_PENSION": "person",
    "UNEMPLOYMENT_WHILE_WORKING": "person", "PAID_WHILE_SUSPENDED": "person",
    "CERTIFICATION_OVERDUE": "person", "LARGE_PAYMENT_UNREVIEWED": "payment",
    "FUND_PRIVATE_TRANSFER": "transaction", "INCOME_ACCOUNT_OUTFLOW": "transaction",
    "SHARED_BANK_ACCOUNT": "account",
}


class GenerateError(Exception):
    """A run that cannot start (bad options, an output folder already holding a delivery)."""


def default_copies(persons: int) -> int:
    # one copy of every planted case per half million persons: suspects grow with the population
    return 1 + persons // 500_000


def _subjects(group: Group, kind: str) -> list[str]:
    if kind == "person":
        ids = {r[1] for r in group.payments} | {r[0] for r in group.beneficiaries} | {r[0] for r in group.deaths}
        ids |= {r[0] for r in group.imprisonments} | {r[0] for r in group.contributions}
    elif kind == "payment":
        ids = {r[0] for r in group.payments}
    elif kind == "transaction":
        ids = {r[0] for r in group.fund_transactions}
    else:
        ids = {r[8] for r in group.payments if r[8]}
    return sorted(ids)


def _plant(ctx: Ctx, space: IdSpace, first_index: int, seed: int, copies: int) -> tuple[list, list, int]:
    """Every registered case, `copies` times, each in its own group; returns (suspects, look-alikes, next index)."""
    suspects, looks = [], []
    index = first_index

    def take(need: str):
        nonlocal index
        while True:
            p = make_person(space, index, ctx.rng)
            index += 1
            if p.pension_age == (need == "P"):
                return p

    for copy in range(copies):
        for case in CASES:
            ctx.rng = random.Random(f"{seed}:{case.name}:{copy}")
            persons = [take(need) for need in case.needs]
            ctx.group = Group()
            case.build(ctx, persons)
            group, ctx.group = ctx.group, None
            found = evaluate(group, ctx.as_of)
            fired = {s["rule_id"] for s in found}
            probed = {rule for rule, _why in case.looks}
            if fired != set(case.expect) or fired & probed:
                raise AssertionError(f"planted case {case.name} fires {sorted(fired)}, "
                                     f"meant {sorted(case.expect)} and not {sorted(probed)}")
            name = case.name if copies == 1 else f"{case.name}#{copy + 1}"
            suspects += [{**s, "case": name} for s in found]
            looks += [{"case": name, "rule_id": rule, "why": why, "subjects": _subjects(group, RULE_SUBJECT[rule])}
                      for rule, why in case.looks]
        ctx.delivery.flush()
    return suspects, looks, index


def _background(ctx: Ctx, space: IdSpace, seed: int, starts: list[int], persons: int, batch: int) -> None:
    """The background persons of the batches beginning at `starts`, batch by batch."""
    for first in starts:
        ctx.rng = random.Random(f"{seed}:background:{first}")
        for index in range(first, min(first + batch, persons)):
            background.person(ctx, make_person(space, index, ctx.rng))
        ctx.delivery.flush()


# A worker's transaction numbers start at part × this: ids stay unique and keep their 9 digits.
TXN_SEQ_PER_PART = 100_000_000


def _background_part(work: tuple) -> tuple[dict, dict, dict, list[Path]]:
    """One worker of a parallel run: its batches, in its own files; returns the row counts, the
    per agency × month totals the fund flows are built from, and the files written."""
    out, night_dates, fmt, split, part, as_of, nights, months, seed, starts, persons, batch = work
    delivery = Delivery(Path(out), night_dates, fmt, split, part=part)
    ctx = Ctx(delivery, as_of, nights, months)
    ctx.txn_seq = part * TXN_SEQ_PER_PART
    _background(ctx, IdSpace(as_of), seed, starts, persons, batch)
    paths = delivery.close()
    return dict(delivery.counts), ctx.pay_totals, ctx.contrib_totals, paths


def _rule_totals(suspects: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = defaultdict(lambda: {"count": 0, "amount": Decimal("0.00")})
    for s in suspects:
        out[s["rule_id"]]["count"] += 1
        out[s["rule_id"]]["amount"] += Decimal(s["amount"])
    return {k: {"count": v["count"], "amount": str(v["amount"])} for k, v in sorted(out.items())}


def generate(out_dir: str | Path, persons: int, seed: int = DEFAULT_SEED, as_of: date = DEFAULT_AS_OF,
             fmt: str = "mixed", months: int = DEFAULT_MONTHS, nights: int = 2, copies: int | None = None,
             force: bool = False, batch: int = BATCH, split: str = "city", jobs: int = 1) -> dict:
    """Write OUT/inbox/<night>/… and OUT/answer.json; return a small summary (files, row counts)."""
    started = time.perf_counter()
    out = Path(out_dir)
    if persons < 0:
        raise GenerateError("--persons must be 0 or more")
    if fmt not in FORMATS:
        raise GenerateError(f"--format must be one of {', '.join(FORMATS)}")
    if split not in SPLITS:
        raise GenerateError(f"--split must be one of {', '.join(SPLITS)}")
    if nights not in (1, 2):
        raise GenerateError("--nights must be 1 or 2")
    if months < MIN_MONTHS:
        raise GenerateError(f"--months must be at least {MIN_MONTHS} (the planted cases reach back that far)")
    if months > MAX_MONTHS:
        raise GenerateError(f"--months must be at most {MAX_MONTHS} (thirty years of history)")
    if not AS_OF_YEARS[0] <= as_of.year <= AS_OF_YEARS[1]:
        raise GenerateError(f"--as-of must fall in the years {AS_OF_YEARS[0]}–{AS_OF_YEARS[1]} "
                            "(the persons' birth years and ID numbers are drawn around it)")
    if copies is not None and copies < 0:
        raise GenerateError("--copies must be 0 or more")
    if jobs < 1:
        raise GenerateError("--jobs must be 1 or more")
    if not str(out_dir).strip():
        raise GenerateError("--out must name a folder")
    for path, want in ((out, "folder"), (out / "inbox", "folder"), (out / "answer.json", "file")):
        if path.exists() and (path.is_dir() != (want == "folder")):
            raise GenerateError(f"{path} is a {'file' if want == 'folder' else 'folder'}; "
                                f"it must be a {want} (choose another --out)")
    inbox = out / "inbox"
    if inbox.exists() and any(inbox.iterdir()):
        if not force:
            raise GenerateError(f"{inbox} already holds deliveries; choose an empty --out or pass --force to replace them")
        # the deliveries only (folders named by date, as generate writes them): anything else a
        # user keeps in the inbox stays
        for delivery in inbox.iterdir():
            if delivery.is_dir() and DELIVERY_NAME.fullmatch(delivery.name):
                shutil.rmtree(delivery)
    copies = default_copies(persons) if copies is None else copies

    space = IdSpace(as_of)
    if persons + 1000 * copies > space.size:
        raise GenerateError(f"--persons {persons:,} is too many: the identity space (births "
                            f"{space.first.year}–{as_of.year - 20}) holds {space.size:,} persons, "
                            f"planted cases ({copies} copies) included")
    night_dates = [as_of]
    probe = Ctx(None, as_of, nights, months)
    if probe.night1 is not None:
        night_dates = [probe.night1, as_of]
    delivery = Delivery(out, night_dates, fmt, split)
    ctx = Ctx(delivery, as_of, nights, months)

    suspects, looks, _next = _plant(ctx, space, persons, seed, copies)
    starts = list(range(0, persons, batch))
    jobs = max(1, min(jobs, len(starts)))
    worker_paths: list[Path] = []
    if jobs == 1:
        _background(ctx, space, seed, starts, persons, batch)
    else:
        # Batches are seeded by their first index, so any split of them writes the same persons;
        # worker k writes files of its own (…_w<k>) and numbers its transactions from k·10^8.
        shares = [starts[k * len(starts) // jobs:(k + 1) * len(starts) // jobs] for k in range(jobs)]
        work = [(str(out), night_dates, fmt, split, k + 1, as_of, nights, months, seed, share, persons, batch)
                for k, share in enumerate(shares)]
        with multiprocessing.get_context("spawn").Pool(jobs) as pool:
            for counts, pay_totals, contrib_totals, paths in pool.imap_unordered(_background_part, work):
                worker_paths.extend(paths)
                for kind, n in counts.items():
                    delivery.counts[kind] += n
                for totals, into in ((pay_totals, ctx.pay_totals), (contrib_totals, ctx.contrib_totals)):
                    for key, amount in totals.items():
                        into[key] = into.get(key, 0) + amount
    ctx.rng = random.Random(f"{seed}:flows")
    background.fund_flows(ctx)
    background.agencies(ctx)
    paths = sorted(delivery.close() + worker_paths)

    suspects.sort(key=lambda s: (s["rule_id"], s["subject"]))
    answer = {
        "as_of": as_of.isoformat(),
        "seed": seed,
        "persons": persons,
        "months": months,
        "nights": [d.isoformat() for d in night_dates],
        "format": fmt,
        "split": split,
        "copies": copies,
        "note": "synthetic data: every person, 公民身份号码, name, account and amount is made up",
        "rules": _rule_totals(suspects),
        "suspects": suspects,
        "look_alikes": looks,
        "amount_outliers": {
            "note": "planted for the model rule AMOUNT_OUTLIER; not part of the exact answer: a model may "
                    "rank other payments too, and the planted ones should rank high",
            "payments": ctx.outliers,
        },
        "rows": dict(delivery.counts),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "answer.json").unlink(missing_ok=True)  # made anew: with the permissions of this run
    (out / "answer.json").write_text(json.dumps(answer, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return {
        "out": str(out),
        "files": [str(p.relative_to(out)) for p in paths],
        "rows": dict(delivery.counts),
        "suspects": len(suspects),
        "look_alikes": len(looks),
        "seconds": round(time.perf_counter() - started, 1),
    }


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def parser() -> argparse.ArgumentParser:
    from pipelines.cli import OneLineParser  # one line on a wrong argument, as every fundwatch refusal

    p = OneLineParser(prog="fundwatch generate",
                                description="Synthetic extracts (all data made up) with planted anomalies and an answer key.")
    p.add_argument("--out", required=True, help="folder to write inbox/<night>/… and answer.json into")
    p.add_argument("--persons", required=True, type=int, help="background persons (planted cases come on top)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    p.add_argument("--as-of", type=_date, default=DEFAULT_AS_OF, help="the last night's date (default 2026-11-21)")
    p.add_argument("--format", choices=FORMATS, default="mixed",
                   help="mixed: GB18030/UTF-8 BOM/UTF-8 CSV, XLSX and Parquet; or all parquet; or all UTF-8 CSV")
    p.add_argument("--months", type=int, default=DEFAULT_MONTHS, help=f"months of history (default {DEFAULT_MONTHS})")
    p.add_argument("--nights", type=int, choices=(1, 2), default=2,
                   help="2: split into the night a month before as-of and the as-of night (default)")
    p.add_argument("--split", choices=SPLITS, default="city",
                   help="city: one file per city, kind and night (default); province: one file per kind and night")
    p.add_argument("--copies", type=int, default=None, help="copies of every planted case (default 1, plus 1 per 500,000 persons)")
    p.add_argument("--force", action="store_true", help="replace deliveries already under OUT/inbox")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes for the background population (default 1; the same persons, "
                        "in one more file per worker, transaction ids numbered per worker)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # Made-up people, but extracts all the same: owner-only, as the nightly's outputs are (and as
    # real extracts should be kept).
    previous_umask = os.umask(0o077)
    try:
        summary = generate(args.out, args.persons, seed=args.seed, as_of=args.as_of, fmt=args.format,
                           months=args.months, nights=args.nights, copies=args.copies, force=args.force,
                           split=args.split, jobs=args.jobs)
    except GenerateError as exc:
        print(f"fundwatch generate: {exc}", file=sys.stderr)
        return 2
    finally:
        os.umask(previous_umask)
    rows = ", ".join(f"{k} {v:,}" for k, v in summary["rows"].items())
    print(f"fundwatch generate: {len(summary['files'])} files under {summary['out']}/inbox ({rows}); "
          f"{summary['suspects']} planted suspects, {summary['look_alikes']} look-alikes in "
          f"{summary['out']}/answer.json; {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

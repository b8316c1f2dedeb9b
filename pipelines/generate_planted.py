"""Planted cases (埋点): the registry and the helpers; the cases themselves live in
generate_cases_stopped.py (entitlement ended: death, custody, suspension, certification) and
generate_cases_paid.py (paid twice or paid wrongly: duplicates, unemployment while working,
large payments, fund accounts, shared accounts, amount outliers). Suspects of every rule of
CONTRACT §2 and their look-alikes.

Each case is one small story about its own persons (or its own transactions), written with the
same emitters as the background. Times are relative to the as-of month E (E-3 = three months
earlier). A case names the rules it must fire (`expect`), the rules it probes but must not fire
(`looks`, with the clause it probes); the answer key is computed from the rows it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

from pipelines.generate_core import Ctx, day_in, ym_add
from pipelines.generate_ids import PAYING, Person, bank_account

AMOUNTS = {"110": (2500_00, 6000_00), "120": (4000_00, 9000_00), "170": (150_00, 400_00),
           "210": (1500_00, 1980_00), "410": (2000_00, 4000_00)}


@dataclass
class Case:
    name: str
    needs: str  # one letter per person: P pension age, W working age
    expect: frozenset[str]
    looks: tuple[tuple[str, str], ...]  # (rule_id, why) the case must NOT fire
    build: Callable


CASES: list[Case] = []


def case(needs: str, expect=(), looks=()):
    def deco(fn):
        CASES.append(Case(fn.__name__, needs, frozenset(expect), tuple(looks), fn))
        return fn
    return deco


# --- helpers ------------------------------------------------------------------------------------
def amount(ctx: Ctx, itype: str) -> int:
    lo, hi = AMOUNTS[itype]
    return ctx.rng.randrange(lo, hi) // 10 * 10


def cert_ok(ctx: Ctx) -> date:
    return ctx.as_of - timedelta(days=150 + ctx.rng.randrange(120))


def long_ago(ctx: Ctx) -> int:
    return ym_add(ctx.S, -1 - ctx.rng.randrange(96))


def pensioner(ctx: Ctx, p: Person, itype: str, first: int | None = None, last: int | None = None, *,
              status: str = "正常", status_date: date | None = None, cert: date | None | str = "ok",
              start: int | None = None, agency: str | None = None, account: str | None = None,
              amt: int | None = None, item: str = "基本养老金", versions=None) -> list[tuple]:
    """A beneficiary row and its monthly payments first..last (default: the whole window)."""
    start = start or first or long_ago(ctx)
    cert = cert_ok(ctx) if cert == "ok" else cert
    if versions is None:
        versions = [(day_in(start, 1), status, status_date or day_in(start, 1), cert)]
    ctx.beneficiary(p, itype, start, versions, agency=agency, account=account)
    return ctx.monthly(p, itype, item, amt or amount(ctx, itype), first or ctx.S,
                       ctx.E if last is None else last, agency=agency, account=account)


def other_agency(agency: str) -> str:
    codes = [a[0] for a in PAYING]
    return codes[(codes.index(agency) + 1) % len(codes)]


def private_account(ctx: Ctx) -> str:
    # personal accounts that receive no benefit payment: their own number space ('88')
    return bank_account(10**9 + ctx.txn_seq * 7 + ctx.rng.randrange(7), space="88")


def unemployed_stint(ctx, p, first, last, status="正常", status_date=None):
    start_d = day_in(first, 1)
    versions = [(start_d, "正常", start_d, None)]
    if status != "正常":
        versions.append((status_date, status, status_date, None))
    ctx.beneficiary(p, "210", first, versions)
    return ctx.monthly(p, "210", "失业保险金", amount(ctx, "210"), first, last)


def employer(ctx, p, n=0) -> str:
    return f"{p.region}{(p.index * 31 + n * 7) % 100000:05d}01"


# the cases register themselves on import (order = order of CASES = order persons are taken in)
from pipelines import generate_cases_paid, generate_cases_stopped  # noqa: E402,F401

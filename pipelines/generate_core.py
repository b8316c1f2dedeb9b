"""The generator's row emitters: one place that turns a person's story into extract rows.

A `Ctx` knows the window of periods, the delivery nights and the writers. Every row goes to the
night (delivery) in which a real system would first have exported it; a row re-delivered with
corrected content goes to the earlier night in its first form and to the later night in its
final form. While a planted group is being built, `ctx.group` captures its final rows so the
answer key can be computed from exactly what was written.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from pipelines.extracts import ONE_OFF_ITEMS
from pipelines.generate_ids import PAYING, Person, agency_accounts, city_of, staff_of


def ym_add(period: int, k: int) -> int:
    t = (period // 100) * 12 + period % 100 - 1 + k
    return (t // 12) * 100 + t % 12 + 1


def month_of(d: date) -> int:
    return d.year * 100 + d.month


def day_in(period: int, day: int) -> date:
    return date(period // 100, period % 100, min(day, 28))


def add_months(d: date, k: int) -> date:
    """Same day k months on, clipped to the month's end (as DuckDB's date ± interval does)."""
    p = ym_add(month_of(d), k)
    return date(p // 100, p % 100, min(d.day, calendar.monthrange(p // 100, p % 100)[1]))


@dataclass
class Group:
    """Final-state rows of one planted case (for the answer key)."""

    payments: list = field(default_factory=list)
    beneficiaries: list = field(default_factory=list)
    deaths: list = field(default_factory=list)
    imprisonments: list = field(default_factory=list)
    contributions: list = field(default_factory=list)
    fund_transactions: list = field(default_factory=list)


ITEM_K = {"基本养老金": 1, "失业保险金": 21, "伤残津贴": 41, "丧葬补助金": 61, "一次性抚恤金": 62,
          "个人账户余额一次性支付": 63, "一次性伤残补助金": 64, "一次性工亡补助金": 65}

AGENCY_CITY = {a[0]: city_of(a[2]) for a in PAYING}
PAYDAY = {a[0]: 8 + i % 6 for i, a in enumerate(PAYING)}  # each agency pays on its own day of month
STAFF = {a[0]: staff_of(a[0]) for a in PAYING}
ACCOUNTS = {a[0]: agency_accounts(a[0]) for a in PAYING}
FISCAL_ACCOUNTS = frozenset(acc["财政专户"] for acc in ACCOUNTS.values())


_REVIEW_SHIFT = {"next_day": 1, "same_day": 0, "before": -1}
_DAYS = {k: timedelta(days=k) for k in range(-3, 4)}


class Ctx:
    def __init__(self, delivery, as_of: date, nights: int, months: int):
        self.delivery = delivery
        self.as_of = as_of
        self.E = month_of(as_of)
        self.S = ym_add(self.E, -(months - 1))
        self.nights = nights
        # the as-of month is paid only once every agency's pay day (8th–13th) has passed
        self.last_paid = self.E if as_of.day >= 14 else ym_add(self.E, -1)
        self.night1 = add_months(as_of, -1) if nights == 2 else None
        self.group: Group | None = None
        self.rng = random.Random(0)
        self.pay_totals: dict[tuple[str, int], int] = {}
        self.contrib_totals: dict[tuple[str, int], int] = {}
        self.txn_seq = 0
        self.outliers: list[dict] = []

    # --- time ---------------------------------------------------------------------------------
    def night_of(self, d: date | None) -> int:
        return 0 if self.night1 is None or d is None or d <= self.night1 else 1

    def paid_on(self, agency: str, period: int) -> date:
        return day_in(period, PAYDAY[agency])

    def window(self, first: int, last: int) -> list[int]:
        """Periods first..last clipped to the window and to what has been paid by as-of."""
        out, p = [], max(first, self.S)
        while p <= min(last, self.last_paid):
            out.append(p)
            p = ym_add(p, 1)
        return out

    # --- extracts -----------------------------------------------------------------------------
    def beneficiary(self, p: Person, itype: str, start_period: int | None,
                    versions: list[tuple[date, str, date | None, date | None]],
                    agency: str | None = None, account: str | None = None) -> None:
        """versions: (effective_on, status, status_date, last_certified_on), oldest first."""
        agency = agency or p.agency
        account = p.bank_account if account is None else account

        def row(v):
            return (p.person_id, p.name, itype, agency, v[1], v[2], start_period, account, v[3])

        final = versions[-1]
        if self.group is not None:
            self.group.beneficiaries.append(row(final))
        city = AGENCY_CITY[agency]
        if self.night1 is None:
            self.delivery.add(0, "beneficiaries", city, row(final))
            return
        known = [v for v in versions if v[0] <= self.night1]
        if known:
            self.delivery.add(0, "beneficiaries", city, row(known[-1]))
        if not known or known[-1] is not final:
            self.delivery.add(1, "beneficiaries", city, row(final))

    def payment(self, p: Person, itype: str, item: str, period: int, amount: int, *,
                agency: str | None = None, account: str | None = None, paid: date | None = None,
                review: str = "ok", k: int | None = None, first_amount: int | None = None) -> tuple:
        """review: ok (another clerk, same day or before) · none · self · next_day · before · same_day."""
        agency = agency or p.agency
        paid = paid or self.paid_on(agency, period)
        account = p.bank_account if account is None else account
        staff = STAFF[agency]
        bits = self.rng.getrandbits(32)  # one draw for handler, reviewer, day and time (hot path)
        h = bits % 6
        handler = staff[h]
        if review == "none":
            reviewer, at = None, None
        elif review == "self":
            reviewer, at = handler, (paid, 15 * 3600 + 600)
        else:
            bits //= 6
            reviewer = staff[(h + 1 + bits % 5) % 6]
            bits //= 5
            shift = _REVIEW_SHIFT.get(review)
            if shift is None:
                shift = -(bits % 3)
            at = (paid + _DAYS[shift], 9 * 3600 + bits // 3 % (8 * 3600))
        # one id per person × insurance type × period × item (k tells extra payments apart)
        pid = f"FF{period}{itype}{p.index:010d}{ITEM_K.get(item, 90) if k is None else k:02d}"

        def row(a):
            return (pid, p.person_id, p.name, itype, item, period, paid, a, account, agency,
                    handler, reviewer, at)

        final = row(amount)
        if self.group is not None:
            self.group.payments.append(final)
        city = AGENCY_CITY[agency]
        night = self.night_of(paid)
        if first_amount is not None and self.night1 is not None and night == 0:
            self.delivery.add(0, "payments", city, row(first_amount))
            self.delivery.add(1, "payments", city, final)
        else:
            self.delivery.add(night, "payments", city, final)
        if item in ONE_OFF_ITEMS:  # one-off items are paid to the person one by one (对私)
            self.txn(agency, "支出户", (paid + timedelta(days=self.rng.randrange(3)), 10 * 3600),
                     "支", amount, account, p.name, "对私", item)
        else:  # recurring items leave the 支出户 in one batch per agency and month (对公, to the bank)
            key = (agency, period)
            self.pay_totals[key] = self.pay_totals.get(key, 0) + amount
        return final

    def monthly(self, p: Person, itype: str, item: str, amount: int, first: int, last: int,
                **kw) -> list[tuple]:
        return [self.payment(p, itype, item, q, amount, **kw) for q in self.window(first, last)]

    def death(self, p: Person, died: date, source: str, *, cremated: bool = False,
              reported: date | None = None, first_date: date | None = None) -> None:
        row = (p.person_id, p.name, died, source, died + timedelta(days=3) if cremated else None)
        if self.group is not None:
            self.group.deaths.append(row)
        night = self.night_of(reported or died + timedelta(days=5))
        city = city_of(p.region)
        if first_date is not None and self.night1 is not None and night == 0:
            self.delivery.add(0, "deaths", city, (p.person_id, p.name, first_date, source, None))
            self.delivery.add(1, "deaths", city, row)
        else:
            self.delivery.add(night, "deaths", city, row)

    def custody(self, p: Person, sentence: str, start: date, end: date | None, *,
                first_end: str | date | None = "same") -> None:
        facility = "江西省赣州监狱" if p.region.startswith("3607") else "江西省南昌监狱"
        row = (p.person_id, p.name, sentence, start, end, facility)
        if self.group is not None:
            self.group.imprisonments.append(row)
        city = city_of(p.region)
        night = self.night_of(start + timedelta(days=10))
        if first_end != "same" and self.night1 is not None and night == 0:
            self.delivery.add(0, "imprisonments", city, (p.person_id, p.name, sentence, start, first_end, facility))
            self.delivery.add(1, "imprisonments", city, row)
        else:
            self.delivery.add(night, "imprisonments", city, row)

    def contribution(self, p: Person, employer: str | None, itype: str, period: int, amount: int) -> None:
        row = (p.person_id, employer, itype, period, amount)
        if self.group is not None:
            self.group.contributions.append(row)
        self.delivery.add(self.night_of(day_in(period, 20)), "contributions", AGENCY_CITY[p.agency], row)
        key = (p.agency, period)
        self.contrib_totals[key] = self.contrib_totals.get(key, 0) + amount

    def txn(self, agency: str, account_type: str, at: tuple[date, int], direction: str, amount: int,
            cp_account: str | None, cp_name: str | None, cp_kind: str, memo: str) -> tuple:
        self.txn_seq += 1
        txn_id = f"JY{agency}{at[0]:%Y%m%d}{self.txn_seq:09d}"
        row = (txn_id, ACCOUNTS[agency][account_type], account_type, agency, at, direction, amount,
               cp_account, cp_name, cp_kind, memo)
        if self.group is not None:
            self.group.fund_transactions.append(row)
        self.delivery.add(self.night_of(at[0]), "fund_transactions", AGENCY_CITY[agency], row)
        return row

"""Planted cases (埋点): suspects of every rule of CONTRACT §2 and their look-alikes.

Each case is one small story about its own persons (or its own transactions), written with the
same emitters as the background. Times are relative to the as-of month E (E-3 = three months
earlier). A case names the rules it must fire (`expect`), the rules it probes but must not fire
(`looks`, with the clause it probes); the answer key is computed from the rows it wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Callable

from pipelines.generate_core import Ctx, add_months, day_in, ym_add
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
              amt: int | None = None, item: str = "基本养老金", versions=None, k=None) -> list[tuple]:
    """A beneficiary row and its monthly payments first..last (default: the whole window)."""
    start = start or first or long_ago(ctx)
    cert = cert_ok(ctx) if cert == "ok" else cert
    if versions is None:
        versions = [(day_in(start, 1), status, status_date or day_in(start, 1), cert)]
    ctx.beneficiary(p, itype, start, versions, agency=agency, account=account)
    return ctx.monthly(p, itype, item, amt or amount(ctx, itype), first or ctx.S,
                       ctx.E if last is None else last, agency=agency, account=account, k=k)


def other_agency(agency: str) -> str:
    codes = [a[0] for a in PAYING]
    return codes[(codes.index(agency) + 1) % len(codes)]


def private_account(ctx: Ctx) -> str:
    # personal accounts that receive no benefit payment: their own number space ('88')
    return bank_account(10**9 + ctx.txn_seq * 7 + ctx.rng.randrange(7), space="88")


# --- PAID_AFTER_DEATH -------------------------------------------------------------------------
@case("P", expect={"PAID_AFTER_DEATH"})
def death_paid_on(ctx, p):
    pensioner(ctx, p[0], "110")
    ctx.death(p[0], day_in(ym_add(ctx.E, -7), 14), "公安", cremated=True)


@case("P", expect={"PAID_AFTER_DEATH"})
def death_two_sources_earliest_decides(ctx, p):
    pensioner(ctx, p[0], "170")
    ctx.death(p[0], day_in(ym_add(ctx.E, -5), 12), "公安户籍注销")
    ctx.death(p[0], day_in(ym_add(ctx.E, -3), 3), "民政", cremated=True)


@case("P", expect={"PAID_AFTER_DEATH"})
def death_reported_in_later_night(ctx, p):
    pensioner(ctx, p[0], "120")
    died = day_in(ym_add(ctx.last_paid, -1), 25)  # last_paid: the as-of month once its pay days are past
    ctx.death(p[0], died, "卫健", reported=min(died + timedelta(days=7), ctx.as_of))


@case("W", expect={"PAID_AFTER_DEATH"})
def death_disability_allowance_continues(ctx, p):
    pensioner(ctx, p[0], "410", item="伤残津贴")
    ctx.death(p[0], day_in(ym_add(ctx.E, -4), 8), "卫健死亡医学证明")


@case("P", expect={"PAID_AFTER_DEATH"})
def death_date_corrected_in_later_night(ctx, p):
    pensioner(ctx, p[0], "110")
    ctx.death(p[0], day_in(ym_add(ctx.last_paid, -1), 2), "民政殡葬", cremated=True,
              first_date=day_in(ym_add(ctx.E, -7), 2))


def _dead(ctx, p, died, last, itype="110"):
    gone = died + timedelta(days=20)
    cert = cert_ok(ctx) - timedelta(days=200)  # a record keeps its last certification when it ends
    pensioner(ctx, p, itype, last=last, status="终止", status_date=gone,
              versions=[(day_in(long_ago(ctx), 1), "正常", None, cert), (gone, "终止", gone, cert)])


@case("P", expect={"PAID_AFTER_DEATH"})
def death_declared_by_court(ctx, p):
    pensioner(ctx, p[0], "170")
    ctx.death(p[0], day_in(ym_add(ctx.E, -6), 1), "法院宣告死亡")


@case("P", looks=[("PAID_AFTER_DEATH", "the month of death is payable (paid before death)")])
def death_month_paid(ctx, p):
    m = ym_add(ctx.E, -4)
    died = day_in(m, 20)
    _dead(ctx, p[0], died, m)
    ctx.death(p[0], died, "公安", cremated=True)


@case("P", looks=[("PAID_AFTER_DEATH", "paid after death, but for periods up to the death month")])
def death_back_pay_after_death(ctx, p):
    m = ym_add(ctx.E, -5)
    died = day_in(m, 3)  # the death month's pension is paid on the pay day, after the death
    _dead(ctx, p[0], died, m)
    ctx.payment(p[0], "110", "基本养老金", ym_add(m, -1), 86_00, paid=day_in(ym_add(m, 1), 12), k=11)
    ctx.death(p[0], died, "民政")


@case("P", looks=[("PAID_AFTER_DEATH", "one-off items (丧葬补助金, 个人账户余额一次性支付) after death")])
def death_one_off_items(ctx, p):
    m = ym_add(ctx.E, -6)
    died = day_in(m, 9)
    _dead(ctx, p[0], died, m)
    later = ym_add(m, 1)
    ctx.payment(p[0], "110", "丧葬补助金", later, 5_400_00, paid=day_in(later, 20))
    ctx.payment(p[0], "110", "个人账户余额一次性支付", later, 18_763_42, paid=day_in(later, 20))
    ctx.death(p[0], died, "公安户籍注销")


@case("P", looks=[("PAID_AFTER_DEATH", "two sources; paid through the month of the earliest date")])
def death_two_sources_paid_to_month(ctx, p):
    m = ym_add(ctx.E, -3)
    _dead(ctx, p[0], day_in(m, 28), m, itype="170")
    ctx.death(p[0], day_in(m, 28), "民政")
    ctx.death(p[0], day_in(ym_add(m, 1), 2), "公安")


# --- PAID_DURING_CUSTODY ----------------------------------------------------------------------
@case("P", expect={"PAID_DURING_CUSTODY"})
def custody_paid(ctx, p):
    pensioner(ctx, p[0], "110")
    ctx.custody(p[0], "有期徒刑", day_in(ym_add(ctx.E, -9), 10), day_in(ym_add(ctx.E, -3), 15))


@case("P", expect={"PAID_DURING_CUSTODY"})
def custody_short_detention(ctx, p):
    pensioner(ctx, p[0], "170")
    ctx.custody(p[0], "拘役", day_in(ym_add(ctx.E, -6), 1), day_in(ym_add(ctx.E, -4), 28))


@case("P", expect={"PAID_DURING_CUSTODY"})
def custody_still_held(ctx, p):
    pensioner(ctx, p[0], "120")
    ctx.custody(p[0], "有期徒刑", day_in(ym_add(ctx.E, -5), 20), None)


@case("P", expect={"PAID_DURING_CUSTODY"})
def custody_life_since_before_window(ctx, p):
    pensioner(ctx, p[0], "110")
    ctx.custody(p[0], "无期徒刑", date(ctx.as_of.year - 3, 5, 6), None)


@case("P", expect={"PAID_DURING_CUSTODY"})
def custody_release_reported_in_later_night(ctx, p):
    pensioner(ctx, p[0], "170")
    ctx.custody(p[0], "有期徒刑", day_in(ym_add(ctx.E, -6), 8), day_in(ym_add(ctx.E, -1), 15), first_end=None)


@case("P", expect={"PAID_DURING_CUSTODY"})
def custody_suspended_death_sentence(ctx, p):
    pensioner(ctx, p[0], "110")
    ctx.custody(p[0], "死刑缓期二年执行", day_in(ym_add(ctx.E, -8), 20), None)


@case("P", looks=[("PAID_DURING_CUSTODY", "暂予监外执行 is served outside prison")])
def custody_served_outside(ctx, p):
    pensioner(ctx, p[0], "120")
    ctx.custody(p[0], "暂予监外执行", day_in(ym_add(ctx.E, -6), 3), None)


@case("P", looks=[("PAID_DURING_CUSTODY", "a non-custodial sentence (缓刑)")])
def custody_probation(ctx, p):
    pensioner(ctx, p[0], "110")
    ctx.custody(p[0], "缓刑", day_in(ym_add(ctx.E, -8), 1), day_in(ym_add(ctx.E, -2), 1))


@case("W", looks=[("PAID_DURING_CUSTODY", "non-pension item (失业保险金) during custody")])
def custody_unemployment_benefit(ctx, p):
    pensioner(ctx, p[0], "210", first=ym_add(ctx.E, -7), item="失业保险金", cert=None)
    ctx.custody(p[0], "有期徒刑", day_in(ym_add(ctx.E, -6), 4), None)


@case("P", looks=[("PAID_DURING_CUSTODY", "paid only for the custody start and end months")])
def custody_boundary_months(ctx, p):
    start, end = day_in(ym_add(ctx.E, -7), 15), day_in(ym_add(ctx.E, -4), 10)
    versions = [(day_in(long_ago(ctx), 1), "正常", None, cert_ok(ctx) - timedelta(days=100)),
                (start, "暂停", start, None), (end, "正常", end, cert_ok(ctx))]
    first = ym_add(ctx.E, -4)
    ctx.beneficiary(p[0], "110", long_ago(ctx), versions)
    a = amount(ctx, "110")
    ctx.monthly(p[0], "110", "基本养老金", a, ctx.S, ym_add(ctx.E, -7))
    ctx.monthly(p[0], "110", "基本养老金", a, first, ctx.E)
    ctx.custody(p[0], "有期徒刑", start, end)


@case("P", looks=[("PAID_DURING_CUSTODY", "custody ended before the window")])
def custody_before_window(ctx, p):
    pensioner(ctx, p[0], "170")
    ctx.custody(p[0], "拘役", date(ctx.as_of.year - 3, 2, 1), day_in(ym_add(ctx.S, -2), 20))


# --- FUND_PRIVATE_TRANSFER / INCOME_ACCOUNT_OUTFLOW -------------------------------------------
@case("P", expect={"FUND_PRIVATE_TRANSFER"})
def transfer_to_private_account(ctx, p):
    pensioner(ctx, p[0], "170")
    ctx.txn(p[0].agency, "支出户", (day_in(ym_add(ctx.E, -3), 17), 14 * 3600), "支",
            31_500_00, private_account(ctx), p[0].name, "对私", "往来款")


def _transfer_near_payment(ctx, p, days):
    pays = pensioner(ctx, p, "110")
    pay = next(x for x in pays if x[5] == ym_add(ctx.E, -2))
    ctx.txn(p.agency, "支出户", (pay[6] + timedelta(days=days), 11 * 3600), "支", pay[7], pay[8],
            p.name, "对私", "待遇发放")


@case("P", expect={"FUND_PRIVATE_TRANSFER"})
def transfer_six_days_after_payment(ctx, p):
    _transfer_near_payment(ctx, p[0], 6)


@case("P", looks=[("FUND_PRIVATE_TRANSFER", "matches a benefit payment paid 5 days earlier")])
def transfer_five_days_after_payment(ctx, p):
    _transfer_near_payment(ctx, p[0], 5)


@case("P", looks=[("FUND_PRIVATE_TRANSFER", "matches a benefit payment paid 5 days later")])
def transfer_five_days_before_payment(ctx, p):
    _transfer_near_payment(ctx, p[0], -5)


@case("P", expect={"FUND_PRIVATE_TRANSFER"})
def transfer_amount_differs_by_a_cent(ctx, p):
    pays = pensioner(ctx, p[0], "110")
    pay = next(x for x in pays if x[5] == ym_add(ctx.E, -4))
    ctx.txn(p[0].agency, "支出户", (pay[6] + timedelta(days=1), 11 * 3600), "支", pay[7] + 1, pay[8],
            p[0].name, "对私", "待遇补发")


@case("", expect={"FUND_PRIVATE_TRANSFER", "INCOME_ACCOUNT_OUTFLOW"})
def income_account_to_private(ctx, p):
    agency = PAYING[ctx.rng.randrange(len(PAYING))][0]
    ctx.txn(agency, "收入户", (day_in(ym_add(ctx.E, -4), 9), 16 * 3600), "支", 8_800_00,
            private_account(ctx), "李建华", "对私", "退费")


@case("", expect={"INCOME_ACCOUNT_OUTFLOW"})
def income_account_pays_rent(ctx, p):
    agency = PAYING[ctx.rng.randrange(len(PAYING))][0]
    ctx.txn(agency, "收入户", (day_in(ym_add(ctx.E, -6), 11), 10 * 3600), "支", 186_000_00,
            "36050183016800001234", "江西赣江物业管理有限公司", "对公", "办公用房租金")


@case("", expect={"INCOME_ACCOUNT_OUTFLOW"})
def income_account_bypasses_fiscal(ctx, p):
    from pipelines.generate_core import ACCOUNTS

    agency = PAYING[ctx.rng.randrange(len(PAYING))][0]
    ctx.txn(agency, "收入户", (day_in(ym_add(ctx.E, -2), 25), 9 * 3600), "支", 2_350_000_00,
            ACCOUNTS[agency]["支出户"], "社会保险基金支出户", "对公", "调拨")


@case("", looks=[("INCOME_ACCOUNT_OUTFLOW", "收入户 transfer to a 财政专户"),
                 ("FUND_PRIVATE_TRANSFER", "an incoming (收) 对私 transaction")])
def income_account_to_fiscal(ctx, p):
    from pipelines.generate_core import ACCOUNTS

    agency = PAYING[ctx.rng.randrange(len(PAYING))][0]
    other = ACCOUNTS[other_agency(agency)]["财政专户"]
    ctx.txn(agency, "收入户", (day_in(ym_add(ctx.E, -5), 26), 9 * 3600), "支", 1_200_000_00,
            other, "财政专户", "对公", "上解财政专户")
    ctx.txn(agency, "收入户", (day_in(ym_add(ctx.E, -5), 27), 9 * 3600), "收", 3_600_00,
            private_account(ctx), "王桂英", "对私", "灵活就业人员缴费")


# --- LARGE_PAYMENT_UNREVIEWED -----------------------------------------------------------------
def _lump(ctx, p, amount_fen, review, back=3, first_amount=None):
    pensioner(ctx, p, "410", item="伤残津贴")
    m = ym_add(ctx.E, -back)
    return ctx.payment(p, "410", "一次性伤残补助金", m, amount_fen, paid=day_in(m, 16), review=review,
                       first_amount=first_amount)


@case("W", expect={"LARGE_PAYMENT_UNREVIEWED"})
def large_unreviewed(ctx, p):
    _lump(ctx, p[0], 86_400_00, "none")


@case("W", expect={"LARGE_PAYMENT_UNREVIEWED"})
def large_reviewed_by_handler(ctx, p):
    _lump(ctx, p[0], 123_500_00, "self", back=5)


@case("W", expect={"LARGE_PAYMENT_UNREVIEWED"})
def large_reviewed_next_day(ctx, p):
    _lump(ctx, p[0], 64_000_00, "next_day", back=2)


@case("W", expect={"LARGE_PAYMENT_UNREVIEWED"})
def large_exactly_threshold_unreviewed(ctx, p):
    _lump(ctx, p[0], 50_000_00, "none", back=7)


@case("W", looks=[("LARGE_PAYMENT_UNREVIEWED", "reviewed the same day is a review")])
def large_reviewed_same_day(ctx, p):
    _lump(ctx, p[0], 150_000_00, "same_day", back=4)


@case("W", looks=[("LARGE_PAYMENT_UNREVIEWED", "49999.99 is below the threshold")])
def large_below_threshold(ctx, p):
    _lump(ctx, p[0], 49_999_99, "none", back=6)


@case("W", looks=[("LARGE_PAYMENT_UNREVIEWED", "reviewed the day before payment")])
def large_reviewed_before(ctx, p):
    _lump(ctx, p[0], 80_000_00, "before", back=8)


@case("W", looks=[("LARGE_PAYMENT_UNREVIEWED", "52000.00 typo corrected to 5200.00 by re-delivery")])
def large_corrected_in_later_night(ctx, p):
    _lump(ctx, p[0], 5_200_00, "none", back=2, first_amount=52_000_00)


# --- DUPLICATE_PENSION ------------------------------------------------------------------------
@case("P", expect={"DUPLICATE_PENSION"})
def duplicate_enterprise_and_resident(ctx, p):
    pensioner(ctx, p[0], "110")
    pensioner(ctx, p[0], "170")


@case("P", expect={"DUPLICATE_PENSION"})
def duplicate_two_agencies(ctx, p):
    pensioner(ctx, p[0], "110", amt=4_200_00)
    ctx.monthly(p[0], "110", "基本养老金", 3_900_00, ym_add(ctx.E, -6), ctx.E,
                agency=other_agency(p[0].agency), k=2)


@case("P", expect={"DUPLICATE_PENSION"})
def duplicate_three_streams(ctx, p):
    pensioner(ctx, p[0], "120", amt=5_000_00)
    pensioner(ctx, p[0], "110", first=ym_add(ctx.E, -3), amt=3_000_00)
    pensioner(ctx, p[0], "170", first=ym_add(ctx.E, -3), amt=300_00)


@case("P", expect={"DUPLICATE_PENSION"})
def duplicate_transfer_one_month_overlap(ctx, p):
    # 转移接续: the old agency pays one month too many, the new one already pays that month
    end = ym_add(ctx.E, -5)
    ctx.monthly(p[0], "110", "基本养老金", 3_300_00, ctx.S, end, agency=other_agency(p[0].agency), k=3)
    pensioner(ctx, p[0], "110", first=end, start=end, amt=3_350_00)


@case("P", looks=[("DUPLICATE_PENSION", "two payments in one period from the same stream")])
def duplicate_same_stream_back_pay(ctx, p):
    pensioner(ctx, p[0], "110")
    m = ym_add(ctx.E, -4)
    ctx.payment(p[0], "110", "基本养老金", m, 124_00, paid=day_in(m, 22), k=11)  # 调待补发


@case("P", looks=[("DUPLICATE_PENSION", "170 ends, 110 starts: transfer (转移接续) without overlap")])
def duplicate_transfer_no_overlap(ctx, p):
    end = ym_add(ctx.E, -8)
    gone = day_in(end, 28)
    pensioner(ctx, p[0], "170", last=end, status="终止", status_date=gone,
              versions=[(day_in(long_ago(ctx), 1), "正常", None, cert_ok(ctx)), (gone, "终止", gone, cert_ok(ctx))])
    pensioner(ctx, p[0], "110", first=ym_add(end, 1))


# --- UNEMPLOYMENT_WHILE_WORKING ---------------------------------------------------------------
def _unemployed(ctx, p, first, last, status="正常", status_date=None):
    start_d = day_in(first, 1)
    versions = [(start_d, "正常", start_d, None)]
    if status != "正常":
        versions.append((status_date, status, status_date, None))
    ctx.beneficiary(p, "210", first, versions)
    return ctx.monthly(p, "210", "失业保险金", amount(ctx, "210"), first, last)


def employer(ctx, p, n=0) -> str:
    return f"{p.region}{(p.index * 31 + n * 7) % 100000:05d}01"


@case("W", expect={"UNEMPLOYMENT_WHILE_WORKING"})
def unemployed_and_employed(ctx, p):
    end = ym_add(ctx.E, -2)
    _unemployed(ctx, p[0], ym_add(ctx.E, -9), end, "终止", day_in(end, 28))
    for q in ctx.window(ym_add(ctx.E, -5), ctx.E):
        ctx.contribution(p[0], employer(ctx, p[0]), "110", q, 1_152_00)


@case("P", expect={"UNEMPLOYMENT_WHILE_WORKING"})
def unemployed_and_pensioned(ctx, p):
    _unemployed(ctx, p[0], ym_add(ctx.E, -6), ctx.E)
    pensioner(ctx, p[0], "110", first=ym_add(ctx.E, -3), cert=day_in(ym_add(ctx.E, -3), 2))


@case("W", expect={"UNEMPLOYMENT_WHILE_WORKING"})
def unemployed_two_employers(ctx, p):
    _unemployed(ctx, p[0], ym_add(ctx.E, -11), ctx.E)
    for q in ctx.window(ym_add(ctx.E, -4), ym_add(ctx.E, -3)):
        ctx.contribution(p[0], employer(ctx, p[0], 1), "110", q, 960_00)
        ctx.contribution(p[0], employer(ctx, p[0], 2), "210", q, 48_00)


@case("W", looks=[("UNEMPLOYMENT_WHILE_WORKING", "contributions with an empty employer_id (灵活就业)")])
def unemployed_flexible_contributor(ctx, p):
    _unemployed(ctx, p[0], ym_add(ctx.E, -8), ctx.E)
    for q in ctx.window(ym_add(ctx.E, -8), ctx.E):
        ctx.contribution(p[0], None, "110", q, 806_40)


@case("W", looks=[("UNEMPLOYMENT_WHILE_WORKING", "employed only after the benefit ended")])
def unemployed_then_employed(ctx, p):
    end = ym_add(ctx.E, -6)
    _unemployed(ctx, p[0], ym_add(ctx.E, -11), end, "终止", day_in(end, 27))
    for q in ctx.window(ym_add(end, 1), ctx.E):
        ctx.contribution(p[0], employer(ctx, p[0]), "110", q, 1_008_00)


@case("W", looks=[("UNEMPLOYMENT_WHILE_WORKING", "employed only before the benefit started")])
def employed_then_unemployed(ctx, p):
    first = ym_add(ctx.E, -7)
    _unemployed(ctx, p[0], first, ctx.E)
    for q in ctx.window(ctx.S, ym_add(first, -1)):
        ctx.contribution(p[0], employer(ctx, p[0]), "210", q, 52_00)


# --- PAID_WHILE_SUSPENDED ---------------------------------------------------------------------
def _suspended(ctx, p, itype, status, when, last=None, item="基本养老金"):
    cert = cert_ok(ctx)
    versions = [(day_in(long_ago(ctx), 1), "正常", None, cert), (when, status, when, cert)]
    return pensioner(ctx, p, itype, last=last, versions=versions, item=item,
                     first=None if itype != "210" else ym_add(ctx.E, -10))


@case("P", expect={"PAID_WHILE_SUSPENDED"})
def suspended_still_paid(ctx, p):
    _suspended(ctx, p[0], "110", "暂停", day_in(ym_add(ctx.E, -6), 18))


@case("P", expect={"PAID_WHILE_SUSPENDED"})
def terminated_still_paid(ctx, p):
    _suspended(ctx, p[0], "170", "终止", day_in(ym_add(ctx.E, -3), 5))


@case("W", expect={"PAID_WHILE_SUSPENDED"})
def unemployment_ended_still_paid(ctx, p):
    _suspended(ctx, p[0], "210", "终止", day_in(ym_add(ctx.E, -4), 28), last=ym_add(ctx.E, -1), item="失业保险金")


@case("P", expect={"PAID_WHILE_SUSPENDED"})
def suspended_in_later_night(ctx, p):
    _suspended(ctx, p[0], "120", "暂停", day_in(ym_add(ctx.last_paid, -1), 25))


@case("P", looks=[("PAID_WHILE_SUSPENDED", "paid only up to the month of status_date")])
def suspended_paid_to_status_month(ctx, p):
    when = day_in(ym_add(ctx.E, -5), 12)
    _suspended(ctx, p[0], "110", "暂停", when, last=ym_add(ctx.E, -5))


@case("P", looks=[("PAID_WHILE_SUSPENDED", "210 ended, a different insurance type (110) continues")])
def unemployment_ended_then_pension(ctx, p):
    end = ym_add(ctx.E, -7)
    _unemployed(ctx, p[0], ym_add(ctx.E, -14), end, "终止", day_in(end, 28))
    pensioner(ctx, p[0], "110", first=ym_add(end, 1), cert=day_in(ym_add(end, 1), 3))


@case("P", looks=[("PAID_WHILE_SUSPENDED", "only a one-off item after 终止")])
def terminated_one_off(ctx, p):
    when = day_in(ym_add(ctx.E, -4), 6)
    _suspended(ctx, p[0], "110", "终止", when, last=ym_add(ctx.E, -4))
    m = ym_add(ctx.E, -3)
    ctx.payment(p[0], "110", "个人账户余额一次性支付", m, 23_415_80, paid=day_in(m, 18))


# --- CERTIFICATION_OVERDUE --------------------------------------------------------------------
@case("P", expect={"CERTIFICATION_OVERDUE"})
def certification_lapsed_last_month(ctx, p):
    late = 400 if ctx.last_paid == ctx.E else 430  # a payment must follow the lapse month
    pensioner(ctx, p[0], "110", cert=ctx.as_of - timedelta(days=late))


@case("P", expect={"CERTIFICATION_OVERDUE"})
def certification_lapsed_months_ago(ctx, p):
    pensioner(ctx, p[0], "170", cert=ctx.as_of - timedelta(days=520))


@case("P", expect={"CERTIFICATION_OVERDUE"})
def certification_lapsed_before_window(ctx, p):
    pensioner(ctx, p[0], "120", cert=ctx.as_of - timedelta(days=900))


@case("P", expect={"CERTIFICATION_OVERDUE"})
def certification_never(ctx, p):
    # never certified since the award years ago: the award month counts as the last certification
    pensioner(ctx, p[0], "170", cert=None, start=ym_add(ctx.S, -30))


def _lapsed_last_paid_on(ctx, p, later_days):
    edge = add_months(ctx.as_of, -3)  # "within the 3 months before as-of": after this day
    m = ym_add(ctx.E, -3)
    pays = pensioner(ctx, p, "110", last=ym_add(m, -1), cert=ctx.as_of - timedelta(days=700))
    ctx.payment(p, "110", "基本养老金", m, pays[-1][7], paid=edge + timedelta(days=later_days))


@case("P", expect={"CERTIFICATION_OVERDUE"})
def certification_lapsed_paid_just_within_3_months(ctx, p):
    _lapsed_last_paid_on(ctx, p[0], 1)


@case("P", looks=[("CERTIFICATION_OVERDUE", "lapsed, last paid exactly 3 months before as-of (not within)")])
def certification_lapsed_paid_exactly_3_months_ago(ctx, p):
    _lapsed_last_paid_on(ctx, p[0], 0)


@case("P", looks=[("CERTIFICATION_OVERDUE", "certified exactly 365 days before as-of")])
def certification_at_boundary(ctx, p):
    pensioner(ctx, p[0], "110", cert=ctx.as_of - timedelta(days=365))


@case("P", looks=[("CERTIFICATION_OVERDUE", "lapsed, but no payment in the 3 months before as-of")])
def certification_lapsed_not_paid(ctx, p):
    pensioner(ctx, p[0], "170", last=ym_add(ctx.E, -5), cert=ctx.as_of - timedelta(days=500))


@case("P", looks=[("CERTIFICATION_OVERDUE", "lapsed, but the beneficiary is 暂停 (not 正常)")])
def certification_lapsed_suspended(ctx, p):
    when = day_in(ym_add(ctx.E, -2), 3)
    versions = [(day_in(long_ago(ctx), 1), "正常", None, ctx.as_of - timedelta(days=600)),
                (when, "暂停", when, ctx.as_of - timedelta(days=600))]
    pensioner(ctx, p[0], "110", last=ym_add(ctx.E, -2), versions=versions)


@case("W", looks=[("CERTIFICATION_OVERDUE", "never certified, but 失业保险金 is not a pension")])
def certification_not_needed_unemployed(ctx, p):
    _unemployed(ctx, p[0], ym_add(ctx.E, -5), ctx.E)


@case("P", looks=[("CERTIFICATION_OVERDUE", "re-certified: the later delivery replaces the lapsed date")])
def certification_renewed_in_later_night(ctx, p):
    start = long_ago(ctx)
    versions = [(day_in(start, 1), "正常", day_in(start, 1), ctx.as_of - timedelta(days=420)),
                (day_in(ctx.E, 3), "正常", day_in(start, 1), day_in(ctx.E, 3))]
    pensioner(ctx, p[0], "110", versions=versions, start=start)


# --- SHARED_BANK_ACCOUNT ----------------------------------------------------------------------
def _shared_account(ctx, p) -> str:
    return bank_account(p.index, space="99")


@case("PPP", expect={"SHARED_BANK_ACCOUNT"})
def shared_account_three(ctx, p):
    acc = _shared_account(ctx, p[0])
    for x in p:
        pensioner(ctx, x, "170", agency=p[0].agency, account=acc)


@case("PPP", expect={"SHARED_BANK_ACCOUNT"})
def shared_account_third_joins(ctx, p):
    acc = _shared_account(ctx, p[0])
    pensioner(ctx, p[0], "170", agency=p[0].agency, account=acc)
    pensioner(ctx, p[1], "170", agency=p[0].agency, account=acc)
    pensioner(ctx, p[2], "110", first=ym_add(ctx.E, -5), agency=p[0].agency, account=acc)


@case("PP", looks=[("SHARED_BANK_ACCOUNT", "two persons (a couple) share an account")])
def shared_account_couple(ctx, p):
    acc = _shared_account(ctx, p[0])
    for x in p:
        pensioner(ctx, x, "170", agency=p[0].agency, account=acc)


@case("PPP", looks=[("SHARED_BANK_ACCOUNT", "three persons, one after another (different periods)")])
def shared_account_in_turn(ctx, p):
    acc = _shared_account(ctx, p[0])
    spans = [(ctx.S, ym_add(ctx.E, -8)), (ym_add(ctx.E, -7), ym_add(ctx.E, -4)), (ym_add(ctx.E, -3), ctx.E)]
    for x, (a, b) in zip(p, spans):
        versions = [(day_in(a, 1), "正常", day_in(a, 1), cert_ok(ctx))]
        if b != ctx.E:
            versions.append((day_in(b, 27), "终止", day_in(b, 27), versions[0][3]))
        pensioner(ctx, x, "170", first=a, last=b, agency=p[0].agency, account=acc, versions=versions)


# --- AMOUNT_OUTLIER (model: planted, not part of the exact check) -------------------------------
def _outlier(ctx, p, itype, item, factor, back, first=None):
    a = amount(ctx, itype)
    while a * factor >= 45_000_00:  # an outlier, not a large payment: keep LARGE_PAYMENT_* quiet
        a //= 2
    m = ym_add(ctx.E, -back)
    cert = None if itype == "210" else "ok"
    pays = pensioner(ctx, p, itype, first=first, cert=cert, amt=a, item=item, last=ym_add(m, -1))
    odd = ctx.payment(p, itype, item, m, a * factor)
    pays += ctx.monthly(p, itype, item, a, ym_add(m, 1), ctx.E)
    ctx.outliers.append({"payment_id": odd[0], "person_id": p.person_id, "amount": f"{odd[7] // 100}.{odd[7] % 100:02d}",
                         "usual": f"{a // 100}.{a % 100:02d}", "factor": factor})


@case("P", expect=())
def outlier_resident_pension(ctx, p):
    _outlier(ctx, p[0], "170", "基本养老金", 31, 3)


@case("P", expect=())
def outlier_enterprise_pension(ctx, p):
    _outlier(ctx, p[0], "110", "基本养老金", 11, 5)


@case("W", expect=())
def outlier_unemployment_benefit(ctx, p):
    _outlier(ctx, p[0], "210", "失业保险金", 18, 2, first=ym_add(ctx.E, -9))

"""The background population (非疑点人群) and the fund accounts' own flows, built never to fire a rule.

Every person's story respects the rule text of CONTRACT §2 with a margin: one pension stream per
person, payments stop at the month of death or of a status change, pensioners are certified
within the year, the unemployed neither contribute through an employer nor draw a pension while
paid, every person has an own bank account, large one-off items are reviewed by a second clerk
no later than the pay day, one-off items leave the 支出户 to the person (对私) the day they are
paid, 收入户 money goes only to the 财政专户.
"""

from __future__ import annotations

from datetime import timedelta

from pipelines.generate_core import ACCOUNTS, PAYDAY, Ctx, day_in, ym_add
from pipelines.generate_ids import AGENCIES, PAYING, Person, city_of
from pipelines.generate_planted import amount, cert_ok, long_ago

PENSION_MIX = (("110", 0.55), ("170", 0.90), ("120", 1.0))  # cumulative shares of pensioners
BANKS = {"360100": "南昌", "360400": "九江", "360700": "赣州", "361100": "上饶"}


def agencies(ctx: Ctx) -> None:
    for code, name, region, parent in AGENCIES:
        ctx.delivery.add(0, "agencies", "360000", (code, name, region, parent or None))


def person(ctx: Ctx, p: Person) -> None:
    """One background person's story: a pensioner if of pension age, else a worker of some kind."""
    r = ctx.rng.random()
    if p.pension_age:
        if r < 0.88:
            _pensioner(ctx, p)
        elif r < 0.95:
            _contributor(ctx, p)  # still working past 55 (men retire at 60+)
        # else: in the population, in no extract
        return
    if r < 0.60:
        _contributor(ctx, p)
    elif r < 0.65:
        _unemployed(ctx, p)
    elif r < 0.665:
        _injured(ctx, p)
    elif r < 0.667:
        # 在押 but drawing nothing: the custody extract names many who are no beneficiary at all
        start = ctx.as_of - timedelta(days=30 + ctx.rng.randrange(2000))
        end = None if ctx.rng.random() < 0.5 else start + timedelta(days=180 + ctx.rng.randrange(1500))
        ctx.custody(p, ctx.rng.choice(("有期徒刑", "拘役", "缓刑")), start, end if end and end < ctx.as_of else None)


def _pension_type(ctx: Ctx) -> str:
    r = ctx.rng.random()
    return next(t for t, cum in PENSION_MIX if r < cum)


def _pensioner(ctx: Ctx, p: Person) -> None:
    itype = _pension_type(ctx)
    amt = amount(ctx, itype)
    r = ctx.rng.random()
    start = long_ago(ctx) if ctx.rng.random() < 0.95 else ym_add(ctx.S, ctx.rng.randrange(max(1, _span(ctx))))
    if r < 0.015 and ym_add(ctx.E, -2) >= max(start, ctx.S):  # died: paid up to the month of death
        died_m = _month_between(ctx, max(start, ctx.S), ym_add(ctx.E, -2))
        died = day_in(died_m, 1 + ctx.rng.randrange(28))
        gone = died + timedelta(days=5 + ctx.rng.randrange(20))
        cert = cert_ok(ctx) - timedelta(days=120)
        ctx.beneficiary(p, itype, start, [(day_in(start, 1), "正常", day_in(start, 1), cert), (gone, "终止", gone, cert)])
        ctx.monthly(p, itype, "基本养老金", amt, start, died_m)
        ctx.death(p, died, ctx.rng.choice(("公安", "民政", "民政殡葬管理")), cremated=ctx.rng.random() < 0.7)
        if ctx.rng.random() < 0.3:  # a second source, a few days later: the earliest date decides
            ctx.death(p, died + timedelta(days=ctx.rng.randrange(4)), "卫健")
        later = ym_add(died_m, 1)
        ctx.payment(p, itype, "丧葬补助金", later, 3_000_00 + ctx.rng.randrange(60) * 100_00, paid=day_in(later, 20))
        if itype == "110" and ctx.rng.random() < 0.5:
            ctx.payment(p, itype, "个人账户余额一次性支付", later, 2_000_00 + ctx.rng.randrange(3_000_000),
                        paid=day_in(later, 21))
        return
    if r < 0.025 and ym_add(ctx.E, -1) >= max(start, ctx.S):  # suspended (暂停): paid up to that month
        m = _month_between(ctx, max(start, ctx.S), ym_add(ctx.E, -1))
        when = day_in(m, 1 + ctx.rng.randrange(28))
        cert = cert_ok(ctx)
        ctx.beneficiary(p, itype, start, [(day_in(start, 1), "正常", day_in(start, 1), cert), (when, "暂停", when, cert)])
        ctx.monthly(p, itype, "基本养老金", amt, start, m)
        return
    ctx.beneficiary(p, itype, start, [(day_in(start, 1), "正常", day_in(start, 1), cert_ok(ctx))])
    ctx.monthly(p, itype, "基本养老金", amt, start, ctx.E)


def _span(ctx: Ctx) -> int:
    n, q = 0, ctx.S
    while q <= ctx.E:
        n, q = n + 1, ym_add(q, 1)
    return n


def _month_between(ctx: Ctx, first: int, last: int) -> int:
    months, q = [], first
    while q <= last:
        months.append(q)
        q = ym_add(q, 1)
    return ctx.rng.choice(months)


def _employer(p: Person, n: int = 0) -> str:
    return f"{p.region}{(p.index * 17 + n * 101) % 100000:05d}02"


def _contributor(ctx: Ctx, p: Person) -> None:
    flexible = ctx.rng.random() < 0.1  # 灵活就业: no employer
    employer = None if flexible else _employer(p)
    base = (3_600_00 + ctx.rng.randrange(800_000)) // 100 * 100
    for q in ctx.window(ctx.S, ctx.E):
        ctx.contribution(p, employer, "110", q, base * 16 // 100 if employer else base * 20 // 100)
        if employer:
            ctx.contribution(p, employer, "210", q, base * 5 // 1000)


def _unemployed(ctx: Ctx, p: Person) -> None:
    """Employed, laid off, paid 失业保险金 for a few months, maybe employed again after."""
    first = ym_add(ctx.S, ctx.rng.randrange(max(1, _span(ctx) - 1)))
    months = 3 + ctx.rng.randrange(10)
    last = ym_add(first, months - 1)
    before = _employer(p)
    for q in ctx.window(ctx.S, ym_add(first, -1)):
        ctx.contribution(p, before, "110", q, 800_00)
    amt = amount(ctx, "210")
    if last < ctx.E:
        ended = day_in(last, 20 + ctx.rng.randrange(8))
        ctx.beneficiary(p, "210", first, [(day_in(first, 1), "正常", day_in(first, 1), None),
                                          (ended, "终止", ended, None)])
        ctx.monthly(p, "210", "失业保险金", amt, first, last)
        for q in ctx.window(ym_add(last, 1), ctx.E):  # a new job from the month after the last benefit
            ctx.contribution(p, _employer(p, 1), "110", q, 900_00)
    else:
        ctx.beneficiary(p, "210", first, [(day_in(first, 1), "正常", day_in(first, 1), None)])
        ctx.monthly(p, "210", "失业保险金", amt, first, ctx.E)


def _injured(ctx: Ctx, p: Person) -> None:
    """工伤 (410): 伤残津贴 monthly; rarely a large 一次性伤残补助金, reviewed by a second clerk."""
    start = long_ago(ctx)
    ctx.beneficiary(p, "410", start, [(day_in(start, 1), "正常", day_in(start, 1), None)])
    ctx.monthly(p, "410", "伤残津贴", amount(ctx, "410"), start, ctx.E)
    if ctx.rng.random() < 0.2:
        m = ym_add(ctx.E, -1 - ctx.rng.randrange(6))
        if m >= ctx.S:
            ctx.payment(p, "410", "一次性伤残补助金", m, 20_000_00 + ctx.rng.randrange(120_000) * 100,
                        paid=day_in(m, 15), review="ok")


def fund_flows(ctx: Ctx) -> None:
    """Each agency's accounts, month by month: contributions in, up to the 财政专户, down to the
    支出户, out to the bank in one 对公 batch (批量代发) per pay day."""
    for code, _name, region, _parent in PAYING:
        acc = ACCOUNTS[code]
        city = BANKS.get(city_of(region), "江西")
        bank_acc = f"36001{PAYING.index(next(a for a in PAYING if a[0] == code)):02d}5101205{region}"
        for q in ctx.window(ctx.S, ctx.E):
            got = ctx.contrib_totals.get((code, q), 0)
            if got:
                ctx.txn(code, "收入户", (day_in(q, 18), 10 * 3600), "收", got, "36000000000000000001",
                        f"国家税务总局{city}市税务局", "对公", "社会保险费收入")
                ctx.txn(code, "收入户", (day_in(q, 20), 15 * 3600), "支", got, acc["财政专户"],
                        "社会保险基金财政专户", "对公", "上解财政专户")
                ctx.txn(code, "财政专户", (day_in(q, 20), 16 * 3600), "收", got, acc["收入户"],
                        "社会保险基金收入户", "对公", "收入户上解")
            # interest on the 财政专户 every month: every agency's 财政专户 appears in the extracts
            ctx.txn(code, "财政专户", (day_in(q, 21), 9 * 3600), "收", 1_000_00 + (q * 37 + PAYDAY[code]) % 90_000_00,
                    bank_acc, f"中国建设银行股份有限公司{city}分行", "对公", "利息收入")
            out = ctx.pay_totals.get((code, q), 0)
            if out:
                ctx.txn(code, "财政专户", (day_in(q, 5), 10 * 3600), "支", out, acc["支出户"],
                        "社会保险基金支出户", "对公", "拨付待遇支出")
                ctx.txn(code, "支出户", (day_in(q, 5), 11 * 3600), "收", out, acc["财政专户"],
                        "社会保险基金财政专户", "对公", "财政专户拨入")
                ctx.txn(code, "支出户", (day_in(q, PAYDAY[code] - 1), 9 * 3600), "支", out, bank_acc,
                        f"中国建设银行股份有限公司{city}分行", "对公", "待遇批量代发")

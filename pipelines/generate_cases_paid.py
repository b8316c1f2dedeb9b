"""Planted cases paid twice or paid wrongly: duplicates, unemployment while working, large
payments, fund accounts, shared accounts, amount outliers (the model rule)."""

from __future__ import annotations

from datetime import timedelta

from pipelines.generate_core import ACCOUNTS, day_in, ym_add
from pipelines.generate_ids import PAYING, bank_account
from pipelines.generate_planted import (amount, case, cert_ok, employer, long_ago, other_agency, pensioner,
                                        private_account, unemployed_stint)


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
@case("W", expect={"UNEMPLOYMENT_WHILE_WORKING"})
def unemployed_and_employed(ctx, p):
    end = ym_add(ctx.E, -2)
    unemployed_stint(ctx, p[0], ym_add(ctx.E, -9), end, "终止", day_in(end, 28))
    for q in ctx.window(ym_add(ctx.E, -5), ctx.E):
        ctx.contribution(p[0], employer(ctx, p[0]), "110", q, 1_152_00)


@case("P", expect={"UNEMPLOYMENT_WHILE_WORKING"})
def unemployed_and_pensioned(ctx, p):
    unemployed_stint(ctx, p[0], ym_add(ctx.E, -6), ctx.E)
    pensioner(ctx, p[0], "110", first=ym_add(ctx.E, -3), cert=day_in(ym_add(ctx.E, -3), 2))


@case("W", expect={"UNEMPLOYMENT_WHILE_WORKING"})
def unemployed_two_employers(ctx, p):
    unemployed_stint(ctx, p[0], ym_add(ctx.E, -11), ctx.E)
    for q in ctx.window(ym_add(ctx.E, -4), ym_add(ctx.E, -3)):
        ctx.contribution(p[0], employer(ctx, p[0], 1), "110", q, 960_00)
        ctx.contribution(p[0], employer(ctx, p[0], 2), "210", q, 48_00)


@case("W", looks=[("UNEMPLOYMENT_WHILE_WORKING", "contributions with an empty employer_id (灵活就业)")])
def unemployed_flexible_contributor(ctx, p):
    unemployed_stint(ctx, p[0], ym_add(ctx.E, -8), ctx.E)
    for q in ctx.window(ym_add(ctx.E, -8), ctx.E):
        ctx.contribution(p[0], None, "110", q, 806_40)


@case("W", looks=[("UNEMPLOYMENT_WHILE_WORKING", "employed only after the benefit ended")])
def unemployed_then_employed(ctx, p):
    end = ym_add(ctx.E, -6)
    unemployed_stint(ctx, p[0], ym_add(ctx.E, -11), end, "终止", day_in(end, 27))
    for q in ctx.window(ym_add(end, 1), ctx.E):
        ctx.contribution(p[0], employer(ctx, p[0]), "110", q, 1_008_00)


@case("W", looks=[("UNEMPLOYMENT_WHILE_WORKING", "employed only before the benefit started")])
def employed_thenunemployed_stint(ctx, p):
    first = ym_add(ctx.E, -7)
    unemployed_stint(ctx, p[0], first, ctx.E)
    for q in ctx.window(ctx.S, ym_add(first, -1)):
        ctx.contribution(p[0], employer(ctx, p[0]), "210", q, 52_00)


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
    agency = PAYING[ctx.rng.randrange(len(PAYING))][0]
    ctx.txn(agency, "收入户", (day_in(ym_add(ctx.E, -2), 25), 9 * 3600), "支", 2_350_000_00,
            ACCOUNTS[agency]["支出户"], "社会保险基金支出户", "对公", "调拨")


@case("", looks=[("INCOME_ACCOUNT_OUTFLOW", "收入户 transfer to a 财政专户"),
                 ("FUND_PRIVATE_TRANSFER", "an incoming (收) 对私 transaction")])
def income_account_to_fiscal(ctx, p):
    agency = PAYING[ctx.rng.randrange(len(PAYING))][0]
    other = ACCOUNTS[other_agency(agency)]["财政专户"]
    ctx.txn(agency, "收入户", (day_in(ym_add(ctx.E, -5), 26), 9 * 3600), "支", 1_200_000_00,
            other, "财政专户", "对公", "上解财政专户")
    ctx.txn(agency, "收入户", (day_in(ym_add(ctx.E, -5), 27), 9 * 3600), "收", 3_600_00,
            private_account(ctx), "王桂英", "对私", "灵活就业人员缴费")


# --- SHARED_BANK_ACCOUNT ----------------------------------------------------------------------
def _shared_account(p) -> str:
    return bank_account(p.index, space="99")


@case("PPP", expect={"SHARED_BANK_ACCOUNT"})
def shared_account_three(ctx, p):
    acc = _shared_account(p[0])
    for x in p:
        pensioner(ctx, x, "170", agency=p[0].agency, account=acc)


@case("PPP", expect={"SHARED_BANK_ACCOUNT"})
def shared_account_third_joins(ctx, p):
    acc = _shared_account(p[0])
    pensioner(ctx, p[0], "170", agency=p[0].agency, account=acc)
    pensioner(ctx, p[1], "170", agency=p[0].agency, account=acc)
    pensioner(ctx, p[2], "110", first=ym_add(ctx.E, -5), agency=p[0].agency, account=acc)


@case("PP", looks=[("SHARED_BANK_ACCOUNT", "two persons (a couple) share an account")])
def shared_account_couple(ctx, p):
    acc = _shared_account(p[0])
    for x in p:
        pensioner(ctx, x, "170", agency=p[0].agency, account=acc)


@case("PPP", looks=[("SHARED_BANK_ACCOUNT", "three persons, one after another (different periods)")])
def shared_account_in_turn(ctx, p):
    acc = _shared_account(p[0])
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

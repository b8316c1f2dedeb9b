"""Planted cases where the entitlement had ended: death, custody, suspension, lapsed certification."""

from __future__ import annotations

from datetime import date, timedelta

from pipelines.generate_core import add_months, day_in, ym_add
from pipelines.generate_planted import amount, case, cert_ok, long_ago, pensioner, unemployed_stint


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
    unemployed_stint(ctx, p[0], ym_add(ctx.E, -14), end, "终止", day_in(end, 28))
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
def certification_not_neededunemployed_stint(ctx, p):
    unemployed_stint(ctx, p[0], ym_add(ctx.E, -5), ctx.E)


@case("P", looks=[("CERTIFICATION_OVERDUE", "re-certified: the later delivery replaces the lapsed date")])
def certification_renewed_in_later_night(ctx, p):
    start = long_ago(ctx)
    versions = [(day_in(start, 1), "正常", day_in(start, 1), ctx.as_of - timedelta(days=420)),
                (day_in(ctx.E, 3), "正常", day_in(start, 1), day_in(ctx.E, 3))]
    pensioner(ctx, p[0], "110", versions=versions, start=start)

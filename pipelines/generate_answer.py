"""The answer key: CONTRACT §2's deterministic rules, evaluated in memory on one planted group.

The generator keeps planted groups apart (own persons, own accounts, own transactions), so the
suspects of the whole delivery are the union of the suspects of each group; background rows are
built never to fire. Evaluating the rule text on exactly the rows written (final state, after
re-deliveries) keeps the key right even when a case is clipped by a short window.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from pipelines.extracts import CUSTODIAL_SENTENCES, ONE_OFF_ITEMS, PENSION_TYPES
from pipelines.generate_core import FISCAL_ACCOUNTS, Group, add_months, month_of
from pipelines.generate_writers import money_text

LARGE_PAYMENT_THRESHOLD = 50_000_00  # fen
CERTIFICATION_MAX_DAYS = 365
SHARED_ACCOUNT_MIN_PERSONS = 3

# payments tuple positions (canonical column order of pipelines.extracts)
PID, PERSON, NAME, ITYPE, ITEM, PERIOD, PAID, AMOUNT, ACCOUNT, AGENCY, HANDLER, REVIEWER, REVIEWED = range(13)


def _suspect(rule, subject, person, agency, pays, amount=None):
    periods = [p[PERIOD] for p in pays]
    total = sum(p[AMOUNT] for p in pays) if amount is None else amount
    return {
        "rule_id": rule,
        "subject": subject,
        "person_id": person,
        "agency_code": agency,
        "period_from": str(min(periods)),
        "period_to": str(max(periods)),
        "amount": money_text(total),
    }


def _agency(pays) -> str:
    # the agency of the latest (then largest) payment: where the money is still going out; on a
    # tie the lower code (max keeps the first of equals, so offer them in code order)
    return max(sorted(pays, key=lambda p: p[AGENCY]), key=lambda p: (p[PERIOD], p[AMOUNT]))[AGENCY]


def _account_agency(pays) -> str:
    # an account's: the agency that paid the most into it in its shared periods, on a tie the lower code
    paid = defaultdict(int)  # fen
    for p in pays:
        paid[p[AGENCY]] += p[AMOUNT]
    return min(paid, key=lambda agency: (-paid[agency], agency))


def _recurring(p) -> bool:
    return p[ITEM] not in ONE_OFF_ITEMS


def _person_rule(out, rule, by_person):
    for person, pays in by_person.items():
        uniq = list({p[PID]: p for p in pays}.values())
        if uniq:
            out.append(_suspect(rule, person, person, _agency(uniq), uniq))


def evaluate(g: Group, as_of: date) -> list[dict]:
    out: list[dict] = []
    as_of_month = month_of(as_of)
    pays = g.payments
    by_person = defaultdict(list)
    for p in pays:
        by_person[p[PERSON]].append(p)

    # PAID_AFTER_DEATH: earliest death date across sources; the month of death is payable
    died: dict[str, date] = {}
    for person, _n, d, _src, _c in g.deaths:
        died[person] = min(d, died.get(person, d))
    hits = defaultdict(list)
    for person, d in died.items():
        hits[person] = [p for p in by_person[person] if _recurring(p) and p[PERIOD] > month_of(d)]
    _person_rule(out, "PAID_AFTER_DEATH", hits)

    # PAID_DURING_CUSTODY: custodial sentences; periods after the start month, before the end month
    hits = defaultdict(list)
    for person, _n, sentence, start, end, _f in g.imprisonments:
        if sentence not in CUSTODIAL_SENTENCES:
            continue
        last = as_of_month if end is None else None
        for p in by_person[person]:
            if p[ITYPE] in PENSION_TYPES and _recurring(p) and p[PERIOD] > month_of(start) and (
                p[PERIOD] < month_of(end) if end is not None else p[PERIOD] <= last
            ):
                hits[person].append(p)
    _person_rule(out, "PAID_DURING_CUSTODY", hits)

    # FUND_PRIVATE_TRANSFER and INCOME_ACCOUNT_OUTFLOW
    for t in g.fund_transactions:
        txn_id, _acc, acc_type, agency, at, direction, amount, cp_acc, _cpn, cp_kind, _m = t
        if direction != "支":
            continue
        month = str(month_of(at[0]))
        entry = {"person_id": None, "agency_code": agency, "period_from": month,
                 "period_to": month, "amount": money_text(amount), "subject": txn_id}
        if cp_kind == "对私" and not any(
            p[ACCOUNT] == cp_acc and p[AMOUNT] == amount and abs((p[PAID] - at[0]).days) <= 5 for p in pays
        ):
            out.append({"rule_id": "FUND_PRIVATE_TRANSFER", **entry})
        if acc_type == "收入户" and cp_acc not in FISCAL_ACCOUNTS:
            out.append({"rule_id": "INCOME_ACCOUNT_OUTFLOW", **entry})

    # LARGE_PAYMENT_UNREVIEWED: same-day review is a review
    for p in pays:
        if p[AMOUNT] >= LARGE_PAYMENT_THRESHOLD and (
            p[REVIEWER] is None or p[REVIEWER] == p[HANDLER] or p[REVIEWED][0] > p[PAID]
        ):
            out.append(_suspect("LARGE_PAYMENT_UNREVIEWED", p[PID], p[PERSON], p[AGENCY], [p]))

    # DUPLICATE_PENSION: per period, the stream totals except the largest
    for person, ps in by_person.items():
        streams = defaultdict(lambda: defaultdict(int))
        for p in ps:
            if p[ITEM] == "基本养老金":
                streams[p[PERIOD]][(p[ITYPE], p[AGENCY])] += p[AMOUNT]
        # a stream netting to nothing (reversed) is no stream, nor its agency one of the finding's
        paying = {q: {k: v for k, v in s.items() if v > 0} for q, s in streams.items()}
        dup = {q: s for q, s in paying.items() if len(s) >= 2}
        if dup:
            amount = sum(sum(s.values()) - max(s.values()) for s in dup.values())
            hit = [p for p in ps if p[ITEM] == "基本养老金" and p[PERIOD] in dup and (p[ITYPE], p[AGENCY]) in dup[p[PERIOD]]]
            out.append(_suspect("DUPLICATE_PENSION", person, person, _agency(hit), hit, amount))

    # UNEMPLOYMENT_WHILE_WORKING: an employer's contribution record or a 基本养老金 for the period
    working = defaultdict(set)
    for person, employer, _t, period, _a in g.contributions:
        if employer:
            working[person].add(period)
    for p in pays:
        if p[ITEM] == "基本养老金":
            working[p[PERSON]].add(p[PERIOD])
    hits = {person: [p for p in ps if p[ITEM] == "失业保险金" and p[PERIOD] in working[person]]
            for person, ps in by_person.items()}
    _person_rule(out, "UNEMPLOYMENT_WHILE_WORKING", hits)

    # PAID_WHILE_SUSPENDED: same insurance type, periods after the month of status_date
    hits = defaultdict(list)
    for person, _n, itype, _ag, status, status_date, _s, _acc, _c in g.beneficiaries:
        if status in ("暂停", "终止") and status_date is not None:
            hits[person] += [p for p in by_person[person] if p[ITYPE] == itype and _recurring(p)
                             and p[PERIOD] > month_of(status_date)]
    _person_rule(out, "PAID_WHILE_SUSPENDED", hits)

    # CERTIFICATION_OVERDUE: 正常 pension beneficiary paid within the 3 months before as-of
    hits = defaultdict(list)
    recent = add_months(as_of, -3)
    for person, _n, itype, _ag, status, _sd, start, _acc, cert in g.beneficiaries:
        if status != "正常" or itype not in PENSION_TYPES:
            continue
        own = [p for p in by_person[person] if p[ITYPE] == itype]
        if not any(p[AMOUNT] > 0 and recent < p[PAID] <= as_of for p in own):  # a reversal is no payment
            continue
        if cert is None:
            # never certified: the award (first day of start_period, else of the first period paid)
            # counts as the last certification — the basis the rule states in its evidence
            first = start if start is not None else min(p[PERIOD] for p in own)
            cert = date(first // 100, first % 100, 1)
        if (as_of - cert).days > CERTIFICATION_MAX_DAYS:
            lapse = month_of(cert + timedelta(days=CERTIFICATION_MAX_DAYS))
            hits[person] += [p for p in own if p[PERIOD] > lapse]
            if not hits[person]:
                raise AssertionError("a planted lapse must leave payments after the lapse month")
    _person_rule(out, "CERTIFICATION_OVERDUE", hits)

    # SHARED_BANK_ACCOUNT: periods in which >= 3 distinct persons were paid into one account
    acc = defaultdict(lambda: defaultdict(list))
    for p in pays:
        if p[ACCOUNT]:
            acc[p[ACCOUNT]][p[PERIOD]].append(p)
    for account, per in acc.items():
        shared = [p for q, ps in per.items() if len({x[PERSON] for x in ps}) >= SHARED_ACCOUNT_MIN_PERSONS for p in ps]
        if shared:
            out.append(_suspect("SHARED_BANK_ACCOUNT", account, None, _account_agency(shared), shared))
    return out

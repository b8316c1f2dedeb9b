"""The extracts (数据抽取) of CONTRACT.md §1 as data: columns, Chinese aliases, types, natural keys, codes.

Everything that needs to know what an extract looks like — ingest, the row contracts, the
generator, the data-quality suites — reads it from here, so a column is described once.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# The words of a total line (合计行) a clerk adds under rows — an export's last row or a page's
# (本页合计), a returned worklist's sum: a sum, no record (validate, returns)
TOTAL_ROW_WORDS = ("合计", "总计", "小计", "本页合计", "累计", "总合计", "合计金额")
TOTAL_ROW_SPACING = r"[\s:：\u3000]"  # what a cell may hold beside them ("合 计", "合计：") and still be one

# Column types. Each has one canonical stored form:
#   id       -> VARCHAR, an 18-character GB 11643 公民身份号码 (normalised, check digit valid)
#   text     -> VARCHAR, trimmed, empty -> NULL
#   date     -> DATE
#   datetime -> TIMESTAMP (a bare date is midnight)
#   period   -> VARCHAR 'YYYYMM' (待遇所属期 / 费款所属期)
#   money    -> DECIMAL(18,2) yuan, never float
#   insurance_type -> VARCHAR code '110' | '120' | '170' | '210' | '410' (code or name accepted)
SQL_TYPES = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "account": "VARCHAR",  # a bank or fund account number: text, never Excel's scientific notation
    "date": "DATE",
    "datetime": "TIMESTAMP",
    "period": "VARCHAR",
    "money": "DECIMAL(18,2)",
    "insurance_type": "VARCHAR",
}


@dataclass(frozen=True)
class Column:
    name: str
    alias: str  # the Chinese header (中文表头) government systems export
    type: str = "text"
    required: bool = True  # a row missing a required value is rejected
    allowed: tuple[str, ...] = ()  # closed value set, if any (after normalisation)
    # An identifier a system assigns (流水号, 编码): text made of digits, never a number — a numeric
    # Excel cell of 16 or more digits kept only 15 of them (2.0261115E+16), so two payments would
    # read as one; such a value is refused, as for ID numbers and accounts.
    code: bool = False
    # A word the rules match against the contract's lists, which are not closed (待遇项目, 刑罚类型:
    # an unknown one is accepted): an invisible format character is no part of it — kept, 丧葬补助金
    # with a zero-width space would be an unknown item, treated as recurring.
    term: bool = False


@dataclass(frozen=True)
class Extract:
    kind: str
    title: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # natural key: a re-delivered row with the same key replaces the old one

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def column_for(self, header: str) -> str | None:
        """The canonical column a delivered header names (canonical name or Chinese alias), or None.
        Matched as a clerk reads it: a line break (Alt+Enter) or space inside (姓　名), full-width
        letters or brackets and case do not count, nor the yuan a money column is in (发放金额（元）).
        Any other bracket makes another column: 发放金额（万元） is not in yuan, 发放金额（大写） is the
        amount in words beside the amount."""
        keys = _header_keys(self)
        key = header_key(header)
        if key in keys:
            return keys[key]
        name = keys.get(_IN_YUAN.sub("", key))
        return name if name is not None and self.column(name).type == "money" else None


def header_key(header: str) -> str:
    """A header as matched: NFKC (full-width forms as ASCII), no whitespace, separator or
    invisible format character anywhere in it, lowercase."""
    text = unicodedata.normalize("NFKC", str(header))
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch)[0] not in "ZC").lower()


_IN_YUAN = re.compile(r"\((?:元|人民币元|人民币|¥|rmb|cny|yuan)\)$")  # after NFKC: （元） is (元), ￥ is ¥


@lru_cache(maxsize=None)
def _header_keys(extract: "Extract") -> dict[str, str]:
    return {header_key(form): c.name for c in extract.columns for form in (c.name, c.alias)}


INSURANCE_TYPES = {
    "110": "企业职工基本养老保险",
    "120": "机关事业单位养老保险",
    "170": "城乡居民基本养老保险",
    "210": "失业保险",
    "410": "工伤保险",
}
PENSION_TYPES = ("110", "120", "170")

RECURRING_ITEMS = ("基本养老金", "失业保险金", "伤残津贴", "供养亲属抚恤金")
ONE_OFF_ITEMS = ("丧葬补助金", "一次性抚恤金", "个人账户余额一次性支付", "一次性工亡补助金", "一次性伤残补助金")

CUSTODIAL_SENTENCES = ("有期徒刑", "无期徒刑", "死刑缓期二年执行", "拘役")
NON_CUSTODIAL_SENTENCES = ("缓刑", "管制", "暂予监外执行", "假释")

# source ∈ 公安/民政/卫健/法院, "or longer text starting so" (e.g. 公安户籍注销): stored as the prefix.
DEATH_SOURCES = ("公安", "民政", "卫健", "法院")

BENEFICIARY_STATUSES = ("正常", "暂停", "终止")
ACCOUNT_TYPES = ("收入户", "支出户", "财政专户")
DIRECTIONS = ("收", "支")
COUNTERPARTY_KINDS = ("对公", "对私")

_C = Column

EXTRACTS: dict[str, Extract] = {
    e.kind: e
    for e in (
        Extract(
            "agencies",
            "经办机构",
            (
                _C("agency_code", "经办机构编码", code=True),
                _C("agency_name", "经办机构名称"),
                _C("region_code", "行政区划代码", code=True),
                _C("parent_code", "上级机构编码", required=False, code=True),
            ),
            ("agency_code",),
        ),
        Extract(
            "beneficiaries",
            "待遇享受人员",
            (
                _C("person_id", "公民身份号码", "id"),
                _C("name", "姓名"),
                _C("insurance_type", "险种类型", "insurance_type"),
                _C("agency_code", "经办机构编码", code=True),
                _C("status", "待遇状态", allowed=BENEFICIARY_STATUSES),
                _C("status_date", "状态变更日期", "date", required=False),
                _C("start_period", "待遇开始年月", "period", required=False),
                _C("bank_account", "银行账号", "account", required=False),
                _C("last_certified_on", "最近生存认证日期", "date", required=False),
            ),
            ("person_id", "insurance_type"),
        ),
        Extract(
            "payments",
            "待遇发放明细",
            (
                _C("payment_id", "发放流水号", code=True),
                _C("person_id", "公民身份号码", "id"),
                _C("name", "姓名", required=False),
                _C("insurance_type", "险种类型", "insurance_type"),
                _C("item", "待遇项目", term=True),
                _C("period", "待遇所属期", "period"),
                _C("paid_on", "发放日期", "date"),
                _C("amount", "发放金额", "money"),
                _C("bank_account", "收款账号", "account", required=False),
                _C("agency_code", "经办机构编码", code=True),
                _C("handled_by", "经办人", required=False),
                _C("reviewed_by", "复核人", required=False),
                _C("reviewed_at", "复核时间", "datetime", required=False),
            ),
            ("payment_id",),
        ),
        Extract(
            "deaths",
            "死亡火化信息",
            (
                _C("person_id", "公民身份号码", "id"),
                _C("name", "姓名", required=False),
                _C("death_date", "死亡日期", "date"),
                _C("source", "数据来源", allowed=DEATH_SOURCES),
                _C("cremated_on", "火化日期", "date", required=False),
            ),
            ("person_id", "source"),
        ),
        Extract(
            "imprisonments",
            "在押服刑信息",
            (
                _C("person_id", "公民身份号码", "id"),
                _C("name", "姓名", required=False),
                _C("sentence_type", "刑罚类型", term=True),
                _C("custody_start", "入监日期", "date"),
                _C("custody_end", "出监日期", "date", required=False),
                _C("facility", "监所名称", required=False),
            ),
            ("person_id", "custody_start"),
        ),
        Extract(
            "fund_transactions",
            "基金账户交易流水",
            (
                _C("txn_id", "交易流水号", code=True),
                _C("account_no", "本方账号", "account"),
                _C("account_type", "账户类型", allowed=ACCOUNT_TYPES),
                _C("agency_code", "经办机构编码", code=True),
                _C("txn_at", "交易时间", "datetime"),
                _C("direction", "收支方向", allowed=DIRECTIONS),
                _C("amount", "交易金额", "money"),
                _C("counterparty_account", "对方账号", "account", required=False),
                _C("counterparty_name", "对方户名", required=False),
                _C("counterparty_kind", "对方类型", allowed=COUNTERPARTY_KINDS),
                _C("memo", "摘要", required=False),
            ),
            ("txn_id",),
        ),
        Extract(
            "contributions",
            "参保缴费记录",
            (
                _C("person_id", "公民身份号码", "id"),
                _C("employer_id", "单位编号", required=False, code=True),
                _C("insurance_type", "险种类型", "insurance_type"),
                _C("period", "费款所属期", "period"),
                _C("amount", "缴费金额", "money"),
            ),
            ("person_id", "employer_id", "insurance_type", "period"),
        ),
    )
}

DATED_DELIVERY = "^[0-9]{4}-[0-9]{2}-[0-9]{2}"  # a delivery folder named by its date (Python and SQL)

# The column of an extract whose value names who sent a row, where several send one extract at their
# own pace: a death's source (公安/民政/卫健/法院), the agency whose accounts a statement is of, the 险种
# whose contributions come in. Ingest records which of them each file brought new rows of
# (ingest_senders); 数据报送 holds each to its own rhythm (arrivals.py).
SENDER_COLUMNS = {"deaths": "source", "fund_transactions": "agency_code", "contributions": "insurance_type"}

# Longest first, so that a future kind that is a prefix of another cannot steal its files.
_KINDS_BY_LENGTH = sorted(EXTRACTS, key=len, reverse=True)
FILE_SUFFIXES = (".csv", ".xlsx", ".parquet")


def kind_of_file(path: str | Path) -> str | None:
    """The extract kind a delivery file holds, told by the start of its name (payments_360700_202611.csv)."""
    name = Path(path).name.lower()
    for kind in _KINDS_BY_LENGTH:
        if re.match(rf"{kind}(?![a-z])", name):
            return kind
    return None

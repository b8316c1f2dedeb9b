"""Identities for the synthetic generator: agencies, 公民身份号码, names, bank accounts, staff.

Everything here is a pure function of a person's index (or an agency's index), so a run of ten
million persons needs no set of "ids already used": a linear permutation of a capacity-weighted
slot space gives every index its own (region, birth date, sequence) triple.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

from .normalise import check_digit

# 经办机构: province → city centres → county/district agencies (the ones that pay).
AGENCIES: tuple[tuple[str, str, str, str], ...] = (
    ("360000000", "江西省社会保险事业管理局", "360000", ""),
    ("360100000", "南昌市社会保险事业管理局", "360100", "360000000"),
    ("360400000", "九江市社会保险事业管理局", "360400", "360000000"),
    ("360700000", "赣州市社会保险事业管理中心", "360700", "360000000"),
    ("361100000", "上饶市社会保险事业管理局", "361100", "360000000"),
    ("360102001", "南昌市东湖区社会保险事业管理局", "360102", "360100000"),
    ("360402001", "九江市濂溪区社会保险事业管理局", "360402", "360400000"),
    ("360702001", "赣州市章贡区社会保险事业管理局", "360702", "360700000"),
    ("360721001", "赣州市赣县区社会保险事业管理局", "360721", "360700000"),
    ("360730001", "宁都县社会保险事业管理局", "360730", "360700000"),
    ("360781001", "瑞金市社会保险事业管理局", "360781", "360700000"),
    ("361102001", "上饶市信州区社会保险事业管理局", "361102", "361100000"),
)
PAYING = tuple(a for a in AGENCIES if not a[0].endswith("000"))  # county level: they pay benefits
REGIONS = tuple(a[2] for a in PAYING)
CITIES = ("360100", "360400", "360700", "361100")


def city_of(region: str) -> str:
    return region[:4] + "00"


# Surnames with rough national frequencies (per mille), Jiangxi-heavy ones (熊 涂 饶 赖 邹) lifted.
_SURNAMES = (
    "王72 李72 张68 刘62 陈55 杨33 黄26 赵20 吴20 周18 徐14 孙12 马12 朱12 胡12 郭11 何10 高10 林10 "
    "罗10 郑9 梁9 谢8 宋7 唐7 许7 韩6 冯6 邓7 曹6 彭7 曾8 肖7 田5 董5 袁5 潘5 于4 蒋5 蔡5 余7 杜4 "
    "叶5 程5 苏4 魏4 吕4 丁4 任4 沈3 姚3 卢3 姜3 崔3 钟6 谭3 陆3 汪4 范3 金3 石3 廖6 贾2 夏3 付3 "
    "方3 邹5 熊6 万4 涂4 饶3 赖5 黎3 龚3 邱3 江3 尹2 段2 雷2 侯2 龙2 史2 陶2 贺2 毛2 文2 易2 兰2 "
    "温2 甘2 严2 戴2 孔1 汤2 聂2 游2 敖1 艾1 危1 揭1"
).split()
SURNAMES = tuple(s[0] for s in _SURNAMES)
_SURNAME_CUM = tuple(__import__("itertools").accumulate(int(s[1:]) for s in _SURNAMES))

# Given-name characters by sex and generation (older persons carry the names of their time).
_GIVEN = {
    ("M", "old"): "国 建 华 明 德 福 荣 发 金 根 生 水 林 平 贵 忠 义 财 有 文 正 清 春 和 祥 才 仁 山 桂 兴 海 军 卫 红 东",
    ("F", "old"): "秀 英 桂 兰 玉 珍 凤 芳 梅 花 莲 翠 淑 华 琴 素 云 香 金 春 美 娥 菊 冬 月 爱 红 霞 萍 丽",
    ("M", "young"): "伟 强 磊 军 勇 杰 涛 斌 超 明 刚 平 辉 鹏 华 飞 鑫 波 宇 浩 俊 帅 凯 健 林 峰 亮 龙 志 晨 阳 博 文 睿",
    ("F", "young"): "芳 娜 敏 静 丽 艳 娟 霞 燕 玲 婷 雪 慧 颖 琳 倩 欣 晶 佳 梦 思 雨 萱 怡 悦 洁 莉 璐 瑶 蓉",
}
_GIVEN = {k: tuple(v.split()) for k, v in _GIVEN.items()}


def person_name(rng: random.Random, sex: str, birth_year: int) -> str:
    surname = rng.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0]
    pool = _GIVEN[(sex, "old" if birth_year < 1975 else "young")]
    if rng.random() < 0.3:
        return surname + pool[rng.randrange(len(pool))]
    return surname + pool[rng.randrange(len(pool))] + pool[rng.randrange(len(pool))]




@dataclass(frozen=True)
class Person:
    index: int
    person_id: str
    name: str
    birth: date
    sex: str  # 'M' | 'F' (17th digit odd = male)
    region: str
    agency: str
    bank_account: str

    @property
    def pension_age(self) -> bool:
        return self.birth.year <= PENSION_BORN_BY


PENSION_BORN_BY = 1971  # born by 1971: 55 or older in 2026 (pensioners); younger: working age


def _age_weight(age: int) -> float:
    # persons per birth day, relative: many 55–74, thinning out towards 95; working age in between
    if age < 55:
        return 0.45
    if age < 65:
        return 1.0
    if age < 75:
        return 0.8
    if age < 85:
        return 0.4
    return 0.12


class IdSpace:
    """Index → unique (region, birth date, sequence): a permutation of a capacity-weighted slot space."""

    def __init__(self, as_of: date):
        self.first = date(as_of.year - 95, 1, 1)
        last = date(as_of.year - 20, 12, 31)
        days = (last - self.first).days + 1
        self.cum: list[int] = []
        total = 0
        for d in range(days):
            age = as_of.year - (self.first + timedelta(days=d)).year
            total += max(1, int(999 * _age_weight(age)))
            self.cum.append(total)
        self.per_region = total
        self.size = total * len(REGIONS)
        self.mult = 2_654_435_761 % self.size
        while math.gcd(self.mult, self.size) != 1:
            self.mult += 1

    def slot(self, index: int) -> tuple[str, date, int]:
        if index >= self.size:
            raise ValueError(f"at most {self.size} persons fit the identity space")
        s = (index * self.mult + 12_345) % self.size
        region_i, within = divmod(s, self.per_region)
        day = bisect.bisect_right(self.cum, within)
        seq = within - (self.cum[day - 1] if day else 0)
        return REGIONS[region_i], self.first + timedelta(days=day), seq


_BANKS = ("6217", "6228", "6222", "6214", "6230", "6212")  # 建行 农行 工行 … debit card prefixes


def bank_account(index: int, space: str = "36") -> str:
    """A 19-digit card number, unique per index (background uses space '36'; planted sharing '99')."""
    body = (index * 7_919_001 + 3_141_593) % 10**13
    return f"{_BANKS[index % len(_BANKS)]}{space}{body:013d}"


def make_person(space: IdSpace, index: int, rng: random.Random) -> Person:
    region, birth, seq = space.slot(index)
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    sex = "M" if seq % 2 else "F"
    agency = next(a[0] for a in PAYING if a[2] == region)
    return Person(
        index,
        first17 + check_digit(first17),
        person_name(rng, sex, birth.year),
        birth,
        sex,
        region,
        agency,
        bank_account(index),
    )


def staff_of(agency_code: str) -> tuple[str, ...]:
    """经办人/复核人 names of an agency (six clerks), stable per agency."""
    rng = random.Random(int(agency_code))
    return tuple(person_name(rng, rng.choice("MF"), 1985) for _ in range(6))


def agency_accounts(agency_code: str) -> dict[str, str]:
    """The agency's fund accounts (基金收入户/支出户/财政专户), 20-digit corporate account numbers."""
    n = PAYING.index(next(a for a in PAYING if a[0] == agency_code))
    return {
        "收入户": f"360501830150{n:02d}100018",
        "支出户": f"360501830150{n:02d}200027",
        "财政专户": f"1506202909245{n:02d}00036",
    }

"""Configuration: defaults from CONTRACT.md, overridable from a YAML file and per region.

One Config object is passed down explicitly; nothing reads a global.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from . import store
from .clock import is_zone_name
from .privacy import mask_ids_in_text
from .resources import rules_dir
from .workdays import calendar_from

DEFAULTS: dict[str, Any] = {
    # Rule parameters: rules/<ID>.yaml carries each default; entries here override it for all
    # regions, and regions.<region_code>.rules.<ID> overrides it for one region (行政区划代码).
    "rules": {},
    "regions": {},
    "disabled_rules": [],
    # The office's own rule files (one YAML file per rule, as under rules/), loaded beside the
    # shipped ones; a relative folder is taken from the config file's folder.
    "rule_folders": [],
    # Accounts known to be 财政专户 besides those seen with that account_type in the extracts.
    "fiscal_accounts": [],
    # A rule still running after this many minutes is stopped and named as failed (the others run):
    # a query that never ends (an own rule joining payments to itself) held the night and its
    # store until killed. The shipped rules take seconds at a province's scale.
    "rule_time_limit_minutes": 60,
    # 数据报送: a payment stream (险种 × 经办机构) still without a month this many days after the day
    # its recent months came in is said late, and a feed (deaths, statements, …) silent this many
    # working days past the longest of its recent intervals (arrivals.py); null: never said.
    "late_delivery_days": 5,
    "casework": {
        "verify_working_days": 20,      # 核查期限: working days after issue
        "escalate_after_days": 90,      # 挂牌督办: loss not recovered this many days after detection
        "major_from": 100000,           # 重大要情 from this amount (yuan)
        "ministry_from": 500000,        # 重大要情（报部） from this amount
        "report_working_days": 5,       # 重大要情 report due this many working days after verification
        # Days of a State Council holiday notice (国务院办公厅关于部分节假日安排的通知) for a year the
        # chinesecalendar package does not know yet: 放假 days and 调休上班 days (see workdays.py).
        "holidays": [],
        "adjusted_workdays": [],
        # Where an agency sends its answered worklist and whom it asks (the 说明 sheet's last line),
        # e.g. "市人社局基金监督科 张某 0797-8888888，经省社保基金监管平台报送". Without it the sheet
        # says only to send it back under its own name.
        "contact": None,
    },
    "outlier": {"max_share": 0.002, "seed": 20260101, "contamination": 0.001},
    "schedule": {"cron": "0 2 * * *", "timezone": "Asia/Shanghai"},
    "duckdb": {"memory_limit": None, "temp_directory": None},
    # The supervision office that runs fundwatch (e.g. 江西省人力资源和社会保障厅基金监督处): named as
    # 填报单位 on the 汇总表, 编制单位 on the dashboard and 下发单位 on each worklist's cover, which
    # otherwise do not say whose they are once printed or forwarded.
    "office": None,
}


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if value is None and isinstance(out.get(key), dict):
            continue  # a section with every entry commented out: its defaults
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Config:
    data: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(DEFAULTS))
    source: Path | None = None

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice in one mapping: PyYAML keeps the last, so a second
    `rules:` section would silently drop every override of the first."""

    def __init__(self, stream):
        super().__init__(stream)
        self._checked_nodes: set[int] = set()

    def flatten_mapping(self, node):
        # Each mapping's own keys, once, before a merge (`<<: *defaults`, whose keys the mapping may
        # then override) writes the merged keys into the node beside them.
        if id(node) not in self._checked_nodes:
            self._checked_nodes.add(id(node))
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node)
                try:
                    repeated = key in seen
                except TypeError:
                    continue  # an unhashable key, which PyYAML refuses itself
                if repeated:
                    raise yaml.constructor.ConstructorError(None, None, f"found the key {key!r} twice",
                                                            key_node.start_mark)
                seen.add(key)
        super().flatten_mapping(node)


# YAML 1.1 reads plain digits with a leading zero as an octal number: `fiscal_accounts: [01234567]`
# became 342391 and the listed 财政专户 matched no account. Such a scalar is kept as the text written
# (an account, a code); a number with a leading zero means nothing else in a config or rule file.
_LEADING_ZERO_DIGITS = re.compile(r"[-+]?0[0-9_]+")


def _int_or_leading_zero_text(loader: yaml.SafeLoader, node: yaml.ScalarNode):
    if node.style is None and _LEADING_ZERO_DIGITS.fullmatch(node.value):
        return node.value
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _int_or_leading_zero_text)


def load_yaml(text: str, *, repeated_keys: bool = False):
    """A config or rule file's YAML, a repeated key refused (yaml.YAMLError) unless
    `repeated_keys` (PyYAML's own reading: the last one wins)."""
    return copy.deepcopy(_parsed_yaml(text, yaml.SafeLoader if repeated_keys else _UniqueKeyLoader))  # callers may change it


@functools.lru_cache(maxsize=512)
def _parsed_yaml(text: str, loader: type[yaml.SafeLoader]):
    # A night reads each rule file several times (to load it, to name its suspects, for the report)
    # and a test session runs hundreds of nights: parsing, in pure Python, was a sixth of a small
    # night's time. Keyed by the text itself, so an edited file is parsed again; a refusal is not kept.
    return yaml.load(text, Loader=loader)  # noqa: S506 — a SafeLoader


def load_config(path: str | Path | None = None) -> Config:
    if path is None:
        return Config()
    path = Path(path)
    try:
        loaded = load_yaml(_config_text(path))
        loaded = {} if loaded is None else loaded  # an empty file (or comments only); `[]`, `0` are no config
    except FileNotFoundError:
        raise SystemExit(f"config file {path} not found")
    except yaml.YAMLError as exc:
        raise SystemExit(f"config file {path} is not valid YAML: {mask_ids_in_text(yaml_problem(exc))}")
    except (ValueError, OverflowError) as exc:
        # YAML reads an unquoted 2027-02-30 as a date and Python refuses the day
        raise SystemExit(f"config file {path}: a date that does not exist ({mask_ids_in_text(exc)}): check the "
                         "dates written YYYY-MM-DD")
    if not isinstance(loaded, dict):
        raise SystemExit(f"config file {path}: expected a mapping at the top level")
    unknown = set(loaded) - set(DEFAULTS)
    if unknown:
        named = ", ".join(sorted(map(str, unknown)))
        hint = (" (a region's settings go under regions: <行政区划代码>: rules: …)"
                if any(str(k).isdigit() for k in unknown) else "")
        raise SystemExit(f"config file {path}: unknown section(s) {named}{hint} (known: {', '.join(DEFAULTS)})")
    for section, value in loaded.items():
        # a section of settings given as a list or a word: refused by name, not met as a crash later
        if isinstance(DEFAULTS[section], dict) and value is not None and not isinstance(value, dict):
            raise SystemExit(f"config file {path}: {section}: expected a mapping, got {value!r}")
    if isinstance(loaded.get("regions"), dict):
        # 360702: and "360702": are one region (YAML reads the first as a number): as text, and
        # the same code written both ways refused as a key given twice
        codes: dict[str, Any] = {}
        for code, region in loaded["regions"].items():
            if str(code) in codes:
                raise SystemExit(f"config file {path}: regions: found the key {code} twice (once quoted, once not)")
            codes[str(code)] = region
        loaded["regions"] = codes
    config = Config(_merge(DEFAULTS, loaded), path)
    try:
        _resolve_rule_folders(config)  # before the rule ids and parameters are checked against them
        _resolve_temp_directory(config)
        calendar_from(config)  # a mistyped holiday is refused now, not when a deadline is counted
        _check_duckdb(config["duckdb"])  # and a mistyped memory limit now, not at the night's first query
        _check_rule_ids(config)  # and a mistyped rule id, which would otherwise change nothing, silently
        _check_rule_params(config)  # a parameter the rule lacks, or of the wrong kind, now, not at detect
        _check_casework(config["casework"])
        _check_regions(config["regions"])
        _check_known_keys("outlier", config["outlier"])
        _check_known_keys("schedule", config["schedule"])
        _check_timezone(config["schedule"]["timezone"])  # served nights only, but said by every command
        _check_rule_time_limit(config["rule_time_limit_minutes"])
        _check_late_delivery_days(config["late_delivery_days"])
        _check_office(config["office"])
    except ValueError as exc:
        # the problem quotes the value typed: a card or an ID number put where an account list or a
        # date belongs reaches the console, runs.summary and Prefect's state masked, as any message
        told = str(exc)
        if re.search(rf"got '{_LEADING_ZERO_DIGITS.pattern}'$", told):  # a number typed with a leading zero
            told += " (digits with a leading zero are kept as text, an account or a code: write the number without it)"
        raise SystemExit(f"config file {path}: {mask_ids_in_text(told)}")
    return config


def _config_text(path: Path) -> str:
    try:
        return local_text(path)
    except ValueError:
        raise SystemExit(f"config file {path} is neither UTF-8 nor GB18030 text; save it as UTF-8") from None


def local_text(path: Path) -> str:
    """A file an office writes by hand (the config, its own rule files). Saved by Notepad or WPS on a
    Chinese Windows it may be GB18030 (GBK) rather than UTF-8, as the extracts may: both are read.
    ValueError when it is neither."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("neither UTF-8 nor GB18030 text; save it as UTF-8")


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message on one line: what is wrong and where (its own text spans four lines)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def _resolve_rule_folders(config: Config) -> None:
    """`rule_folders`: folders that exist, made absolute — a served night runs in another folder
    than the one the config was written in, so a relative folder is the config file's neighbour."""
    folders = config["rule_folders"]
    if folders is None:
        folders = []
    if not isinstance(folders, list) or not all(isinstance(f, str) and f.strip() for f in folders):
        raise ValueError(f"rule_folders: expected a list of folders, got {folders!r}")
    base = config.source.parent if config.source is not None else Path.cwd()
    resolved = []
    for folder in folders:
        path = (base / Path(folder).expanduser()).resolve()
        if not path.is_dir():
            raise ValueError(f"rule_folders: {folder} is not a folder" + (f" ({path})" if str(path) != folder else ""))
        if path == Path(rules_dir()).resolve():
            raise ValueError(f"rule_folders: {folder} is the shipped rules folder, loaded anyway")
        if config.source is not None and config.source.suffix in (".yaml", ".yml") \
                and config.source.resolve().parent == path:
            raise ValueError(f"rule_folders: {folder} holds this config file, which would be read as a broken "
                             "rule every night: keep the rules in a folder of their own")
        if str(path) not in resolved:
            resolved.append(str(path))
    config.data["rule_folders"] = resolved


def _resolve_temp_directory(config: Config) -> None:
    """`duckdb.temp_directory` read as `rule_folders` are: `~` is the home folder, and a relative
    folder the config file's neighbour (it was the working directory's: a served night, or a
    `report` run from /, spilled rows of the extracts into another folder each time)."""
    section = config["duckdb"]
    folder = section.get("temp_directory") if isinstance(section, dict) else None
    if isinstance(folder, str) and folder.strip():
        base = config.source.parent if config.source is not None else Path.cwd()
        section["temp_directory"] = str((base / Path(folder).expanduser()).absolute())


def rule_folders(config: Config | None) -> list[Path]:
    """Where the night's rules come from: the shipped rules/, then the office's own folders."""
    return [Path(rules_dir()), *(Path(f) for f in ((config.get("rule_folders") if config else None) or []))]


def _check_rule_ids(config: Config) -> None:
    """Every rule the config names (rules.<ID>, disabled_rules, regions.<code>.rules.<ID>) is a rule
    under rules/ or a rule folder: an override of a misspelt id would be ignored, and the office
    believe it applied."""
    from .rules import rule_files  # rules reads Config: not at the top

    known = {path.stem for path, _shown in rule_files(rule_folders(config))}

    def mapping(where: str, value: Any) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return value

    named = [(f"rules.{rule_id}", rule_id) for rule_id in mapping("rules", config["rules"])]
    disabled = config["disabled_rules"] or []
    if not isinstance(disabled, list):
        raise ValueError(f"disabled_rules: expected a list of rule ids, got {disabled!r}")
    named += [("disabled_rules", rule_id) for rule_id in disabled]
    for code, region in mapping("regions", config["regions"]).items():
        region_rules = mapping(f"regions.{code}", region).get("rules")
        named += [(f"regions.{code}.rules.{rule_id}", rule_id)
                  for rule_id in mapping(f"regions.{code}.rules", region_rules)]
    for where, rule_id in named:
        if not isinstance(rule_id, str) or rule_id not in known:
            raise ValueError(f"{where}: there is no rule {rule_id!r} (rules: {', '.join(sorted(known))})")


def _check_known_keys(name: str, section: Any) -> None:
    """A section's keys are the ones fundwatch reads: a misspelt key would change nothing, silently."""
    if not isinstance(section, dict):
        raise ValueError(f"{name}: expected a mapping of {', '.join(DEFAULTS[name])}")
    unknown = set(section) - set(DEFAULTS[name])
    if unknown:
        raise ValueError(f"{name}: unknown setting(s) {', '.join(sorted(map(str, unknown)))} "
                         f"(known: {', '.join(DEFAULTS[name])})")


def _check_timezone(timezone: Any) -> None:
    if not is_zone_name(str(timezone)):
        raise ValueError(f"schedule.timezone: {timezone!r} is not an IANA time zone name (e.g. Asia/Shanghai)")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _check_rule_time_limit(minutes: Any) -> None:
    if not _is_number(minutes) or not 0 < minutes <= 1440:  # (a NaN is no number, infinity above a day)
        raise ValueError(f"rule_time_limit_minutes: expected minutes from above 0 to 1440 (a day), got {minutes!r}")


def _check_late_delivery_days(days: Any) -> None:
    if days is not None and (not _is_number(days) or days != int(days) or not 0 <= days <= 366):
        raise ValueError(f"late_delivery_days: expected whole days from 0 to 366, or null (never said), got {days!r}")


MAX_OFFICE_CHARACTERS = 60


def _check_office(office: Any) -> None:
    """The office's name heads printed pages: one line of text (a line break or a tab would break
    the 汇总表's title line), as long as a long official name."""
    if office is None:
        return
    if (not isinstance(office, str) or not office.strip() or len(office.strip()) > MAX_OFFICE_CHARACTERS
            or any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in office)):
        raise ValueError(f"office: expected the office's name on one line (up to {MAX_OFFICE_CHARACTERS} "
                         f"characters), got {office!r}")


def office_name(config: Any) -> str | None:
    """config `office`, as the pages print it (None: not set, or no config)."""
    office = config.get("office") if config is not None else None
    return office.strip() if office else None


MAX_CASEWORK_DAYS = 3650


def _check_casework(section: Any) -> None:
    """Deadlines and thresholds of the casework (CONTRACT §5): counts of days are whole and at
    least 1, amounts positive and in order — a negative period would flag every suspect at once."""
    _check_known_keys("casework", section)
    for key in ("verify_working_days", "escalate_after_days", "report_working_days"):
        value = section[key]
        # at most ten years: beyond, a deadline past the calendar's last day failed the night after
        # its suspects were merged
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CASEWORK_DAYS:
            raise ValueError(f"casework.{key}: expected a whole number of days from 1 to {MAX_CASEWORK_DAYS}, "
                             f"got {value!r}")
    for key in ("major_from", "ministry_from"):
        if not _is_number(section[key]) or section[key] <= 0 or section[key] == float("inf"):
            raise ValueError(f"casework.{key}: expected an amount in yuan above 0, got {section[key]!r}")
    contact = section["contact"]
    if contact is not None and (not isinstance(contact, str) or not contact.strip() or len(contact) > 200):
        raise ValueError(f"casework.contact: expected the text of where to send a worklist and whom to ask "
                         f"(up to 200 characters), got {contact!r}")
    if section["major_from"] > section["ministry_from"]:
        raise ValueError(f"casework: major_from ({section['major_from']}) is above ministry_from "
                         f"({section['ministry_from']}): 重大要情（报部） is the larger class")


def _check_regions(regions: Any) -> None:
    """regions.<行政区划代码>.rules.<ID>: a code of digits, and `rules` its only entry."""
    for code, region in (regions or {}).items():
        if not str(code).isdigit():
            raise ValueError(f"regions.{code}: a region is named by its 行政区划代码 (digits, e.g. 360702)")
        unknown = set(region or {}) - {"rules"}
        if unknown:
            raise ValueError(f"regions.{code}: unknown setting(s) {', '.join(sorted(map(str, unknown)))} "
                             "(a region's parameters go under regions.<code>.rules.<RULE_ID>)")


SQL_INTEGER_MAX = 2**31 - 1

# Parameters in yuan: a whole default (50000) may be overridden by an amount with fen (49999.99).
MONEY_PARAM_SUFFIXES = ("_threshold", "_amount")


def param_problem(name: str, default: Any, value: Any, bounds: tuple | None = None) -> str | None:
    """Why `value` cannot stand for parameter `name` whose file default is `default` (None if it
    can): the same kind of value — a whole number for a count of days or persons —, a number not
    below 0 when its default is not, and within the rule's `param_bounds` (low, high; None: open)."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, (int, float)):
        whole = isinstance(default, int) and not name.endswith(MONEY_PARAM_SUFFIXES)
        if not _is_number(value) or (whole and not isinstance(value, int)) or \
                (isinstance(value, float) and not math.isfinite(value)):
            return "expected a whole number" if whole else "expected a number"
        if default >= 0 and value < 0:
            return "expected a number not below 0"
        low, high = bounds or (None, None)
        if whole and high is None and value > SQL_INTEGER_MAX:  # bound as an SQL INTEGER: beyond it the query fails
            return f"expected a whole number of at most {SQL_INTEGER_MAX}"
        if low is not None and value < low or high is not None and value > high:
            return ("expected a number " + " and ".join(
                ([f"of at least {low}"] if low is not None else []) + ([f"of at most {high}"] if high is not None else [])))
        return None
    if isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
            return "expected a list of values"
        return None
    if isinstance(default, str):
        return None if isinstance(value, str) and value.strip() else "expected text"
    return None


def _check_rule_params(config: Config) -> None:
    """Every parameter the config sets (rules.<ID>.<param>, regions.<code>.rules.<ID>.<param>, and
    the config keys rules read, such as fiscal_accounts) is one the rule declares, of the kind of
    its default. Else the night would fail at detection — after the other rules had merged — or
    run with a value that means nothing (a threshold of "abc", true days, -1 persons)."""
    from .rules import check_param_names, config_value, load_rules  # rules reads Config: not at the top

    rules = {rule.id: rule for rule in load_rules(rule_folders(config))[0]}
    sets = [(f"rules.{rid}", rid, over) for rid, over in (config["rules"] or {}).items()]
    sets += [(f"regions.{code}.rules.{rid}", rid, over) for code, region in (config["regions"] or {}).items()
             for rid, over in ((region or {}).get("rules") or {}).items()]
    for where, rule_id, overrides in sets:
        rule = rules.get(rule_id)
        if rule is None or overrides is None:
            continue
        check_param_names(rule, overrides, where)
        for name, value in overrides.items():
            problem = param_problem(name, rule.params[name], value, rule.param_bounds.get(name))
            if problem:
                raise ValueError(f"{where}.{name}: {problem}, got {value!r}")
    for rule in rules.values():
        for name, key in rule.config_params.items():
            value = config_value(config, key)[1]
            problem = None if value is None else param_problem(name, rule.params[name], value,
                                                                rule.param_bounds.get(name))
            if problem:
                raise ValueError(f"{key}: {problem}, got {value!r}")


def _check_duckdb(section: Any) -> None:
    """The `duckdb:` section: memory_limit must be a size DuckDB takes, temp_directory a folder."""
    if not isinstance(section, dict):
        raise ValueError("duckdb: expected a mapping of memory_limit and temp_directory")
    unknown = set(section) - set(DEFAULTS["duckdb"])
    if unknown:
        raise ValueError(f"duckdb: unknown setting(s) {', '.join(sorted(map(str, unknown)))} "
                         f"(known: {', '.join(DEFAULTS['duckdb'])})")
    folder = section.get("temp_directory")
    if folder is not None and (not isinstance(folder, str) or not folder.strip()):
        raise ValueError(f"duckdb.temp_directory: expected a folder path, got {folder!r}")
    if folder is not None and Path(folder).exists() and not Path(folder).is_dir():
        raise ValueError(f"duckdb.temp_directory: {folder} is a file, not a folder")
    if str(section.get("memory_limit") or "").strip().startswith("-"):
        raise ValueError(f"duckdb.memory_limit: {section['memory_limit']!r} is below zero")
    probe = duckdb.connect()  # in memory: the limit is tried, nothing is opened or created
    try:
        store.apply_settings(probe, memory_limit=section.get("memory_limit"))
    except ValueError as exc:
        raise ValueError(f"duckdb.{exc}") from None
    finally:
        probe.close()

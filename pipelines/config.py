"""Configuration: defaults from CONTRACT.md, overridable from a YAML file and per region.

One Config object is passed down explicitly; nothing reads a global.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from . import store
from .resources import rules_dir
from .workdays import calendar_from

DEFAULTS: dict[str, Any] = {
    # Rule parameters: rules/<ID>.yaml carries each default; entries here override it for all
    # regions, and regions.<region_code>.rules.<ID> overrides it for one region (行政区划代码).
    "rules": {},
    "regions": {},
    "disabled_rules": [],
    # Accounts known to be 财政专户 besides those seen with that account_type in the extracts.
    "fiscal_accounts": [],
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
    },
    "outlier": {"max_share": 0.002, "seed": 20260101, "contamination": 0.001},
    "schedule": {"cron": "0 2 * * *", "timezone": "Asia/Shanghai"},
    "duckdb": {"memory_limit": None, "temp_directory": None},
}


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
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


def load_config(path: str | Path | None = None) -> Config:
    if path is None:
        return Config()
    path = Path(path)
    try:
        loaded = yaml.safe_load(_config_text(path)) or {}
    except FileNotFoundError:
        raise SystemExit(f"config file {path} not found")
    except yaml.YAMLError as exc:
        raise SystemExit(f"config file {path} is not valid YAML: {_yaml_problem(exc)}")
    if not isinstance(loaded, dict):
        raise SystemExit(f"config file {path}: expected a mapping at the top level")
    unknown = set(loaded) - set(DEFAULTS)
    if unknown:
        raise SystemExit(f"config file {path}: unknown section(s) {', '.join(sorted(unknown))}")
    config = Config(_merge(DEFAULTS, loaded), path)
    try:
        calendar_from(config)  # a mistyped holiday is refused now, not when a deadline is counted
        _check_duckdb(config["duckdb"])  # and a mistyped memory limit now, not at the night's first query
        _check_rule_ids(config)  # and a mistyped rule id, which would otherwise change nothing, silently
    except ValueError as exc:
        raise SystemExit(f"config file {path}: {exc}")
    return config


def _config_text(path: Path) -> str:
    """The config's text. Saved by Notepad or WPS on a Chinese Windows it may be GB18030 (GBK)
    rather than UTF-8, as the extracts may: both are read."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SystemExit(f"config file {path} is neither UTF-8 nor GB18030 text; save it as UTF-8")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's message on one line: what is wrong and where (its own text spans four lines)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


def _check_rule_ids(config: Config) -> None:
    """Every rule the config names (rules.<ID>, disabled_rules, regions.<code>.rules.<ID>) is a rule
    under rules/: an override of a misspelt id would be ignored, and the office believe it applied."""
    folder = Path(rules_dir())
    known = {path.stem for pattern in ("*.yaml", "*.yml") for path in folder.glob(pattern)}

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
    probe = duckdb.connect()  # in memory: the limit is tried, nothing is opened or created
    try:
        store.apply_settings(probe, memory_limit=section.get("memory_limit"))
    except ValueError as exc:
        raise ValueError(f"duckdb.{exc}") from None
    finally:
        probe.close()

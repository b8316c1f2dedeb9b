"""The rule runner (疑点规则引擎): loads rules/*.yaml and runs each as one DuckDB query.

It knows nothing of any single rule. A rule file carries its id, titles, policy basis, severity,
subject kind, parameters with defaults and its SQL (named CTEs ending in one select with the
columns of DETECTION_COLUMNS). Parameters are bound as DuckDB named parameters `$name`;
`$as_of` (DATE) and `$as_of_month` ('YYYYMM') are always available. A rule with `engine: model`
names a Python entry point (`module:function`) that turns the rows of its SQL (features) into
findings — AMOUNT_OUTLIER is one.

Performance (docs/readme/bench.md). A person rule whose findings depend only on the payments of a
small set of persons (the dead, the imprisoned, stopped or uncertified beneficiaries, …) says so
with `watch:` — SQL returning those persons' `person_id`s — and reads the temp table
`payments_watch` (WATCH_COLUMNS for the shipped rules, every column beside an office's own: watch_columns) instead of `payments`. The runner builds `payments_watch` once per detection for
the union of every watching rule's persons: one narrow pass over payments.person_id, then the
wide rows of the few matching payments fetched by rowid. Reading every column of 12 million
payments once per rule was most of the cost of detection.

Incremental nights (`detect(..., incremental=True)`, what the nightly flow does). Each rule is
re-checked only for the subjects tonight's new rows can change. New rows are those of files the
ledger lists but detect_seen_files does not (the lineage column `_file_hash` of each extract
table), seen as temp views new_<table>. A rule's `incremental:` SQL returns its subjects from them
(it may also read the store and `previous_findings`, the subjects of its suspects); a watching
person rule without one re-checks the persons it watches or found before who have a new row in a
table it reads. The rule then runs with the tables its subjects live in (for a person rule, every
person table it reads) shadowed, for it alone, by those subjects' rows (_rule_inputs), and only
their findings are kept; suspects.update_suspects
marks only those subjects, and the rule's other suspects keep their state. A rule with no subject
tonight, and a SQL rule none of whose extract tables (`Rule.reads`: the tables its SQL, watch and
incremental name, plus agencies) got a new file, is not run: it would find what it found last
time. The run is full instead — and says why — when there is no earlier state, the rules,
parameters or config changed, as-of went backwards (or did so last time), rows without lineage exist, a new payments
file replaced earlier rows (a replaced payment may have belonged to another person, who is then
unknown) or a new agencies file came. A rule that reads $as_of/$as_of_month is scoped only when
as-of did not change; a model rule always runs in full.

Parameter values, last one wins: the file's default, `config_params` (a param fed from a config
key such as `fiscal_accounts`), config `rules.<ID>.<param>`, then per region
`regions.<region_code>.rules.<ID>.<param>`. A region override applies to findings whose agency
(agencies.region_code) is in that region: the query runs once per distinct parameter set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import yaml

from . import resources
from .config import DEFAULTS, Config, load_yaml, local_text, param_problem, rule_folders, yaml_problem
from .privacy import mask_ids_in_text
from .store import failure_hint, of_files, scalar, store_catalog, table_exists

DETECTION_COLUMNS = ("subject", "person_id", "agency_code", "period_from", "period_to", "amount", "evidence")
REQUIRED_KEYS = ("id", "title", "title_en", "basis", "severity", "subject", "params", "sql")
SUBJECT_KINDS = ("person", "payment", "transaction", "account")
BUILTIN_PARAMS = ("as_of", "as_of_month")
_PARAM_REF = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")

DETECTIONS_DDL = """
create or replace temp table detections (
    rule_id     varchar not null,
    subject     varchar not null,
    person_id   varchar,
    agency_code varchar,
    period_from varchar,
    period_to   varchar,
    amount      decimal(18,2),
    evidence    json
)"""
# What ran tonight, for suspects.update_suspects: severity, and which rules ran cleanly (only
# those may call a suspect "no longer detected").
DETECTION_RULES_DDL = """
create or replace temp table detection_rules (
    rule_id  varchar primary key,
    title    varchar,
    severity varchar,
    subject_kind varchar,
    ok       boolean,
    findings bigint,
    amount   decimal(18,2),
    seconds  double,
    scoped   boolean,  -- its suspects outside tonight's scope keep their state (see scope)
    scope    varchar   -- 'subjects': ran only for its subjects in temp table detection_subjects;
                       -- 'unchanged': not run, nothing it reads can have changed; null: a full run
)"""
DETECT_STATE_DDL = """
create table if not exists detect_state (
    id          integer primary key,   -- always 1: the state of the last merged detection
    as_of       date,
    fingerprint varchar,               -- md5 of the rules, their parameter sets and disabled rules,
                                       -- null: a rule failed (no incremental night starts from it)
    updated_at  timestamp
);
create table if not exists detect_seen_files (file_hash varchar primary key)
"""

PERSON_TABLES = ("payments", "deaths", "imprisonments", "beneficiaries", "contributions")
EXTRACT_TABLES = (*PERSON_TABLES, "fund_transactions", "agencies")
# SQL names are case-blind: FROM PAYMENTS reads payments (a rule so written was taken to read none
# of them, and was passed over on incremental nights while its findings went stale)
_TABLE_REF = re.compile(r"\b(" + "|".join(EXTRACT_TABLES) + r")\b", re.IGNORECASE)
_NEW_TABLE_REF = re.compile(r"\bnew_(" + "|".join(EXTRACT_TABLES) + r")\b", re.IGNORECASE)


def ensure_detect_schema(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DETECT_STATE_DDL.split(";"):
        if stmt.strip():
            con.execute(stmt)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    title_en: str
    basis: str
    severity: str
    subject: str
    params: dict[str, Any]
    sql: str
    path: Path | None = None
    engine: str = "sql"
    model: str | None = None
    config_params: dict[str, str] = field(default_factory=dict)
    description: str = ""
    watch: str | None = None  # SQL -> person_id: the only persons whose payments the rule needs
    incremental: str | None = None  # SQL -> subject: tonight's subjects whose findings new rows can change
    # name -> (low, high), None for an open end: a value outside means nothing to the rule (a
    # "shared" account of one person, a quantile above 1)
    param_bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    label: str | None = None  # how errors name the file: a shipped rule's by name, an own rule's by path

    @property
    def file_label(self) -> str:
        return self.label or (self.path.name if self.path else self.id)

    @property
    def reads(self) -> set[str]:
        """The extract tables the rule's SQL and watch name (payments_watch is payments), plus
        agencies, which the runner joins for per-region parameters. Naming a table in a comment or
        string does not count; a false match only makes the rule run more often."""
        text = _strip_sql_comments_and_strings(f"{self.sql}\n{self.watch or ''}\n{self.incremental or ''}").lower()
        found = set(_TABLE_REF.findall(text)) | set(_NEW_TABLE_REF.findall(text))
        if "payments_watch" in text:
            found.add("payments")
        return found | {"agencies"}

    @property
    def sql_params(self) -> set[str]:
        """Parameter names the SQL refers to ($name)."""
        return set(_PARAM_REF.findall(_strip_sql_comments_and_strings(self.sql)))

    @property
    def watch_params(self) -> set[str]:
        return set(_PARAM_REF.findall(_strip_sql_comments_and_strings(self.watch or "")))

    @property
    def incremental_params(self) -> set[str]:
        return set(_PARAM_REF.findall(_strip_sql_comments_and_strings(self.incremental or "")))


@dataclass(frozen=True)
class RuleError:
    rule_file: str  # the file name (or rule id when the rule came from elsewhere)
    message: str

    def __post_init__(self) -> None:
        # one line, whatever the reason's own text spans: it is the night's one-line failure and a
        # field of runs.summary
        object.__setattr__(self, "message", " ".join(self.message.split()))

    def __str__(self) -> str:
        return f"{self.rule_file}: {self.message}"


@dataclass
class RuleResult:
    rule_id: str
    title: str
    count: int = 0
    amount: Decimal = Decimal("0.00")
    seconds: float = 0.0
    error: str | None = None
    unchanged: bool = False  # not re-run: nothing new since the last merged detection can change its findings
    subjects: int | None = None  # run only for this many subjects new rows can change; None: in full
    # the parameter sets it ran with: [{"params": {...}, "regions": None (every other region) or
    # [行政区划代码…]}] — kept in runs.summary, so a night's findings can be read with the values
    # that made them (a threshold moved by config, a closed suspect reopened by it)
    parameters: list[dict[str, Any]] | None = None


@dataclass
class DetectReport:
    as_of: date
    results: list[RuleResult] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # disabled by config
    watch_seconds: float = 0.0  # building payments_watch, shared by the watching rules
    scoped_rules: list[str] = field(default_factory=list)
    unchanged_rules: list[str] = field(default_factory=list)
    scope_subjects: int | None = None  # subjects re-checked by the scoped rules; None: a full run
    subjects_by_rule: dict[str, int] = field(default_factory=dict)
    scope_note: str = "full run"
    rules: list[Rule] = field(default_factory=list, repr=False)  # every rule loaded, disabled ones too

    @property
    def total_count(self) -> int:
        return sum(r.count for r in self.results)

    @property
    def total_amount(self) -> Decimal:
        return sum((r.amount for r in self.results), Decimal("0.00"))

    def by_rule(self) -> dict[str, dict[str, Any]]:
        return {r.rule_id: {"title": r.title, "count": r.count, "amount": r.amount,
                            "seconds": round(r.seconds, 3), "error": r.error} for r in self.results}

    def summary(self) -> str:
        """A table a clerk can read: suspects and amount at risk (涉及金额) per rule."""
        lines = [f"疑点检测 as of {self.as_of.isoformat()}",
                 f"{'rule_id':<28}{'规则名称':<20}{'疑点数':>8}{'涉及金额(元)':>18}{'秒':>8}"]
        for r in self.results:
            status = (f"  ERROR: {r.error}" if r.error else "  (nothing new can change it: not re-run)" if r.unchanged
                      else f"  (re-checked {r.subjects} subject(s) new rows can change)" if r.subjects is not None else "")
            lines.append(f"{r.rule_id:<28}{r.title:<20}{r.count:>8}{r.amount:>18,.2f}{r.seconds:>8.2f}{status}")
        lines.append(f"{'total':<28}{'':<20}{self.total_count:>8}{self.total_amount:>18,.2f}")
        for e in self.errors:
            if not any(r.error and e.message in r.error for r in self.results):
                lines.append(f"rule file error — {e}")
        if self.skipped:
            lines.append("disabled by config: " + ", ".join(self.skipped))
        return "\n".join(lines)

    __str__ = summary


def _shown_params(params: dict[str, Any]) -> dict[str, Any]:
    """A parameter set as runs.summary keeps it: an account listed in config (fiscal_accounts)
    masked, as everywhere outside the store."""
    def shown(value: Any) -> Any:
        if isinstance(value, str):
            return mask_ids_in_text(value)
        return [shown(v) for v in value] if isinstance(value, list) else value
    return {name: shown(value) for name, value in params.items()}


_QUERY_LINE = re.compile(r"^LINE (\d+): ?(.*)$", re.M)


def _first_line(exc: Exception, rule: Rule | None = None) -> str:
    """What a rule author is told of a failure: its first line (with DuckDB's `Did you mean …`), or
    its type when it has no text — and, given the rule, the line of its query DuckDB points at
    (`syntax error at or near "person_id"` alone left a 40-line rule to be searched). Only a line
    the rule's own text holds is named (a statement of the runner's is not the rule's query), by its
    number alone: DuckDB cuts a long line anywhere, an ID number typed in the rule among it."""
    if isinstance(exc, UnicodeDecodeError) and isinstance(exc.object, bytes):
        # DuckDB cut its message inside a character (the quoted input of `Malformed JSON`, evidence
        # that is no JSON): its bytes read as far as they go, not "'utf-8' codec can't decode", which
        # sent the author to re-save a rule file that was fine
        text = exc.object.decode("utf-8", "replace").replace("\ufffd", "…").strip()
    else:
        text = str(exc).strip()
    lines = text.splitlines() or [type(exc).__name__]
    first = lines[0]
    if len(lines) > 1 and lines[1].startswith(("Did you mean", "Candidate bindings")):  # DuckDB's own hint
        first += " " + lines[1].strip()
    at = _QUERY_LINE.search(text)
    if at and rule is not None:
        n, quoted = int(at.group(1)), at.group(2).strip().removeprefix("...").removesuffix("...").strip()
        for query in (rule.sql, rule.watch, rule.incremental):
            own = (query or "").splitlines()
            # line 1 is the runner's statement around the query's first line
            if quoted and n <= len(own) and (quoted in own[n - 1] if n > 1 else own[0].strip() and own[0].strip() in quoted):
                first += f" (at line {n} of the query)"
                break
    return first + failure_hint(exc)


def _strip_sql_comments_and_strings(sql: str) -> str:
    sql = re.sub(r"--[^\n]*", " ", sql)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

# A folded YAML block (`basis: >-`) joins its lines with a space; between two Chinese characters a
# line break is no space: 《…监督管理办法（试行）》 is read as the document is named.
_FOLDED_BREAK = re.compile(r"(?<=[^\x00-\x7f])\s+(?=[^\x00-\x7f])")


def chinese_text(value: Any) -> str:
    return _FOLDED_BREAK.sub("", str(value)).strip()


class RuleText(NamedTuple):
    title: str
    basis: str  # 政策依据


def rule_texts(directory: str | Path | Sequence[str | Path] | None = None,
               con: duckdb.DuckDBPyConnection | None = None) -> dict[str, RuleText]:
    """rule_id -> its Chinese title and policy basis, read from the rule files without checking
    them: a rule whose query no longer loads still names its suspects in worklists and reports.
    A file that cannot be read is skipped. With a store, a rule no file here holds (an office's
    own, from a config not given tonight) is named as the last night that ran it recorded it."""
    texts: dict[str, RuleText] = {}
    try:
        files = rule_files(directory)
    except OSError:
        files = []
    for path, _shown in files:
        try:
            doc = load_yaml(path.read_text(encoding="utf-8"), repeated_keys=True) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and doc.get("id") and str(doc["id"]) not in texts:
            rule_id = str(doc["id"])
            texts[rule_id] = RuleText(chinese_text(doc.get("title") or rule_id), chinese_text(doc.get("basis") or ""))
    if con is not None and table_exists(con, "rule_catalogue"):
        for rule_id, title, basis in con.execute("select rule_id, title, basis from rule_catalogue").fetchall():
            texts.setdefault(rule_id, RuleText(title or rule_id, basis or ""))
    return texts


def record_catalogue(con: duckdb.DuckDBPyConnection, rules: list[Rule], as_of: date) -> None:
    """The texts of tonight's rules into the store's rule_catalogue (see rule_texts)."""
    if rules:
        con.executemany("insert or replace into rule_catalogue values (?, ?, ?, ?, ?)",
                        [[rule.id, rule.title, rule.basis, str(rule.path) if rule.path else None, as_of]
                         for rule in rules])


def _param_bounds(raw: Any, params: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """A rule file's `param_bounds:` (name: [low, high], null for an open end), each for a declared
    numeric parameter whose default lies within."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError("param_bounds must map declared params to [low, high]")
    bounds = {}
    for name, pair in raw.items():
        if name not in params or isinstance(params[name], bool) or not isinstance(params[name], (int, float)):
            raise ValueError(f"param_bounds.{name}: not a declared numeric parameter")
        if (not isinstance(pair, list) or len(pair) != 2
                or not all(b is None or isinstance(b, (int, float)) and not isinstance(b, bool) for b in pair)):
            raise ValueError(f"param_bounds.{name}: expected [low, high] (null for an open end), got {pair!r}")
        bounds[name] = (pair[0], pair[1])
        problem = param_problem(name, params[name], params[name], bounds[name])
        if problem:
            raise ValueError(f"params.{name}: the default {params[name]!r} is outside its param_bounds: {problem}")
    return bounds


OPTIONAL_KEYS = ("description", "engine", "model", "config_params", "watch", "incremental", "param_bounds")


# Optional keys whose loss is silent: misspelt, a rule would run without its bounds, its
# incremental scope or its watch, and nothing would say so.
_SILENT_KEYS = ("param_bounds", "incremental", "watch", "config_params", "engine")


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _misspelt_keys(raw: dict) -> list[tuple[str, str]]:
    """Keys one or two slips from a key whose loss is silent (`param_bound`, `incremetal`). Any
    other extra key — an office's note, `description_en`, `title_cn`, `watch_note` — is left alone."""
    out = []
    for key in raw:
        if not isinstance(key, str) or key in REQUIRED_KEYS + OPTIONAL_KEYS or len(key) < 5:
            continue
        for known in _SILENT_KEYS:
            if not key.startswith(known) and _edits(key, known) <= 2:
                out.append((key, known))
                break
    return out


def parse_rule(path: Path) -> Rule:
    """One rule file -> Rule; raises ValueError with a message a rule author can act on."""
    try:
        raw = load_yaml(local_text(path))
    except yaml.YAMLError as exc:
        raise ValueError(f"not valid YAML: {yaml_problem(exc)}") from None
    if not isinstance(raw, dict):
        raise ValueError("expected a mapping with keys " + ", ".join(REQUIRED_KEYS))
    misspelt = _misspelt_keys(raw)
    if misspelt:
        raise ValueError("unknown key(s) " + ", ".join(f"{k} (meant {m}?)" for k, m in misspelt))
    missing = [k for k in REQUIRED_KEYS if k not in raw or raw[k] in (None, "") and k != "params"]
    if missing:
        raise ValueError("missing key(s): " + ", ".join(missing))
    rule_id = str(raw["id"])
    if not _RULE_ID.match(rule_id):
        raise ValueError(f"id {rule_id!r} must be UPPER_SNAKE_CASE")
    if path.stem != rule_id:
        raise ValueError(f"id {rule_id} does not match the file name {path.name}")
    if raw["subject"] not in SUBJECT_KINDS:
        raise ValueError(f"subject {raw['subject']!r} must be one of {', '.join(SUBJECT_KINDS)}")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise ValueError("params must be a mapping of name: default")
    given = sorted(set(map(str, params)) & set(BUILTIN_PARAMS))
    if given:
        # the night binds its own day there: the file's (or the config's) value was listed by
        # `fundwatch rules` as the one used, and never was
        raise ValueError(f"params: {', '.join(given)} is the night's own (always ${given[0]}); declare no such parameter")
    config_params = raw.get("config_params") or {}
    if not isinstance(config_params, dict) or not set(config_params) <= set(params):
        raise ValueError("config_params must map declared params to config keys")
    param_bounds = _param_bounds(raw.get("param_bounds"), params)
    engine = raw.get("engine", "sql")
    if engine not in ("sql", "model"):
        raise ValueError(f"engine {engine!r} must be sql or model")
    if engine == "model" and ":" not in str(raw.get("model", "")):
        raise ValueError("a model rule needs model: package.module:function")
    watch = raw.get("watch")
    if watch is not None and (not isinstance(watch, str) or not watch.strip()):
        raise ValueError("watch must be SQL returning the person_id of the persons the rule looks at")
    incremental = raw.get("incremental")
    if incremental is not None and (not isinstance(incremental, str) or not incremental.strip()):
        raise ValueError("incremental must be SQL returning the subjects whose findings tonight's new rows can change")
    for key in ("sql", "watch", "incremental"):
        if raw.get(key) is not None:
            _one_select(key, str(raw[key]))
    uses_watch = "payments_watch" in _strip_sql_comments_and_strings(str(raw["sql"])).lower()
    if uses_watch and watch is None:
        raise ValueError("the SQL reads payments_watch but the rule has no watch: query")
    rule = Rule(
        id=rule_id, title=chinese_text(raw["title"]), title_en=str(raw["title_en"]), basis=chinese_text(raw["basis"]),
        severity=str(raw["severity"]), subject=str(raw["subject"]), params=dict(params), sql=str(raw["sql"]),
        path=path, engine=engine, model=raw.get("model"), config_params=dict(config_params),
        description=str(raw.get("description", "")).strip(), watch=watch, incremental=incremental,
        param_bounds=param_bounds,
    )
    undeclared = (rule.sql_params | rule.watch_params | rule.incremental_params) - set(params) - set(BUILTIN_PARAMS)
    if undeclared:
        raise ValueError("SQL uses undeclared parameter(s): " + ", ".join(f"${p}" for p in sorted(undeclared)))
    return rule


def _one_select(key: str, sql: str) -> None:
    """A rule's SQL is one query and nothing else. DuckDB runs every statement of a text given to it
    unbound: a rule `select …; delete from suspect_events; drop table deaths` (or a COPY of the
    payments to a file, an ATTACH) ran them all, and the night said completed."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ValueError(f"{key}: the SQL cannot be read: {_first_line(exc)}") from None
    kinds = [s.type.name for s in statements]
    if kinds != ["SELECT"]:
        said = f"it holds {len(kinds)} statements ({', '.join(kinds)})" if len(kinds) != 1 else f"it is a {kinds[0]}"
        raise ValueError(f"{key} must be one query (named CTEs ending in one select), nothing else: {said}")


def _folders(directory: str | Path | Sequence[str | Path] | None) -> list[Path]:
    if directory is None:
        return [resources.rules_dir()]
    if isinstance(directory, (str, Path)):
        return [Path(directory)]
    return [Path(d) for d in directory]


def rule_files(directory: str | Path | Sequence[str | Path] | None = None) -> list[tuple[Path, str]]:
    """(path, the name it is reported by) of every *.yaml / *.yml rule file: the first folder's
    (the shipped rules/) by file name, sorted; a later folder's (config `rule_folders`) by full path."""
    found = []
    for n, folder in enumerate(_folders(directory)):
        # .YAML as .yaml: a file an office named so was passed over without a word
        files = folder.iterdir() if folder.is_dir() else []
        for path in sorted(p for p in files if p.suffix.lower() in (".yaml", ".yml") and p.is_file()):
            found.append((path, path.name if n == 0 else str(path)))
    return found


def load_rules(directory: str | Path | Sequence[str | Path] | None = None) -> tuple[list[Rule], list[RuleError]]:
    """Every rule file of the folder(s) — rules/ by default; config.rule_folders(config) for a
    night's — in order; a broken file is reported by name, the others load. A rule id met a second
    time is an error of the later file: an office's own rule cannot stand in for a shipped one."""
    rules: list[Rule] = []
    errors: list[RuleError] = []
    seen: dict[str, str] = {}
    for path, shown in rule_files(directory):
        try:
            rule = parse_rule(path)
        except (ValueError, OSError) as exc:
            errors.append(RuleError(shown, str(exc)))
            continue
        if rule.id in seen:
            errors.append(RuleError(shown, f"duplicate rule id {rule.id} (also in {seen[rule.id]})"))
            continue
        seen[rule.id] = shown
        rules.append(dataclasses.replace(rule, label=shown))
    return rules, errors


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

def config_value(config: Config, dotted: str) -> tuple[bool, Any]:
    """(found, value) of a dotted config key such as `fiscal_accounts` or `casework.major_from`."""
    node: Any = config.data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_param_names(rule: Rule, overrides: dict, where: str) -> None:
    """`overrides` is a mapping of parameters the rule declares (config load and detection both ask)."""
    if not isinstance(overrides, dict):
        raise ValueError(f"{where} must be a mapping of parameter: value")
    unknown = set(overrides) - set(rule.params)
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(sorted(map(str, unknown)))} in {where}; "
                         f"{rule.id} declares: {', '.join(sorted(rule.params)) or 'none'}")


def _overlay(rule: Rule, params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides on params, the last one winning — except a list fed from a config key (such as
    fiscal_accounts): the rule's or a region's own list adds to the config's, which lists accounts
    for every rule and region ("a 财政专户 … listed in config" stays one)."""
    out = dict(params)
    for name, value in overrides.items():
        if name in rule.config_params and isinstance(value, list) and isinstance(out.get(name), list):
            out[name] = out[name] + [v for v in value if v not in out[name]]
        else:
            out[name] = value
    return out


def parameter_sets(rule: Rule, config: Config) -> list[tuple[dict[str, Any], list[str] | None]]:
    """[(params, region_codes)]: region_codes None = every region without its own set."""
    base = dict(rule.params)
    for name, key in rule.config_params.items():
        found, value = config_value(config, key)
        if found and value is not None:
            base[name] = value
    overrides = (config.get("rules") or {}).get(rule.id) or {}
    check_param_names(rule, overrides, f"config rules.{rule.id}")
    base = _overlay(rule, base, overrides)
    by_values: dict[str, tuple[dict, list[str]]] = {}
    for region, section in sorted((config.get("regions") or {}).items()):
        region_over = ((section or {}).get("rules") or {}).get(rule.id)
        if not region_over:
            continue
        check_param_names(rule, region_over, f"config regions.{region}.rules.{rule.id}")
        params = _overlay(rule, base, region_over)
        if params == base:
            continue
        key = repr(sorted(params.items(), key=lambda kv: kv[0]))
        by_values.setdefault(key, (params, []))[1].append(str(region))
    return [(base, None)] + [(p, regions) for p, regions in by_values.values()]


def bind(rule: Rule, params: dict[str, Any], as_of: date, names: set[str] | None = None) -> dict[str, Any]:
    """Only the names the SQL uses: DuckDB refuses excess named parameters."""
    values = {**params, "as_of": as_of, "as_of_month": as_of.strftime("%Y%m")}
    return {name: values[name] for name in (rule.sql_params if names is None else names)}


WATCH_TABLES = ("_watch_persons", "_watch_rows", "_payments_watch_all")
# The payments columns payments_watch carries: what the watching rules read. Fewer columns fetch
# faster (measured: all columns 1.8 s, these 1.0 s for 216k of 6.3M rows); a shipped rule needing
# another adds it here (an office's own rules get every column: watch_columns). A person rule run
# for its subjects on an incremental night reads payments from the same rows: these columns too.
WATCH_COLUMNS = ("payment_id", "person_id", "insurance_type", "item", "period", "paid_on", "amount", "agency_code")


def watch_columns(rules: list[Rule]) -> list[str] | None:
    """The payments columns _payments_watch_all carries for these rules: WATCH_COLUMNS where every
    one of them is shipped (the suite runs each on incremental nights against full ones), every
    column (None) where one is an office's own. An own rule reading `handled_by` from
    payments_watch — or from payments, being a person rule with `incremental:` — failed every such
    night with `Referenced column not found`, while `rules --db` (planning against payments) passed
    it; one taking a whole row (`to_json(p)`, a NATURAL JOIN) found other things than in full. Which
    columns a query reads cannot be told safely from its text (a `'--'` string, `struct_extract(p,
    'bank_account')`, `columns('…')` anywhere), so own rules get them all: a wider fetch of the
    watched payments (about twice the time of that step), never another answer."""
    shipped = resources.rules_dir().resolve()
    if all(rule.path is not None and rule.path.resolve().parent == shipped for rule in rules):
        return list(WATCH_COLUMNS)
    return None


# Where each subject kind lives: on an incremental night a rule run for its subjects reads, of
# these tables, only the rows of those subjects.
SUBJECT_COLUMNS = {"account": ("payments", "bank_account"), "transaction": ("fund_transactions", "txn_id"),
                   "payment": ("payments", "payment_id")}


def build_watch(con: duckdb.DuckDBPyConnection, rules: list[Rule], as_of: date, config: Config,
                scoped: set[str] = frozenset()) -> dict[str, str]:
    """Temp table _payments_watch_all (read by the rules as payments_watch): every payment of the
    persons some rule watches (all parameter sets) and, for a person rule run for its subjects on
    an incremental night, of those subjects instead.

    Returns {rule_id: error} for rules whose watch query failed (those rules are not run)."""
    errors: dict[str, str] = {}
    con.execute("create or replace temp table _watch_persons (person_id varchar)")
    for rule in rules:
        limit = _TimeLimit(con, config, rule)  # a watch query is the rule's too
        try:
            with limit:
                if rule.id in scoped and rule.subject == "person":
                    con.execute("insert into _watch_persons select subject from detection_subjects where rule_id = ?",
                                [rule.id])
                elif rule.watch is not None:
                    for params, _ in parameter_sets(rule, config):
                        con.execute(f"insert into _watch_persons select person_id from ({rule.watch})",
                                    bind(rule, params, as_of, rule.watch_params))
        except Exception as exc:  # noqa: BLE001 — reported against the rule by detect()
            errors[rule.id] = "watch: " + limit.said(exc)
    # Narrow pass first (only person_id is read for all rows), then the wide columns of the few
    # matching rows by rowid: a wide scan of every payment costs several times a narrow one.
    con.execute("""
        create or replace temp table _watch_rows as
        select rowid as rid from payments
        where person_id in (select person_id from _watch_persons where person_id is not null)""")
    columns = watch_columns(rules)
    con.execute(f"""
        create or replace temp table _payments_watch_all as
        select {"*" if columns is None else ", ".join(columns)} from payments
        where rowid in (select rid from _watch_rows)""")
    return errors


def _rule_inputs(con: duckdb.DuckDBPyConnection, rule: Rule, scoped: bool, store_db: str,
                 made: list[tuple[str, str]]) -> None:
    """Make the tables the rule reads what it may see tonight; each (kind, name) made is appended
    to `made` at once, for the caller to drop afterwards — also when a later one fails.

    A full run sees every row, and payments_watch is the payments of every watched person. A run
    for the rule's subjects (temp table detection_subjects) sees, of the tables those subjects
    live in, only their rows: for this rule alone each such table is shadowed by a temp table of
    the same name (DuckDB resolves an unqualified name to a temp table first). A rule's findings
    for a subject depend on that subject's rows only, so they come out exactly as in a full run, at
    the cost of those few rows; _run_sets keeps only the findings of the subjects."""
    def make(kind: str, name: str, select: str) -> None:
        con.execute(f"create temp {kind} {name} as {select}")
        made.append((kind, name))

    if not scoped:
        if rule.watch:
            make("view", "payments_watch", "select * from _payments_watch_all")
        return
    subjects = f"(select subject from detection_subjects where rule_id = '{rule.id}')"

    def rows_of_subjects(table: str, column: str) -> str:
        # narrow pass over the key column, then the wide rows by rowid (as build_watch does)
        con.execute(f'create or replace temp table _subject_rows as select rowid as rid '
                    f'from {store_db}.main.{table} where {column} in {subjects}')
        return f'select * from {store_db}.main.{table} where rowid in (select rid from _subject_rows)'

    if rule.subject == "person":
        make("table", "payments", f"select * from _payments_watch_all where person_id in {subjects}")
        if rule.watch:
            make("view", "payments_watch", "select * from payments")
        # Every other person table it reads is cut to the subjects as well: otherwise a filter on
        # another column (UNEMPLOYMENT_WHILE_WORKING's non-empty employer) is evaluated on all
        # 6 million contribution rows before the few subjects are picked out.
        for table in sorted(rule.reads & set(PERSON_TABLES) - {"payments"}):
            make("table", table, rows_of_subjects(table, "person_id"))
    else:
        table, column = SUBJECT_COLUMNS[rule.subject]
        make("table", table, rows_of_subjects(table, column))
    con.execute("drop table if exists _subject_rows")


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------

# An agency's region (agencies.region_code), for the findings a region's parameter set keeps
AGENCY_REGION = "(select agency_code, any_value(region_code) as region_code from agencies group by agency_code)"


def _run_one_set(con: duckdb.DuckDBPyConnection, rule: Rule, params: dict[str, Any], as_of: date,
                 in_regions: tuple[str, list[str]] | None = None) -> None:
    """Leave the rule's rows for one parameter set in temp table _rule_rows. `in_regions` (an SQL
    test of `a.region_code` and its $regions) is where the set's findings will be kept: a model
    then scores only the rows of agencies there — its cap (AMOUNT_OUTLIER's max_share) and its
    norms are the set's own, not spent on rows another set keeps."""
    bound = bind(rule, params, as_of)
    if rule.engine == "model":
        con.execute(f"create or replace temp table _rule_features as {rule.sql}", bound)
        features = "_rule_features"
        columns = [row[0] for row in con.execute("describe _rule_features").fetchall()]
        if in_regions is not None and "agency_code" in columns:
            keep, regions = in_regions
            con.execute(f"""create or replace temp table _rule_features_in as
                            select r.* from _rule_features r left join {AGENCY_REGION} a on a.agency_code = r.agency_code
                            where {keep}""", {"regions": regions})
            features = "_rule_features_in"
        module_name, func_name = rule.model.split(":")
        model = getattr(importlib.import_module(module_name), func_name)
        out_table = model(con, features, params, as_of)
        con.execute(f"create or replace temp table _rule_rows as select * from {out_table}")
    else:
        con.execute(f"create or replace temp table _rule_rows as {rule.sql}", bound)
    columns = [row[0] for row in con.execute("describe _rule_rows").fetchall()]
    if tuple(columns) != DETECTION_COLUMNS:
        raise ValueError(_columns_problem(columns))
    twice, subject = con.execute(
        "select count(*), any_value(subject) from (select subject from _rule_rows where subject is not null"
        " group by subject having count(*) > 1)").fetchall()[0]
    if twice:
        # one was kept without a word, the others' amounts and evidence lost
        raise ValueError(mask_ids_in_text(f"the final select must return one row per subject; {twice} subject(s) have "
                                          f"several (e.g. {subject})"))


def _columns_problem(columns) -> str:
    return f"the final select must return exactly {', '.join(DETECTION_COLUMNS)}; it returns {', '.join(columns)}"


def _run_rule(con: duckdb.DuckDBPyConnection, rule: Rule, as_of: date, config: Config,
              scoped: bool = False, store_db: str = "", limit: _TimeLimit | None = None) -> None:
    made: list[tuple[str, str]] = []
    try:
        with limit or contextlib.nullcontext():  # (the clean-up below is not stopped by it)
            _rule_inputs(con, rule, scoped, store_db, made)
            _run_sets(con, rule, as_of, config, scoped)
    finally:
        for kind, name in reversed(made):
            con.execute(f"drop {kind} if exists temp.main.{name}")


def region_kept(regions: list[str] | None, overridden: list[str], name: str = "regions") -> tuple[str, list[str]]:
    """(SQL test of `a.region_code` — an AGENCY_REGION joined as `a` — naming the list parameter
    $`name`, that list) for the findings a parameter set keeps: those of its regions, or — the set
    for every other region (None) — those of no region that has its own (`overridden`)."""
    if regions is None:
        return f"coalesce(a.region_code, '') not in (select unnest(cast(${name} as varchar[])))", overridden
    return f"a.region_code in (select unnest(cast(${name} as varchar[])))", regions


def _run_sets(con: duckdb.DuckDBPyConnection, rule: Rule, as_of: date, config: Config, scoped: bool) -> None:
    sets = parameter_sets(rule, config)
    only_subjects = (f"and r.subject in (select subject from detection_subjects where rule_id = '{rule.id}')"
                     if scoped else "")
    con.execute("create or replace temp table _rule_all as select * from detections limit 0")
    overridden = [r for _, regions in sets if regions for r in regions]
    for params, regions in sets:
        keep, region_list = region_kept(regions, overridden)
        _run_one_set(con, rule, params, as_of, (keep, region_list) if overridden else None)
        con.execute(f"""
            insert into _rule_all
            select '{rule.id}', cast(r.subject as varchar), cast(r.person_id as varchar), cast(r.agency_code as varchar),
                   cast(r.period_from as varchar), cast(r.period_to as varchar),
                   cast(r.amount as decimal(18,2)), cast(r.evidence as json)
            from _rule_rows r
            left join {AGENCY_REGION} a on a.agency_code = r.agency_code
            where r.subject is not null and {keep} {only_subjects}""", {"regions": region_list})
    _check_findings(con, rule)
    # One row per subject even when a person's findings fell in two regions' runs.
    con.execute("""
        insert into detections
        select * from _rule_all
        qualify row_number() over (partition by subject order by amount desc, agency_code) = 1""")


# What a finding must hold to be a suspect an agency can verify (CONTRACT: periods YYYYMM, an amount
# at risk, an agency). An office's own rule returning other things was taken without a word: a
# negative or empty 涉及金额 on a worklist, 所属期 "abc", a suspect with no agency that never
# reached a worklist.
_UNSEEN = r"[\s\p{Z}\p{Cc}\p{Cf}]"  # what a clerk cannot see: spaces (U+3000 too), tabs, invisibles
_PERIOD = "(19[5-9][0-9]|20[0-9][0-9])(0[1-9]|1[0-2])"  # YYYYMM, 1950 to 2099 (000101 or 999912 is no period)


def _blank(column: str) -> str:
    return f"regexp_full_match(coalesce({column}, ''), '{_UNSEEN}*')"


_FINDING_FAULTS = {
    "an empty subject": _blank("subject"),
    "a subject with spaces around it (another subject than without)":
        f"regexp_matches(subject, '^{_UNSEEN}|{_UNSEEN}$')",
    "no agency_code": _blank("agency_code"),
    "an amount empty or below 0": "amount is null or amount < 0",
    "a period not written YYYYMM (or period_from after period_to)":
        f"not coalesce(regexp_full_match(period_from, '{_PERIOD}') and regexp_full_match(period_to, '{_PERIOD}')"
        " and period_from <= period_to, false)",
}


def _check_findings(con: duckdb.DuckDBPyConnection, rule: Rule) -> None:
    faults = dict(_FINDING_FAULTS)
    if rule.subject == "person":
        faults["no person_id (a person rule)"] = _blank("person_id")
    found = con.execute("select " + ", ".join(f"count(*) filter (where {test}), any_value(subject) filter (where {test})"
                                              for test in faults.values()) + " from _rule_all").fetchall()[0]
    said = [f"{found[2 * i]} with {what} (e.g. subject {found[2 * i + 1]!r})"
            for i, what in enumerate(faults) if found[2 * i]]
    if said:
        raise ValueError(mask_ids_in_text("returns findings that cannot be suspects: " + "; ".join(said)))


def fingerprint(rules: list[Rule], config: Config) -> str:
    """What a detection's results depend on besides the data and as-of."""
    def params(rule: Rule) -> str:
        try:
            return repr(parameter_sets(rule, config))
        except ValueError as exc:  # reported against the rule when it runs
            return f"error: {exc}"

    parts = [[r.id, r.sql, r.watch, r.incremental, r.engine, r.model, params(r)] for r in sorted(rules, key=lambda r: r.id)]
    parts.append(sorted(config.get("disabled_rules") or []))
    return hashlib.md5(repr(parts).encode("utf-8")).hexdigest()


def _record_files(con: duckdb.DuckDBPyConnection, rules: list[Rule], config: Config) -> None:
    """Temp table detection_files: the ingested files this detection saw (for update_suspects)."""
    con.execute("create or replace temp table detection_files as select file_hash from ingest_ledger")
    con.execute("create or replace temp table detection_fingerprint as select ? as fingerprint",
                [fingerprint(rules, config)])
    con.execute("create or replace temp table detection_subjects (rule_id varchar, subject varchar)")


def _new_rows(con: duckdb.DuckDBPyConnection, new_files: list[str], store_db: str) -> None:
    """Temp views new_<table>: the rows of each extract table that came in files the last merged
    detection had not seen (store.of_files: older files' row groups skipped by their statistics)."""
    for table in EXTRACT_TABLES:
        con.execute(f'create or replace temp view new_{table} as select * from {store_db}.main.{table} '
                    f'where {of_files(new_files)}')


def _touched_persons_sql(rule: Rule) -> str:
    """What a watching person rule without `incremental:` re-checks: the persons it watches or
    found last time (a finding may have gone) who have a new row in a table it reads. The new rows
    are matched against those few persons, not the other way round: a payday brings a new row for
    nearly every beneficiary."""
    watched = f"select person_id from ({rule.watch}) union select subject from previous_findings"
    touched = " union ".join(f"select person_id as subject from new_{t} where person_id in (select person_id from watched)"
                             for t in PERSON_TABLES if t in rule.reads)
    return f"with watched as ({watched}) {touched}"


def _plan_scope(con: duckdb.DuckDBPyConnection, rules: list[Rule], as_of: date, config: Config,
                report: DetectReport, store_db: str) -> tuple[set[str], set[str], dict[str, str]]:
    """Plan an incremental night. Returns the ids of the rules to run only for their subjects in
    temp table detection_subjects, of the rules that need not run at all (no extract they read got
    a new file, or no subject new rows can change), and {rule_id: error} for broken
    `incremental:` queries."""
    ensure_detect_schema(con)
    _record_files(con, rules, config)
    state = con.execute("select as_of, fingerprint from detect_state where id = 1").fetchall()
    why = None
    new_files: list[str] = []
    if not state:
        why = "no earlier detection state"
    elif state[0][1] is None:
        why = "a rule failed at the last detection"
    elif state[0][1] != fingerprint(rules, config):
        why = "rules, parameters or config changed"
    elif state[0][0] > as_of:
        why = f"as-of {as_of} is before the last detection's {state[0][0]}"
    elif (kept := scalar(con, f"select max(last_detected_on) from {store_db}.main.suspects")) and kept > state[0][0]:
        # The last detection ran for an earlier day than one before it. It could not call a suspect
        # found at the later day gone (it knows less), so the suspects are not what it found: a
        # rule not re-run tonight would carry a suspect no detection of tonight's data finds.
        why = (f"the last detection was for {state[0][0]}, an earlier day than suspects it kept "
               f"(found up to {kept})")
    if why is None:
        new_files = [h for (h,) in con.execute("""
            select file_hash from detection_files
            where file_hash not in (select file_hash from detect_seen_files) order by file_hash""").fetchall()]
        new = con.execute("select extract, rows_replaced from ingest_ledger where file_hash in (select unnest(?))",
                          [new_files]).fetchall() if new_files else []
        unknown = sum(scalar(con, f"select count(*) from {t} where _file_hash is null") for t in PERSON_TABLES)
        if any(kind == "payments" and replaced for kind, replaced in new):
            why = "a new payments file replaced earlier rows"
        elif any(kind == "agencies" for kind, _ in new):
            why = "a new agencies file (regions and their parameters may have moved)"
        elif unknown:
            why = f"{unknown} extract row(s) without lineage (_file_hash)"
    if why is not None:
        report.scope_note = f"full run: {why}"
        return set(), set(), {}
    same_day = state[0][0] == as_of

    def as_of_free(r: Rule) -> bool:
        return same_day or not (set(BUILTIN_PARAMS) & (r.sql_params | r.watch_params | r.incremental_params))

    # A rule whose inputs are as they were at the last merged detection finds what it found then
    # (same rules, parameters and as-of dependence: the fingerprint and as_of_free say so). A model
    # rule's Python may read anything, so it always runs.
    changed = {kind for kind, _ in new}
    unchanged = {r.id for r in rules if r.engine != "model" and as_of_free(r) and not (r.reads & changed)}
    candidates = [r for r in rules if r.id not in unchanged and r.engine != "model" and as_of_free(r)
                  and (r.incremental or (r.watch and r.subject == "person"))]
    _new_rows(con, new_files, store_db)
    errors: dict[str, str] = {}
    for rule in candidates:
        sql, names = (rule.incremental, rule.incremental_params) if rule.incremental else \
            (_touched_persons_sql(rule), rule.watch_params)
        limit = _TimeLimit(con, config, rule)  # an incremental: query is the rule's too
        try:
            con.execute("create or replace temp view previous_findings as "
                        f"select subject from {store_db}.main.suspects where rule_id = '{rule.id}'")
            with limit:
                for params, _ in parameter_sets(rule, config):
                    con.execute(f"insert into detection_subjects select '{rule.id}', cast(subject as varchar) "
                                f"from ({sql}) where subject is not null", bind(rule, params, as_of, names))
        except Exception as exc:  # noqa: BLE001 — reported against the rule by detect()
            errors[rule.id] = "incremental: " + limit.said(exc)
    con.execute("create or replace temp table detection_subjects as select distinct rule_id, subject from detection_subjects")
    for view in ("previous_findings", *(f"new_{t}" for t in EXTRACT_TABLES)):
        con.execute(f"drop view if exists {view}")
    found = dict(con.execute("select rule_id, count(*) from detection_subjects group by rule_id").fetchall())
    scoped = {r.id for r in candidates if found.get(r.id) and r.id not in errors}
    # nothing tonight can change any of its findings: like a rule whose inputs did not change
    unchanged |= {r.id for r in candidates if not found.get(r.id) and r.id not in errors}
    report.scoped_rules = sorted(scoped)
    report.unchanged_rules = sorted(unchanged)
    report.subjects_by_rule = {r: found[r] for r in scoped}
    report.scope_subjects = sum(report.subjects_by_rule.values())
    report.scope_note = (f"incremental: {len(scoped)} rule(s) re-run for the {report.scope_subjects} subject(s) "
                         f"new rows can change, {len(unchanged)} with nothing to re-check not re-run, "
                         f"{len(rules) - len(scoped) - len(unchanged)} run in full")
    return scoped, unchanged, errors


def check_rules(con: duckdb.DuckDBPyConnection, rules: list[Rule], config: Config, as_of: date) -> list[RuleError]:
    """What would fail at detection before the night: each rule's queries (`sql`, `watch:`,
    `incremental:`) planned — not run — against the store, with every parameter set the config gives
    it. A read-only connection will do: the views a night provides are made as temp views."""
    errors: list[RuleError] = []
    made = ["payments_watch", "previous_findings", *(f"new_{t}" for t in EXTRACT_TABLES)]
    try:
        con.execute("create or replace temp view payments_watch as select * from payments")
        con.execute("create or replace temp view previous_findings as select subject from suspects where false")
        for table in EXTRACT_TABLES:
            con.execute(f"create or replace temp view new_{table} as select * from {table} where false")
        for rule in rules:
            try:
                sets = parameter_sets(rule, config)
            except ValueError as exc:  # a parameter the rule does not declare
                errors.append(RuleError(rule.file_label, mask_ids_in_text(exc)))
                continue
            for params, _regions in sets:
                problem = _planning_problem(con, rule, params, as_of)
                if problem:
                    errors.append(RuleError(rule.file_label, mask_ids_in_text(problem)))
                    break
    finally:
        for view in made:
            con.execute(f"drop view if exists temp.main.{view}")
    return errors


def _planning_problem(con: duckdb.DuckDBPyConnection, rule: Rule, params: dict[str, Any], as_of: date) -> str | None:
    """Why one parameter set of the rule would fail tonight, as far as planning shows (None: it would not)."""
    for what, sql, names in (("", rule.sql, None), ("watch: ", rule.watch, rule.watch_params)):
        if sql:
            try:
                con.execute(f"explain {sql}", bind(rule, params, as_of, names)).fetchall()
            except Exception as exc:  # noqa: BLE001 — reported against the rule
                return what + _first_line(exc, rule)
    if rule.incremental:  # the night reads its `subject` column (planning it says what `explain` would)
        try:
            columns = _columns_of(con, rule.incremental, bind(rule, params, as_of, rule.incremental_params))
        except Exception as exc:  # noqa: BLE001 — reported against the rule
            return "incremental: " + _first_line(exc, rule)
        if "subject" not in (c.lower() for c in columns):  # (an identifier, whatever its case)
            return (f"incremental: returns {', '.join(columns)}; it must return the subjects as a column named "
                    "subject (… as subject)")
    if rule.engine != "sql":  # a model's columns are its model's to make
        return None
    try:
        columns = _columns_of(con, rule.sql, bind(rule, params, as_of))
    except Exception as exc:  # noqa: BLE001 — reported against the rule
        return _first_line(exc, rule)
    return None if columns == DETECTION_COLUMNS else _columns_problem(columns)


def _columns_of(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any]) -> tuple[str, ...]:
    """The columns a query returns, planned on no rows. The night runs `create … as <query>` or reads
    it from a subquery: a closing `;` or a last line that is a comment is fine there, so here too."""
    found = con.execute(f"select * from ({query.rstrip().rstrip(';')}\n) where false", params)
    columns = tuple(d[0] for d in found.description)
    found.fetchall()
    return columns


class _TimeLimit:
    """Interrupts what runs on `con` once `minutes` have passed inside the block (`stopped` says so)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, rule: Rule | None = None):
        self.minutes = config.get("rule_time_limit_minutes") or DEFAULTS["rule_time_limit_minutes"]
        self.con, self.seconds, self.stopped, self.rule = con, self.minutes * 60, False, rule
        self._done = threading.Event()

    def said(self, exc: BaseException) -> str:
        """What stopped the rule: the limit, or the error itself."""
        if self.stopped:
            return (f"stopped after {self.minutes:g} min (rule_time_limit_minutes in the config): the rule was "
                    "still running")
        return _first_line(exc, self.rule)

    def _watch(self) -> None:
        if not self._done.wait(self.seconds):
            self.stopped = True
            while not self._done.wait(0.2):  # each statement the runner goes on to, until the block ends
                self.con.interrupt()

    def __enter__(self) -> _TimeLimit:
        self._thread = threading.Thread(target=self._watch, name="fundwatch-rule-time-limit", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


def detect(con: duckdb.DuckDBPyConnection, as_of: date, config: Config | None = None,
           rules: list[Rule] | None = None, rules_dir: str | Path | None = None,
           incremental: bool = False) -> DetectReport:
    """Run every enabled rule; findings go to temp table `detections`, one row per rule × subject."""
    config = config or Config()
    report = DetectReport(as_of=as_of)
    if rules is None:
        rules, load_errors = load_rules(rules_dir if rules_dir is not None else rule_folders(config))
        report.errors.extend(load_errors)
    report.rules = list(rules)
    con.execute(DETECTIONS_DDL)
    con.execute(DETECTION_RULES_DDL)
    store_db = store_catalog(con)
    disabled = set(config.get("disabled_rules") or [])
    enabled = [rule for rule in rules if rule.id not in disabled]
    if incremental:
        scoped, unchanged, failed = _plan_scope(con, enabled, as_of, config, report, store_db)
    else:
        _record_files(con, enabled, config)
        scoped, unchanged, failed = set(), set(), {}
    started = time.perf_counter()
    reading_watch = [rule for rule in enabled if rule.id not in unchanged and rule.id not in failed
                     and (rule.watch or (rule.id in scoped and rule.subject == "person"))]
    if reading_watch:
        failed.update(build_watch(con, reading_watch, as_of, config, scoped))
    report.watch_seconds = time.perf_counter() - started
    for rule in rules:
        if rule.id in disabled:
            report.skipped.append(rule.id)
            continue
        limit = _TimeLimit(con, config, rule)
        result = RuleResult(rule.id, rule.title, unchanged=rule.id in unchanged,
                            subjects=report.subjects_by_rule.get(rule.id))
        try:
            result.parameters = [{"params": _shown_params(params), "regions": regions}
                                 for params, regions in parameter_sets(rule, config)]
        except ValueError:  # an unknown parameter: reported against the rule below
            pass
        started = time.perf_counter()
        try:
            if rule.id in failed:
                raise ValueError(failed[rule.id])
            if not result.unchanged:  # an unchanged rule's suspects keep their state (update_suspects)
                _run_rule(con, rule, as_of, config, rule.id in scoped, store_db, limit)
        except Exception as exc:  # noqa: BLE001 — any failure of one rule is reported by name, the others run
            result.error = limit.said(exc)
            report.errors.append(RuleError(rule.file_label, result.error))
            con.execute("delete from detections where rule_id = ?", [rule.id])
        result.seconds = time.perf_counter() - started
        if result.error is None:
            count, amount = con.execute(
                "select count(*), coalesce(sum(amount), 0) from detections where rule_id = ?", [rule.id]).fetchall()[0]
            result.count, result.amount = int(count), Decimal(amount).quantize(Decimal("0.01"))
        scope = "unchanged" if result.unchanged else "subjects" if rule.id in scoped else None
        con.execute("insert into detection_rules values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [rule.id, rule.title, rule.severity, rule.subject, result.error is None,
                     result.count, result.amount, result.seconds, scope is not None, scope])
        report.results.append(result)
    for table in ("_rule_rows", "_rule_all", "_rule_features", "_rule_features_in", "_subject_rows", *WATCH_TABLES):
        con.execute(f"drop table if exists {table}")
    return report

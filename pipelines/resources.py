"""Where the files fundwatch reads at run time live: inside the installed package, or the repo."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_REPO = _PACKAGE.parent


def _packaged_or_repo(packaged: str, repo_relative: str) -> Path:
    # An installed wheel maps rules/ and data/sample/ into the package (pipelines/rules,
    # pipelines/sample); a source checkout (tests run with PYTHONPATH=.) has them at the top of
    # the repo. Looked up by path, not importlib.resources: `pipelines.rules` is also the name of
    # the rule-runner module, which would shadow the data folder.
    path = _PACKAGE / packaged
    if path.is_dir() and any(p.name != "__pycache__" for p in path.iterdir()):
        return path
    return _REPO / repo_relative


def rules_dir() -> Path:
    return _packaged_or_repo("rules", "rules")


def sample_dir() -> Path:
    return _packaged_or_repo("sample", "data/sample")

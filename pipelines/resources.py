"""Where the files fundwatch reads at run time live: inside the installed package, or the repo."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def _packaged_or_repo(package: str, repo_relative: str) -> Path:
    # An installed wheel maps rules/ and data/sample/ into the package; a source checkout
    # (tests run with PYTHONPATH=.) still has them at the top of the repo.
    try:
        path = Path(str(resources.files(package)))
        if path.is_dir() and any(path.iterdir()):
            return path
    except (ModuleNotFoundError, TypeError):
        pass
    return _REPO / repo_relative


def rules_dir() -> Path:
    return _packaged_or_repo("pipelines.rules", "rules")


def sample_dir() -> Path:
    return _packaged_or_repo("pipelines.sample", "data/sample")

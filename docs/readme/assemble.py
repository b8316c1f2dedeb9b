"""Assemble README.md from the parts in docs/readme/ (each part is owned by the module it documents).

Run from the repository root: python3 docs/readme/assemble.py
"""

from pathlib import Path

PARTS = ["00-intro", "ingest", "rules", "casework", "nightly", "report", "reliability", "generate", "bench",
         "zz-development"]

here = Path(__file__).resolve().parent
text = "\n".join((here / f"{name}.md").read_text(encoding="utf-8").rstrip() + "\n" for name in PARTS)
(here.parent.parent / "README.md").write_text(text, encoding="utf-8")

"""docs/architecture.md is the map of core/: every module in the tree is named there, and
every module it names exists (a map that drifts from the tree misleads a newcomer)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_architecture_map_matches_core():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    tree = {p.name for p in (ROOT / "core").glob("*.py") if not p.name.startswith("__")}
    tree |= {p.name + "/" for p in (ROOT / "core").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    named = set(re.findall(r"`([a-z_]+\.py|[a-z_]+/)`", doc))
    named = {n for n in named if n not in {"app.py", "appkit.py", "audit_ui.py", "core/", "pages/", "tests/", "bench/", "docs/"}}
    assert tree - named == set(), f"modules missing from docs/architecture.md: {sorted(tree - named)}"
    assert named - tree == set(), f"docs/architecture.md names modules that do not exist: {sorted(named - tree)}"

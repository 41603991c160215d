"""One base error and one one-line formatter; messages that can reach the app name no CLI flag."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import ValueAuditError, one_line

ROOT = Path(__file__).resolve().parents[1]


def test_one_line_takes_first_non_empty_line_or_class_name():
    assert one_line(ValueError("\n  bad corpus  \nTraceback: ...")) == "bad corpus"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError("   ")) == "RuntimeError"
    assert one_line("\n IO Error: disk full \n  at ...") == "IO Error: disk full"   # a message string (store)
    assert one_line("  ") == "unknown error"


def test_hint_is_kept():
    e = ValueAuditError("no such model", hint="check the id")
    assert (str(e), e.hint) == ("no such model", "check the id")
    assert ValueAuditError("x").hint is None


def test_cli_hint_is_kept_apart_from_the_message():
    """The CLI appends cli_hint (tests/test_reliability.py checks the flag reaches the CLI line);
    the app shows str(e) only."""
    e = ValueAuditError("allow pickle weights only if you trust its source", cli_hint="--allow-pickle")
    assert "--" not in str(e) and e.cli_hint == "--allow-pickle"


@pytest.mark.parametrize("module, name, old_base", [
    ("core.store", "StoreError", RuntimeError), ("core.models", "ModelError", ValueError),
    ("core.engines.base", "ScoringError", RuntimeError), ("core.cli", "UserError", Exception),
    ("core.corpora", "CorpusError", ValueError), ("core.limits", "LimitError", ValueError),
    ("core.settings", "SettingsError", ValueError), ("core.prompts", "PromptError", ValueError),
    ("core.logprobs", "LogprobError", ValueError), ("core.paperdata", "PaperDataError", RuntimeError),
    ("core.implicit", "ImplicitError", ValueError)])
def test_project_errors_share_the_base_and_keep_their_old_one(module, name, old_base):
    import importlib
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, ValueAuditError) and issubclass(cls, old_base)
    assert str(cls("message unchanged")) == "message unchanged"


def test_no_copy_of_the_first_line_idiom_for_errors():
    """one_line is the one formatter: no `str(e)...splitlines()[0]` left in the product."""
    files = [ROOT / "app.py", ROOT / "appkit.py", ROOT / "audit_ui.py",
             *(ROOT / "core").rglob("*.py"), *(ROOT / "pages").glob("*.py")]
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in files if p.exists()
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(r"str\(e\)[^\n]*splitlines\(\)\[0\]", line)]
    assert not hits, hits


def test_error_messages_outside_the_cli_name_no_flag():
    """Messages raised in core (outside cli.py) can be shown in the app, which has no flags."""
    import ast
    hits = []
    for p in (ROOT / "core").rglob("*.py"):
        if p.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Raise):
                cli_only = {id(c) for k in ast.walk(node) if isinstance(k, ast.keyword) and k.arg == "cli_hint"
                            for c in ast.walk(k.value)}
                for c in ast.walk(node):
                    if id(c) in cli_only:
                        continue
                    if isinstance(c, ast.Constant) and isinstance(c.value, str) and re.search(r"(^|\s)--[a-z]", c.value):
                        hits.append(f"{p.relative_to(ROOT)}:{node.lineno}: {c.value}")
    assert not hits, hits

"""Server-side settings: every `VALUEAUDIT_*` environment variable, in one table.

Why one table: what a dashboard visitor may do (run a model's own code, read a server
folder, delete data) must be decided by the operator who starts the server, never by a
widget a visitor can tick. Values are read from the environment each time they are used,
so a test or an operator can change them without re-importing anything. The README's
settings table is checked against this one by a test.

The default mode is `shared` (fail closed): a server that an operator exposes and forgets
to configure then offers no remote code, no server paths and no deletions. The person at
their own machine sets `VALUEAUDIT_MODE=local` once to get those back; the command line
is always the operator's own and is not limited by the mode."""
from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from contextlib import contextmanager

from .errors import ValueAuditError, one_line


class SettingsError(ValueAuditError, ValueError):
    """A setting or a visitor's request that the server's settings refuse."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str


SETTINGS: list[Setting] = [
    Setting("VALUEAUDIT_MODE", "shared",
            "`shared`: a dashboard for visitors — no remote-code opt-in, no pickle opt-in, models only from "
            "`VALUEAUDIT_MODELS_DIR` (by name) or the hub (by id), no server paths, no deletions, a visitor "
            "cancels only their own jobs. `local`: one person on their own machine, all of those allowed."),
    Setting("VALUEAUDIT_MODELS_DIR", "",
            "Folder of local models (one sub-folder each, saved with `save_pretrained`) that the dashboard "
            "offers by folder name. In shared mode the only local models a visitor can score, and the only "
            "training runs (a sub-folder holding `checkpoint-<step>/` folders) a visitor can sweep."),
    Setting("VALUEAUDIT_DB", "cache/valueaudit.duckdb", "The DuckDB file holding every score and saved corpus."),
    Setting("VALUEAUDIT_CACHE", "cache/", "Folder for downloads and the weight-digest memo."),
    Setting("VALUEAUDIT_PAPER_DATA", "",
            "A copy of the paper's `data/` folder; when unset, files are downloaded at a pinned commit."),
    Setting("VALUEAUDIT_LOCK_WAIT", "120", "Seconds a process waits for another one to release the database."),
    Setting("VALUEAUDIT_MAX_WORD_CHARS", "100", "Longest answer word (characters) a corpus may hold."),
    Setting("VALUEAUDIT_MAX_PROMPT_CHARS", "1000", "Longest prompt (characters) a prompt set may hold."),
    Setting("VALUEAUDIT_MAX_JOB_ROWS", "2000000",
            "Rows (models x prompts x words) one dashboard job may ask for; a bigger job is refused, with its "
            "cost, before it is queued. The default holds in shared mode; local mode has no limit unless this is "
            "set. The command line is not limited."),
    Setting("VALUEAUDIT_MAX_JOBS_PER_VISITOR", "1",
            "Jobs one visitor may have queued or running at once, so no visitor holds another's job behind a "
            "queue of their own (jobs run first come, first served). The default holds in shared mode; local "
            "mode has no limit unless this is set."),
    Setting("VALUEAUDIT_MAX_QUEUED_JOBS", "4",
            "Dashboard jobs the whole server takes queued or running at once, from all visitors together (a "
            "visitor's token is theirs to choose, so a new tab would otherwise get a new quota); a job past it is "
            "refused until one ends. The default holds in shared mode; local mode has no limit unless this is set."),
    Setting("VALUEAUDIT_MAX_CATEGORIES", "50",
            "Categories a corpus may have for the family statistics (Compare, Report, Paired, Implicit reward's "
            "Figure 2; every category is a panel with its own tests) and to be saved from the dashboard; in both "
            "modes."),
    Setting("VALUEAUDIT_MAX_SAVED_WORDS", "200000",
            "Words (rows) all corpora saved from the dashboard may hold together; a save past it is refused. The "
            "default holds in shared mode; local mode has no limit unless this is set."),
    Setting("VALUEAUDIT_OPERATOR_KEY", "",
            "A secret of at least 16 characters: a dashboard session opened with `?operator=<key>` in its address "
            "(over HTTPS) may cancel any visitor's job on a shared server; the key is removed from the address at "
            "once. Unset: only local mode may (in shared mode a visitor cancels only their own jobs)."),
    Setting("VALUEAUDIT_VOCAB_SCANS", "",
            "Who may start a vocabulary scan (every word token of an RM's vocabulary x prompts: ~80k rows per "
            "prompt) from the dashboard: unset = local mode only; `allow` = visitors of a shared server too; "
            "`off` = nobody (the command line always may)."),
    Setting("VALUEAUDIT_LOGPROB_DOWNLOADS", "",
            "Who may download the paper's log-prob files (0.1–0.3 GB per model, from the Hugging Face hub) with "
            "the Implicit reward page's *Download and import*: unset = local mode only; `allow` = visitors of a "
            "shared server too; `off` = nobody (the command line always may)."),
    Setting("VALUEAUDIT_LOGPROBS_REVISION", "",
            "Commit of the paper's Hugging Face log-prob dataset to download; empty: the commit the first "
            "download resolved (kept in <download folder>/.revision), so every model comes from one commit."),
    Setting("VALUEAUDIT_THREADS", "auto",
            "CPU threads of a scoring run: `auto` = torch's default less the cores other processes keep busy "
            "(more threads than free cores makes a run slower, see core/engines/threads.py); a number = that "
            "many; `torch` = torch's own choice. GPU runs are not affected."),
    Setting("VALUEAUDIT_DEBUG", "", "Any value: show tracebacks (CLI raises; the app prints them under the error)."),
]
_BY_NAME = {s.name: s for s in SETTINGS}
MODES = ("local", "shared")
PROJECT = Path(__file__).resolve().parent.parent   # relative defaults ("cache/") live beside the code


def get(name: str) -> str:
    """The variable's value now, or its default."""
    if name not in _BY_NAME:
        raise KeyError(f"{name} is not in core.settings.SETTINGS; add it there (and to the README)")
    return os.environ.get(name, _BY_NAME[name].default)


def path(name: str) -> Path:
    """A path setting: the variable as given (relative to the working directory), else its
    default under the project folder, so `cache/` means the project's own cache folder."""
    default = _BY_NAME[name].default                 # KeyError: not a setting
    raw = os.environ.get(name, "")
    return Path(raw).expanduser() if raw.strip() else PROJECT / default


def debug() -> bool:
    """VALUEAUDIT_DEBUG set: tracebacks instead of one-line errors."""
    return bool(get("VALUEAUDIT_DEBUG"))


def get_int(name: str) -> int:
    raw = get(name)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number; fix or unset it") from None
    if value < 1:
        raise SettingsError(f"{name}={raw!r} must be at least 1")
    return value


# Limits that hold in local mode only when the operator sets them (the person at the machine
# may run as much as they like); the others hold in both modes.
_LOCAL_UNLIMITED = {"VALUEAUDIT_MAX_JOB_ROWS", "VALUEAUDIT_MAX_JOBS_PER_VISITOR", "VALUEAUDIT_MAX_QUEUED_JOBS",
                    "VALUEAUDIT_MAX_SAVED_WORDS"}


def limit(name: str) -> int | None:
    """A limit on the work the dashboard accepts: the variable when set, else its default
    (none in local mode for the limits that protect a shared server from its visitors)."""
    if os.environ.get(name, "").strip():
        return get_int(name)
    if name in _LOCAL_UNLIMITED and not shared():
        return None
    return int(_BY_NAME[name].default)


def operator_key() -> str:
    """VALUEAUDIT_OPERATOR_KEY, or '' when unset; a short key is refused (it could be guessed)."""
    key = get("VALUEAUDIT_OPERATOR_KEY").strip()
    if key and len(key) < 16:
        raise SettingsError("VALUEAUDIT_OPERATOR_KEY is shorter than 16 characters; set a long random key "
                            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))') or unset it")
    return key


def mode() -> str:
    m = get("VALUEAUDIT_MODE").strip().lower()
    if m not in MODES:
        raise SettingsError(f"VALUEAUDIT_MODE={m!r} is not one of {', '.join(MODES)}; fix or unset it")
    return m


def shared() -> bool:
    """True when the dashboard serves visitors (the default)."""
    return mode() == "shared"


def check() -> None:
    """Every setting with a fixed form, read now; the first wrong one raises one SettingsError
    that names it. The dashboard runs this before every page, so a typo (VALUEAUDIT_MODE=sahred)
    closes every page with one operator error instead of some pages failing and others running."""
    mode()
    for name in ("VALUEAUDIT_VOCAB_SCANS", "VALUEAUDIT_LOGPROB_DOWNLOADS"):
        _operator_switch(name)
    for name in ("VALUEAUDIT_MAX_WORD_CHARS", "VALUEAUDIT_MAX_PROMPT_CHARS", "VALUEAUDIT_MAX_JOB_ROWS",
                 "VALUEAUDIT_MAX_JOBS_PER_VISITOR", "VALUEAUDIT_MAX_QUEUED_JOBS", "VALUEAUDIT_MAX_CATEGORIES",
                 "VALUEAUDIT_MAX_SAVED_WORDS"):
        get_int(name)
    operator_key()


def unknown() -> list[str]:
    """A line for each VALUEAUDIT_* variable that is no setting (a typo such as
    MODLES_DIR for MODELS_DIR is otherwise silently ignored), naming the closest setting."""
    out, prefix = [], "VALUEAUDIT_"
    for name in sorted(n for n in os.environ if n.startswith(prefix) and n not in _BY_NAME):
        # compared without the common prefix, which would make every name look alike
        close = difflib.get_close_matches(name[len(prefix):], [n[len(prefix):] for n in _BY_NAME], n=1, cutoff=0.6)
        out.append(f"{name} is not a valueaudit setting and is ignored; "
                   + (f"did you mean {prefix}{close[0]}?" if close else "see the settings table in README.md"))
    return out


_WARNED: set[str] = set()


def warn_unknown(emit) -> None:
    """Say each unknown variable once per process: `emit` is the CLI's stderr or the server's log."""
    for line in unknown():
        if line not in _WARNED:
            _WARNED.add(line)
            emit(line)


# -- what a visitor may do ----------------------------------------------------------
def allow_remote_code() -> bool:
    return not shared()


def allow_pickle() -> bool:
    return not shared()


def allow_paths() -> bool:
    """A typed server path (model folder, corpus file, log-prob folder) is read only in local mode."""
    return not shared()


def visitor_path(text: str, what: str = "a folder or file on the server") -> Path:
    """The one rule for a server path typed into the dashboard: read only in local mode. In
    shared mode every string, existing path or not, gets the same refusal before anything
    on the disk is looked at, so a refusal never tells a visitor what exists."""
    if not allow_paths():
        raise SettingsError(f"this server is shared: {what} cannot be read from the dashboard; the operator "
                            "can import it from the command line")
    return Path(str(text).strip()).expanduser()


def allow_delete() -> bool:
    return not shared()


def _operator_switch(name: str) -> bool:
    """An unset/allow/off setting: unset = local mode only, `allow` = visitors too, `off` = nobody."""
    raw = get(name).strip().lower()
    if raw not in ("", "allow", "off"):
        raise SettingsError(f"{name}={raw!r} is not one of allow, off; fix or unset it")
    return raw == "allow" or (raw == "" and not shared())


def allow_vocab_scans() -> bool:
    """A vocabulary scan is a long job (hours for a real RM): visitors start one only where
    the operator allowed it (VALUEAUDIT_VOCAB_SCANS)."""
    return _operator_switch("VALUEAUDIT_VOCAB_SCANS")


def allow_logprob_downloads() -> bool:
    """Downloading the paper's log-prob files fills the server's disk (0.1–0.3 GB a model)
    and its database: visitors do it only where the operator allowed it."""
    return _operator_switch("VALUEAUDIT_LOGPROB_DOWNLOADS")


# -- models a visitor may name ---------------------------------------------------------
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}")
_FOLDER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_CHECKPOINT_NAME = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]{0,127})/(checkpoint-[0-9]{1,12})")


def models_dir() -> Path | None:
    raw = get("VALUEAUDIT_MODELS_DIR").strip()
    return Path(raw).expanduser().resolve() if raw else None


def operator_models() -> dict[str, Path]:
    """Folder name -> folder of every model the operator listed (folders holding config.json)."""
    root = models_dir()
    if root is None or not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir())
            if _FOLDER_NAME.fullmatch(p.name) and p.is_dir() and (p / "config.json").is_file()}


def operator_checkpoint(name: str, listed: dict[str, Path] | None = None) -> Path | None:
    """The folder of `<model>/checkpoint-<step>` when `model` is an operator model that is a
    training run and holds that checkpoint folder (as the Trainer writes it): how a sweep of
    an operator's run names its checkpoints (core/sweep.py), so they load by the same rule as
    the run, and no server path is ever shown, stored or taken from a visitor."""
    m = _CHECKPOINT_NAME.fullmatch(name)
    listed = operator_models() if listed is None else listed
    if m is None or m.group(1) not in listed:
        return None
    folder = listed[m.group(1)] / m.group(2)
    return folder if folder.is_dir() else None


def visitor_model(name: str) -> str:
    """What a visitor's model string may load: an operator model's folder (by its name, or a
    checkpoint of it by `<name>/checkpoint-<step>`) or a hub id. In local mode anything goes
    (the visitor is the operator). In shared mode every other string, existing folder or
    not, gets the same answer, so a refusal never tells a visitor which folders exist on the
    server."""
    name = (name or "").strip()
    listed = operator_models()
    if name in listed:
        return str(listed[name])
    checkpoint = operator_checkpoint(name, listed)
    if checkpoint is not None:
        return str(checkpoint)
    if not shared():
        return name
    if HUB_ID.fullmatch(name) and ".." not in name and not Path(name).exists():
        return name
    raise SettingsError(f"model '{name[:80]}' is not available on this server: choose one of the listed models "
                        "or give a Hugging Face id (org/name)")


@contextmanager
def named_as_visitor(name: str, path: str):
    """Errors raised inside name the model as the visitor gave it: an operator model's
    server path (what `visitor_model` resolved `name` to) never reaches a visitor."""
    try:
        yield
    except ValueAuditError as e:
        if path == name:
            raise
        raise type(e)(one_line(e).replace(path, name)) from None

"""A real dashboard server for the browser tests: `streamlit run app.py` on a free port
with the environment a test chooses, stopped (and its log closed) when the block ends."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200 and r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError("streamlit did not answer its health check")


@contextlib.contextmanager
def running_app(env: dict, log_path: Path) -> Iterator[str]:
    """The app served with os.environ updated by `env` (a None value removes a variable);
    yields its URL. config.toml binds 127.0.0.1, so no address flag is needed. A port taken
    between free_port() and streamlit's bind (another test process, under xdist) is one retry."""
    full = {**os.environ, "HF_HUB_OFFLINE": "1"}
    for k, v in env.items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = str(v)
    with open(log_path, "w") as log:
        for attempt in range(3):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                 "--server.port", str(port), "--browser.gatherUsageStats", "false"],
                cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            try:
                wait_healthy(url, proc)
                break
            except RuntimeError:
                log.flush()
                if attempt == 2 or "already in use" not in Path(log_path).read_text():
                    raise
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def settle(page, timeout_ms: int = 180_000) -> None:
    """Wait until the page's script run has finished (Streamlit shows its status widget while
    it runs): a click during a rerun can land on an element that is about to be replaced."""
    page.wait_for_timeout(500)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)


def choose_option(page, select, name: str, tries: int = 4) -> None:
    """Open a selectbox and pick the option `name`, on a busy machine too: after the page has
    settled; a list that closed again (the select was redrawn under the click) is reopened."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    for _ in range(tries):
        settle(page)
        select.click()
        option = page.get_by_role("option", name=name, exact=True)
        try:
            option.wait_for(state="visible", timeout=15_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        option.click()
        return
    raise AssertionError(f"the option {name!r} was never listed")

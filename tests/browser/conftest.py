"""Real-browser tests: Debian's Chromium at /usr/bin/chromium, driven by Python Playwright.

Never ``playwright install``: the browser comes from the system package (``apt-get install
chromium``). Without it, or without the ``playwright`` package, every test here is skipped
with the reason, so the core suite runs anywhere.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import datacarto
from builders import CLASSES, make_run, planted_labels

CHROMIUM = os.environ.get("DATACARTO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Texts that would run script if any page inserted them as HTML.
XSS = ["<script>window.__xss = 1</script>", '<img src=x onerror="window.__xss = 2">',
       "</script><svg onload=\"window.__xss = 3\">", "<b>bold?</b> &amp; <i>not</i>"]


def skip_reason() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright Python package is not installed"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def run_and_data(root: Path, n: int = 60) -> tuple[Path, Path]:
    """A run whose every 7th example is mislabelled, and its CSV (id = row number).

    The XSS payloads are the texts of mislabelled examples, so they are suspects: they show up
    in the report's table and in the review queue.
    """
    run = make_run(root / "run", n=n)
    true, given = planted_labels(n)
    texts = [f"example {i}: a sentence about {CLASSES[t]}" for i, t in enumerate(true)]
    for k, payload in enumerate(XSS):
        texts[7 * k] = payload
    data = root / "data.csv"
    pd.DataFrame({"text": texts, "label": [CLASSES[g] for g in given]}).to_csv(data, index=False)
    return run, data


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


class Watch:
    """Everything a page did that a safe page must not: dialogs, errors, foreign requests."""

    def __init__(self, page: Any, allowed: str) -> None:
        self.allowed = allowed
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def foreign(self) -> list[str]:
        return [u for u in self.requests if not u.startswith(self.allowed)
                and not u.startswith(("data:", "blob:"))]


@pytest.fixture(scope="session")
def xss() -> list[str]:
    return list(XSS)


@pytest.fixture(scope="session")
def watch_page() -> type[Watch]:
    return Watch


@pytest.fixture(scope="session")
def review_server() -> Any:
    return start_review_server


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return run_and_data(tmp_path_factory.mktemp("browser"))


@pytest.fixture()
def fresh(dataset: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    run, data = dataset
    shutil.copytree(run, tmp_path / "run")
    shutil.copy(data, tmp_path / data.name)
    return tmp_path / "run", tmp_path / data.name


def start_review_server(run: Path, data: Path) -> Any:
    """A review server on 127.0.0.1, port 0, serving from a thread."""
    from datacarto.report.source import DataSource, load_source
    from datacarto.review.server import make_server
    from datacarto.review.session import ReviewSession

    r = datacarto.load(run)
    metrics = r.metrics()
    loaded = load_source(DataSource(data), metrics["id"].to_numpy())
    srv = make_server(ReviewSession(run, metrics, r.classes, loaded, title="datacarto review"))
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


@pytest.fixture()
def context(browser: Any) -> Iterator[Any]:
    """A fresh browser context (own cookies and storage) with a page-sized viewport."""
    ctx = browser.new_context(viewport={"width": 1300, "height": 1000})
    yield ctx
    ctx.close()

"""Fast typing on the review page: every key is applied in order, what waits is shown, a failed
save stops the queue visibly; pixel data show their pictures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import datacarto
from datacarto.errors import InputError
from datacarto.report.source import DataSource, load_source
from datacarto.review.server import make_server
from datacarto.review.session import ReviewSession
from datacarto.thumbnails import images_of

KEYS = "akx12" * 4  # 20 decision keys: accept, keep, drop, relabel to class 1 and 2


def serve(run: Path, data: Path, **session_options: Any) -> Any:
    r = datacarto.load(run)
    metrics = r.metrics()
    loaded = load_source(DataSource(data), metrics["id"].to_numpy())
    session = ReviewSession(run, metrics, r.classes, loaded, **session_options)
    srv = make_server(session)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv


def slowed(decide: Callable[..., Any], seconds: float, fail_on: int | None = None) -> Callable[..., Any]:
    """The session's save, slowed down (so keys arrive while one is saving), failing on call
    ``fail_on`` (1-based) when given."""
    calls = [0]

    def slow(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        time.sleep(seconds)
        if calls[0] == fail_on:
            raise InputError("disk full (test)")
        return decide(*args, **kwargs)

    return slow


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    yield ctx.new_page()
    ctx.close()


def open_review(page: Any, srv: Any) -> None:
    page.goto(srv.url)
    page.wait_for_selector("body[data-ready='1']", timeout=15_000)


def log_of(run: Path) -> list[dict[str, Any]]:
    path = run / "review" / "decisions.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_twenty_fast_keys_are_all_saved_in_order(fresh, page, watch_page) -> None:
    run, data = fresh
    srv = serve(run, data, top=25)
    try:
        srv.session.decide = slowed(srv.session.decide, 0.08)
        queue = srv.session.queue_items()
        watch = watch_page(page, srv.url)
        open_review(page, srv)
        for key in KEYS:
            page.keyboard.press(key)  # no waiting between keys
        # both read in one step: the page updates them together, between two reads it may not
        pending, shown_text = page.evaluate(
            "() => [document.querySelector('#pending').textContent, document.body.dataset.pending]")
        shown = int(shown_text)
        assert shown >= 2 and pending == f"{shown} decisions saving\u2026"
        page.wait_for_selector("body[data-pending='0'][data-busy='0']", timeout=30_000)
        assert page.text_content("#pending") == ""
        log = log_of(run)
        assert [d["id"] for d in log] == [int(q["id"]) for q in queue[:20]]
        expected = {"a": "accept", "k": "keep", "x": "drop", "1": "relabel", "2": "relabel"}
        assert [d["action"] for d in log] == [expected[k] for k in KEYS]
        assert [d["new_label"] for d in log if d["action"] == "relabel"] == ["neg", "neu"] * 4
        assert page.get_attribute("body", "data-decided") == "20"
        assert page.get_attribute("body", "data-current-id") == queue[20]["id"]
        assert watch.errors == []
    finally:
        srv.shutdown()
        srv.server_close()


def test_navigation_keys_wait_for_the_decisions_before_them(fresh, page) -> None:
    run, data = fresh
    srv = serve(run, data, top=25)
    try:
        srv.session.decide = slowed(srv.session.decide, 0.1)
        queue = srv.session.queue_items()
        open_review(page, srv)
        for key in "aap":  # two decisions, then back to the second example
            page.keyboard.press(key)
        page.wait_for_selector("body[data-busy='0']", timeout=15_000)
        assert [d["id"] for d in log_of(run)] == [int(q["id"]) for q in queue[:2]]
        assert page.get_attribute("body", "data-current-id") == queue[1]["id"]
        assert "accepted" in page.text_content("#status")
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_failed_save_stops_the_queue_and_says_so(fresh, page) -> None:
    run, data = fresh
    srv = serve(run, data, top=25)
    try:
        srv.session.decide = slowed(srv.session.decide, 0.05, fail_on=3)
        queue = srv.session.queue_items()
        open_review(page, srv)
        for key in "kkkkkk":
            page.keyboard.press(key)
        page.wait_for_selector("body[data-busy='0']", timeout=15_000)
        assert [d["id"] for d in log_of(run)] == [int(q["id"]) for q in queue[:2]]
        text = page.text_content("#message")
        assert "Not saved: disk full (test)" in text
        assert "stopped, 3 later keys were not applied" in text
        assert page.get_attribute("#message", "class") == "error"
        # the example whose save failed is still the one shown, undecided
        assert page.get_attribute("body", "data-current-id") == queue[2]["id"]
        assert page.text_content("#status") == "Not decided yet"
    finally:
        srv.shutdown()
        srv.server_close()


def test_pixel_rows_show_their_picture_and_neighbours(tmp_path, page, watch_page) -> None:
    rng = np.random.default_rng(1)
    n, classes = 40, ["dark", "light"]
    true = rng.integers(0, 2, n)
    given = true.copy()
    given[::5] = 1 - true[::5]
    pixels = np.where(true[:, None] == 1, 200, 20) + rng.integers(0, 30, (n, 100))
    frame = pd.DataFrame(pixels, columns=[f"px_{j}" for j in range(100)])
    frame["label"] = [classes[g] for g in given]
    data = tmp_path / "pixels.csv"
    frame.to_csv(data, index=False)
    run = tmp_path / "run"
    with datacarto.Recorder(run, classes=classes) as rec:
        for epoch in range(4):
            logits = rng.normal(0, 0.3, (n, 2))
            logits[np.arange(n), true] += 0.8 * (epoch + 1)
            rec.update(np.arange(n), logits, given)
            rec.end_epoch()
    r = datacarto.load(run)
    metrics = r.metrics()
    loaded = load_source(DataSource(data), metrics["id"].to_numpy())
    images = images_of(loaded)
    assert images is not None and images.shape == (10, 10)
    srv = make_server(ReviewSession(run, metrics, r.classes, loaded, images=images, top=5))
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        watch = watch_page(page, srv.url)
        open_review(page, srv)
        assert page.is_visible("#picture") and not page.is_visible("#text")
        src = page.get_attribute("#picture img", "src")
        assert src.startswith("data:image/png;base64,")
        size = page.evaluate("[document.querySelector('#picture img').naturalWidth, "
                             "document.querySelector('#picture img').naturalHeight]")
        assert size == [60, 60]  # 10 x 10 upscaled 6x
        assert page.locator("#neighbours img.thumb").count() == 8
        assert watch.errors == [] and watch.foreign() == []
    finally:
        srv.shutdown()
        srv.server_close()

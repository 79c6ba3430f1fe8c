"""The review page in a real browser: decide with the keyboard, resume, export, no XSS."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from builders import open_page


@pytest.fixture()
def served(fresh: tuple[Path, Path], review_server: Any) -> Iterator[tuple[Any, Path, Path]]:
    run, data = fresh
    srv = review_server(run, data)
    yield srv, run, data
    srv.shutdown()
    srv.server_close()


def decide_with_key(page: Any, key: str) -> None:
    before = int(page.get_attribute("body", "data-decided"))
    page.keyboard.press(key)
    # selectors, not wait_for_function: the page's CSP (rightly) forbids the eval that needs
    page.wait_for_selector(f"body[data-decided='{before + 1}'][data-busy='0']")


def test_accept_three_reload_resume_export(served, context, watch_page) -> None:
    srv, run, data = served
    original = hashlib.sha256(data.read_bytes()).hexdigest()
    queue = srv.session.queue_items()
    page, watch = open_page(context, srv.url, watch_page)
    assert page.get_attribute("body", "data-current-id") == queue[0]["id"]
    for k in range(3):
        assert page.get_attribute("body", "data-current-id") == queue[k]["id"]
        decide_with_key(page, "a")
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.get_attribute("body", "data-decided") == "3"
    assert page.get_attribute("body", "data-current-id") == queue[3]["id"]  # resumed
    assert page.text_content("#progress") == f"3 of {len(queue)} suspects decided"
    assert page.locator("#queue li.done").count() == 3
    lines = (run / "review" / "decisions.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [int(q["id"]) for q in queue[:3]]

    page.click("#export")
    page.wait_for_selector("body[data-exported]")
    out = Path(page.get_attribute("body", "data-exported"))
    assert out == run / "review" / "corrected.csv"
    assert "3 relabelled" in page.text_content("#message")
    corrected, before = pd.read_csv(out), pd.read_csv(data)
    assert len(corrected) == len(before)
    for q in queue[:3]:
        assert corrected.loc[int(q["id"]), "label"] == q["suggested"] != before.loc[int(q["id"]), "label"]
    changed = (corrected["label"] != before["label"]).sum()
    assert changed == 3
    assert len(pd.read_csv(run / "review" / "corrected.changes.csv")) == 3
    assert hashlib.sha256(data.read_bytes()).hexdigest() == original
    assert watch.errors == [] and watch.foreign() == []


def test_other_label_keep_drop_and_navigation_keys(served, context, watch_page) -> None:
    srv, run, _ = served
    queue = srv.session.queue_items()
    page, _ = open_page(context, srv.url, watch_page)
    decide_with_key(page, "3")  # choose class 3 ("pos")
    decide_with_key(page, "k")
    decide_with_key(page, "x")
    page.keyboard.press("p")
    page.wait_for_selector(f"body[data-current-id='{queue[2]['id']}']")
    assert "dropped" in page.text_content("#status")
    page.click("#label-buttons button[data-label='neu']")
    page.locator("#message", has_text="relabelled: neu").wait_for()
    actions = [json.loads(x) for x in (run / "review" / "decisions.jsonl").read_text().splitlines()]
    assert [(a["action"], a["new_label"]) for a in actions] == [
        ("relabel", "pos"), ("keep", queue[1]["given"]), ("drop", None), ("relabel", "neu")]


def test_two_tabs_deciding_at_once_lose_nothing(served, context, watch_page) -> None:
    srv, run, _ = served
    a, _ = open_page(context, srv.url, watch_page)
    b, _ = open_page(context, srv.url, watch_page)
    b.keyboard.press("n")  # tab b works on the second suspect
    b.wait_for_selector(f"body[data-current-id='{srv.session.queue_items()[1]['id']}']")
    for _ in range(3):
        a.keyboard.press("a")
        b.keyboard.press("k")
        a.wait_for_selector("body[data-busy='0']")
        b.wait_for_selector("body[data-busy='0']")
    log = [json.loads(x) for x in (run / "review" / "decisions.jsonl").read_text().splitlines()]
    assert len(log) == 6 and sorted(d["action"] for d in log) == ["accept"] * 3 + ["keep"] * 3


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "escaping-alone"])
def test_payloads_show_as_text_and_run_nothing(served, browser, watch_page, xss, bypass_csp) -> None:
    srv, _, _ = served
    context = browser.new_context(bypass_csp=bypass_csp)  # the second run proves escaping suffices
    page, watch = open_page(context, srv.url, watch_page)
    queue = [q["id"] for q in srv.session.queue_items()]
    shown = 0
    for k, payload in enumerate(xss):
        key = str(7 * k)
        if key not in queue:
            continue
        page.click(f"#queue li:nth-child({queue.index(key) + 1})")
        page.wait_for_selector(f"body[data-current-id='{key}']")
        assert page.text_content("#text") == payload
        shown += 1
    assert shown >= 2, "the fixture should put payloads in the queue"
    neighbours = page.text_content("#neighbours")
    assert neighbours is not None
    for selector in ("main img", "main svg", "main iframe", "script:not([src])", "#text *",
                     "#queue li *", "#neighbours li i", "#fields *:not(dt):not(dd)"):
        assert page.evaluate(f"document.querySelectorAll('{selector}').length") == 0, selector
    assert page.evaluate("window.__xss") is None
    assert watch.dialogs == [] and watch.errors == [] and watch.foreign() == []
    context.close()


def test_page_without_token_cannot_decide(served, context, watch_page) -> None:
    srv, run, _ = served
    page, _ = open_page(context, srv.url, watch_page)
    page.evaluate("document.querySelector('meta[name=dc-token]').setAttribute('content', 'x')")
    status = page.evaluate("""async (id) => (await fetch('/api/decide', {method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-Datacarto-Token': 'forged'},
        body: JSON.stringify({id: id, action: 'drop'})})).status""", srv.session.queue_items()[0]["id"])
    assert status == 403
    assert not (run / "review" / "decisions.jsonl").exists()


def test_corrupt_log_line_is_shown_and_earlier_decisions_kept(fresh, review_server, context,
                                                             watch_page) -> None:
    run, data = fresh
    log = run / "review" / "decisions.jsonl"
    log.parent.mkdir()
    log.write_text('{"time": "t", "id": 0, "old_label": "neu", "action": "keep", "new_label": "neu"}\n'
                   '{"time": "t", "id": 7, "old_la')  # the server died mid-write
    srv = review_server(run, data)
    try:
        page, _ = open_page(context, srv.url, watch_page)
        assert page.is_visible("#notice")
        assert "line 2" in page.text_content("#notice")
        assert page.get_attribute("body", "data-decided") == ("1" if "0" in srv.session.position else "0")
        decide_with_key(page, "k")
        assert len(log.read_text().splitlines()) == 3  # the new decision starts on its own line
    finally:
        srv.shutdown()
        srv.server_close()

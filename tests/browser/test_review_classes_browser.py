"""The review page's class and bulk tools in a real browser: a new class from a proposal,
a merge, bulk actions with confirmation and undo, a lasso on the map; reload and export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from builders import open_page

MEMBERS = [1, 2, 3, 4]


@pytest.fixture()
def served(fresh: tuple[Path, Path], review_server: Any) -> Iterator[tuple[Any, Path, Path]]:
    run, data = fresh
    (run / "classes.json").write_text(json.dumps({"proposals": [
        {"kind": "add", "classes": ["neg", "pos"], "ids": MEMBERS, "size": 4, "evidence": {"swing": 0.7},
         "examples": MEMBERS[:2], "terms": ["but", "also"]},
        {"kind": "merge", "classes": ["neu", "pos"], "size": 30, "evidence": {}}]}))
    srv = review_server(run, data)
    yield srv, run, data
    srv.shutdown()
    srv.server_close()


def idle(page: Any) -> None:
    page.wait_for_selector("body[data-busy='0']", timeout=15_000)


def confirm(page: Any) -> str:
    page.wait_for_selector("body[data-confirm='1']")
    text = page.text_content("#confirm-text")
    page.click("#confirm-yes")
    idle(page)
    return text


def log_of(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "review" / "decisions.jsonl").read_text().splitlines()]


def test_new_class_from_a_proposal_one_by_one_then_all_reload_and_export(served, context, watch_page) -> None:
    srv, run, data = served
    page, watch = open_page(context, srv.url, watch_page)
    page.click("#proposals li[data-pid] button")
    page.wait_for_selector(f"body[data-member-id='{MEMBERS[0]}']")
    assert "Member 1 of 4" in page.text_content("#member-position")
    assert page.is_disabled("#member-add")  # the class does not exist yet
    page.click("#member-next")
    page.wait_for_selector(f"body[data-member-id='{MEMBERS[1]}']")
    for name, error in [("", "needs a name; got an empty one"), ("pos", "class 'pos' already exists")]:
        page.fill("#newclass-name", name)
        page.click("#newclass-create")
        idle(page)
        assert error in page.text_content("#message") and page.get_attribute("#message", "class") == "error"
    assert not (run / "review" / "decisions.jsonl").exists()  # nothing half-written
    page.fill("#newclass-name", "mixed")
    page.click("#newclass-create")
    page.wait_for_selector("body[data-newclass='mixed']")
    idle(page)
    assert page.get_attribute("body", "data-classes") == "neg|neu|pos|mixed"
    assert page.locator("#label-buttons button[data-label='mixed']").count() == 1
    page.click("#member-add")  # one by one: member 2 joins
    page.wait_for_selector(f"body[data-member-id='{MEMBERS[2]}']")
    idle(page)
    assert log_of(run)[-1]["id"] == MEMBERS[1] and log_of(run)[-1]["new_label"] == "mixed"
    page.click("#member-all")  # the rest, after the count and a confirmation
    text = confirm(page)
    assert text.startswith("Relabel as \u2018mixed\u2019 for 3 examples") and "1 already so" in text
    rows = [d for d in log_of(run) if "kind" not in d]
    assert sorted(d["id"] for d in rows) == sorted(MEMBERS)
    assert {d["source"] for d in rows} == {"new class 'mixed' (proposal 1)"}
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.get_attribute("body", "data-classes") == "neg|neu|pos|mixed"
    assert page.get_attribute("body", "data-actions") == "2"  # the class, then its members
    page.click("#export")
    page.wait_for_selector("body[data-exported]")
    corrected = pd.read_csv(page.get_attribute("body", "data-exported"))
    assert corrected.loc[MEMBERS, "label"].tolist() == ["mixed"] * 4
    assert (corrected["label"] != pd.read_csv(data)["label"]).sum() == 4
    changes = pd.read_csv(run / "review" / "corrected.changes.csv")
    assert changes["id"].tolist() == MEMBERS and set(changes["why"]) == {"new class 'mixed' (proposal 1)"}
    assert watch.errors == [] and watch.foreign() == [] and watch.dialogs == []


def test_merge_by_hand_with_confirmation_then_undo(served, context, watch_page) -> None:
    srv, run, _ = served
    neu = [i for i in range(srv.session.n) if srv.session.current(i) == "neu"]
    page, watch = open_page(context, srv.url, watch_page)
    page.select_option("#merge-a", "neu")
    page.select_option("#merge-b", "pos")
    page.select_option("#merge-into", "b")
    page.click("#merge-go")
    page.wait_for_selector("body[data-confirm='1']")
    page.click("#confirm-no")  # cancel: nothing changes
    assert "Cancelled" in page.text_content("#message") and not (run / "review").exists()
    page.click("#merge-go")
    text = confirm(page)
    assert text == (f"Merge \u2018neu\u2019 into \u2018pos\u2019: relabel {len(neu)} examples and "
                    "retire \u2018neu\u2019?")
    page.wait_for_selector("body[data-classes='neg|pos']")
    idle(page)
    rows = [d for d in log_of(run) if "kind" not in d]
    assert sorted(d["id"] for d in rows) == neu and {d["new_label"] for d in rows} == {"pos"}
    assert "retire" not in page.text_content("#message") and "merge 'neu' into 'pos'" in page.text_content("#message")
    page.click("#bulk-done li[data-action] button")
    page.wait_for_selector("body[data-classes='neg|neu|pos'][data-actions='0']")
    assert srv.session.log.latest == {}
    assert watch.errors == [] and watch.dialogs == []


def test_accept_above_a_score_confirm_undo_and_undo_again_from_a_stale_tab(served, context, watch_page) -> None:
    srv, run, _ = served
    s = srv.session
    above = sorted(int(s.keys[i]) for i in range(s.n) if s.score[i] >= 0.5)
    page, watch = open_page(context, srv.url, watch_page)
    stale, _ = open_page(context, srv.url, watch_page)
    page.fill("#accept-score", "0.5")
    page.click("#accept-above")
    text = confirm(page)
    assert text == f"Accept the suggested label for {len(above)} examples (filter score >= 0.5)?"
    assert sorted(d["id"] for d in log_of(run) if "kind" not in d) == above
    queued = [q for q in s.queue_items() if int(q["id"]) in above]
    page.wait_for_selector(f"body[data-decided='{len(queued)}']")
    stale.reload()
    stale.wait_for_selector("body[data-ready='1'][data-actions='1']")
    page.click("#bulk-done li[data-action] button")
    page.wait_for_selector("body[data-actions='0'][data-decided='0']")
    idle(page)
    assert "Undone: filter score >= 0.5" in page.text_content("#message")
    assert page.is_disabled("#bulk-done li[data-action] button")
    stale.click("#bulk-done li[data-action] button")  # this tab still offers the undo
    idle(stale)
    assert "was already undone" in stale.text_content("#message")
    assert stale.get_attribute("#message", "class") == "error"
    assert [d.get("kind") for d in log_of(run)].count("undo") == 1
    assert watch.errors == []


def test_lasso_on_the_map_selects_what_it_encloses(served, context, watch_page) -> None:
    srv, run, _ = served
    s = srv.session
    page, watch = open_page(context, srv.url, watch_page)
    (x0, x1), (y0, y1) = s.map_points()["limits"]
    box = page.locator("#minimap").bounding_box()
    w, h, pad = 360, 300, 28

    def pixel(vx: float, vy: float) -> tuple[float, float]:  # the page's map transform, +1 for the border
        return (box["x"] + 1 + pad + (vx - x0) / (x1 - x0) * (w - pad - 8),
                box["y"] + 1 + h - pad - (vy - y0) / (y1 - y0) * (h - pad - 8))

    dx, dy = 0.02 * (x1 - x0), 0.02 * (y1 - y0)  # a little outside the plot, still on the canvas
    lo, hi = (x0 - dx, y0 + 0.5 * (y1 - y0)), (x1 + dx, y1 + dy)  # the upper half of the map
    corners = [pixel(lo[0], lo[1]), pixel(hi[0], lo[1]), pixel(hi[0], hi[1]), pixel(lo[0], hi[1]), pixel(lo[0], lo[1])]
    page.mouse.move(*corners[0])
    page.mouse.down()
    for a, b in zip(corners, corners[1:]):
        for t in np.linspace(0.1, 1, 5):
            page.mouse.move(a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
    page.mouse.up()
    page.wait_for_selector("body[data-lasso]")
    assert page.is_checked("#sel-lasso")
    page.select_option("#bulk-action", "drop")
    page.click("#bulk-preview")
    text = confirm(page)
    rows = [d for d in log_of(run) if "kind" not in d]
    assert text == f"Drop for {len(rows)} examples (lasso on the map)?"
    got = {int(d["id"]) for d in rows}
    middle = y0 + 0.5 * (y1 - y0)
    sure_in = {int(s.keys[i]) for i in range(s.n) if s.conf[i] > middle + 0.02}
    maybe = {int(s.keys[i]) for i in range(s.n) if s.conf[i] > middle - 0.02}
    assert sure_in and sure_in <= got <= maybe  # what the lasso encloses, up to a pixel
    assert {d["source"] for d in rows} == {"lasso on the map"} and {d["action"] for d in rows} == {"drop"}
    assert watch.errors == []

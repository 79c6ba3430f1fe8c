"""Take the README screenshots of the report and the review page with the tests' browser.

    python scripts/screenshots.py [--run RUN] [--out docs/images]
    python scripts/screenshots.py --measure 100000 300000

Without ``--run`` it first makes the demo run (``datacarto demo``: Rotten Tomatoes with 5 %
injected label flips, about 10 s). The browser is the one the browser tests drive (Debian's
Chromium through Playwright, same flags: see ``tests/browser/conftest.py``). Also prints how
long the report took to open. ``--measure N ...`` instead times reports of N synthetic examples
(file size, time to open, time to redraw after a filter, time for a hover tooltip).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _browser_helpers():  # noqa: ANN202 - the conftest module
    if str(ROOT / "tests") not in sys.path:  # it imports the shared test builders
        sys.path.insert(0, str(ROOT / "tests"))
    spec = importlib.util.spec_from_file_location("_browser_conftest", ROOT / "tests/browser/conftest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_metrics(n: int, seed: int = 0):  # noqa: ANN201 - (DataFrame, texts)
    """A metrics frame shaped like a real run's (3 classes, ~5 % flagged) and review-length texts."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    conf = rng.beta(4, 1.5, n)
    var = np.clip(0.5 * conf * (1 - conf) * rng.uniform(0.2, 1.6, n), 0, 0.5)
    label = rng.integers(0, 3, n)
    flag = (conf < 0.3) & (rng.random(n) < 0.6)
    region = np.where(var > 0.15, "ambiguous", np.where(conf < 0.5, "hard", "easy"))
    words = np.array("the a film movie story plot acting cast scene funny dull bright slow "
                     "moving clever tired warm cold script score".split())
    lengths = rng.integers(8, 40, n)
    texts = [" ".join(words[rng.integers(0, len(words), k)]) for k in lengths]
    frame = pd.DataFrame({"id": np.arange(n), "label": label, "confidence": conf, "variability": var,
                          "correctness": np.round(conf * 5) / 5, "region": region,
                          "label_error_score": 1 - conf, "suggested_label": (label + 1) % 3,
                          "is_label_error": flag})
    return frame, texts


def measure(sizes: list[int], helpers) -> None:  # noqa: ANN001
    from playwright.sync_api import sync_playwright

    from datacarto.report import write_report

    tmp = Path(tempfile.mkdtemp(prefix="datacarto-timing-"))
    with sync_playwright() as p:
        browser = helpers.launch(p)
        for n in sizes:
            metrics, texts = synthetic_metrics(n)
            out = tmp / f"report-{n}.html"
            t = time.perf_counter()
            write_report(metrics, out, classes=["neg", "neu", "pos"], texts=texts)
            build_s = time.perf_counter() - t
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            t = time.perf_counter()
            page.goto(out.as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            open_s = time.perf_counter() - t
            mode = page.evaluate("window.dcReport.data.mode")
            hover_layer = page.evaluate("window.dcReport.data.points.id.length")
            t = time.perf_counter()
            page.select_option("#dc-class", "1")
            page.wait_for_selector("body[data-draws='2']", timeout=60_000)
            filter_s = time.perf_counter() - t
            page.select_option("#dc-class", "-1")
            page.wait_for_selector("body[data-draws='3']", timeout=60_000)
            i = page.evaluate("window.dcReport.data.points.flag.indexOf(1)")
            xy = page.evaluate(f"window.dcReport.pixelOf({i})")
            page.mouse.move(xy["x"] - 20, xy["y"] - 20)
            t = time.perf_counter()
            page.mouse.move(xy["x"], xy["y"])
            page.wait_for_selector("#dc-tooltip:not([hidden])", timeout=30_000)
            hover_s = time.perf_counter() - t
            page.close()
            print(f"n={n:,}: mode={mode}, hover layer {hover_layer:,} points, file "
                  f"{out.stat().st_size / 1e6:.1f} MB, built in {build_s:.1f} s, opened (plot drawn) in "
                  f"{open_s:.1f} s, class filter redraw {filter_s:.2f} s, hover tooltip {hover_s:.2f} s")
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a run directory with a recorded data source")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/images")
    parser.add_argument("--measure", type=int, nargs="+", metavar="N",
                        help="time reports of N synthetic examples instead of taking screenshots")
    args = parser.parse_args()
    helpers = _browser_helpers()
    reason = helpers.skip_reason()
    if reason:
        print(f"screenshots: {reason}", file=sys.stderr)
        return 2
    if args.measure:
        measure(args.measure, helpers)
        return 0

    import datacarto
    from datacarto.cli import main as cli
    from datacarto.report.source import load_source, resolve_source
    from datacarto.review.server import make_server
    from datacarto.review.session import ReviewSession
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="datacarto-shots-"))
    run_dir = args.run
    if run_dir is None:
        run_dir = tmp / "demo"
        if cli(["demo", "--out", str(run_dir)]) != 0:
            return 2
    report = tmp / "report.html"
    if cli(["report", str(run_dir), "-o", str(report), "--title", "datacarto report: Rotten Tomatoes demo"]) != 0:
        return 2
    args.out.mkdir(parents=True, exist_ok=True)

    run = datacarto.load(run_dir)
    metrics = run.metrics()
    source = resolve_source(run.path, run.meta)
    loaded = load_source(source, metrics["id"].to_numpy()) if source else None
    server = make_server(ReviewSession(run.path, metrics, run.classes, loaded,
                                       title="datacarto review: Rotten Tomatoes demo"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = helpers.launch(p)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            start = time.perf_counter()
            page.goto(report.as_uri())
            page.wait_for_selector("body[data-ready='1']", timeout=60_000)
            print(f"report opened in {time.perf_counter() - start:.2f} s "
                  f"(plot rendered {page.evaluate('window.dcReport.renderMs'):.0f} ms after the script started)")
            # hover the suspect farthest from any other point, so the tooltip is unambiguous
            target = page.evaluate("""() => {
                const r = window.dcReport, P = r.data.points, n = P.id.length, px = [];
                for (let i = 0; i < n; i++) px.push(r.pixelOf(i));
                let best = -1, bestGap = -1;
                for (let a = 0; a < n; a++) {
                    if (!P.flag[a] || !P.text || !P.text[a] || P.text[a].length > 160) continue;
                    let gap = Infinity;
                    for (let b = 0; b < n; b++) if (b !== a) gap = Math.min(gap,
                        Math.hypot(px[a].x - px[b].x, px[a].y - px[b].y));
                    if (gap > bestGap) { bestGap = gap; best = a; }
                }
                return best; }""")
            page.evaluate(f"window.dcReport.select({target})")
            xy = page.evaluate(f"window.dcReport.pixelOf({target})")
            page.mouse.move(xy["x"], xy["y"], steps=4)
            # the target's own tooltip: points passed on the way may show theirs first
            page.wait_for_selector(f"#dc-tooltip[data-index='{target}']:not([hidden])")
            page.screenshot(path=str(args.out / "report.png"))
            page.mouse.move(5, 5)

            page.goto(server.url)
            page.wait_for_selector("body[data-ready='1']")
            page.screenshot(path=str(args.out / "review.png"))
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    print(f"wrote {args.out / 'report.png'} and {args.out / 'review.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The interactive HTML report: self-contained, escaped, density mode, CLI."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datacarto
from datacarto.cli import main
from datacarto.errors import InputError, MissingDependencyError, SchemaError
from datacarto.report import build_report, write_report
from datacarto.report.html import script_json

from builders import CLASSES, make_run, planted_labels

pytest.importorskip("plotly")

XSS = ["<script>window.__xss = 1</script>", '<img src=x onerror="window.__xss = 2">',
       "</script><script>alert(1)</script>", "\u2028 & <!-- -->"]


def run_and_data(root: Path, n: int = 60) -> tuple[Path, Path]:
    """A run whose every 7th example is mislabelled, and its CSV with the XSS texts first."""
    run = make_run(root / "run", n=n, epochs=4, seed=1, margin=0.7)
    _, given = planted_labels(n, seed=1)
    texts = [f"text {i}" for i in range(n)]
    texts[: len(XSS)] = XSS
    data = root / "data.csv"
    pd.DataFrame({"text": texts, "label": [CLASSES[g] for g in given]}).to_csv(data, index=False)
    return run, data


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    run, data = run_and_data(tmp_path_factory.mktemp("report"))
    return run, data, datacarto.load(run).metrics()


class _Loads(HTMLParser):
    """Every URL the page would load or link to, and its inline script bodies."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "data", "poster", "srcset") and value:
                self.urls.append(value)


def payload(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="dc-data">(.*?)</script>', page, re.S)
    assert m
    return json.loads(m.group(1))


def test_report_is_self_contained_and_escaped(built) -> None:
    run, data, metrics = built
    texts = pd.read_csv(data)["text"].tolist()
    page = build_report(metrics, classes=CLASSES, texts=texts, title="<b>t</b> & co")
    parser = _Loads()
    parser.feed(page)
    assert [u for u in parser.urls if re.match(r"\s*(https?:)?//", u)] == []
    assert parser.urls == []  # nothing at all is loaded from elsewhere
    assert parser.tags.count("script") == 3 and "img" not in parser.tags
    assert "default-src 'none'" in page and "connect-src 'none'" in page
    assert "<title>&lt;b&gt;t&lt;/b&gt; &amp; co</title>" in page
    for text in XSS:
        assert text not in page  # only the \u003c-escaped form is in the file
    data_json = payload(page)
    assert data_json["points"]["text"][:4] == XSS  # and it decodes back to the exact text
    assert data_json["mode"] == "points" and len(data_json["points"]["id"]) == 60
    assert data_json["full"] is None and data_json["suspects_total"] == int(metrics["is_label_error"].sum())
    assert sum(row[1] for row in data_json["summary"]) == 60
    assert [row[1] for row in data_json["summary"]] == [row[2] + row[3] + row[4] for row in data_json["summary"]]


def test_script_json_cannot_close_the_script_element() -> None:
    out = script_json({"a": "</script><!--<script>", "b": "\u2028&"})
    assert "<" not in out and ">" not in out and "&" not in out and "\u2028" not in out
    assert json.loads(out) == {"a": "</script><!--<script>", "b": "\u2028&"}


def test_report_text_is_trimmed_and_missing_text_is_null(built) -> None:
    _, _, metrics = built
    texts = ["x" * 500] + [None] * 59
    data = payload(build_report(metrics, classes=CLASSES, texts=texts, text_chars=50))
    assert len(data["points"]["text"][0]) == 50 and data["points"]["text"][0].endswith("…")
    assert data["points"]["text"][1] is None
    assert payload(build_report(metrics, classes=CLASSES))["points"]["text"] is None


def test_report_density_mode_above_max_points(built) -> None:
    _, _, metrics = built
    data = payload(build_report(metrics, classes=CLASSES, max_points=20, sample_size=10, seed=3))
    assert data["mode"] == "density" and data["sample"]["size"] == 10
    n_flag = int(metrics["is_label_error"].sum())
    assert data["sample"]["suspects"] == min(n_flag, 5)
    ids = data["points"]["id"]
    top = metrics.sort_values("label_error_score", ascending=False, kind="stable")
    top = top[top["is_label_error"]]["id"].astype(str).tolist()[:5]
    assert ids[: len(top)] == top  # the top suspects are always hoverable
    import base64

    full_x = np.frombuffer(base64.b64decode(data["full"]["x"]), dtype="<u2")
    assert len(full_x) == 60
    np.testing.assert_allclose(full_x / 65535 * 0.5, metrics["variability"], atol=1e-5)
    again = payload(build_report(metrics, classes=CLASSES, max_points=20, sample_size=10, seed=3))
    assert again["points"]["id"] == ids  # seeded


@pytest.mark.parametrize("change, options, error, match", [
    (lambda m: m.drop(columns=["region"]), {}, SchemaError, "lacks column\\(s\\) region"),
    (lambda m: m.iloc[:0], {}, InputError, "has no rows"),
    (lambda m: m.assign(region="middle"), {}, SchemaError, "region column holds 'middle'"),
    (lambda m: m.assign(label=5), {}, InputError, r"label\[0\] = 5 is outside 0..2"),
    (lambda m: m, {"texts": ["a"]}, InputError, "texts has 1 entries but metrics has 60 rows"),
    (lambda m: m, {"max_points": 0}, InputError, "max_points must be a positive integer"),
    (lambda m: m.to_dict(), {}, InputError, "must be a pandas DataFrame"),
], ids=["missing-column", "empty", "region", "label", "texts", "max-points", "not-frame"])
def test_report_bad_inputs(built, change, options, error, match) -> None:
    _, _, metrics = built
    with pytest.raises(error, match=match):
        build_report(change(metrics), classes=CLASSES, **options)


def test_report_needs_plotly(built, monkeypatch) -> None:
    import datacarto._deps as deps

    monkeypatch.setattr(deps, "is_available", lambda module: False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'datacarto\[report\]'"):
        build_report(built[2], classes=CLASSES)


def test_write_report_is_atomic(built, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "r.html"
    assert write_report(built[2], out, classes=CLASSES) == out
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["r.html"]


def test_cli_report_with_data(built, tmp_path: Path, capsys) -> None:
    run, data, _ = built
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--data", str(data), "-o", str(out)]) == 0
    assert "60 examples, every point" in capsys.readouterr().err
    assert payload(out.read_text(encoding="utf-8"))["points"]["text"][:4] == XSS


def test_cli_report_uses_recorded_source_and_works_without_text(built, tmp_path: Path, capsys) -> None:
    run, data, _ = built
    assert main(["report", str(run), "-o", str(tmp_path / "a.html"), "-q"]) == 0
    assert payload((tmp_path / "a.html").read_text(encoding="utf-8"))["has_text"] is False
    copy = tmp_path / "run"
    import shutil

    shutil.copytree(run, copy)
    meta = json.loads((copy / "run.json").read_text())
    meta["extra"]["source"] = {"path": str(data), "text_column": "text", "label_column": "label",
                               "id_column": None}
    (copy / "run.json").write_text(json.dumps(meta))
    assert main(["report", str(copy)]) == 0
    assert payload((copy / "report.html").read_text(encoding="utf-8"))["points"]["text"][0] == XSS[0]


def test_cli_report_errors(built, tmp_path: Path, capsys) -> None:
    run, data, _ = built
    assert main(["report", str(run), "--data", str(data), "--text-column", "body"]) == 2
    assert "no column 'body' (from --text-column)" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    no_text = tmp_path / "nt.csv"
    pd.read_csv(data)[["label"]].to_csv(no_text, index=False)  # same labels, no text column
    assert main(["report", str(run), "--data", str(no_text), "-o", str(tmp_path / "x.html")]) == 0
    assert "has no text column" in capsys.readouterr().err


# ------------------------------------------------------------------------------ axes, pictures
def pixel_data(root: Path, n: int = 60) -> tuple[Path, Path]:
    """The run of run_and_data with 8 x 8 pixel rows instead of text (px_0 .. px_63)."""
    run = make_run(root / "run", n=n, epochs=4, seed=1, margin=0.7)
    _, given = planted_labels(n, seed=1)
    pixels = np.random.default_rng(2).integers(0, 17, (n, 64))
    frame = pd.DataFrame(pixels, columns=[f"px_{j}" for j in range(64)])
    frame["label"] = [CLASSES[g] for g in given]
    data = root / "pixels.csv"
    frame.to_csv(data, index=False)
    return run, data


def test_report_axes_first_view(built) -> None:
    from datacarto.plot.datamap import PAPER_LIMITS, axis_limits

    _, _, metrics = built
    fit = payload(build_report(metrics, classes=CLASSES))["axes"]
    assert fit["initial"] == "fit"
    assert fit["limits"] == [list(v) for v in axis_limits(metrics["variability"], metrics["confidence"])]
    assert fit["paper"] == [list(v) for v in PAPER_LIMITS]
    paper = payload(build_report(metrics, classes=CLASSES, axes="paper"))["axes"]
    assert paper["limits"] == [list(v) for v in PAPER_LIMITS]
    with pytest.raises(InputError, match="axes must be one of fit, paper; got 'wide'"):
        build_report(metrics, classes=CLASSES, axes="wide")


def test_report_pictures_go_to_the_highest_scores(built) -> None:
    _, _, metrics = built
    asked: list[list[int]] = []

    def images(rows):
        asked.append(list(rows))
        return [f"data:image/png;base64,{r}" for r in rows]

    data = payload(build_report(metrics, classes=CLASSES, images=images, max_images=5))
    top = np.argsort(-metrics["label_error_score"].to_numpy(), kind="stable")[:5].tolist()
    assert asked == [top]
    pictures = data["points"]["image"]
    assert [i for i, p in enumerate(pictures) if p] == sorted(top)
    assert pictures[top[0]] == f"data:image/png;base64,{top[0]}"
    assert data["images"] == {"shown": 5, "capped": True}
    assert payload(build_report(metrics, classes=CLASSES))["points"]["image"] is None
    with pytest.raises(InputError, match="images returned 1 pictures for 5 rows"):
        build_report(metrics, classes=CLASSES, images=lambda rows: ["x"], max_images=5)


def test_cli_report_shows_pixel_pictures_and_checks_the_shape(tmp_path: Path, capsys) -> None:
    from datacarto.thumbnails import thumbnail_png, data_uri

    run, data = pixel_data(tmp_path)
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--data", str(data), "-o", str(out), "--axes", "paper"]) == 0
    assert "has no text column" not in capsys.readouterr().err
    got = payload(out.read_text(encoding="utf-8"))
    assert got["axes"]["initial"] == "paper"
    pixels = pd.read_csv(data).filter(like="px_").to_numpy()
    ids = [int(i) for i in got["points"]["id"]]
    assert got["points"]["image"] == [data_uri(thumbnail_png(pixels[i], (8, 8))) for i in ids]
    assert main(["report", str(run), "--data", str(data), "-o", str(out),
                 "--image-shape", "4,4"]) == 2
    assert "--image-shape 4,4 needs 16 feature columns; the data has 64" in capsys.readouterr().err
    assert main(["report", str(run), "--data", str(data), "-o", str(out), "--image-shape", "8"]) == 2
    assert "--image-shape '8': expected HEIGHT,WIDTH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", str(run), "--data", str(data), "-o", str(out), "--axes", "tight"])
    assert "invalid choice: 'tight'" in capsys.readouterr().err

"""Review: decision log (durability, resume, corrupt lines, concurrency, batches, undo), export,
session (new classes, merges, bulk actions), server."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import datacarto
from datacarto.cli import main
from datacarto.errors import InputError, SchemaError
from datacarto.report.source import DataSource, load_source, resolve_source
from datacarto.review.decisions import DecisionLog
from datacarto.review.export import changes_path, export_corrected
from datacarto.review.selection import in_polygon
from datacarto.review.server import is_loopback, make_server
from datacarto.review.session import ReviewSession, UnknownId

from builders import CLASSES, make_run, planted_labels

XSS = ["<script>window.__xss = 1</script>", '<img src=x onerror="window.__xss = 2">']


def run_and_data(root: Path, n: int = 60, *, id_column: bool = False, fmt: str = "csv",
                 label_kind: str = "name") -> tuple[Path, Path]:
    """A run whose every 7th example is mislabelled (given = true + 1), plus its data file."""
    ids = [f"ex-{i:03d}" for i in range(n)] if id_column else list(range(n))
    run = make_run(root / "run", n=n, ids=ids)
    true, given = planted_labels(n)
    texts = [f"text {i} about {CLASSES[t]}" for i, t in enumerate(true)]
    texts[0], texts[7] = XSS
    labels = {"name": [CLASSES[g] for g in given], "index": given.tolist()}[label_kind]
    frame = pd.DataFrame({"text": texts, "label": labels})
    if id_column:
        frame.insert(0, "uid", ids)
    data = root / f"data.{fmt}"
    datacarto.datafiles.write_data(frame, data)
    return run, data


def make_session(run: Path, data: Path, **kw: object) -> ReviewSession:
    r = datacarto.load(run)
    metrics = r.metrics()
    loaded = load_source(DataSource(data, id_column=kw.pop("id_column", None)),  # type: ignore[arg-type]
                         metrics["id"].to_numpy())
    return ReviewSession(run, metrics, r.classes, loaded, **kw)  # type: ignore[arg-type]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return run_and_data(tmp_path_factory.mktemp("review"))


@pytest.fixture()
def fresh(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    run, data = built
    shutil.copytree(run, tmp_path / "run")
    shutil.copy(data, tmp_path / data.name)
    return tmp_path / "run", tmp_path / data.name


# ------------------------------------------------------------------------- decision log
def test_log_appends_one_fsynced_line_per_decision_and_resumes(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "review" / "decisions.jsonl")
    log.append(id=3, old_label="neg", action="accept", new_label="pos")
    log.append(id="a", old_label="neg", action="drop", new_label=None)
    log.append(id=3, old_label="neg", action="keep", new_label="neg")
    lines = log.path.read_text().splitlines()
    assert [json.loads(x)["action"] for x in lines] == ["accept", "drop", "keep"]
    assert set(json.loads(lines[0])) == {"time", "id", "old_label", "action", "new_label"}
    again = DecisionLog(log.path).load()
    assert again.count == 3 and len(again) == 2 and again.problems == []
    assert again.latest["3"]["action"] == "keep"  # the latest decision for an id wins


def test_log_corrupt_last_line_is_reported_and_skipped_and_earlier_kept(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    for i in range(3):
        log.append(id=i, old_label="neg", action="accept", new_label="pos")
    with open(path, "ab") as fh:  # a crash in the middle of a write
        fh.write(b'{"time": "2025-01-01T00:00:00", "id": 9, "old_la')
    again = DecisionLog(path).load()
    assert sorted(again.latest) == ["0", "1", "2"]
    assert len(again.problems) == 1
    assert "line 4" in again.problems[0] and "cut off by a crash" in again.problems[0]
    again.append(id=5, old_label="neu", action="drop", new_label=None)  # starts a fresh line
    third = DecisionLog(path).load()
    assert sorted(third.latest) == ["0", "1", "2", "5"] and len(third.problems) == 1


@pytest.mark.parametrize("line, why", [
    (b"[1, 2]", "expected a JSON object"),
    (b'{"id": true, "action": "keep", "new_label": "a", "time": "t"}', "no valid 'id'"),
    (b'{"id": 1, "action": "burn", "new_label": "a", "time": "t"}', "'action' is 'burn'"),
    (b'{"id": 1, "action": "drop", "new_label": "a", "time": "t"}', "must have new_label null"),
    (b'{"id": 1, "action": "relabel", "new_label": null, "time": "t"}', "must be a class name"),
    (b'{"id": 1, "action": "keep", "new_label": "a"}', "no 'time'"),
    (b"\xff\xfe", "not valid JSON"),
], ids=["array", "bool-id", "action", "drop-label", "relabel-null", "no-time", "binary"])
def test_log_bad_lines_are_skipped_with_a_reason(tmp_path: Path, line: bytes, why: str) -> None:
    path = tmp_path / "decisions.jsonl"
    good = b'{"id": 0, "action": "keep", "new_label": "a", "old_label": "a", "time": "t"}\n'
    path.write_bytes(good + line + b"\n" + good.replace(b'"id": 0', b'"id": 2'))
    log = DecisionLog(path).load()
    assert sorted(log.latest) == ["0", "2"]
    assert len(log.problems) == 1 and why in log.problems[0] and "line 2" in log.problems[0]


def test_log_append_rejects_bad_decisions(tmp_path: Path) -> None:
    log = DecisionLog(tmp_path / "d.jsonl")
    with pytest.raises(InputError, match="'action' is 'nuke'"):
        log.append(id=1, old_label="a", action="nuke", new_label="b")
    with pytest.raises(InputError, match="must be a class name"):
        log.append(id=1, old_label="a", action="accept", new_label=None)
    assert not log.path.exists()


def test_log_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    logs = [DecisionLog(path), DecisionLog(path)]  # two writers on one file, as two servers would be

    def work(t: int) -> None:
        for i in range(25):
            logs[t % 2].append(id=f"{t}-{i}", old_label="a", action="keep", new_label="a")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = DecisionLog(path).load()
    assert log.count == 200 and len(log) == 200 and log.problems == []


# ------------------------------------------------------------------------------ export
def test_export_writes_corrected_copy_and_change_log_and_never_touches_original(
        fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    before = sha(data)
    session = make_session(run, data)
    q = [session.keys[i] for i in session.queue]
    session.decide(q[0], "accept")
    session.decide(q[1], "relabel", "neu")
    session.decide(q[2], "drop")
    session.decide(q[3], "keep")
    result = session.export(run.parent / "out" / "corrected.csv")
    assert sha(data) == before
    original = pd.read_csv(data)
    out = pd.read_csv(result.path)
    assert len(out) == len(original) - 1 == result.rows
    assert (result.relabelled, result.dropped, result.kept) == (2, 1, 1)
    rows = {k: int(k) for k in q[:4]}  # ids are row numbers here
    kept = original.drop(index=rows[q[2]]).reset_index(drop=True)
    assert list(out.columns) == list(original.columns)
    assert out["text"].tolist() == kept["text"].tolist()  # payloads round-trip as text
    pos_of = {r: i for i, r in enumerate(original.index.drop(rows[q[2]]))}  # row -> row in the copy
    assert out.loc[pos_of[rows[q[0]]], "label"] == CLASSES[session.sugg[session.index[q[0]]]]
    assert out.loc[pos_of[rows[q[1]]], "label"] == "neu"
    log = pd.read_csv(result.changes)
    assert result.changes == changes_path(result.path)
    assert set(log["action"]) == {"accept", "relabel", "drop", "keep"}
    assert log["row"].is_monotonic_increasing
    assert "2 relabelled, 1 dropped, 1 kept" in result.summary()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "tsv"])
def test_export_keeps_the_data_format_and_string_ids(tmp_path: Path, fmt: str) -> None:
    run, data = run_and_data(tmp_path, id_column=True, fmt=fmt)
    session = make_session(run, data, id_column="uid")
    key = session.keys[session.queue[0]]
    assert key.startswith("ex-")
    session.decide(key, "relabel", "pos")
    result = session.export(tmp_path / f"fixed.{fmt}")
    out = datacarto.datafiles.read_data(result.path)
    assert out.loc[out["uid"] == key, "label"].tolist() == ["pos"]
    assert len(out) == 60


def test_export_integer_labels_stay_integers(tmp_path: Path) -> None:
    run, data = run_and_data(tmp_path, label_kind="index")  # 0/1/2 in the file, names in the run
    session = make_session(run, data)
    key = session.keys[session.queue[0]]
    session.decide(key, "relabel", "pos")
    out = pd.read_csv(session.export(tmp_path / "fixed.csv").path)
    assert pd.api.types.is_integer_dtype(out["label"]) and out.loc[int(key), "label"] == 2
    log = pd.read_csv(changes_path(tmp_path / "fixed.csv"))
    assert log.loc[0, "new_label"] == "pos"


def test_export_numeric_class_names_are_written_as_numbers(tmp_path: Path) -> None:
    # runs made by `datacarto run` on a 1/2/3 column name their classes "1", "2", "3"
    run = tmp_path / "run"
    with datacarto.Recorder(run, classes=["1", "2", "3"]) as rec:
        for _ in range(3):
            rec.update([0, 1], np.array([[3.0, 0, 0], [0, 3.0, 0]]), [1, 1])
            rec.end_epoch()
    data = tmp_path / "d.csv"
    pd.DataFrame({"label": [2, 2]}).to_csv(data, index=False)
    session = make_session(run, data, top=2)
    session.decide("0", "accept")
    out = pd.read_csv(session.export(tmp_path / "o.csv").path)
    assert out["label"].tolist() == [1, 2]


@pytest.mark.parametrize("out, match", [
    ("data.csv", "data file itself; the original is never modified"),
    ("fixed.jsonl", r"keeps the data file's format \(csv\); got a .jsonl name"),
    ("fixed.txt", "unsupported file type"),
], ids=["same-file", "other-format", "unknown-ext"])
def test_export_refuses_bad_outputs(fresh: tuple[Path, Path], out: str, match: str) -> None:
    run, data = fresh
    session = make_session(run, data)
    session.decide(session.keys[session.queue[0]], "accept")
    before = sha(data)
    with pytest.raises(InputError, match=match):
        session.export(data.parent / out)
    assert sha(data) == before


def test_export_errors_on_ids_missing_from_data_and_missing_label_column(
        fresh: tuple[Path, Path], tmp_path: Path) -> None:
    run, data = fresh
    session = make_session(run, data)
    session.log.append(id=999, old_label="neg", action="accept", new_label="pos")
    with pytest.raises(SchemaError, match="id 999 has a review decision but is not in"):
        session.export(tmp_path / "o.csv")
    session.log.latest.pop("999")
    session.log.latest["1"] = {"id": 1, "action": "relabel", "new_label": "nope", "time": "t"}
    with pytest.raises(InputError, match="label 'nope' is not a class"):
        session.export(tmp_path / "o.csv")
    no_label = tmp_path / "nolabel.csv"
    pd.read_csv(data)[["text"]].to_csv(no_label, index=False)
    loaded = load_source(DataSource(no_label), np.arange(60))
    with pytest.raises(SchemaError, match="no label column to correct"):
        export_corrected(loaded, {}, CLASSES, tmp_path / "x.csv")
    with pytest.raises(InputError, match="no label column found"):
        load_source(DataSource(no_label), np.arange(60), need_label=True)


# ------------------------------------------------------------------------------ session
def test_session_queue_is_flagged_by_score_and_top_overrides(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    s = make_session(run, data)
    assert s.queue and all(s.flag[i] for i in s.queue)
    assert np.all(np.diff(s.score[s.queue]) <= 0)
    top = make_session(run, data, top=5)
    assert len(top.queue) == 5 and top.queue == sorted(range(60), key=lambda i: -s.score[i])[:5]
    with pytest.raises(InputError, match="--top must be a positive integer"):
        make_session(run, data, top=0)


def test_session_decide_validates_and_resume_finds_first_undecided(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    s = make_session(run, data)
    q = [s.keys[i] for i in s.queue]
    with pytest.raises(UnknownId, match="unknown id 'nope'"):
        s.decide("nope", "accept")
    with pytest.raises(InputError, match="unknown action 'burn'"):
        s.decide(q[0], "burn")
    with pytest.raises(InputError, match="relabel needs 'label'"):
        s.decide(q[0], "relabel", "zzz")
    with pytest.raises(InputError, match="takes no 'label'"):
        s.decide(q[0], "keep", "neg")
    res = s.decide(q[0], "accept")
    assert res["next"] == 1 and res["decided"] == 1
    s.decide(q[1], "keep")
    again = make_session(run, data)
    assert again.state()["next"] == 2 and again.state()["decided"] == 2
    ex = again.example(q[0])
    assert ex["decision"]["action"] == "accept" and len(ex["neighbours"]) == 8
    assert ex["text"] is not None and ex["position"] == 0


def test_session_neighbours_are_nearest_in_feature_space(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    s = make_session(run, data)
    row = s.queue[0]
    near = s.neighbours(row, k=5)
    dyn = datacarto.load(run).dynamics()
    z = dyn.logits - dyn.logits.max(axis=-1, keepdims=True)
    f = (np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)).mean(axis=1)  # epoch-mean probabilities
    d = ((f - f[row]) ** 2).sum(axis=1)
    d[row] = np.inf
    assert np.allclose(sorted(d[near]), np.sort(d)[:5], atol=1e-6) and row not in near
    assert s.state()["neighbour_space"].startswith("training class probabilities")
    ex = s.example(s.keys[row])
    assert [n["id"] for n in ex["neighbours"]] == [s.keys[i] for i in s.neighbours(row)]
    assert all(n["current"] == n["given"] for n in ex["neighbours"])  # nothing decided yet
    s.decide(ex["neighbours"][0]["id"], "relabel", "neu" if ex["neighbours"][0]["given"] != "neu" else "pos")
    assert s.example(s.keys[row])["neighbours"][0]["current"] != ex["neighbours"][0]["given"]
    assert s.map_points()["n"] == 60 and len(s.map_points()["x"]) == 60


def test_session_neighbours_fall_back_to_the_map_without_features(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    s = make_session(run, data, features=None)
    row = s.queue[0]
    near = s.neighbours(row, k=5)
    d = (2 * (s.var - s.var[row])) ** 2 + (s.conf - s.conf[row]) ** 2
    d[row] = np.inf
    assert sorted(d[near]) == sorted(np.sort(d)[:5]) and row not in near
    assert "data map" in s.state()["neighbour_space"]


# ------------------------------------------------------------------------------ server
@pytest.fixture()
def server(fresh: tuple[Path, Path]):
    run, data = fresh
    srv = make_server(make_session(run, data))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(srv, method: str, path: str, body: object = None, *, token: str | None = "ok",
            headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, dict]:
    port = srv.server_address[1]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"Content-Type": "application/json"}
    if token is not None:
        h["X-Datacarto-Token"] = srv.token if token == "ok" else token
    h.update(headers or {})
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers=h)
    resp = conn.getresponse()
    text = resp.read()
    conn.close()
    ctype = resp.getheader("Content-Type", "")
    return resp.status, (json.loads(text) if "json" in ctype else {"_body": text.decode()})


def test_server_pages_and_api(server) -> None:
    status, page = request(server, "GET", "/")
    assert status == 200 and server.token in page["_body"] and "<script src=\"/static/app.js\"" in page["_body"]
    assert request(server, "GET", "/static/app.js")[0] == 200
    status, state = request(server, "GET", "/api/state")
    assert status == 200 and state["classes"] == CLASSES and state["next"] == 0
    status, queue = request(server, "GET", "/api/queue")
    assert status == 200 and len(queue) == state["total"]
    status, ex = request(server, "GET", "/api/example?id=" + queue[0]["id"])
    assert status == 200 and ex["id"] == queue[0]["id"]
    status, res = request(server, "POST", "/api/decide", {"id": queue[0]["id"], "action": "accept"})
    assert status == 200 and res["decision"]["new_label"] == queue[0]["suggested"]
    status, res = request(server, "POST", "/api/export", {})
    assert status == 200 and Path(res["path"]).name == "corrected.csv" and res["relabelled"] == 1
    assert Path(res["path"]).parent == server.session.run_dir / "review"


@pytest.mark.parametrize("method, path, body, kwargs, status, match", [
    ("GET", "/api/example?id=nope", None, {}, 404, "unknown id 'nope'"),
    ("GET", "/api/example", None, {}, 400, "exactly one"),
    ("GET", "/api/example?id=1&id=2", None, {}, 400, "exactly one"),
    ("GET", "/../../etc/passwd", None, {}, 404, "no such page"),
    ("GET", "/static/../server.py", None, {}, 404, "no such page"),
    ("GET", "/static/%2e%2e/server.py", None, {}, 404, "no such page"),
    ("POST", "/api/decide", {"id": "0", "action": "accept"}, {"token": None}, 403, "token"),
    ("POST", "/api/decide", {"id": "0", "action": "accept"}, {"token": "guess"}, 403, "token"),
    ("POST", "/api/decide", None, {"raw": b"{not json"}, 400, "not valid JSON"),
    ("POST", "/api/decide", None, {"raw": b"[1]"}, 400, "JSON object"),
    ("POST", "/api/decide", {"id": 0, "action": "accept"}, {}, 400, "expected"),
    ("POST", "/api/decide", {"id": "0", "action": "accept", "path": "/x"}, {}, 400, "unexpected field"),
    ("POST", "/api/decide", {"id": "nope", "action": "accept"}, {}, 404, "unknown id"),
    ("POST", "/api/decide", {"id": "0", "action": "rm -rf"}, {}, 400, "unknown action"),
    ("POST", "/api/decide", {"id": "0", "action": "relabel", "label": "<b>"}, {}, 400, "relabel needs"),
    ("POST", "/api/decide", {"id": "0", "action": "accept"},
     {"headers": {"Content-Type": "text/plain"}}, 415, "send JSON"),
    ("POST", "/api/decide", None, {"raw": b"x" * 70_000}, 413, "body over"),
    ("GET", "/api/state", None, {"headers": {"Host": "evil.example:80"}}, 403, "Host header"),
    ("PUT", "/api/decide", None, {}, 405, "not allowed"),
    ("DELETE", "/", None, {}, 405, "not allowed"),
    ("POST", "/api/state", {}, {}, 405, "not allowed"),
    ("POST", "/api/nothing", {}, {}, 404, "no such page"),
], ids=lambda v: v if isinstance(v, str) and v.startswith("/") else None)
def test_server_rejects_bad_requests_with_4xx(server, method, path, body, kwargs, status, match) -> None:
    got, res = request(server, method, path, body, **kwargs)
    assert got == status and match in res["error"]
    assert "Traceback" not in json.dumps(res)
    assert not (server.session.run_dir / "review" / "decisions.jsonl").exists()


def test_server_headers_are_strict(server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
    conn.request("GET", "/")
    resp = conn.getresponse()
    resp.read()
    conn.close()
    csp = resp.getheader("Content-Security-Policy")
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert resp.getheader("X-Content-Type-Options") == "nosniff"
    assert resp.getheader("Access-Control-Allow-Origin") is None
    assert "Python" not in resp.getheader("Server")


def test_server_concurrent_decisions_lose_nothing(server) -> None:
    keys = server.session.keys
    errors: list[int] = []

    def tab(part: int) -> None:  # two "tabs" deciding different examples at once
        for key in keys[part::2]:
            status, _ = request(server, "POST", "/api/decide", {"id": key, "action": "keep"})
            if status != 200:
                errors.append(status)

    threads = [threading.Thread(target=tab, args=(p,)) for p in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    log = DecisionLog(server.session.log.path).load()
    assert log.count == 60 and len(log) == 60 and log.problems == []


def test_server_internal_errors_are_a_bare_500(server, monkeypatch, capsys) -> None:
    def boom() -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(server.session, "state", boom)
    status, res = request(server, "GET", "/api/state")
    assert status == 500 and "secret" not in json.dumps(res) and "Traceback" not in json.dumps(res)
    assert "secret detail" in capsys.readouterr().err


def test_is_loopback_and_host_check() -> None:
    assert is_loopback("127.0.0.2") and is_loopback("::1") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


# ------------------------------------------------------------------------------ CLI
def test_cli_review_export(fresh: tuple[Path, Path], capsys) -> None:
    run, data = fresh
    s = make_session(run, data)
    s.decide(s.keys[s.queue[0]], "drop")
    out = run.parent / "corrected.csv"
    assert main(["review", str(run), "--data", str(data), "--export", str(out)]) == 0
    assert len(pd.read_csv(out)) == 59
    assert "1 dropped" in capsys.readouterr().err


def test_cli_review_uses_recorded_source_and_errors_without_data(fresh: tuple[Path, Path], capsys) -> None:
    run, data = fresh
    assert main(["review", str(run), "--export", str(run.parent / "x.csv")]) == 2
    assert "no data file. Give --data DATA" in capsys.readouterr().err
    meta = json.loads((run / "run.json").read_text())
    meta["extra"]["source"] = {"path": str(data), "label_column": "label", "text_column": "text",
                               "id_column": None}
    (run / "run.json").write_text(json.dumps(meta))
    r = datacarto.load(run)
    src = resolve_source(run, r.meta)
    assert src == DataSource(data, "text", None, "label")
    assert main(["review", str(run), "--export", str(run.parent / "x.csv")]) == 0


@pytest.mark.parametrize("args, match", [
    (["--data", "{data}", "--text-column", "body"], "no column 'body' \\(from --text-column\\)"),
    (["--data", "{data}", "--id-column", "uid"], "no column 'uid'"),
    (["--data", "{data}", "--label-column", "y"], "no column 'y' \\(from --label-column\\)"),
    (["--data", "{data}", "--port", "70000"], "--port must be in 0..65535"),
], ids=["text", "id", "label", "port"])
def test_cli_review_bad_options(fresh: tuple[Path, Path], capsys, args, match) -> None:
    run, data = fresh
    assert main(["review", str(run), *[a.format(data=data) for a in args]]) == 2
    import re

    assert re.search(match, capsys.readouterr().err)


def test_data_ids_that_match_nothing_are_an_error(fresh: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = fresh
    other = tmp_path / "other.csv"
    pd.DataFrame({"uid": ["a", "b"], "text": ["x", "y"], "label": ["neg", "pos"]}).to_csv(other, index=False)
    with pytest.raises(SchemaError, match="none of the run's 60 ids is in the file"):
        load_source(DataSource(other, id_column="uid"), np.arange(60))


def _start_server_process(run: Path, data: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, "-m", "datacarto", "review", str(run), "--data", str(data)],
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "serving http://127.0.0.1:" in line:
            return proc, int(line.split("127.0.0.1:")[1].split("/")[0])
    proc.kill()
    raise AssertionError("server did not start")


def test_killed_server_keeps_every_answered_decision(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    proc, port = _start_server_process(run, data)
    try:
        page = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        page.request("GET", "/")
        html = page.getresponse().read().decode()
        token = html.split('name="dc-token" content="')[1].split('"')[0]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/queue")
        queue = json.loads(conn.getresponse().read())
        for item in queue[:3]:
            conn.request("POST", "/api/decide", body=json.dumps({"id": item["id"], "action": "accept"}),
                         headers={"Content-Type": "application/json", "X-Datacarto-Token": token})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
        conn.close()
        page.close()
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no clean shutdown
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    session = make_session(run, data)
    assert [session.log.latest[i["id"]]["action"] for i in queue[:3]] == ["accept"] * 3
    assert session.state()["next"] == 3


def test_cli_review_serves_and_warns_loudly_off_loopback(fresh: tuple[Path, Path], monkeypatch,
                                                          capsys) -> None:
    from datacarto.review.server import ReviewServer

    run, data = fresh
    seen: list[str] = []

    def stop(self: ReviewServer, poll_interval: float = 0.5) -> None:
        seen.append(self.url)
        raise KeyboardInterrupt  # as Ctrl-C would

    monkeypatch.setattr(ReviewServer, "serve_forever", stop)
    assert main(["review", str(run), "--data", str(data)]) == 0
    err = capsys.readouterr().err
    assert "serving http://127.0.0.1:" in err and "WARNING" not in err and "stopped" in err
    assert main(["review", str(run), "--data", str(data), "--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert "WARNING: the review server listens on 0.0.0.0" in err
    assert len(seen) == 2


def test_cli_review_reports_a_corrupt_log_line(fresh: tuple[Path, Path], capsys) -> None:
    run, data = fresh
    (run / "review").mkdir()
    (run / "review" / "decisions.jsonl").write_text('{"id": 1, "action": "ke')
    assert main(["review", str(run), "--data", str(data), "--export", str(run.parent / "o.csv")]) == 0
    assert "decisions.jsonl line 1: not valid JSON" in capsys.readouterr().err


# ------------------------------------------------------------------------------ pictures, map
def test_session_examples_carry_pictures_of_pixel_rows(tmp_path: Path) -> None:
    from datacarto.thumbnails import data_uri, images_of, thumbnail_png

    n = 60
    run = make_run(tmp_path / "run", n=n)
    _, given = planted_labels(n)
    pixels = np.random.default_rng(5).integers(0, 256, (n, 64))
    frame = pd.DataFrame(pixels, columns=[f"px_{j}" for j in range(64)])
    frame["label"] = [CLASSES[g] for g in given]
    data = tmp_path / "pixels.csv"
    frame.to_csv(data, index=False)
    r = datacarto.load(run)
    metrics = r.metrics()
    loaded = load_source(DataSource(data), metrics["id"].to_numpy())
    session = ReviewSession(run, metrics, r.classes, loaded, images=images_of(loaded))
    assert session.state()["images"] == "pixels"
    key = session.queue_items()[0]["id"]
    ex = session.example(key)
    assert ex["image"] == data_uri(thumbnail_png(pixels[int(key)], (8, 8)))
    assert ex["text"] is None
    assert all(nb["image"] == data_uri(thumbnail_png(pixels[int(nb["id"])], (8, 8)))
               for nb in ex["neighbours"])
    plain = ReviewSession(run, metrics, r.classes, loaded)
    assert plain.state()["images"] is None and plain.example(key)["image"] is None
    assert main(["review", str(run), "--data", str(data), "--image-shape", "9,9",
                 "--export", str(tmp_path / "out.csv")]) == 2


def test_session_map_limits_fit_the_data(fresh: tuple[Path, Path]) -> None:
    from datacarto.plot.datamap import axis_limits

    session = make_session(*fresh)
    got = session.map_points()["limits"]
    assert got == [list(v) for v in axis_limits(session.var, session.conf, "fit")]


# ------------------------------------------------------------------------------ classes and bulk
def write_proposals(run: Path, add_ids: list[int], path: Path | None = None) -> Path:
    """A classes.json with an ``add`` proposal (members ``add_ids``) and a neu/pos ``merge``."""
    path = path or run / "classes.json"
    path.write_text(json.dumps({"proposals": [
        {"kind": "add", "classes": ["neg", "pos"], "ids": add_ids, "size": len(add_ids),
         "evidence": {"swing": 0.8}, "examples": add_ids[:2], "terms": ["but", "also"]},
        {"kind": "merge", "classes": ["neu", "pos"], "size": 40, "evidence": {}}]}))
    return path


def log_lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "review" / "decisions.jsonl").read_text().splitlines()]


def test_log_batch_counts_only_once_committed_and_an_interrupted_batch_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    log.append(id=1, old_label="neg", action="keep", new_label="neg")
    g = log.append_batch([{"id": i, "old_label": "neg", "action": "drop", "new_label": None} for i in (1, 2)],
                         source="filter class=neg")
    assert log.latest["1"]["action"] == "drop" and g["rows"] == 2
    lines = path.read_text().splitlines()
    assert [json.loads(x).get("kind") for x in lines] == [None, None, None, "commit"]
    assert all(json.loads(x)["group"] == g["group"] for x in lines[1:])
    with open(path, "ab") as fh:  # a crash after two row lines of a batch, before its commit
        for i in (3, 4):
            fh.write(json.dumps({"time": "t", "id": i, "old_label": "neg", "action": "drop",
                                 "new_label": None, "group": "dead", "source": "lasso on the map"}).encode() + b"\n")
    again = DecisionLog(path).load()
    assert sorted(again.latest) == ["1", "2"] and list(again.groups) == [g["group"]]
    assert len(again.problems) == 1 and "bulk action dead (lasso on the map) was interrupted" in again.problems[0]
    with pytest.raises(InputError, match="'new_label' must be a class name"):
        again.append_batch([{"id": 5, "old_label": "neg", "action": "relabel", "new_label": None}], source="x")
    assert len(path.read_text().splitlines()) == 6  # nothing of the refused batch written


def test_log_undo_restores_earlier_decisions_and_refuses_twice(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    log.append(id=1, old_label="neg", action="accept", new_label="pos")
    g = log.append_batch([{"id": i, "old_label": "neg", "action": "drop", "new_label": None} for i in (1, 2)],
                         source="region=hard")["group"]
    log.append(id=2, old_label="neg", action="keep", new_label="neg")  # decided after the batch
    log.undo(g)
    for state in (log, DecisionLog(path).load()):  # the same after a reload
        assert state.latest["1"]["action"] == "accept" and state.latest["2"]["action"] == "keep"
        assert state.groups[g]["undone"] is not None
    size = path.stat().st_size
    with pytest.raises(InputError, match=f"bulk action {g} \\(region=hard\\) was already undone"):
        DecisionLog(path).load().undo(g)
    with pytest.raises(InputError, match="no bulk action 'nope'"):
        log.undo("nope")
    assert path.stat().st_size == size


def test_session_new_class_from_a_proposal_all_members_then_export(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    write_proposals(run, [1, 2, 3, 4, 5])
    s = make_session(run, data)
    add, merge = s.state()["proposals"]
    assert (add["kind"], add["size"], add["number"], merge["kind"]) == ("add", 5, 1, "merge")
    assert [m["id"] for m in s.members(add["pid"])["members"]] == ["1", "2", "3", "4", "5"]
    res = s.create_class("  mixed ", proposal=add["pid"], accept_all=True)
    assert res["name"] == "mixed" and res["action"]["rows"] == 5
    lines = log_lines(run)
    rows = [x for x in lines if "kind" not in x]
    assert [x["id"] for x in rows] == [1, 2, 3, 4, 5]  # one entry per row
    assert {x["source"] for x in rows} == {"new class 'mixed' (proposal 1)"}
    assert [x["kind"] for x in lines if "kind" in x] == ["class", "commit"]
    again = make_session(run, data)  # a reload shows the same state
    assert again.state()["classes"] == ["neg", "neu", "pos", "mixed"]
    assert again.example("3")["current"] == "mixed"
    result = again.export()
    corrected, before = pd.read_csv(result.path), pd.read_csv(data)
    assert corrected.loc[[1, 2, 3, 4, 5], "label"].tolist() == ["mixed"] * 5
    assert (corrected["label"] != before["label"]).sum() == 5 and result.relabelled == 5
    changes = pd.read_csv(result.changes)
    assert changes["new_label"].tolist() == ["mixed"] * 5
    assert set(changes["why"]) == {"new class 'mixed' (proposal 1)"}


def test_session_new_class_one_by_one_and_bad_names(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    write_proposals(run, [1, 2, 3])
    s = make_session(run, data)
    pid = s.state()["proposals"][0]["pid"]
    s.create_class("mixed", proposal=pid)
    size = (run / "review" / "decisions.jsonl").stat().st_size
    for name, match in [("", "needs a name; got an empty one"), ("   ", "needs a name"),
                        ("neg", "class 'neg' already exists"), ("MIXED", "class 'mixed' already exists"),
                        ("a\nb", "printable"), ("x" * 61, "at most 60")]:
        with pytest.raises(InputError, match=match):
            s.create_class(name, proposal=pid)
    with pytest.raises(InputError, match="a merge, not an add"):
        s.create_class("other", proposal=s.state()["proposals"][1]["pid"])
    assert (run / "review" / "decisions.jsonl").stat().st_size == size  # nothing written
    s.decide("2", "relabel", "mixed", source=s.proposal_source(pid, "mixed"))
    assert log_lines(run)[-1]["source"] == "new class 'mixed' (proposal 1)"
    assert s.current(2) == "mixed" and s.current(1) != "mixed"
    # the class cannot be undone from under a row decided into it later
    group = s.actions()[0]["group"]
    with pytest.raises(InputError, match="still holds 1 example"):
        s.undo(group)
    s.decide("2", "keep")
    s.undo(group)
    assert "mixed" not in s.state()["classes"]


def test_a_proposal_that_no_longer_exists_is_refused(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    path = write_proposals(run, [1, 2, 3], run.parent / "mine.json")
    s = make_session(run, data, proposals=path)
    pid = s.state()["proposals"][0]["pid"]
    write_proposals(run, [1, 2, 3, 4], path)  # `datacarto classes` run again: another group
    with pytest.raises(InputError, match=f"proposal '{pid}' no longer exists in mine.json"):
        s.create_class("mixed", proposal=pid, accept_all=True)
    with pytest.raises(InputError, match="no longer exists"):
        s.preview({"proposal": pid}, "drop")
    assert not (run / "review" / "decisions.jsonl").exists()
    with pytest.raises(InputError, match="--proposals .*no such file"):
        make_session(run, data, proposals=run.parent / "missing.json")


def test_proposal_file_problems_are_reported_not_fatal(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    (run / "classes.json").write_text(json.dumps({"proposals": [
        {"kind": "split", "classes": []}, {"kind": "add", "classes": ["neg"], "ids": [1, 999]}]}))
    s = make_session(run, data)
    assert [p["size"] for p in s.state()["proposals"]] == [1]
    problems = " ".join(s.problems)
    assert "proposal 1: 'kind' is 'split'" in problems and "1 of its 2 ids are not in this run" in problems
    (run / "classes.json").write_text("{not json")
    assert make_session(run, data).state()["proposals"] == []


def test_session_merge_relabels_every_row_and_undo_restores(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    write_proposals(run, [1])
    s = make_session(run, data)
    neu = [i for i in range(s.n) if s.current(i) == "neu"]
    s.decide(s.keys[neu[0]], "relabel", "pos")  # no longer neu: not merged
    merge = s.state()["proposals"][1]
    res = s.merge("neu", "pos", "pos", proposal=merge["pid"])
    assert res["action"]["rows"] == len(neu) - 1 and res["source"] == "merge 'neu' into 'pos' (proposal 2)"
    assert all(s.current(i) == "pos" for i in neu)
    assert s.state()["classes"] == ["neg", "pos"] and s.state()["merged"] == {"neu": "pos"}
    with pytest.raises(InputError, match="'neu' is not a current class"):
        s.merge("neu", "neg", "neg")
    with pytest.raises(InputError, match="relabel needs 'label', one of the classes"):
        s.decide("0", "relabel", "neu")
    result = make_session(run, data).export()
    changes = pd.read_csv(result.changes)
    merged = changes[changes["why"] == "merge 'neu' into 'pos' (proposal 2)"]
    assert len(merged) == len(neu) - 1 and set(merged["new_label"]) == {"pos"}
    assert "neu" not in set(pd.read_csv(result.path)["label"])
    s.undo(res["action"]["group"])
    assert s.state()["classes"] == ["neg", "neu", "pos"] and s.current(neu[1]) == "neu"
    with pytest.raises(InputError, match="must be 'neg' or 'pos'"):
        s.merge("neg", "pos", "neu")


def test_session_bulk_filter_threshold_lasso_confirm_and_undo(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    s = make_session(run, data)
    above = [i for i in range(s.n) if s.score[i] >= 0.5]
    pre = s.preview({"filter": {"score_min": 0.5}}, "accept")
    assert pre["count"] == pre["selected"] == len(above) > 0 and pre["source"] == "filter score >= 0.5"
    with pytest.raises(InputError, match=f"now changes {len(above)} example\\(s\\), not the 3 you confirmed"):
        s.bulk({"filter": {"score_min": 0.5}}, "accept", expect=3)
    assert not (run / "review" / "decisions.jsonl").exists()
    res = s.bulk({"filter": {"score_min": 0.5}}, "accept", expect=len(above))
    assert len([x for x in log_lines(run) if "kind" not in x]) == len(above)
    assert all(s.log.latest[s.keys[i]]["new_label"] == s.classes[s.sugg[i]] for i in above)
    assert s.preview({"filter": {"score_min": 0.5}}, "accept")["count"] == 0  # already so
    with pytest.raises(InputError, match="no example would change"):
        s.bulk({"filter": {"score_min": 0.5}}, "accept")
    # a lasso around the lower half of the map
    box = [[-1, -1], [2, -1], [2, 0.5], [-1, 0.5]]
    low = [i for i in range(s.n) if s.conf[i] < 0.5]
    assert s.preview({"lasso": box}, "drop")["selected"] == len(low)
    s.bulk({"lasso": box}, "drop")
    assert all(s.current(i) is None for i in low)
    region, cls = s.region[1], s.current(1)
    chosen = [i for i in range(s.n) if s.region[i] == region and s.current(i) == cls]
    assert s.preview({"filter": {"region": region, "class": cls}}, "keep")["selected"] == len(chosen) > 0
    s.undo(s.actions()[0]["group"])  # the lasso
    s.undo(res["action"]["group"])   # the threshold
    assert s.log.latest == {}
    with pytest.raises(InputError, match="already undone"):
        s.undo(res["action"]["group"])
    for bad, match in [({"lasso": [[0, 0], [1, 1]]}, "at least 3"), ({"filter": {"region": "moon"}}, "region 'moon'"),
                       ({"filter": {"score_min": "high"}}, "must be a number"), ({"ids": []}, "non-empty"),
                       ({"ids": ["nope"]}, "unknown id"), ({"filter": {}, "ids": [1]}, "exactly one"),
                       ({"everything": 1}, "unknown selection")]:
        with pytest.raises(InputError, match=match):
            s.preview(bad, "keep")


def test_server_bulk_class_merge_and_undo_routes(fresh: tuple[Path, Path]) -> None:
    run, data = fresh
    write_proposals(run, [1, 2])
    srv = make_server(make_session(run, data))
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        status, st = request(srv, "GET", "/api/state")
        pid = st["proposals"][0]["pid"]
        members = request(srv, "GET", f"/api/proposal?pid={pid}")[1]["members"]
        assert [m["id"] for m in members] == ["1", "2"] and all(m["current"] in CLASSES for m in members)
        assert request(srv, "GET", "/api/proposal?pid=gone")[0] == 400
        status, body = request(srv, "POST", "/api/class", {"name": "", "proposal": pid})
        assert status == 400 and "needs a name" in body["error"]
        status, body = request(srv, "POST", "/api/class", {"name": "mixed", "proposal": pid, "accept_all": True})
        assert status == 200 and body["action"]["rows"] == 2
        sel = {"selection": {"ids": ["3", "4"]}, "action": "relabel", "label": "mixed"}
        status, pre = request(srv, "POST", "/api/preview", sel)
        assert status == 200 and pre["count"] == 2
        status, body = request(srv, "POST", "/api/bulk", {**sel, "expect": 2})
        group = body["action"]["group"]
        assert status == 200 and request(srv, "POST", "/api/bulk", sel)[0] == 400  # no expect
        assert request(srv, "POST", "/api/undo", {"action": group})[0] == 200
        status, body = request(srv, "POST", "/api/undo", {"action": group})
        assert status == 400 and "already undone" in body["error"]
        status, body = request(srv, "POST", "/api/merge", {"a": "neg", "b": "mixed", "into": "neg"})
        assert status == 200 and body["action"]["rows"] == 2
        assert request(srv, "POST", "/api/merge", {"a": "neg", "b": "pos", "into": "neg"}, token="bad")[0] == 403
        assert request(srv, "POST", "/api/undo", {"action": group, "x": 1})[0] == 400
        status, body = request(srv, "POST", "/api/decide", {"id": "5", "action": "keep", "proposal": "gone"})
        assert status == 400 and "no longer exists" in body["error"]
        assert request(srv, "GET", "/static/tools.js")[0] == 200
    finally:
        srv.shutdown()
        srv.server_close()


def test_cli_review_export_carries_a_new_class(fresh: tuple[Path, Path], capsys) -> None:
    run, data = fresh
    path = write_proposals(run, [1, 2], run.parent / "props.json")
    s = make_session(run, data, proposals=path)
    s.create_class("mixed", proposal=s.state()["proposals"][0]["pid"], accept_all=True)
    out = run.parent / "fixed.csv"
    assert main(["review", str(run), "--data", str(data), "--proposals", str(path),
                 "--export", str(out)]) == 0
    assert pd.read_csv(out)["label"].tolist()[1:3] == ["mixed", "mixed"]
    code = main(["review", str(run), "--data", str(data), "--proposals", str(run / "none.json"),
                 "--export", str(out)])
    assert code == 2 and "none.json: no such file" in capsys.readouterr().err


def test_export_new_class_in_a_numeric_label_column(tmp_path: Path) -> None:
    run, data = run_and_data(tmp_path, label_kind="index")
    s = make_session(run, data)
    s.create_class("mixed")
    s.bulk({"ids": [1, 2]}, "relabel", "mixed")
    out = s.export(tmp_path / "o.csv")
    assert pd.read_csv(out.path)["label"].tolist()[1:3] == [3, 3]  # the next index after the run's


@given(st.floats(-2, 2), st.floats(-2, 2), st.floats(0.01, 2), st.floats(0.01, 2))
def test_in_polygon_matches_a_rectangle(x0: float, y0: float, w: float, h: float) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-3, 4, 200), rng.uniform(-3, 4, 200)
    rect = [[x0, y0], [x0 + w, y0], [x0 + w, y0 + h], [x0, y0 + h]]
    expect = (x > x0) & (x < x0 + w) & (y > y0) & (y < y0 + h)
    edge = np.isclose(x, x0) | np.isclose(x, x0 + w) | np.isclose(y, y0) | np.isclose(y, y0 + h)
    got = in_polygon(x, y, rect)
    assert np.array_equal(got[~edge], expect[~edge])

"""Label Studio round trip against a real local server: export the suspects as tasks, create the
project, annotate through the API, import the annotations back as review decisions, export the
corrected data. The server runs from its own virtual environment (``make test`` installs it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datacarto.labelstudio import decisions_from_export, label_config, tasks_for
from datacarto.errors import InputError
from datacarto.review.decisions import LOG_NAME, REVIEW_DIR, DecisionLog
from datacarto.run import load

from builders import CLASSES, assert_cli_error, make_run, run_cli

LS_VENV = Path(__file__).resolve().parents[1] / ".venv-labelstudio"
LABEL_STUDIO = LS_VENV / "bin" / "label-studio"
TOKEN = "0123456789abcdef0123456789abcdef01234567"


# ------------------------------------------------------------------------ core, no server
def test_label_config_lists_the_classes_escaped() -> None:
    xml = label_config(["neg", 'a "b" & c'], kind="image")
    assert '<Image name="image" value="$image"/>' in xml
    assert "<Choice value='a \"b\" &amp; c'/>" in xml


def test_tasks_carry_id_given_label_and_prediction() -> None:
    rows = pd.DataFrame({"id": [7], "label_name": ["neg"], "suggested_label_name": ["pos"],
                         "label_error_score": [0.91]})
    (task,) = tasks_for(rows, ["great film"])
    assert task["data"] == {"text": "great film", "datacarto_id": 7, "given_label": "neg"}
    (prediction,) = task["predictions"]
    assert prediction["score"] == 0.91
    assert prediction["result"][0]["value"] == {"choices": ["pos"]}


def _annotation(aid: int, label: str, when: str, cancelled: bool = False) -> dict:
    return {"id": aid, "was_cancelled": cancelled, "updated_at": when, "created_at": when,
            "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                        "value": {"choices": [label]}}]}


def test_latest_non_cancelled_annotation_wins_and_conflicts_are_reported() -> None:
    export = [{"id": 1, "data": {"datacarto_id": 3},
               "annotations": [_annotation(1, "neu", "2024-01-01"), _annotation(2, "pos", "2024-01-02"),
                               _annotation(3, "neg", "2024-01-03", cancelled=True)]},
              {"id": 2, "data": {"datacarto_id": 4}, "annotations": [_annotation(4, "neg", "2024-01-01")]},
              {"id": 3, "data": {"datacarto_id": 5}, "annotations": []}]
    result = decisions_from_export(export, labels={"3": "neg", "4": "neg", "5": "pos"},
                                   classes=CLASSES)
    assert [(d["id"], d["action"], d["new_label"]) for d in result.decisions] == \
        [(3, "relabel", "pos"), (4, "keep", "neg")]
    assert result.conflicts == ["3"] and result.cancelled == 1 and result.unannotated == 1


@pytest.mark.parametrize(("task", "match"), [
    ({"id": 9, "data": {"datacarto_id": 999}, "annotations": []}, r"task 9: id 999 is not an example of this run"),
    ({"id": 9, "data": {"datacarto_id": 3}, "annotations": [_annotation(1, "maybe", "x")]},
     r"task 9: label 'maybe' is not a class of the run \(neg, neu, pos\)"),
    ({"id": 9, "data": {"text": "x"}, "annotations": []}, r"task 9: no data.datacarto_id"),
])
def test_bad_exports_are_refused(task: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        decisions_from_export([task], labels={"3": "neg"}, classes=CLASSES)


def test_pixel_data_becomes_image_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run", n=60)
    dyn = load(run).dynamics(logits=False)
    pixels = np.random.default_rng(0).random((len(dyn.ids), 64))  # an 8 x 8 image
    frame = pd.DataFrame(pixels, columns=[f"px_{j}" for j in range(64)])
    frame.insert(0, "label", np.asarray(CLASSES)[dyn.labels])
    frame.to_csv(tmp_path / "pixels.csv", index=False)
    code, _, err = run_cli(capsys, "export", "labelstudio", run, "--data", tmp_path / "pixels.csv",
                           "-o", tmp_path / "t.json", "--top", "3")
    assert code == 0, err
    tasks = json.loads((tmp_path / "t.json").read_text())
    assert len(tasks) == 3 and all(t["data"]["image"].startswith("data:image/png;base64,") for t in tasks)
    assert '<Image name="image" value="$image"/>' in (tmp_path / "t.config.xml").read_text()


def test_an_imported_export_is_one_bulk_action_that_can_be_undone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(tmp_path / "run", n=60)
    dyn = load(run).dynamics(logits=False)
    given = {int(i): CLASSES[int(y)] for i, y in zip(dyn.ids, dyn.labels)}
    other = next(c for c in CLASSES if c != given[3])
    export = [{"id": 1, "data": {"datacarto_id": 3}, "annotations": [_annotation(1, other, "x")]},
              {"id": 2, "data": {"datacarto_id": 4}, "annotations": [_annotation(2, given[4], "x")]}]
    (tmp_path / "export.json").write_text(json.dumps(export))
    code, out, err = run_cli(capsys, "import", "labelstudio", tmp_path / "export.json", run)
    assert code == 0 and "2 new" in out, err
    log = DecisionLog(run / REVIEW_DIR / LOG_NAME).load()
    (group,) = log.groups.values()  # what the review page lists under "Bulk actions done"
    assert (group["source"], group["rows"], group["undone"]) == ("labelstudio", 2, None)
    assert log.latest["3"]["new_label"] == other
    log.undo(group["group"])
    again = DecisionLog(run / REVIEW_DIR / LOG_NAME).load()
    assert "3" not in again.latest and "4" not in again.latest


# ------------------------------------------------------------------------ the real server
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Label Studio server on SQLite in a temporary directory, for the whole session."""
    if not (LS_VENV / ".installed").is_file():
        pytest.skip("Label Studio is not installed in .venv-labelstudio (make test installs it)")
    root = tmp_path_factory.mktemp("label-studio")
    port = _free_port()
    env = {**os.environ, "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
           "LABEL_STUDIO_BASE_DATA_DIR": str(root), "HOME": str(root)}
    env.pop("PYTHONPATH", None)
    with open(root / "server.log", "wb") as log:
        server = subprocess.Popen(
            [str(LABEL_STUDIO), "start", "--no-browser", "--port", str(port), "--username",
             "test@example.com", "--password", "datacarto-test", "--user-token", TOKEN],
            env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                tail = (root / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"Label Studio did not start within 90 s:\n{tail}")
            time.sleep(1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _api(url: str, method: str, path: str, body: object = None) -> object:
    request = urllib.request.Request(
        f"{url}{path}", method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read() or b"null")


@pytest.fixture()
def text_run(tmp_path: Path) -> tuple[Path, Path]:
    """A run with planted label errors and its data file (id, text, label)."""
    run = make_run(tmp_path / "run", n=60)
    dyn = load(run).dynamics(logits=False)
    data = tmp_path / "data.csv"
    pd.DataFrame({"id": dyn.ids, "text": [f"review number {i}" for i in dyn.ids],
                  "label": np.asarray(CLASSES)[dyn.labels]}).to_csv(data, index=False)
    return run, data


def test_round_trip_through_a_real_server(label_studio: str, text_run: tuple[Path, Path],
                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, data = text_run
    tasks_file = tmp_path / "tasks.json"
    code, out, err = run_cli(capsys, "export", "labelstudio", run, "--data", data, "--id-column", "id",
                             "-o", tasks_file, "--url", label_studio, "--token", TOKEN)
    assert code == 0, err
    tasks = json.loads(tasks_file.read_text())
    assert tasks and all(t["data"]["text"].startswith("review number") for t in tasks)
    assert "<Choice value=\"pos\"/>" in (tmp_path / "tasks.config.xml").read_text()
    project = int(out.split("created project ")[1].split()[0])

    served = _api(label_studio, "GET", f"/api/projects/{project}/tasks?page_size=1000")
    assert len(served) == len(tasks)
    first, second = served[0], served[1]
    given = first["data"]["given_label"]
    other = next(c for c in CLASSES if c != given)
    for task, label in ((first, given), (first, other), (second, second["data"]["given_label"])):
        _api(label_studio, "POST", f"/api/tasks/{task['id']}/annotations",
             {"result": [{"from_name": "label", "to_name": "text", "type": "choices",
                          "value": {"choices": [label]}}]})

    code, out, err = run_cli(capsys, "import", "labelstudio", run, "--url", label_studio,
                             "--token", TOKEN, "--project", project)
    assert code == 0, err
    assert "2 new" in out and "1 task(s) with disagreeing annotations" in out
    latest = DecisionLog(run / REVIEW_DIR / LOG_NAME).load().latest
    relabelled = latest[str(first["data"]["datacarto_id"])]
    assert (relabelled["action"], relabelled["new_label"], relabelled["source"]) == \
        ("relabel", other, "labelstudio")
    assert latest[str(second["data"]["datacarto_id"])]["action"] == "keep"

    export_file = tmp_path / "export.json"  # the same annotations from a file: nothing new
    export_file.write_text(json.dumps(_api(label_studio, "GET",
                                           f"/api/projects/{project}/export?exportType=JSON")))
    code, out, _ = run_cli(capsys, "import", "labelstudio", export_file, run)
    assert code == 0 and "0 new" in out

    corrected = tmp_path / "corrected.csv"
    assert run_cli(capsys, "review", run, "--data", data, "--id-column", "id",
                   "--export", corrected)[0] == 0
    fixed = pd.read_csv(corrected).set_index("id")
    assert fixed.loc[first["data"]["datacarto_id"], "label"] == other
    assert "labelstudio" in (tmp_path / "corrected.changes.csv").read_text()


def test_server_errors_are_one_line_and_write_nothing(label_studio: str, text_run: tuple[Path, Path],
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    run, data = text_run
    out = tmp_path / "tasks.json"
    assert_cli_error(capsys, ["export", "labelstudio", run, "--data", data, "-o", out, "--url",
                              label_studio, "--token", "wrong"],
                     r"refused the token \(HTTP 401\)", absent=[out])
    assert_cli_error(capsys, ["import", "labelstudio", run, "--url", f"http://127.0.0.1:{_free_port()}",
                              "--token", TOKEN, "--project", "1"],
                     r"cannot reach the Label Studio server", absent=[run / REVIEW_DIR / LOG_NAME])
    other = tmp_path / "other.json"
    other.write_text(json.dumps([{"id": 1, "data": {"datacarto_id": 10_000}, "annotations": []}]))
    assert_cli_error(capsys, ["import", "labelstudio", other, run],
                     r"id 10000 is not an example of this run", absent=[run / REVIEW_DIR / LOG_NAME])

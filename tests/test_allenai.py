"""datacarto.interop.allenai: import/export of allenai/cartography training-dynamics logs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from datacarto import Recorder, load
from datacarto.errors import InputError, SchemaError
from datacarto.interop.allenai import (METRIC_COLUMNS, allenai_metrics, export_allenai,
                                       find_epoch_files, import_allenai)

from builders import write_allenai


# ------------------------------------------------------------------------------ helpers
def reference_td_metrics(guids, gold, logits, *, include_ci=False, burn_out=None):
    """allenai's compute_train_dy_metrics, re-derived from its formulas, one example at a time.

    softmax in float32 (allenai: torch.nn.functional.softmax(torch.Tensor(logits))), argmax of the
    float64 logits, np.mean / np.std of the Python-float probabilities, correctness = count,
    forgetfulness = 1000 if never correct else the learned -> forgotten transitions.
    """
    rows = {}
    for g, y, per_epoch in zip(guids, gold, logits):
        probs_trend, correct_trend = [], []
        for z in per_epoch:
            z32 = np.asarray(z, dtype=np.float32)
            ez = np.exp(z32 - z32.max())
            probs = ez / ez.sum()
            assert probs.dtype == np.float32
            probs_trend.append(float(probs[y]))
            correct_trend.append(bool(np.argmax(np.asarray(z, dtype=np.float64)) == y))
        if burn_out is not None:
            probs_trend, correct_trend = probs_trend[:burn_out], correct_trend[:burn_out]
        conf = np.mean(probs_trend)
        if include_ci:
            var = np.sqrt(np.var(probs_trend) + np.var(probs_trend) ** 2 / (len(probs_trend) - 1))
        else:
            var = np.std(probs_trend)
        if not any(correct_trend):
            forget = 1000
        else:
            learnt, forget = False, 0
            for ok in correct_trend:
                if learnt and not ok:
                    learnt, forget = False, forget + 1
                elif not learnt and ok:
                    learnt = True
        rows[g] = {"confidence": conf, "variability": var, "threshold_closeness": conf * (1 - conf),
                   "correctness": sum(correct_trend), "forgetfulness": forget}
    return rows


def random_logs(n=60, e=5, k=3, seed=0, str_guids=False):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, k, n)
    # a class signal that grows with the epoch, plus noise: a mix of easy, ambiguous, hard
    signal = np.linspace(-1, 3, e)[None, :, None] * np.eye(k)[gold][:, None, :]
    logits = rng.normal(0, 1.5, (n, e, k)) + signal * rng.uniform(-1, 1.5, (n, 1, 1))
    guids = 10**12 + rng.choice(n * 7, size=n, replace=False)
    guids = [f"train-{g}" for g in guids] if str_guids else [int(g) for g in guids]
    return guids, gold, logits


# --------------------------------------------------------------- precision contract
@pytest.mark.parametrize("str_guids", [False, True], ids=["int-guids", "str-guids"])
def test_metrics_match_allenai_reference(tmp_path, str_guids):
    guids, gold, logits = random_logs(str_guids=str_guids)
    run = import_allenai(write_allenai(tmp_path / "model", guids, gold, logits), tmp_path / "run")
    ref = reference_td_metrics(guids, gold, logits)
    ours = allenai_metrics(run.dynamics()).set_index("guid")
    for g in guids:
        for col in ("confidence", "variability", "threshold_closeness"):
            assert abs(ours.loc[g, col] - ref[g][col]) < 1e-6, (g, col)
        assert ours.loc[g, "correctness"] == ref[g]["correctness"]
        assert ours.loc[g, "forgetfulness"] == ref[g]["forgetfulness"]
    # the core metrics of the imported run agree too: correctness = count / E exactly
    m = run.metrics().set_index("id")
    e = logits.shape[1]
    for g in guids:
        assert abs(m.loc[g, "confidence"] - ref[g]["confidence"]) < 1e-6
        assert abs(m.loc[g, "variability"] - ref[g]["variability"]) < 1e-6
        assert m.loc[g, "correctness"] == ref[g]["correctness"] / e
        assert bool(m.loc[g, "never_learned"]) == (ref[g]["forgetfulness"] == 1000)
        if ref[g]["forgetfulness"] != 1000:
            assert m.loc[g, "forgetting_events"] == ref[g]["forgetfulness"]


def test_include_ci_and_burn_out_match_allenai(tmp_path):
    guids, gold, logits = random_logs(n=30, e=6, seed=3)
    run = import_allenai(write_allenai(tmp_path / "model", guids, gold, logits), tmp_path / "run")
    for include_ci, burn_out in ((True, None), (False, 4), (True, 3)):
        ref = reference_td_metrics(guids, gold, logits, include_ci=include_ci, burn_out=burn_out)
        window = None if burn_out is None else f":{burn_out}"
        ours = allenai_metrics(run.dynamics(epochs=window), include_ci=include_ci).set_index("guid")
        for g in guids:
            assert abs(ours.loc[g, "variability"] - ref[g]["variability"]) < 1e-6
            assert ours.loc[g, "correctness"] == ref[g]["correctness"]
            assert ours.loc[g, "forgetfulness"] == ref[g]["forgetfulness"]


def test_gold_probs_match_torch_float32_softmax(tmp_path):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    guids, gold, logits = random_logs(n=40, e=3, seed=5)
    run = import_allenai(write_allenai(tmp_path / "model", guids, gold, logits), tmp_path / "run")
    dyn = run.dynamics()
    row = {g: i for i, g in enumerate(dyn.ids.tolist())}
    for g, y, per_epoch in zip(guids, gold, logits):
        for e, z in enumerate(per_epoch):
            p = float(torch.nn.functional.softmax(torch.Tensor(z.tolist()), dim=-1)[int(y)])
            assert abs(dyn.gold_prob[row[g], e] - p) < 1e-6


def test_hand_computed_fixture(tmp_path):
    """3 examples x 4 epochs, 2 classes; logits [0, t] give P(class 1) = sigmoid(t)."""
    def z(p1):  # logits with softmax = [1 - p1, p1]
        return [0.0, math.log(p1 / (1 - p1))]

    # a (gold 1): p_gold .25 .75 .75 .75 -> wrong, right, right, right
    # b (gold 0): p_gold .75 .25 .75 .25 -> right, wrong, right, wrong (forgotten twice)
    # c (gold 1): p_gold .10 .25 .25 .40 -> never right
    logits = [[z(.25), z(.75), z(.75), z(.75)],
              [z(.25), z(.75), z(.25), z(.75)],
              [z(.10), z(.25), z(.25), z(.40)]]
    write_allenai(tmp_path / "model", ["a", "b", "c"], [1, 0, 1], logits, nested=False)
    run = import_allenai(tmp_path / "model", tmp_path / "run", classes=["neg", "pos"])
    td = allenai_metrics(run.dynamics()).set_index("guid")
    assert td["confidence"].to_numpy() == pytest.approx([0.625, 0.5, 0.25], abs=1e-7)
    assert td["variability"].to_numpy() == pytest.approx(
        [math.sqrt(0.046875), 0.25, math.sqrt(0.01125)], abs=1e-7)
    assert td["threshold_closeness"].to_numpy() == pytest.approx([0.234375, 0.25, 0.1875], abs=1e-7)
    assert td["correctness"].tolist() == [3, 2, 0]
    assert td["forgetfulness"].tolist() == [0, 2, 1000]
    m = run.metrics().set_index("id")
    assert m["correctness"].tolist() == [0.75, 0.5, 0.0]
    assert m["forgetting_events"].tolist() == [0, 2, 0]
    assert m["never_learned"].tolist() == [False, False, True]
    assert m["label_name"].tolist() == ["pos", "neg", "pos"]
    assert run.classes == ("neg", "pos")
    assert run.capture == "pass" and run.meta.inputs == "logits"
    extra = run.meta.extra
    assert extra["source"] == "allenai" and extra["source_epochs"] == [0, 1, 2, 3]


# ------------------------------------------------------------------------ round trip
def test_round_trip_import_export_import(tmp_path):
    guids, gold, logits = random_logs(n=25, e=4, seed=1, str_guids=True)
    run = import_allenai(write_allenai(tmp_path / "model", guids, gold, logits), tmp_path / "run")
    out = export_allenai(run, tmp_path / "exported")
    assert sorted(os.listdir(out)) == ["td_metrics.jsonl", "training_dynamics"]
    assert sorted(os.listdir(out / "training_dynamics")) == [f"dynamics_epoch_{e}.jsonl" for e in range(4)]
    again = import_allenai(out, tmp_path / "run2")
    a, b = run.dynamics(), again.dynamics()
    for name in ("ids", "labels", "gold_prob", "pred", "runner_up", "margin", "loss", "logits",
                 "epochs"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.classes == b.classes
    # td_metrics.jsonl: allenai's columns and values
    rows = [json.loads(line) for line in (out / "td_metrics.jsonl").read_text().splitlines()]
    assert [list(r) for r in rows[:1]] == [list(METRIC_COLUMNS)]
    assert [r["index"] for r in rows] == list(range(25))
    ref = reference_td_metrics(guids, gold, logits)
    for r in rows:
        assert r["confidence"] == pytest.approx(ref[r["guid"]]["confidence"], abs=1e-6)
        assert r["correctness"] == ref[r["guid"]]["correctness"]
        assert r["forgetfulness"] == ref[r["guid"]]["forgetfulness"]


def test_export_writes_allenai_line_format(tmp_path):
    rec = Recorder(tmp_path / "run", num_classes=2)
    rec.update([5, 3], np.array([[0.5, -0.25], [1.0, 2.0]]), [0, 1])
    rec.end_epoch()
    rec.close()
    out = export_allenai(tmp_path / "run", tmp_path / "out", epochs="1:1")
    lines = (out / "training_dynamics" / "dynamics_epoch_0.jsonl").read_text().splitlines()
    assert lines == ['{"guid":3,"logits_epoch_0":[1,2],"gold":1}',
                     '{"guid":5,"logits_epoch_0":[0.5,-0.25],"gold":0}']


def test_export_refuses_runs_without_logits_and_non_empty_dirs(tmp_path):
    rec = Recorder(tmp_path / "run", num_classes=3, max_logit_classes=2)
    rec.update([0, 1], np.array([[0.5, 0.1, 0.0], [1.0, 2.0, 0.3]]), [0, 1])
    rec.end_epoch()
    rec.close()
    with pytest.raises(InputError, match=r"run: the run stores no full logits .*3 classes"):
        export_allenai(tmp_path / "run", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    guids, gold, logits = random_logs(n=5, e=2)
    run = import_allenai(write_allenai(tmp_path / "m", guids, gold, logits), tmp_path / "r2")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(InputError, match=r"full: already exists and is not empty"):
        export_allenai(run, tmp_path / "full")
    assert os.listdir(tmp_path / "full") == ["keep.txt"]
    with pytest.raises(InputError, match=r"include_ci=True\) needs at least 2 epochs"):
        allenai_metrics(run.dynamics(epochs="1:1"), include_ci=True)


# ------------------------------------------------------------------------ file finding
def test_epochs_in_numeric_order_flat_or_nested(tmp_path):
    guids, gold, logits = random_logs(n=4, e=11, seed=2)
    write_allenai(tmp_path / "flat", guids, gold, logits, nested=False)
    files = find_epoch_files(tmp_path / "flat")
    assert [f.name for f in files][-3:] == ["dynamics_epoch_8.jsonl", "dynamics_epoch_9.jsonl",
                                           "dynamics_epoch_10.jsonl"]
    write_allenai(tmp_path / "nested", guids, gold, logits)
    run = import_allenai(tmp_path / "nested", tmp_path / "run")
    assert run.epochs == list(range(1, 12))
    dyn = run.dynamics()
    order = np.argsort(guids)
    np.testing.assert_array_equal(dyn.logits[:, 10], logits[order, 10].astype(np.float32))


def test_import_into_existing_empty_dir_and_new_parents(tmp_path):
    guids, gold, logits = random_logs(n=4, e=2)
    write_allenai(tmp_path / "m", guids, gold, logits)
    (tmp_path / "empty").mkdir()
    assert import_allenai(tmp_path / "m", tmp_path / "empty").epochs == [1, 2]
    assert import_allenai(tmp_path / "m", tmp_path / "a" / "b" / "run").epochs == [1, 2]


def test_float32_near_tie_warns(tmp_path):
    write_allenai(tmp_path / "m", [0, 1], [1, 0], [[[1.0, 1.0 + 1e-12]], [[2.0, 0.0]]])
    with pytest.warns(UserWarning, match=r"1 rows have logits whose argmax changes .*near-ties"):
        import_allenai(tmp_path / "m", tmp_path / "run")


# ------------------------------------------------------------------------- bad input
BASE = [  # 4 examples x 3 epochs x 3 classes, written as text so each case can corrupt a line
    (0, 0, [[2.0, 0.0, -1.0], [2.5, 0.0, -1.0], [3.0, 0.0, -1.0]]),
    (1, 1, [[0.0, 1.0, 0.5], [0.0, 2.0, 0.5], [0.0, 3.0, 0.5]]),
    (2, 2, [[0.5, 0.0, 1.0], [0.2, 0.0, 1.5], [1.0, 0.0, 0.5]]),
    (3, 0, [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 1.0]]),
]


def write_base(folder: Path, edit=None) -> Path:
    """Write BASE; ``edit(epoch, lines) -> str | bytes | None`` may rewrite an epoch's file."""
    guids, gold, logits = zip(*BASE)
    return write_allenai(folder, guids, gold, logits, edit=edit)


def _on(epoch, fn):
    return lambda e, lines: fn(lines) if e == epoch else None


def _line(i, text):
    def fn(lines):
        lines[i] = text
        return "\n".join(lines) + "\n"
    return fn


BAD_INPUTS = [
    ("empty-file", _on(1, lambda lines: ""), InputError,
     r"dynamics_epoch_1\.jsonl: the file is empty"),
    ("blank-lines-only", _on(1, lambda lines: "\n\n"), InputError, r"the file is empty"),
    ("truncated-last-line", _on(2, lambda lines: "\n".join(lines)[:-20]), SchemaError,
     r"dynamics_epoch_2\.jsonl line 4: invalid JSON .*truncated"),
    ("invalid-json", _on(0, _line(1, '{"guid": 1, "logits_epoch_0": [0, 1, 2],, "gold": 1}')),
     SchemaError, r"dynamics_epoch_0\.jsonl line 2: invalid JSON"),
    ("non-utf8", _on(1, lambda lines: ("\n".join(lines) + "\n").encode().replace(
        b'"guid": 2', b'"guid": "\xff\xfe"')), InputError,
     r"dynamics_epoch_1\.jsonl line 3: not UTF-8 text \(byte b'\\xff'"),
    ("nan-literal", _on(1, _line(1, '{"guid": 1, "logits_epoch_1": [0, NaN, 2], "gold": 1}')),
     InputError, r"dynamics_epoch_1\.jsonl line 2: NaN is not a finite number"),
    ("infinity-literal", _on(0, _line(2, '{"guid": 2, "logits_epoch_0": [-Infinity, 0, 2], "gold": 2}')),
     InputError, r"dynamics_epoch_0\.jsonl line 3: -Infinity is not a finite number"),
    ("overflow-to-inf", _on(0, _line(3, '{"guid": 3, "logits_epoch_0": [0, 1e999, 2], "gold": 0}')),
     InputError, r"dynamics_epoch_0\.jsonl line 4: guid=3: logits_epoch_0\[1\] = inf is not finite"),
    ("logit-not-number", _on(0, _line(1, '{"guid": 1, "logits_epoch_0": [0, "x", 2], "gold": 1}')),
     SchemaError, r"line 2: guid=1: logits_epoch_0\[1\] is 'x', not a number"),
    ("logit-null", _on(2, _line(0, '{"guid": 0, "logits_epoch_2": [0, null, 2], "gold": 0}')),
     SchemaError, r"dynamics_epoch_2\.jsonl line 1: guid=0: logits_epoch_2\[1\] is None"),
    ("wrong-logits-length", _on(1, _line(2, '{"guid": 2, "logits_epoch_1": [0, 1], "gold": 2}')),
     SchemaError, r"dynamics_epoch_1\.jsonl line 3: guid=2: logits_epoch_1 has 2 values but the run "
                  r"has 3 classes"),
    ("logits-not-list", _on(0, _line(1, '{"guid": 1, "logits_epoch_0": 0.5, "gold": 1}')),
     SchemaError, r"line 2: guid=1: logits_epoch_0 must be a list of numbers"),
    ("one-logit", lambda e, lines: "\n".join(
        json.dumps({"guid": g, f"logits_epoch_{e}": [1.0], "gold": 0}) for g in range(3)),
     SchemaError, r"dynamics_epoch_0\.jsonl line 1: guid=0: .*at least 2 logits"),
    ("label-too-large", _on(0, _line(1, '{"guid": 1, "logits_epoch_0": [0, 1, 2], "gold": 3}')),
     InputError, r"dynamics_epoch_0\.jsonl line 2: guid=1: gold 3 is outside 0\.\.2"),
    ("label-negative", _on(0, _line(3, '{"guid": 3, "logits_epoch_0": [0, 1, 2], "gold": -1}')),
     InputError, r"line 4: guid=3: gold -1 is outside 0\.\.2"),
    ("label-not-int", _on(0, _line(1, '{"guid": 1, "logits_epoch_0": [0, 1, 2], "gold": 1.0}')),
     SchemaError, r"line 2: guid=1: gold 1\.0 must be an integer class index"),
    ("missing-gold", _on(0, _line(2, '{"guid": 2, "logits_epoch_0": [0, 1, 2]}')),
     SchemaError, r"dynamics_epoch_0\.jsonl line 3: missing key 'gold'"),
    ("wrong-logits-key", _on(1, _line(0, '{"guid": 0, "logits_epoch_0": [0, 1, 2], "gold": 0}')),
     SchemaError, r"dynamics_epoch_1\.jsonl line 1: missing key 'logits_epoch_1'"),
    ("not-an-object", _on(0, _line(1, '[1, [0, 1, 2], 1]')), SchemaError,
     r"line 2: expected a JSON object, got list"),
    ("guid-float", _on(0, _line(1, '{"guid": 1.5, "logits_epoch_0": [0, 1, 2], "gold": 1}')),
     SchemaError, r"line 2: guid 1\.5 must be an integer or a string"),
    ("guid-mixed-types", _on(0, _line(2, '{"guid": "2", "logits_epoch_0": [0, 1, 2], "gold": 2}')),
     SchemaError, r"line 3: guid '2' is str but earlier guids are int"),
    ("guid-too-large", _on(0, _line(2, '{"guid": 99999999999999999999, "logits_epoch_0": [0, 1, 2], "gold": 2}')),
     InputError, r"line 3: guid 99999999999999999999 does not fit in a 64-bit integer"),
    ("same-guid-two-golds-in-file",
     _on(0, lambda lines: "\n".join(lines + ['{"guid": 1, "logits_epoch_0": [0, 1, 2], "gold": 2}'])),
     InputError, r"dynamics_epoch_0\.jsonl line 5: guid=1 has gold 2 but line 2 gave it gold 1"),
    ("same-guid-twice", _on(1, _line(3, '{"guid": 0, "logits_epoch_1": [0, 1, 2], "gold": 0}')),
     InputError, r"dynamics_epoch_1\.jsonl line 4: guid=0 appears again \(first on line 1\)"),
    ("gold-changes-across-epochs", _on(2, _line(1, '{"guid": 1, "logits_epoch_2": [0, 1, 2], "gold": 0}')),
     InputError, r"dynamics_epoch_2\.jsonl line 2: guid=1 has gold 0 but line 2 of "
                 r"dynamics_epoch_0\.jsonl has gold 1"),
    ("guid-missing-from-epoch", _on(1, lambda lines: "\n".join(lines[:3]) + "\n"), InputError,
     r"dynamics_epoch_1\.jsonl: guid=3 \(line 4 of dynamics_epoch_0\.jsonl\) is missing"),
    ("guid-not-in-first-epoch", _on(2, _line(2, '{"guid": 7, "logits_epoch_2": [0, 1, 2], "gold": 2}')),
     InputError, r"dynamics_epoch_2\.jsonl line 3: guid=7 does not appear in dynamics_epoch_0\.jsonl"),
]


@pytest.mark.parametrize("edit, error, match", [c[1:] for c in BAD_INPUTS],
                         ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_raises_and_writes_nothing(tmp_path, edit, error, match):
    src = write_base(tmp_path / "model", edit)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(error, match=match):
        import_allenai(src, tmp_path / "runs" / "new")
    assert sorted(os.listdir(tmp_path)) == before  # no run, no temp dir, no created parent


def test_base_fixture_imports(tmp_path):
    run = import_allenai(write_base(tmp_path / "model"), tmp_path / "run")
    assert run.epochs == [1, 2, 3] and run.classes == ("0", "1", "2")


def test_bom_and_blank_lines_are_accepted(tmp_path):
    src = write_base(tmp_path / "model", lambda e, lines: "\ufeff" + "\n\n".join(lines) + "\n\n")
    assert import_allenai(src, tmp_path / "run").epochs == [1, 2, 3]


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match=r"nowhere: no such directory"):
        import_allenai(tmp_path / "nowhere", tmp_path / "run")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match=r"file\.txt: not a directory"):
        import_allenai(tmp_path / "file.txt", tmp_path / "run")
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match=r"none: no dynamics_epoch_\{E\}\.jsonl files here or in "
                                         r"training_dynamics/"):
        import_allenai(tmp_path / "none", tmp_path / "run")
    src = write_base(tmp_path / "gap")
    os.remove(src / "training_dynamics" / "dynamics_epoch_1.jsonl")
    with pytest.raises(SchemaError, match=r"training_dynamics: dynamics_epoch_1\.jsonl is missing "
                                          r"\(found epochs 0, 2\)"):
        import_allenai(src, tmp_path / "run")
    src = write_base(tmp_path / "twice")
    (src / "training_dynamics" / "dynamics_epoch_01.jsonl").write_text("{}")
    with pytest.raises(SchemaError, match=r"both dynamics_epoch_01\.jsonl and dynamics_epoch_1\.jsonl "
                                          r"hold epoch 1"):
        import_allenai(src, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_out_dir_and_classes_errors(tmp_path):
    src = write_base(tmp_path / "model")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "run.json").write_text("{}")
    with pytest.raises(InputError, match=r"full: already exists and is not empty; import never "
                                         r"overwrites"):
        import_allenai(src, tmp_path / "full")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match=r"afile: exists and is not a directory"):
        import_allenai(src, tmp_path / "afile")
    with pytest.raises(SchemaError, match=r"dynamics_epoch_0\.jsonl line 1: guid=0: logits_epoch_0 "
                                          r"has 3 values but the run has 2 classes"):
        import_allenai(src, tmp_path / "run", classes=["a", "b"])
    with pytest.raises(InputError, match=r"classes must be at least 2 distinct names"):
        import_allenai(src, tmp_path / "run", classes=["a", "a", "b"])
    assert not (tmp_path / "run").exists()
    assert load(import_allenai(src, tmp_path / "run", classes=["x", "y", "z"]).path).classes == \
        ("x", "y", "z")

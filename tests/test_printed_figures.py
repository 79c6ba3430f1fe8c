"""Figures that several commands print come from one function each: the held-out peak, the
memorisation epoch, the flag count and the detector notes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from datacarto import store
from datacarto.commands._common import detector_notes, flagged_line, memorisation_note
from datacarto.label_errors import choose_window
from datacarto.memorisation import MEMORISATION_GAP, memorisation_epoch, memorisation_line
from datacarto.train import loop

from builders import make_run, run_cli


def test_heldout_message_states_the_figure_it_used():
    # raw best 0.721 at epoch 3; the smoothed curve stays near its best up to epoch 5
    w = choose_window([.6, .7, .72, .73, .74, .76, .8, .85],
                      [.60, .70, .721, .712, .718, .716, .70, .68])
    assert w.spec == "1:5" and w.memorisation
    assert w.message.startswith("held-out accuracy peaks at epoch 3 (0.721; smoothed over 3 "
                                "epochs it stays within 0.01 of its best up to epoch 5), so the "
                                "label-error score uses epochs 1..5")
    assert "from epoch" not in w.message  # the memorisation epoch has its own line
    same = choose_window([.6, .8, .85, .9, .95, .99], [.55, .7, .72, .7, .66, .62])
    assert same.message.startswith("held-out accuracy peaks at epoch 3 (0.720), so")


@given(st.lists(st.floats(-0.3, 0.3, allow_nan=False), min_size=1, max_size=12))
def test_memorisation_epoch_is_the_start_of_the_last_run_above_the_gap(gaps):
    curve = [{"epoch": e + 1, "gap": g} for e, g in enumerate(gaps)]
    found = memorisation_epoch(curve)
    above = np.asarray(gaps) > MEMORISATION_GAP
    below = np.flatnonzero(~above)
    if not above[-1]:
        assert found is None
    else:  # the epoch after the last one at or below the gap
        assert found == (int(below[-1]) + 2 if len(below) else 1)
    assert loop.memorisation_epoch is memorisation_epoch  # the training loop's is this one


def test_metrics_prints_the_memorisation_epoch_of_the_recorded_curve(capsys, tmp_path):
    run = make_run(tmp_path / "run", n=60, epochs=5)
    held = [0.60, 0.70, 0.72, 0.69, 0.66]
    gaps = [0.01, 0.04, 0.08, 0.15, 0.21]
    curve = [{"epoch": e + 1, "train_acc": h + g, "halves_train_acc": h + g, "heldout_acc": h,
              "gap": g} for e, (h, g) in enumerate(zip(held, gaps))]
    store.update_run_extra(run, curve=curve, memorisation_epoch=memorisation_epoch(curve))
    code, out, _ = run_cli(capsys, "metrics", run)
    assert code == 0
    assert memorisation_line(3) in out.splitlines()
    _, flag_out, _ = run_cli(capsys, "flag", run)
    assert memorisation_line(3) in flag_out.splitlines()
    window = next(line for line in out.splitlines() if line.startswith("label errors:"))
    assert "peaks at epoch 3 (0.720)" in window and "from epoch" not in window
    # the report's notes are the same lines, memorisation included
    code, _, _ = run_cli(capsys, "report", run, "-o", tmp_path / "report.html", "-q")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert code == 0 and json.dumps(memorisation_line(3))[1:-1] in page and window[:40] in page


def test_no_memorisation_line_without_a_heldout_curve():
    assert memorisation_note([]) is None
    assert memorisation_note([{"epoch": 1, "train_acc": 0.9}]) is None
    assert memorisation_note([{"epoch": 1, "gap": 0.0}]) == memorisation_line(None)
    frame = pd.DataFrame({"is_label_error": [True, False, False, False]})
    frame.attrs["label_errors"] = {"message": "m", "calibration": "c"}
    assert detector_notes(frame) == ["label errors: m", "flag calibration: c"]
    assert flagged_line(frame) == "Flagged as likely label errors: 1 (25.0%)"

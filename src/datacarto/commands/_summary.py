"""The console text of ``datacarto run`` / ``demo``: the summary of a run, its curve, regions and
top suspects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..memorisation import memorisation_line
from ..regions import REGIONS
from ..thumbnails import describe_image_row
from ..train.loop import side_folds
from ..train.preparation import Prepared
from ._common import detector_notes, flagged_line

if TYPE_CHECKING:
    from ._workflow import RunResult

__all__ = ["describe_features", "describe_row", "round_robin", "summarize", "suspect_lines", "trim"]

#: Feature values shown beside an example of tabular data (not an image).
SHOWN_FEATURES = 6


def trim(text: str, width: int = 72) -> str:
    """One line of at most ``width`` characters.

    Examples
    --------
    >>> trim("a  very\\nlong text", 10)
    'a very lo…'
    """
    one = " ".join(str(text).split())
    return one if len(one) <= width else one[:width - 1] + "…"


def describe_features(columns: Sequence[str], values: Sequence[Any],
                      shape: tuple[int, int] | None = None) -> str:
    """A row of feature values as shown beside an example: ``[28x28 image, mean 0.31]`` when
    the features are the pixels of an image of ``shape``
    (:func:`datacarto.thumbnails.describe_image_row`), else its first features.

    Examples
    --------
    >>> describe_features(["a", "b"], [1.5, "x"])
    'a=1.5, b=x'
    >>> describe_features(["p0", "p1", "p2", "p3"], [0, 1, 1, 0], (2, 2))
    '[2x2 image, mean 0.50]'
    """
    if shape is not None:
        return describe_image_row(np.asarray(values, dtype=np.float64), shape)
    shown = ", ".join(f"{c}={v}" for c, v in zip(columns[:SHOWN_FEATURES], values))
    return shown + (", …" if len(columns) > SHOWN_FEATURES else "")


def describe_row(prep: Prepared, row: int, shape: tuple[int, int] | None = None) -> str:
    """Row ``row`` of the user's data as shown beside a suspect: its text, or its features
    (:func:`describe_features`; ``shape``: the image the feature columns form, if any)."""
    if prep.kind == "text":
        assert prep.texts is not None
        return prep.texts[row]
    assert prep.feature_columns is not None
    columns = list(prep.feature_columns)
    shown = columns if shape is not None else columns[:SHOWN_FEATURES]
    return describe_features(columns, prep.frame[shown].iloc[row].tolist(), shape)


def round_robin(frame: pd.DataFrame, column: str, n: int) -> pd.DataFrame:
    """The first ``n`` rows taking the next row of each ``column`` value in turn (order kept).

    So that the summary shows suspects of every class, not only of the easiest confusion.

    Examples
    --------
    >>> f = pd.DataFrame({"c": ["a", "a", "a", "b"], "v": [1, 2, 3, 4]})
    >>> round_robin(f, "c", 3)["v"].tolist()
    [1, 4, 2]
    """
    if frame.empty or n <= 0:
        return frame.head(0)
    rank = frame.groupby(column, sort=False).cumcount().to_numpy()
    position = np.arange(len(frame))
    order = np.lexsort((position, rank))
    return frame.iloc[order[:n]]


def suspect_lines(prep: Prepared, suspects: pd.DataFrame, *,
                  injected: set[Any] | None = None,
                  shape: tuple[int, int] | None = None) -> list[str]:
    """One line per row of a suspects table: score, given -> suggested label, id and the row's
    data (``injected``: ids to mark ``[flip]``; ``shape``: the image the features form)."""
    lines = []
    for (_, s), row in zip(suspects.iterrows(), prep.rows_of(suspects["id"].to_numpy())):
        mark = ""
        if injected is not None:
            mark = " [flip]" if s["id"] in injected else " [    ]"
        lines.append(f"  {s['label_error_score']:.2f} {s['given_label']} -> "
                     f"{s['suggested_label']}{mark}  id={s['id']}: "
                     f"{trim(describe_row(prep, int(row), shape), 90)}")
    return lines


def summarize(run: RunResult, *, top: int = 10, injected: set[Any] | None = None,
              more: Sequence[str] = ()) -> str:
    """The text printed at the end of ``datacarto run`` / ``demo`` (``more``: lines to add
    after the suspects; ``injected``: ids to mark as injected flips)."""
    prep, m = run.prepared, run.metrics
    n = len(m)
    lines = [f"{n:,} examples, {len(prep.classes)} classes ({', '.join(prep.classes[:8])}"
             f"{', …' if len(prep.classes) > 8 else ''}); model {prep.model}, {prep.epochs} "
             f"epoch{'s' if prep.epochs != 1 else ''}"
             f"{f', {len(run.run_dirs)} seeds' if len(run.run_dirs) > 1 else ''}."]
    if prep.guessed:
        lines.append("Columns guessed: " + " ".join(prep.guessed) + " (give the options to "
                     "override)")
    auto = (run.extra.get("model_auto") or {}).get("reason")
    if auto:
        lines.append(auto)
    lines.append("")
    lines.append("Accuracy on the given labels per epoch"
                 + (" (mean over seeds)" if len(run.run_dirs) > 1 else "") + ":")
    if run.curve and "heldout_acc" in run.curve[0]:
        if run.heldout == "side":
            k = side_folds(n)
            lines.append("  train: the mapped model, on all rows; halves: two side models, each "
                         "trained on one half and scored on the other" if k == 2 else
                         f"  train: the mapped model, on all rows; halves: {k} side models, each "
                         f"trained on all but one of {k} folds and scored on that fold")
        else:
            lines.append("  halves: the two mapped models, each trained on one half and scored on "
                         "the other (--heldout crossfit)")
    has_held = all("heldout_acc" in p for p in run.curve)
    if has_held:
        lines.append("  epoch  train  | halves: train  held-out    gap")
    else:
        lines.append("  epoch  train")
    for p in run.curve:
        if has_held:
            lines.append(f"  {p['epoch']:>5}  {p['train_acc']:.3f}  |         {p['halves_train_acc']:.3f}"
                         f"     {p['heldout_acc']:.3f}  {p['gap']:+.3f}")
        else:
            lines.append(f"  {p['epoch']:>5}  {p['train_acc']:.3f}")
    if not has_held:
        lines.append("  (no held-out curve with --heldout none)")
    else:
        e = run.memorisation_epoch
        lines.append(f"  {memorisation_line(e)}")
        if e is not None and e > 2:  # a window needs 2+ epochs for variability
            where = run.run_dirs[0] if len(run.run_dirs) == 1 else run.out / "seed-0"
            lines.append(f"  To map the epochs before it: datacarto metrics {where} --epochs :{e - 1}")
    if prep.epochs == 1:
        lines.append("  With 1 epoch every variability is 0: train 2 or more epochs for a real map.")
    lines.append("")
    counts = {r: int((m["region"] == r).sum()) for r in REGIONS}
    lines.append("Regions: " + ", ".join(f"{r} {c:,} ({c / n:.1%})" for r, c in counts.items()))
    flagged = m["is_label_error"].to_numpy(dtype=bool)
    lines.extend(detector_notes(m))  # fit check, epoch window, calibration: as metrics prints them
    lines.append(flagged_line(m))
    lines.append("")
    width = max(5, max(len(c) for c in prep.classes))
    lines.append(f"  {'class':<{width}}  {'n':>7}  {'easy':>7}  {'ambig.':>7}  {'hard':>7}  "
                 f"{'flagged':>7}")
    for k, name in enumerate(prep.classes):
        sel = m["label"].to_numpy() == k
        cells = [int(((m["region"] == r).to_numpy() & sel).sum()) for r in REGIONS]
        lines.append(f"  {name:<{width}}  {int(sel.sum()):>7,}  {cells[0]:>7,}  {cells[1]:>7,}  "
                     f"{cells[2]:>7,}  {int((flagged & sel).sum()):>7,}")
    lines.append("")
    suspects = run.suspects
    heading = "Top suspects"
    if suspects.empty:
        order = m.sort_values(["label_error_score", "id"], ascending=[False, True],
                              kind="mergesort")
        suspects = pd.DataFrame({"id": order["id"], "given_label": order["label_name"],
                                 "suggested_label": order["suggested_label_name"],
                                 "label_error_score": order["label_error_score"]})
        heading = "Highest label-error scores (none flagged)"
    shown = round_robin(suspects, "given_label", top)
    if len(shown):
        lines.append(f"{heading}, the most suspicious of each given label in turn (score, given "
                     f"-> suggested{', injected flip?' if injected is not None else ''}):")
        lines.extend(suspect_lines(prep, shown, injected=injected, shape=run.image_shape))
        lines.append("")
    lines.extend(more)
    outs = ["datamap.png", "suspects.csv", "metrics.parquet", "metrics.csv", "summary.json"]
    lines.append(f"Outputs in {run.out}: " + ", ".join(outs)
                 + (f"; runs: {', '.join(d.name for d in run.run_dirs)}"
                    if len(run.run_dirs) > 1 else ""))
    return "\n".join(lines)

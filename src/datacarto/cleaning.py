"""Cleaning a dataset from its data map: which rows to relabel, drop or keep (docs/cleaning.md).

A functional core under ``datacarto clean``: :func:`plan_cleaning` reads the metrics table
(``run.metrics()``; docs/contract.md §2) and returns a :class:`CleaningPlan`, one action per row.
With ``s_i = label_error_score_i`` and ``f_i = is_label_error_i`` (the calibrated flag)::

    relabel  f_i  and  s_i >= relabel_above  [and the suggestion is corroborated]
    drop     f_i  and  s_i >= drop_above     and not relabel
             or  region_i in drop_regions
    keep     otherwise (ambiguous and hard rows stay unless their region is named)

"Corroborated" (``needs_agreement``): where the run recorded the evidence column
``kept_predicting`` (``datacarto run`` does), the class the model kept predicting instead of
the given label must be the suggested label; a row whose score is high but whose model
wavered between classes is dropped instead (the label is likely wrong, no class is clearly
right). A decision made on the review page (``RUN/review/decisions.jsonl``) always wins.

The named policies and their thresholds were chosen on ``benchmarks/cleaning.py`` (results
in ``benchmarks/results/cleaning.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError, SchemaError
from .regions import REGIONS

__all__ = ["ACTIONS", "DEFAULT_POLICY", "POLICIES", "CleaningPlan", "CleaningPolicy",
           "plan_cleaning", "policy_named"]

#: Row actions of a plan, in the order counts are shown.
ACTIONS = ("relabel", "drop", "keep")


@dataclass(frozen=True)
class CleaningPolicy:
    """When to relabel, drop or keep a row (the rule in the module docstring).

    Attributes
    ----------
    name : str
    relabel_above : float or None
        Relabel flagged rows with ``label_error_score >= relabel_above``; None: never relabel.
    drop_above : float or None
        Drop flagged rows (not relabelled) with ``label_error_score >= drop_above``; None: never.
    needs_agreement : bool
        Relabel only where the suggestion is the class the model kept predicting (when the
        run has that evidence column).
    drop_regions : tuple of str
        Also drop every row of these data-map regions (``"hard"``, ``"ambiguous"``).
    """

    name: str
    relabel_above: float | None
    drop_above: float | None
    needs_agreement: bool = True
    drop_regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for option, value in (("relabel_above", self.relabel_above), ("drop_above", self.drop_above)):
            if value is not None and not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise InputError(f"cleaning policy {self.name!r}: {option} must be a score in "
                                 f"[0, 1]; got {value!r}.")
        for region in self.drop_regions:
            if region not in REGIONS:
                raise InputError(f"cleaning policy {self.name!r}: unknown region {region!r}; "
                                 f"choose from {', '.join(REGIONS)}.")

    def describe(self) -> str:
        """The policy in words, e.g. ``drop: drop every flagged row; keep the rest``."""
        parts = []
        if self.relabel_above is not None:
            which = ("every flagged row" if self.relabel_above == 0
                     else f"flagged rows with score >= {self.relabel_above:g}")
            parts.append(f"relabel {which}"
                         + (" whose suggestion the model kept predicting" if self.needs_agreement else ""))
        if self.drop_above is not None:
            which = ("flagged row" if self.drop_above == 0
                     else f"flagged row with score >= {self.drop_above:g}")
            parts.append(f"drop {'every other' if parts else 'every'} {which}")
        if self.drop_regions:
            parts.append(f"drop every {' and '.join(self.drop_regions)} row")
        return f"{self.name}: " + ("; ".join(parts) or "change nothing") + "; keep the rest"


#: Named policies (``datacarto clean --policy NAME``); thresholds from benchmarks/cleaning.py.
#: ``fix`` was the best pair of the threshold grid over 36 settings (6 data sets, uniform and pair
#: noise at 10/20/40 %): dropping the flagged rows recovered the most accuracy, and relabelling
#: only the confident, corroborated suggestions matched cleanlab's cleaning more often;
#: relabelling every flagged row (``relabel``) made the labels worse in 3 settings.
POLICIES: dict[str, CleaningPolicy] = {
    "fix": CleaningPolicy("fix", relabel_above=0.5, drop_above=0.0),
    "drop": CleaningPolicy("drop", relabel_above=None, drop_above=0.0),
    "relabel": CleaningPolicy("relabel", relabel_above=0.0, drop_above=None),
    "cautious": CleaningPolicy("cautious", relabel_above=0.95, drop_above=0.8),
}
DEFAULT_POLICY = "fix"


def policy_named(name: str = DEFAULT_POLICY, *, relabel_above: float | None = None,
                 drop_above: float | None = None,
                 drop_regions: tuple[str, ...] | None = None) -> CleaningPolicy:
    """A named policy from :data:`POLICIES`, with any threshold given here replacing its own.

    Raises InputError for an unknown name or a threshold outside [0, 1].
    """
    if name not in POLICIES:
        raise InputError(f"unknown cleaning policy {name!r}; choose from {', '.join(POLICIES)}.")
    for option, value in (("--relabel-above", relabel_above), ("--drop-above", drop_above)):
        if value is not None and not (0.0 <= value <= 1.0):
            raise InputError(f"{option} must be a label_error_score in [0, 1]; got {value!r}.")
    policy = POLICIES[name]
    changes: dict[str, Any] = {}
    if relabel_above is not None:
        changes["relabel_above"] = float(relabel_above)
    if drop_above is not None:
        changes["drop_above"] = float(drop_above)
    if drop_regions:
        changes["drop_regions"] = tuple(drop_regions)
    return replace(policy, **changes) if changes else policy


@dataclass(frozen=True)
class CleaningPlan:
    """One action per row of the metrics table.

    ``rows`` has ``id``, ``label_name``, ``action`` (one of :data:`ACTIONS`), ``new_label``
    (the class name after cleaning; None for a drop) and ``source`` (``"policy"`` or
    ``"review"``), in the metrics table's order.
    """

    policy: CleaningPolicy
    rows: pd.DataFrame
    reviewed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rows per action."""
        actions = self.rows["action"]
        return {a: int((actions == a).sum()) for a in ACTIONS}

    def counts_by_class(self) -> pd.DataFrame:
        """Rows per given class (index) and action (columns), plus ``relabelled to`` counts."""
        table = pd.crosstab(self.rows["label_name"].astype(str), self.rows["action"])
        table = table.reindex(columns=list(ACTIONS), fill_value=0)
        into = self.rows.loc[self.rows["action"] == "relabel", "new_label"].astype(str).value_counts()
        table["relabelled to"] = into.reindex(table.index, fill_value=0)
        return table.astype(int)

    def decisions(self, time: str | None = None) -> dict[str, dict[str, Any]]:
        """The changes as review decisions (``str(id)`` -> decision) for
        :func:`datacarto.review.export.export_corrected`: the policy's relabels (``accept``)
        and drops, whose ``source`` names the policy, then the review page's own decisions,
        passed on as made. Rows the policy keeps are left out."""
        out: dict[str, dict[str, Any]] = {}
        why = f"datacarto clean --policy {self.policy.name}"
        policy_rows = self.rows[(self.rows["source"] == "policy") & (self.rows["action"] != "keep")]
        for rid, label, action, new in policy_rows[
                ["id", "label_name", "action", "new_label"]].itertuples(index=False):
            out[str(rid)] = {"id": _plain(rid), "action": "drop" if action == "drop" else "accept",
                             "old_label": str(label), "new_label": None if action == "drop" else new,
                             "time": time, "source": why}
        out.update({str(k): dict(v) for k, v in self.reviewed.items()})
        return out

    def summary(self) -> str:
        c = self.counts()
        reviewed = int((self.rows["source"] == "review").sum())
        text = f"{c['relabel']:,} relabel, {c['drop']:,} drop, {c['keep']:,} keep"
        return text + (f" ({reviewed:,} decided on the review page)" if reviewed else "")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


_NEEDED = ("id", "label_name", "label_error_score", "suggested_label_name", "is_label_error", "region")


def plan_cleaning(metrics: pd.DataFrame, policy: CleaningPolicy | str = DEFAULT_POLICY,
                  decisions: Mapping[str, Mapping[str, Any]] | None = None) -> CleaningPlan:
    """Apply ``policy`` to every row of ``metrics``; review ``decisions`` win.

    Parameters
    ----------
    metrics : DataFrame
        ``run.metrics()`` (needs ``id``, ``label_name``, ``label_error_score``,
        ``suggested_label_name``, ``is_label_error``, ``region``; uses ``kept_predicting``
        when present).
    policy : CleaningPolicy or str
        A policy or the name of one in :data:`POLICIES`.
    decisions : mapping, optional
        ``str(id)`` -> latest review decision (``DecisionLog(...).load().latest``).

    Returns
    -------
    CleaningPlan

    Raises
    ------
    SchemaError
        If a needed column is missing, or a decision names an id that is not in ``metrics``.

    Examples
    --------
    >>> m = pd.DataFrame({"id": [0, 1, 2], "label_name": ["a", "a", "b"],
    ...                   "label_error_score": [0.99, 0.4, 0.1],
    ...                   "suggested_label_name": ["b", "b", "a"],
    ...                   "is_label_error": [True, True, False],
    ...                   "region": ["hard", "ambiguous", "easy"]})
    >>> plan_cleaning(m, "fix").rows["action"].tolist()
    ['relabel', 'drop', 'keep']
    """
    if isinstance(policy, str):
        policy = policy_named(policy)
    missing = [c for c in _NEEDED if c not in metrics.columns]
    if missing:
        raise SchemaError(f"plan_cleaning: the metrics table has no column(s) {', '.join(missing)}; "
                          "pass run.metrics().")
    score = metrics["label_error_score"].to_numpy(dtype=np.float64)
    flagged = metrics["is_label_error"].to_numpy(dtype=bool)
    suggested = metrics["suggested_label_name"].astype(str).to_numpy(dtype=object)
    relabel = np.zeros(len(metrics), dtype=bool)
    if policy.relabel_above is not None:
        relabel = flagged & (score >= policy.relabel_above)
        if policy.needs_agreement and "kept_predicting" in metrics.columns:
            kept = metrics["kept_predicting"].astype(object).to_numpy()
            known = ~pd.isna(kept) & (kept != "")
            # no evidence recorded for a row (e.g. a Recorder run) -> the score alone decides
            agrees = ~known | (np.asarray([str(k) for k in kept], dtype=object) == suggested)
            relabel &= agrees
    drop = np.zeros(len(metrics), dtype=bool)
    if policy.drop_above is not None:
        drop = flagged & (score >= policy.drop_above) & ~relabel
    if policy.drop_regions:
        drop |= metrics["region"].isin(policy.drop_regions).to_numpy() & ~relabel
    action = np.where(relabel, "relabel", np.where(drop, "drop", "keep")).astype(object)
    labels = metrics["label_name"].astype(str).to_numpy(dtype=object)
    new_label = np.where(relabel, suggested, np.where(drop, None, labels)).astype(object)
    source = np.full(len(metrics), "policy", dtype=object)
    if decisions:
        _apply_decisions(metrics["id"].to_numpy(), labels, action, new_label, source, decisions)
    rows = pd.DataFrame({"id": metrics["id"].to_numpy(), "label_name": labels, "action": action,
                         "new_label": pd.Series(new_label, dtype=object), "source": source})
    return CleaningPlan(policy=policy, rows=rows, reviewed=dict(decisions or {}))


def _apply_decisions(ids: np.ndarray, labels: np.ndarray, action: np.ndarray,
                     new_label: np.ndarray, source: np.ndarray,
                     decisions: Mapping[str, Mapping[str, Any]]) -> None:
    """Overwrite the policy's action with the reviewer's, in place."""
    row_of = {str(i): r for r, i in enumerate(ids.tolist())}
    for key, dec in decisions.items():
        row = row_of.get(str(key))
        if row is None:
            raise SchemaError(f"review decision for id {dec.get('id', key)!r}: no such id in the run; "
                              "the decisions belong to another run.")
        kind, new = dec.get("action"), dec.get("new_label")
        if kind == "drop":
            action[row], new_label[row] = "drop", None
        elif kind == "keep" or new == labels[row]:
            action[row], new_label[row] = "keep", labels[row]
        else:
            action[row], new_label[row] = "relabel", str(new)
        source[row] = "review"

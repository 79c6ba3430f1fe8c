"""Proposals to change the taxonomy: add a class (between two, or apart from all) or merge two.

Functional core on arrays (:class:`ClassEvidence` -> list of :class:`Proposal`); the method and
its thresholds are described in docs/classes.md. ``K`` classes, ``N`` examples, ``P`` (N, K) the
label-error detector's probabilities (docs/contract.md §4), ``s`` the ``missing_class_score``.

* **add, between two classes** ``a, b``: rows whose two most probable classes hold at least
  :data:`PAIR_MASS` of ``P`` and whose *pair score*
  ``sqrt(h2(P_b / (P_a + P_b)) * min(1, Hbar / log 2))`` (``h2`` the binary entropy in bits,
  ``Hbar`` the mean in-sample entropy; equal to ``s`` when K = 2) is above the run's threshold;
  one proposal per pair, made when the pair's held-out predictions pile up in the middle, the
  two classes are told apart without the group, and the given labels in the middle do not
  follow the held-out predictions (a group labelled arbitrarily).
* **add, apart from all**: the other rows whose ``s`` is above the threshold, made when their
  labels agree with the held-out predictions no better than chance (Cohen's kappa).
* **merge** ``a, b``: held-out predictions confuse the two both ways as much as two random
  halves of one class would: ``indistinguishable = min(r_ab / e_ab, r_ba / e_ba)`` with
  ``r_ab = C[a,b] / (C[a,a] + C[a,b])``, ``C[a,b]`` the mean held-out probability of ``b`` over
  the rows labelled ``a``, and ``e_ab = n_b / (n_a + n_b)`` what a random split gives.

A threshold is ``max(MIN_SCORE, m + RELATIVE (1 - m))`` with ``m`` the median of the score
over all rows, so that a weak model, whose every prediction is spread, raises its own bar.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import InputError
from .score import normalized_entropy
from .stats import (agreement, binary_entropy, confusion, indistinguishability, label_follows,
                    middle_bump, split_share)

__all__ = ["MERGE_MIN", "MIN_SCORE", "MIN_SIZE", "PAIR_MASS", "RELATIVE", "ClassEvidence",
           "Proposal", "propose"]

#: A row is "between" its two most probable classes when they hold at least this share of P.
PAIR_MASS = 0.8
#: Thresholds on the scores: at least MIN_SCORE, and RELATIVE of the way from the median to 1.
MIN_SCORE = 0.7
RELATIVE = 0.4
#: Groups smaller than this are not proposed.
MIN_SIZE = 5
#: Merge two classes when ``indistinguishable`` is at least this.
MERGE_MIN = 0.85
#: A pair's rows must pile up where held-out predictions split the mass evenly: at least this
#: many rows with ``P_b / (P_a + P_b)`` in [0.3, 0.5] per row in [0.1, 0.3] (clean
#: boundaries thin out towards the middle; a group labelled at random sits in it).
BUMP_MIN = 0.55
#: ... and, without the group, held-out predictions must tell the two classes apart: their
#: ``indistinguishable`` (see merge) at most this (a weak model confuses them everywhere).
SEPARATE_MAX = 0.5
#: ... and the given labels inside the group must not follow the held-out predictions (AUC of
#: the held-out lean for the label at most this): a group labelled arbitrarily gives ~0.5 or
#: less, the overlap zone of two real classes still leans the right way.
FOLLOWS_MAX = 0.55
#: ... measured on the rows whose held-out split ``P_b / (P_a + P_b)`` is at least this.
MIDDLE_SPLIT = 0.3
#: A group apart from all: the members' labels must agree with the held-out predictions no
#: better than this Cohen's kappa (a group labelled at random: ~0).
KAPPA_MAX = 0.12
#: Representative examples per proposal.
N_EXAMPLES = 5
#: An ``add`` proposal's strength saturates at this share of the rows.
FULL_STRENGTH_SHARE = 0.05


@dataclass
class ClassEvidence:
    """What the proposals read, one row per example (docs/classes.md).

    ``probs`` (N, K): ``P``; ``score`` (N,): ``missing_class_score`` (NaN: ``H(P)/log K`` is
    used); ``mean_entropy`` (N,) the in-sample ``entropy`` column (NaN when unknown);
    ``heldout`` (N, K): held-out probabilities (None: ``probs`` stand in); ``pred`` (N, E):
    in-sample predictions per epoch (None when unknown); ``texts``: one text per row or None.
    """

    ids: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    probs: np.ndarray
    score: np.ndarray
    mean_entropy: np.ndarray
    heldout: np.ndarray | None = None
    pred: np.ndarray | None = None
    texts: list[str | None] | None = None

    def __post_init__(self) -> None:
        n, k = np.shape(self.probs)
        if k < 2 or len(self.classes) < 2:
            raise InputError(f"the run has {len(self.classes)} class"
                             f"{'' if len(self.classes) == 1 else 'es'}; class proposals need at "
                             "least 2.")
        if k != len(self.classes):
            raise InputError(f"probs has {k} columns but there are {len(self.classes)} classes.")
        for name in ("ids", "labels", "score", "mean_entropy"):
            if len(getattr(self, name)) != n:
                raise InputError(f"{name} has {len(getattr(self, name))} entries but probs has "
                                 f"{n} rows.")


@dataclass
class Proposal:
    """One proposal. ``kind``: ``"add"`` or ``"merge"``; ``classes``: the given classes involved
    (add between two: the pair; add apart: the classes that fit the group best; merge: the two,
    the larger first); ``ids``: add: the members; merge: the rows of the second class (whose
    label the merge changes); ``size = len(ids)``; ``strength`` in [0, 1] orders the proposals;
    ``evidence``: figures; ``examples``: representative rows (``id``, ``label``, ``score``,
    ``text`` when known); ``terms``: for text, what sets the group apart."""

    kind: str
    classes: list[str]
    ids: list[Any]
    size: int
    strength: float
    evidence: dict[str, Any]
    examples: list[dict[str, Any]] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    where: str = ""  # add: "between" or "apart"; merge: ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (ids as Python ints or strings)."""
        return _plain(asdict(self))

    def describe(self) -> str:
        """One line for the console."""
        ev = self.evidence
        if self.kind == "merge":
            return (f"merge {self.classes[0]!r} and {self.classes[1]!r}: held-out predictions "
                    f"confuse them both ways ({ev['a_as_b']:.0%} of {self.classes[0]!r} go to "
                    f"{self.classes[1]!r}, {ev['b_as_a']:.0%} the other way; "
                    f"indistinguishable {ev['indistinguishable']:.2f})")
        share = ev["share_of_rows"]
        if self.where == "between":
            return (f"add a class between {self.classes[0]!r} and {self.classes[1]!r}: "
                    f"{self.size:,} rows ({share:.1%}), mass split {ev['mean_split']:.2f}, "
                    f"{ev['swinging']:.0%} swing between the two over the epochs")
        return (f"add a class apart from all: {self.size:,} rows ({share:.1%}) that no class "
                f"fits (mean top probability {ev['mean_top_prob']:.2f}; closest: "
                f"{', '.join(map(repr, self.classes))})")


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_plain(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return None if np.isnan(x) else float(x)
    if isinstance(x, float) and np.isnan(x):
        return None
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.str_):
        return str(x)
    return x


def threshold(score: np.ndarray) -> float:
    """``max(MIN_SCORE, m + RELATIVE (1 - m))``, ``m`` the median score (NaN ignored)."""
    finite = score[np.isfinite(score)]
    m = float(np.median(finite)) if len(finite) else 0.0
    return max(MIN_SCORE, m + RELATIVE * (1.0 - m))


def pair_scores(ev: ClassEvidence) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the top class ``a``, the second ``b``, ``P_a + P_b`` and the pair score."""
    order = np.argsort(-ev.probs, axis=1, kind="stable")
    rows = np.arange(len(ev.probs))
    a, b = order[:, 0], order[:, 1]
    pa, pb = ev.probs[rows, a], ev.probs[rows, b]
    mass = pa + pb
    split = binary_entropy(np.divide(pb, mass, out=np.zeros_like(pb), where=mass > 0))
    inside = np.clip(ev.mean_entropy / np.log(2.0), 0.0, 1.0)
    score = np.where(np.isfinite(inside), np.sqrt(split * np.nan_to_num(inside)), split)
    return a, b, mass, score


def _merge_columns(probs: np.ndarray, merges: list[Proposal], classes: tuple[str, ...]
                   ) -> np.ndarray:
    """``probs`` with the columns of each proposed merge added into the first class's."""
    p = probs.copy()
    index = {c: k for k, c in enumerate(classes)}
    for m in merges:
        keep, move = index[m.classes[0]], index[m.classes[1]]
        p[:, keep] += p[:, move]
        p[:, move] = 0.0
    return p


def propose(ev: ClassEvidence, *, max_proposals: int = 10) -> list[Proposal]:
    """Every proposal from ``ev``, most convincing (highest ``strength``) first.

    Merges are found first; the ``add`` groups are then looked for as if the merges were made
    (the probabilities of two merged classes added), so that two names of one class do not
    also look like a group between them or apart from both.
    """
    merges = _merges(ev)
    score = np.where(np.isfinite(ev.score), ev.score, normalized_entropy(ev.probs))
    if merges:
        ev = replace(ev, probs=_merge_columns(ev.probs, merges, ev.classes),
                     heldout=None if ev.heldout is None else
                     _merge_columns(ev.heldout, merges, ev.classes))
        score = np.minimum(score, _rescored(ev))
    out = _between_proposals(ev) + _apart_proposals(ev, score) + merges
    out.sort(key=lambda p: -p.strength)
    return out[:max_proposals]


def _rescored(ev: ClassEvidence) -> np.ndarray:
    """``missing_class_score`` of the (merged) probabilities, with the run's in-sample part."""
    held = normalized_entropy(ev.probs)
    inside = np.clip(ev.mean_entropy / np.log(len(ev.classes)), 0.0, 1.0)
    return np.where(np.isfinite(inside), np.sqrt(held * np.nan_to_num(inside)), held)


@dataclass(frozen=True)
class _TopPair:
    """Per row: the two most probable classes (as ``lo < hi``), their mass and split."""

    lo: np.ndarray
    hi: np.ndarray
    mass: np.ndarray
    split: np.ndarray

    @classmethod
    def of(cls, probs: np.ndarray) -> _TopPair:
        order = np.argsort(-probs, axis=1, kind="stable")
        a, b = order[:, 0], order[:, 1]
        rows = np.arange(len(probs))
        return cls(np.minimum(a, b), np.maximum(a, b), probs[rows, a] + probs[rows, b],
                   split_share(probs, a, b))

    def rows(self, x: int, y: int) -> np.ndarray:
        """(N,) bool: rows whose top two classes are ``x, y`` and hold PAIR_MASS or more."""
        return (self.mass >= PAIR_MASS) & (self.lo == x) & (self.hi == y)


def _between_proposals(ev: ClassEvidence) -> list[Proposal]:
    """One ``add`` per pair of classes with a group between them that passes the tests."""
    a, b, mass, pair = pair_scores(ev)
    cut = threshold(pair)
    between = (mass >= PAIR_MASS) & (pair >= cut)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    # the tests read held-out predictions: in-sample ones lean towards the given labels
    reference = ev.heldout if ev.heldout is not None else ev.probs
    top = _TopPair.of(reference)
    out = []
    for x, y in sorted({(int(i), int(j)) for i, j in zip(lo[between], hi[between])}):
        members = np.flatnonzero(between & (lo == x) & (hi == y))
        on_pair = top.rows(x, y)
        bump = middle_bump(top.split[on_pair])
        if len(members) < MIN_SIZE or bump < BUMP_MIN:
            continue
        rest = np.ones(len(ev.ids), dtype=bool)
        rest[members] = False
        overlap = float(indistinguishability(reference[rest], ev.labels[rest],
                                             len(ev.classes))[x, y])
        # rows chosen by the held-out split alone: choosing by P, which mixes in the in-sample
        # probabilities (pulled towards the given label), would pick rows whose held-out
        # lean goes against their label
        middle = np.flatnonzero(on_pair & (top.split >= MIDDLE_SPLIT))
        follows = (label_follows(ev.heldout, ev.labels, middle, x, y)
                   if ev.heldout is not None else float("nan"))
        if overlap <= SEPARATE_MAX and not follows > FOLLOWS_MAX:
            out.append(_between(ev, members, x, y, pair, cut,
                                {"middle_bump": bump, "overlap_without_group": overlap,
                                 "labels_follow_heldout": follows}))
    return out


def _apart_proposals(ev: ClassEvidence, score: np.ndarray) -> list[Proposal]:
    """The ``add`` of the rows every class fits badly, when their labels look arbitrary."""
    cut = threshold(score)
    members = np.flatnonzero((_TopPair.of(ev.probs).mass < PAIR_MASS) & (score >= cut))
    if len(members) < MIN_SIZE:
        return []
    kappa = (agreement(ev.labels[members], ev.heldout[members].argmax(axis=1),
                       len(ev.classes)) if ev.heldout is not None else float("nan"))
    if kappa > KAPPA_MAX:
        return []
    return [_apart(ev, members, score, cut, kappa)]


def _label_counts(ev: ClassEvidence, members: np.ndarray) -> dict[str, int]:
    counts = np.bincount(ev.labels[members], minlength=len(ev.classes))
    return {ev.classes[k]: int(c) for k, c in enumerate(counts) if c}


def _examples(ev: ClassEvidence, rows: np.ndarray, score: np.ndarray) -> list[dict[str, Any]]:
    top = rows[np.argsort(-score[rows], kind="stable")[:N_EXAMPLES]]
    out = []
    for i in top:
        item = {"id": ev.ids[i], "label": ev.classes[int(ev.labels[i])],
                "score": round(float(score[i]), 4),
                "probs": {ev.classes[k]: round(float(ev.probs[i, k]), 3)
                          for k in np.argsort(-ev.probs[i])[:3]}}
        if ev.texts is not None and ev.texts[i] is not None:
            item["text"] = ev.texts[i]
        out.append(item)
    return out


def _terms(ev: ClassEvidence, members: np.ndarray, reference: np.ndarray) -> list[str]:
    if ev.texts is None:
        return []
    from .terms import distinguishing_terms

    return distinguishing_terms(ev.texts, members, reference)


def _add(ev: ClassEvidence, members: np.ndarray, classes: list[str], where: str,
         score: np.ndarray, cut: float, evidence: dict[str, Any], reference: np.ndarray
         ) -> Proposal:
    n = len(ev.ids)
    mean_score = float(score[members].mean())
    share = len(members) / n
    evidence = {"share_of_rows": share, "mean_score": mean_score, "threshold": cut,
                "mean_top_prob": float(ev.probs[members].max(axis=1).mean()),
                "labels": _label_counts(ev, members), **evidence}
    return Proposal(kind="add", classes=classes, ids=list(ev.ids[members]), size=len(members),
                    strength=mean_score * min(1.0, share / FULL_STRENGTH_SHARE),
                    evidence=evidence, examples=_examples(ev, members, score),
                    terms=_terms(ev, members, reference), where=where)


def _swinging(pred: np.ndarray | None, members: np.ndarray, x: int, y: int) -> float:
    """Share of members predicted as ``x`` in some epoch and as ``y`` in another."""
    if pred is None or pred.shape[1] < 2:
        return float("nan")
    p = pred[members]
    return float(((p == x).any(axis=1) & (p == y).any(axis=1)).mean())


def _between(ev: ClassEvidence, members: np.ndarray, x: int, y: int, pair: np.ndarray,
             cut: float, tests: dict[str, float]) -> Proposal:
    p = ev.probs[members]
    split = np.minimum(p[:, x], p[:, y]) / np.maximum(p[:, x], p[:, y])
    held_pred = None if ev.heldout is None else ev.heldout[members].argmax(axis=1)
    evidence = {"mean_split": float(split.mean()), **tests,
                "pair_mass": float((p[:, x] + p[:, y]).mean()),
                "swinging": _swinging(ev.pred, members, x, y),
                "heldout_on_pair": (float(np.isin(held_pred, (x, y)).mean())
                                    if held_pred is not None else None)}
    others = np.isin(ev.labels, (x, y))
    others[members] = False
    return _add(ev, members, [ev.classes[x], ev.classes[y]], "between", pair, cut, evidence,
                np.flatnonzero(others))


def _apart(ev: ClassEvidence, members: np.ndarray, score: np.ndarray, cut: float,
           kappa: float) -> Proposal:
    closest = np.argsort(-ev.probs[members].mean(axis=0), kind="stable")[:3]
    rest = np.ones(len(ev.ids), dtype=bool)
    rest[members] = False
    return _add(ev, members, [ev.classes[k] for k in closest], "apart", score, cut,
                {"mean_entropy": float(normalized_entropy(ev.probs[members]).mean()),
                 "labels_follow_heldout": kappa},
                np.flatnonzero(rest))


def _merges(ev: ClassEvidence) -> list[Proposal]:
    k = len(ev.classes)
    held = ev.heldout if ev.heldout is not None else ev.probs
    d = indistinguishability(held, ev.labels, k)
    c = confusion(held, ev.labels, k)
    n = np.bincount(ev.labels, minlength=k)
    out = []
    for x, y in zip(*np.triu_indices(k, 1)):
        if d[x, y] < MERGE_MIN or min(n[x], n[y]) == 0:
            continue
        keep, move = (x, y) if n[x] >= n[y] else (y, x)
        moved = np.flatnonzero(ev.labels == move)
        both = np.flatnonzero(np.isin(ev.labels, (x, y)))
        mixed = np.minimum(held[:, keep], held[:, move])
        evidence = {"indistinguishable": float(d[x, y]),
                    "a_as_b": float(c[keep, move]), "b_as_a": float(c[move, keep]),
                    "a_as_a": float(c[keep, keep]), "b_as_b": float(c[move, move]),
                    "rows_in_classes": int(len(both)),
                    "source": "held-out" if ev.heldout is not None else "in-sample"}
        out.append(Proposal(kind="merge", classes=[ev.classes[keep], ev.classes[move]],
                            ids=list(ev.ids[moved]), size=len(moved), strength=float(d[x, y]),
                            evidence=evidence, examples=_examples(ev, both, mixed)))
    return out

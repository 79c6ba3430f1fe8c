"""Choosing examples from a data map (docs/contract.md §4).

``select(metrics, region=..., fraction=...)`` ranks examples the way the paper does (easy: by
confidence, descending; hard: by confidence, ascending; ambiguous: by variability, descending)
or by any metric column, and returns exactly ``floor(fraction * N)`` (or ``count``) ids.
Ties are broken by ascending id, so the result is deterministic. With ``stratify=True`` each
class gets its share by largest remainder, so the total is still exact.

``select(metrics, spread=True, fraction=...)`` keeps coverage instead: it leaves out the
hardest ``drop_hardest`` share (lowest confidence: where wrong labels gather) and takes the
rest evenly across the map, every ``(N - dropped) / total``-th example in confidence order.
On ``benchmarks/results/selection.md`` this beat the paper's 33 % ambiguous subsets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._validation import check_fraction, check_option
from .errors import InputError
from .regions import REGION_ORDER, REGIONS


#: Share of the lowest-confidence examples that ``spread=True`` leaves out.
SPREAD_DROP_HARDEST = 0.05


def select(metrics: pd.DataFrame, *, region: str | None = None, by: str | None = None,
           ascending: bool | None = None, fraction: float | None = None, count: int | None = None,
           stratify: bool = False, spread: bool = False,
           drop_hardest: float = SPREAD_DROP_HARDEST) -> np.ndarray:
    """Ids of the top examples by region ranking or by a metric column.

    Parameters
    ----------
    metrics : DataFrame
        Output of :func:`datacarto.compute_metrics` / ``run.metrics()`` (needs ``id``, ``label``).
    region : {"easy", "ambiguous", "hard"}, optional
        Rank as the paper does for that region.
    by : str, optional
        Rank by this column instead (descending unless ``ascending=True``).
    spread : bool
        Instead of a region or column: leave out the ``drop_hardest`` share with the lowest
        confidence, then take examples evenly across the rest in confidence order (positions
        ``floor((j + 0.5) * M / total)``, ``M`` examples left), so the subset covers the map.
    drop_hardest : float in [0, 1)
        With ``spread``: the share left out (default :data:`SPREAD_DROP_HARDEST`).
    fraction, count
        Exactly one: take ``floor(fraction * N)`` or ``count`` examples.
    stratify : bool
        Keep class proportions (largest-remainder allocation of the total).

    Returns
    -------
    ndarray of ids, best first.

    Examples
    --------
    >>> m = pd.DataFrame({"id": [3, 1, 2, 0], "label": [0, 0, 1, 1],
    ...                   "confidence": [0.9, 0.2, 0.5, 0.2], "variability": [0.1, 0.3, 0.3, 0.0]})
    >>> select(m, region="ambiguous", fraction=0.5).tolist()
    [1, 2]
    """
    if (region is not None) + (by is not None) + bool(spread) != 1:
        raise InputError("select needs exactly one of 'region' or 'by' (or spread=True).")
    if (fraction is None) == (count is None):
        raise InputError("select needs exactly one of 'fraction' or 'count'.")
    if spread:
        column, asc = "confidence", True
    elif region is not None:
        check_option(region, REGIONS, name="region", where="select")
        column, asc = REGION_ORDER[region]
        if ascending is not None:
            asc = ascending
    else:
        column = str(by)
        if column not in metrics.columns or column == "id":
            numeric = [c for c in metrics.columns if c != "id" and
                       pd.api.types.is_numeric_dtype(metrics[c])]
            check_option(column, numeric, name="by", where="select")
        asc = bool(ascending)
    n = len(metrics)
    if fraction is not None:
        total = int(np.floor(check_fraction(fraction) * n))
    else:
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
            raise InputError(f"The 'count' parameter of select must be a non-negative integer. "
                             f"Got {count!r} instead.")
        if count > n:
            raise InputError(f"The 'count' parameter of select is {count} but the run has only {n} "
                             "examples.")
        total = int(count)
    ranked = _rank(metrics, column, asc)
    if spread and stratify:
        quotas = _quotas(ranked, total)
        parts = [_spread(group, quotas[label], drop_hardest)
                 for label, group in ranked.groupby("label", sort=True)]
        return _rank(pd.concat(parts), column, asc)["id"].to_numpy()
    if spread:
        return _spread(ranked, total, drop_hardest)["id"].to_numpy()
    if not stratify:
        return ranked["id"].to_numpy()[:total]
    return _stratified(ranked, total)


def _rank(metrics: pd.DataFrame, column: str, ascending: bool) -> pd.DataFrame:
    values = metrics[column]
    if values.isna().any():
        raise InputError(f"select: column {column!r} has missing values (e.g. entropy without stored "
                         "logits); rank by another column.")
    return metrics.sort_values([column, "id"], ascending=[ascending, True], kind="mergesort")


def _spread(ranked: pd.DataFrame, total: int, drop_hardest: float) -> pd.DataFrame:
    """``ranked`` (lowest confidence first) without its hardest share, thinned evenly so that
    ``total`` rows remain when there are enough; the rows keep confidence order."""
    if not (0.0 <= drop_hardest < 1.0):
        raise InputError(f"select: drop_hardest must be in [0, 1); got {drop_hardest!r}.")
    n = len(ranked)
    start = min(int(np.floor(drop_hardest * n)), max(0, n - total))  # never fewer than total
    rest = ranked.iloc[start:]
    if total == 0 or len(rest) == 0:
        return rest.iloc[:0]
    picks = np.floor((np.arange(total) + 0.5) * len(rest) / total).astype(int)
    return rest.iloc[picks]


def _quotas(ranked: pd.DataFrame, total: int) -> dict[Any, int]:
    """Each class's share of ``total`` by largest remainder (ties: lower class index first)."""
    sizes = ranked.groupby("label", sort=True).size()
    n = int(sizes.sum())
    exact = sizes.to_numpy() * total / n if n else np.zeros(len(sizes))
    quota = np.floor(exact).astype(int)
    remainder = exact - quota
    order = np.lexsort((sizes.index.to_numpy(), -remainder))  # largest remainder, then class index
    for i in order[: total - int(quota.sum())]:
        quota[i] += 1
    return dict(zip(sizes.index.tolist(), quota.tolist()))


def _stratified(ranked: pd.DataFrame, total: int) -> np.ndarray:
    quotas = _quotas(ranked, total)
    rank_in_class = ranked.groupby("label", sort=False).cumcount().to_numpy()
    limits = ranked["label"].map(quotas).to_numpy()
    return ranked["id"].to_numpy()[rank_in_class < limits]


def selection_manifest(**params: Any) -> dict[str, Any]:
    """The parameters of a selection, written beside its output so it can be reproduced."""
    from ._version import __version__

    return {"datacarto_version": __version__, **params}

"""When a run starts memorising its labels: the one definition, and the one line that says it.

Memorisation starts at the first epoch from which the training accuracy on the given labels
stays more than :data:`MEMORISATION_GAP` ahead of the accuracy on held-out rows until the end
of training (Zhang et al. 2017: a network fits labels, even random ones, that it cannot
predict on unseen examples). ``datacarto run`` computes it on its curve (the side models'
own-half minus held-out accuracy, ``gap``), stores it in ``run.json``
(``extra.memorisation_epoch``), and ``run``, ``metrics`` and ``flag`` print it with
:func:`memorisation_line` (docs/run.md, "Memorisation curve").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["MEMORISATION_GAP", "memorisation_epoch", "memorisation_line"]

#: Train-minus-held-out accuracy above which (to the end of training) the model memorises.
MEMORISATION_GAP = 0.05


def memorisation_epoch(curve: Sequence[Mapping[str, Any]],
                       gap: float = MEMORISATION_GAP) -> int | None:
    """First epoch from which ``gap`` (train minus held-out accuracy) stays above ``gap``.

    ``curve`` holds one point per epoch, ``{"epoch": e, "gap": g_e, ...}``; the result is the
    smallest ``e`` with ``g_e' > gap`` for every ``e' >= e``. None when it never does, or when
    the curve has no held-out accuracy (a point without ``gap``).

    Examples
    --------
    >>> c = [{"epoch": 1, "gap": -0.02}, {"epoch": 2, "gap": 0.10}, {"epoch": 3, "gap": 0.21}]
    >>> memorisation_epoch(c)
    2
    """
    found = None
    for point in curve:
        if point.get("gap") is None:
            return None
        if point["gap"] > gap:
            found = point["epoch"] if found is None else found
        else:
            found = None
    return None if found is None else int(found)


def memorisation_line(epoch: int | None) -> str:
    """The line ``run``, ``metrics`` and ``flag`` print for a run's :func:`memorisation_epoch`.

    Examples
    --------
    >>> memorisation_line(2)[:27]
    'Memorisation from epoch 2: '
    """
    if epoch is None:
        return (f"No memorisation: training accuracy never stays more than "
                f"{MEMORISATION_GAP:.2f} ahead of held-out accuracy.")
    return (f"Memorisation from epoch {epoch}: training accuracy stays more than "
            f"{MEMORISATION_GAP:.2f} ahead of accuracy on held-out rows; later epochs "
            "increasingly fit the given labels, right or wrong.")

"""Reading and writing other tools' training-dynamics formats.

``datacarto.interop.allenai``: the per-epoch JSONL logs of allenai/cartography
(``dynamics_epoch_{E}.jsonl``) and its ``td_metrics.jsonl``. Nothing here is imported by
``import datacarto``; import the submodule you need.
"""

from __future__ import annotations

__all__ = ["allenai"]

"""Plotting for datacarto. matplotlib is imported only when a plot is drawn."""

from __future__ import annotations

from .datamap import plot_data_map

__all__ = ["plot_data_map"]

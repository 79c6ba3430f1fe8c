"""``datacarto map RUN [-o FILE]``: the static data map (variability x confidence) of a run."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ._common import add_metric_options, default_output, guard_output, run_metrics

MAP_FORMATS = (".png", ".svg", ".pdf")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "map", help="draw the data map (PNG/SVG/PDF)",
        description="Draw the data map of a run: x = variability, y = confidence, colour = "
                    "correctness, regions annotated, marginal histograms.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="image file: .png (default RUN/datamap.png), .svg or .pdf")
    p.add_argument("--title", help="figure title (default: 'Data map' with the example count)")
    p.add_argument("--axes", choices=("fit", "paper"), default="fit",
                   help="axis limits: fit the data (easier to read), or the paper's fixed "
                        "[0, 0.5] x [0, 1] (maps of different runs compare directly); default: fit")
    add_metric_options(p)
    p.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    out = default_output(args.run, "datamap.png", args.output)
    if out.suffix.lower() not in MAP_FORMATS:
        raise InputError(f"{out}: unsupported image type {out.suffix or '(none)'!r}; use "
                         f"{', '.join(MAP_FORMATS)}.")
    guard_output(out, runs=[args.run])
    run, metrics = run_metrics(args)
    from ..plot.datamap import plot_data_map  # matplotlib loads only here

    Path(out).parent.mkdir(parents=True, exist_ok=True)
    plot_data_map(metrics["confidence"].to_numpy(), metrics["variability"].to_numpy(),
                  metrics["correctness"].to_numpy(), regions=metrics["region"].to_numpy(),
                  out=out, title=args.title, labels=metrics["label"].to_numpy(),
                  class_names=list(run.classes), axes=args.axes)
    print(f"wrote {out} ({len(metrics):,} examples)")
    return 0

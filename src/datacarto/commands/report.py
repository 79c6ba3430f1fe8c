"""``datacarto report RUN [-o report.html]``: the interactive, self-contained HTML report."""

from __future__ import annotations

import argparse
import time

from ..plot.datamap import AXES
from ..report.html import (DEFAULT_MAX_IMAGES, DEFAULT_MAX_POINTS, DEFAULT_SAMPLE_SIZE,
                           DEFAULT_TEXT_CHARS, write_report)
from ..report.source import load_source
from ..thumbnails import images_of, parse_image_shape
from ._common import (add_data_options, add_metric_options, data_choice, default_output,
                      detector_notes, guard_output, info, run_metrics)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report", help="write an interactive HTML report (works offline)",
        description="Write one self-contained HTML file: a WebGL data map with hover text, "
                    "filters, marginal histograms, a per-class summary and a table of suspects.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-o", "--output", metavar="FILE", help="output file (default: RUN/report.html)")
    add_data_options(p, purpose="the data file, for each example's text or picture")
    p.add_argument("--title", help="page title (default: the run directory's name)")
    p.add_argument("--max-points", type=int, default=DEFAULT_MAX_POINTS, metavar="N",
                   help=f"draw every point up to N examples, beyond that a density layer plus a "
                        f"sampled hover layer (default: {DEFAULT_MAX_POINTS})")
    p.add_argument("--sample-size", type=int, default=DEFAULT_SAMPLE_SIZE, metavar="N",
                   help=f"points in the hover layer of the density mode (default: {DEFAULT_SAMPLE_SIZE})")
    p.add_argument("--text-chars", type=int, default=DEFAULT_TEXT_CHARS, metavar="N",
                   help=f"cut example text to N characters (default: {DEFAULT_TEXT_CHARS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the hover sample (default: 0)")
    p.add_argument("--axes", choices=AXES, default="fit",
                   help="first view of the map: axes that fit the data, or the paper's fixed "
                        "[0, 0.5] x [0, 1] (default: fit; the page switches between both)")
    p.add_argument("--image-shape", metavar="H,W",
                   help="the feature columns are the pixels of an H x W image (default: guessed from "
                        "column names such as px_0..px_783); hovering a point shows its picture")
    p.add_argument("--max-images", type=int, default=DEFAULT_MAX_IMAGES, metavar="N",
                   help=f"embed at most N pictures, of the highest-scoring examples (default: "
                        f"{DEFAULT_MAX_IMAGES})")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    add_metric_options(p)
    p.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    guard_output(default_output(args.run, "report.html", args.output), runs=[args.run],
                 data=[args.data])
    parse_image_shape(args.image_shape)  # a malformed shape fails before any work
    run, metrics = run_metrics(args)
    texts = None
    images = None
    choice = data_choice(run, args)
    source = choice.source
    if source is not None:
        loaded = load_source(source, metrics["id"].to_numpy(), meta=run.meta,
                             run_labels=metrics["label"].to_numpy())
    info(choice.line, quiet=args.quiet)
    if source is not None:
        source_images = images_of(loaded, run.meta, args.image_shape)
        if source_images is not None:
            data_rows = loaded.rows_for(metrics["id"].to_numpy())
            images = lambda rows: source_images.uris(data_rows[rows])  # noqa: E731
        if loaded.source.text_column is not None:
            texts = loaded.texts_for(metrics["id"].to_numpy())
        elif source_images is None:
            info(f"datacarto report: {source.path} has no text column (name it with --text-column); "
                 "the report shows no text", quiet=args.quiet)
    elif args.text_column or args.id_column or args.image_shape:
        info("datacarto report: --text-column/--id-column/--image-shape need --data; the report "
             "shows no text or pictures", quiet=args.quiet)
    out = default_output(run.path, "report.html", args.output)
    n_epochs = len(run.epochs)
    write_report(metrics, out, classes=list(run.classes), texts=texts,
                 title=args.title or f"datacarto report: {run.path.resolve().name}",
                 epochs=n_epochs, max_points=args.max_points, sample_size=args.sample_size,
                 text_chars=args.text_chars, seed=args.seed, axes=args.axes, images=images,
                 max_images=args.max_images, notes=detector_notes(metrics, run))
    size = out.stat().st_size / 1e6
    mode = "every point" if len(metrics) <= args.max_points else "density + sampled hover layer"
    info(f"datacarto report: wrote {out} ({len(metrics)} examples, {mode}, {size:.1f} MB, "
         f"{time.perf_counter() - start:.1f} s)", quiet=args.quiet)
    return 0

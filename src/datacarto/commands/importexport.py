"""``datacarto import allenai DIR --out RUN`` and ``datacarto export allenai RUN DIR``;
``datacarto export labelstudio`` / ``import labelstudio`` (:mod:`._labelstudio`).

Each of ``import`` / ``export`` takes the format as a nested subcommand, so other formats can
be added beside ``allenai`` without changing the existing commands.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .._paths import check_output_dir
from ._common import info, note_incomplete, recorded_data
from ._labelstudio import (add_export_parser, add_import_parser, export_labelstudio,
                           import_labelstudio)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    imp = subparsers.add_parser(
        "import", help="convert another tool's training dynamics into a run",
        description="Convert another tool's training-dynamics logs into a datacarto run.")
    formats = imp.add_subparsers(dest="format", metavar="FORMAT", required=True)
    a = formats.add_parser(
        "allenai", help="allenai/cartography's dynamics_epoch_{E}.jsonl files",
        description="Read allenai/cartography's training_dynamics/dynamics_epoch_{E}.jsonl "
                    "(E = 0, 1, ...) into a new run; allenai epoch E becomes epoch E+1.")
    a.add_argument("src", metavar="DIR",
                   help="folder with dynamics_epoch_*.jsonl, or its parent (allenai's model dir)")
    a.add_argument("--out", required=True, metavar="RUN", help="run directory to create (new or empty)")
    a.add_argument("--classes", metavar="A,B,...",
                   help="comma-separated class names for indices 0..K-1 (default 0..K-1)")
    a.set_defaults(func=execute, action="import-allenai")
    add_import_parser(formats, execute)

    exp = subparsers.add_parser(
        "export", help="write a run in another tool's format",
        description="Write a run's training dynamics in another tool's format.")
    formats = exp.add_subparsers(dest="format", metavar="FORMAT", required=True)
    b = formats.add_parser(
        "allenai", help="allenai/cartography's layout (training_dynamics/ + td_metrics.jsonl)",
        description="Write DIR/training_dynamics/dynamics_epoch_{E-1}.jsonl for every epoch E and "
                    "DIR/td_metrics.jsonl with allenai's columns; allenai's train_dy_filtering.py "
                    "--model_dir DIR reads it.")
    b.add_argument("run", metavar="RUN", help="run directory (must store full logits)")
    b.add_argument("out", metavar="DIR", help="directory to create (new or empty)")
    b.add_argument("--epochs", metavar="FIRST:LAST",
                   help="epoch window for td_metrics.jsonl (allenai's --burn_out B is :B)")
    b.add_argument("--include-ci", action="store_true",
                   help="Active-Bias variability in td_metrics.jsonl (allenai's --include_ci)")
    b.set_defaults(func=execute, action="export-allenai")
    add_export_parser(formats, execute)


def execute(args: argparse.Namespace) -> int:
    from ..interop.allenai import export_allenai, import_allenai

    if args.action == "export-labelstudio":
        return export_labelstudio(args)
    if args.action == "import-labelstudio":
        return import_labelstudio(args)

    if args.action == "import-allenai":
        check_output_dir(args.out)  # import itself refuses a directory that is not empty
        classes = None if args.classes is None else [c.strip() for c in args.classes.split(",")]
        progress = info if sys.stderr.isatty() else None  # quiet when not a terminal
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = import_allenai(args.src, args.out, classes=classes, progress=progress)
        for w in caught:
            info(f"datacarto: warning: {w.message}")
        import pyarrow.parquet as pq

        n = pq.ParquetFile(run.path / run.meta.shards[str(run.epochs[0])][0]).metadata.num_rows
        print(f"imported {n:,} examples x {len(run.epochs)} epochs, {len(run.classes)} classes "
              f"from {args.src} into {args.out}")
        return 0
    check_output_dir(args.out, inputs=[recorded_data(args.run)], run_dirs=[args.run], option="DIR")
    from ..run import load

    note_incomplete(load(args.run))
    out = export_allenai(args.run, args.out, epochs=args.epochs, include_ci=args.include_ci)
    print(f"wrote {out}/training_dynamics/ and {out}/td_metrics.jsonl")
    return 0

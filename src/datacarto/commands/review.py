"""``datacarto review RUN --data DATA``: a local page to go through suspects; ``--export`` a copy."""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from ._common import (add_data_options, add_metric_options, data_choice, guard_output, info,
                      run_metrics)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "review", help="review suspected label errors in a local web page",
        description="Serve a local page to go through the suspects in score order (accept the "
                    "suggested label, choose another, keep, drop); every decision is appended to "
                    "RUN/review/decisions.jsonl. With --export, write a corrected copy of the data "
                    "file instead (the original is never modified).")
    p.add_argument("run", metavar="RUN", help="run directory")
    add_data_options(p, purpose="the data file the run was trained on", label=True)
    p.add_argument("--image-shape", metavar="H,W",
                   help="the feature columns are the pixels of an H x W image (default: guessed from "
                        "column names such as px_0..px_783); the page then shows each example's picture")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=0, help="port (default: 0, any free port)")
    p.add_argument("--proposals", metavar="FILE",
                   help="class proposals to act on (`datacarto classes RUN -o FILE`; default: "
                        "RUN/classes.json when it exists)")
    p.add_argument("--top", type=int, metavar="N",
                   help="review the N highest-scoring examples instead of the flagged ones")
    p.add_argument("--export", metavar="FILE",
                   help="write the corrected dataset to FILE (same format as DATA) and exit")
    p.add_argument("--open", action="store_true", help="open the page in a web browser")
    p.add_argument("--verbose", action="store_true", help="log every request")
    add_metric_options(p)
    p.set_defaults(func=execute)


def _warn_exposed(host: str, url: str) -> None:
    bar = "!" * 78
    print(f"{bar}\nWARNING: the review server listens on {host}, not on this machine's loopback "
          f"address.\nAnyone who can reach {url} can read your examples. Decisions need the "
          f"session token,\nbut the page hands it to whoever opens it. Use --host 127.0.0.1 "
          f"unless you mean this.\n{bar}", file=sys.stderr, flush=True)


def execute(args: argparse.Namespace) -> int:
    from ..report.source import load_source
    from ..review.server import is_loopback, make_server
    from ..review.export import changes_path
    from ..review.session import ReviewSession
    from ..thumbnails import images_of, parse_image_shape

    if args.export is not None:
        guard_output(args.export, runs=[args.run], data=[args.data], option="--export")
        guard_output(changes_path(args.export), runs=[args.run], data=[args.data],
                     option="--export")
    parse_image_shape(args.image_shape)  # a malformed shape fails before any work
    run, metrics = run_metrics(args)
    choice = data_choice(run, args)
    source = choice.source
    if source is None:
        why = f" ({choice.problem})" if choice.problem else ""
        raise InputError(f"review {run.path}: no data file{why}. Give --data DATA, the file the run "
                         "was trained on (with --text-column/--id-column/--label-column as needed).")
    loaded = load_source(source, metrics["id"].to_numpy(), need_label=args.export is not None,
                         meta=run.meta, run_labels=metrics["label"].to_numpy())
    info(choice.line)
    session = ReviewSession(run.path, metrics, run.classes, loaded, top=args.top,
                            title=f"datacarto review: {run.path.resolve().name}",
                            images=images_of(loaded, run.meta, args.image_shape),
                            proposals=args.proposals)
    for problem in session.problems:
        print(f"datacarto review: warning: {problem}", file=sys.stderr)
    if args.export is not None:
        result = session.export(args.export)
        info(f"datacarto review: {result.summary()}")
        return 0

    if args.port < 0 or args.port > 65535:
        raise InputError(f"review: --port must be in 0..65535; got {args.port}.")
    server = make_server(session, args.host, args.port, verbose=args.verbose)
    if not is_loopback(args.host):
        _warn_exposed(args.host, server.url)
    state = session.state()
    info(f"datacarto review: {state['total']} suspects, {state['decided']} already decided; "
         f"decisions go to {run.path / state['log']}")
    if session.proposals.path is not None:
        info(f"datacarto review: {len(state['proposals'])} class proposal(s) from {session.proposals.path}")
    info(f"datacarto review: serving {server.url}  (Ctrl-C to stop)")
    if loaded.source.label_column is None:
        info("datacarto review: no label column found, so export is off (give --label-column)")
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    info(f"datacarto review: stopped; {len(session.log)} examples decided "
         f"({session.log.count} decisions in {run.path / state['log']})")
    return 0

"""``datacarto clean RUN -o CLEANED``: relabel, drop or keep each row by a measured policy.

The rule and the policies are :mod:`datacarto.cleaning`'s (docs/cleaning.md); decisions made
on the review page win. The copy is written like ``review --export``: byte-preserving (only
changed label cells differ, dropped rows are left out) with a change log beside it.
"""

from __future__ import annotations

import argparse
import datetime as _dt

from ..errors import InputError
from ._common import (add_data_options, add_metric_options, data_choice, guard_output, info,
                      run_metrics)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from ..cleaning import DEFAULT_POLICY, POLICIES

    p = subparsers.add_parser(
        "clean", help="write a cleaned copy of the data: relabel, drop or keep each row by a policy",
        description="Apply a cleaning policy to the run's label-error flags: relabel flagged rows "
                    "whose suggestion is confident, drop flagged rows where no class is clearly "
                    "right, keep the rest (ambiguous and hard rows too, unless --drop-region). "
                    "Decisions made on the review page win. Writes a copy of the data file (the "
                    "original is never modified) and a change log beside it; --dry-run only "
                    "prints the counts. Policies: "
                    + " | ".join(p.describe() for p in POLICIES.values()) + ".")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="the cleaned copy (same format as the data file); required unless --dry-run")
    p.add_argument("--policy", choices=tuple(POLICIES), default=DEFAULT_POLICY,
                   help=f"cleaning policy (default: {DEFAULT_POLICY}, chosen on the cleaning benchmark)")
    p.add_argument("--relabel-above", type=float, metavar="S",
                   help="relabel flagged rows with label_error_score >= S (0..1; overrides the policy's)")
    p.add_argument("--drop-above", type=float, metavar="S",
                   help="drop flagged rows not relabelled with label_error_score >= S (0..1; 0: all)")
    p.add_argument("--drop-region", action="append", choices=("hard", "ambiguous"), default=[],
                   metavar="REGION", help="also drop every row of this data-map region (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the counts; write nothing")
    add_data_options(p, purpose="the data file the run was trained on", label=True)
    add_metric_options(p)
    p.set_defaults(func=execute)


def execute(args: argparse.Namespace) -> int:
    from ..cleaning import plan_cleaning, policy_named
    from ..report.source import load_source
    from ..review.decisions import LOG_NAME, REVIEW_DIR, DecisionLog
    from ..review.export import changes_path, export_corrected

    policy = policy_named(args.policy, relabel_above=args.relabel_above,
                          drop_above=args.drop_above, drop_regions=tuple(args.drop_region))
    if args.output is None and not args.dry_run:
        raise InputError("datacarto clean: give -o FILE for the cleaned copy, or --dry-run.")
    if args.output is not None and not args.dry_run:
        for path in (args.output, changes_path(args.output)):
            guard_output(path, runs=[args.run], data=[args.data])
    run, metrics = run_metrics(args)
    log = DecisionLog(run.path / REVIEW_DIR / LOG_NAME).load()
    for problem in log.problems:
        print(f"datacarto clean: warning: {problem}", flush=True)
    plan = plan_cleaning(metrics, policy, log.latest)
    print(f"policy {policy.describe()}")
    print(f"{len(metrics):,} rows: {plan.summary()}")
    print(plan.counts_by_class().rename_axis("class").to_string())
    if args.dry_run:
        info("datacarto clean: dry run, nothing written")
        return 0
    choice = data_choice(run, args)
    if choice.source is None:
        why = f" ({choice.problem})" if choice.problem else ""
        raise InputError(f"clean {run.path}: no data file{why}. Give --data DATA, the file the run "
                         "was trained on (with --text-column/--id-column/--label-column as needed).")
    loaded = load_source(choice.source, metrics["id"].to_numpy(), need_label=True, meta=run.meta,
                         run_labels=metrics["label"].to_numpy())
    info(choice.line)
    names = dict(zip(metrics["id"].astype(str), metrics["label_name"].astype(str)))
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    result = export_corrected(loaded, plan.decisions(time=now), run.classes, args.output,
                              run_labels=names, new_classes=list(getattr(log, "added", [])))
    info(f"datacarto clean: {result.summary()}")
    return 0

"""``datacarto export labelstudio`` and ``datacarto import labelstudio``: the run and data side
of :mod:`datacarto.labelstudio` (which rows, their text or picture, the decision log)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..labelstudio import Client, decisions_from_export, label_config, tasks_for
from ..store import atomic_write_text
from ._common import add_data_options, data_choice, guard_output, info

SOURCE = "labelstudio"


def add_export_parser(formats: argparse._SubParsersAction, execute: Any) -> None:
    p = formats.add_parser(
        "labelstudio", help="suspects as Label Studio tasks with the suggested label pre-annotated",
        description="Write the run's suspects (or --region R) as Label Studio tasks (the example's "
                    "text or picture, its id, the suggested label as a prediction scored by "
                    "label_error_score) and the labelling config (FILE.config.xml) beside them; "
                    "with --url and --token, also create a project and import the tasks.")
    p.add_argument("run", metavar="RUN", help="run directory")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="tasks file (.json)")
    add_data_options(p, purpose="the data file, for each task's text or picture")
    p.add_argument("--top", type=int, metavar="N", help="only the N most suspicious")
    p.add_argument("--region", choices=("easy", "ambiguous", "hard"),
                   help="the examples of this region (ranked as select does) instead of the suspects")
    p.add_argument("--url", metavar="URL", help="Label Studio server, e.g. http://localhost:8080")
    p.add_argument("--token", metavar="T", help="the server's API token (with --url)")
    p.add_argument("--title", metavar="TITLE", help="project title (default: 'datacarto: RUN')")
    p.set_defaults(func=execute, action="export-labelstudio")


def add_import_parser(formats: argparse._SubParsersAction, execute: Any) -> None:
    p = formats.add_parser(
        "labelstudio", help="Label Studio annotations as review decisions of a run",
        description="Turn the annotations of tasks written by `datacarto export labelstudio` into "
                    "review decisions (RUN/review/decisions.jsonl, source labelstudio), which "
                    "`review`, `review --export` and `clean` apply. Per task the latest "
                    "non-cancelled annotation wins; disagreeing annotations are reported.")
    p.add_argument("paths", nargs="+", metavar="[EXPORT.json] RUN",
                   help="a Label Studio JSON export and the run, or only the run with --url")
    p.add_argument("--url", metavar="URL", help="read the export from this Label Studio server")
    p.add_argument("--token", metavar="T", help="the server's API token")
    p.add_argument("--project", type=int, metavar="ID", help="the project's id on the server")
    p.set_defaults(func=execute, action="import-labelstudio")


def _client(args: argparse.Namespace) -> Client | None:
    if args.url is None:
        if args.token is not None:
            raise InputError("--token needs --url (the Label Studio server).")
        return None
    if not args.token:
        raise InputError(f"--url {args.url} needs --token (the server's API token).")
    return Client(args.url, args.token)


def _rows(metrics: pd.DataFrame, args: argparse.Namespace) -> pd.DataFrame:
    from ..select import select
    from .flag import flag_table

    if args.top is not None and args.top < 1:
        raise InputError(f"--top must be at least 1; got {args.top}.")
    if args.region is not None:
        ids = select(metrics, region=args.region, count=args.top or len(metrics))
        return metrics.set_index("id", drop=False).loc[ids].reset_index(drop=True)
    table = flag_table(metrics, flagged_only=True)
    return table.head(args.top) if args.top is not None else table


def export_labelstudio(args: argparse.Namespace) -> int:
    from ..report.source import load_source
    from ..run import load
    from ..thumbnails import images_of

    out = Path(args.output)
    config_path = out.with_name(f"{out.stem}.config.xml")
    for path in (out, config_path):
        guard_output(path, runs=[args.run], data=[args.data])
    client = _client(args)
    if client is not None:
        client.check()  # a wrong URL or token fails before anything is written
    run = load(args.run)
    metrics = run.metrics()
    rows = _rows(metrics, args)
    choice = data_choice(run, args)
    if choice.source is None:
        why = f" ({choice.problem})" if choice.problem else ""
        raise InputError(f"export labelstudio {run.path}: no data file{why}; give --data DATA.")
    loaded = load_source(choice.source, metrics["id"].to_numpy(), meta=run.meta)
    info(choice.line)
    ids = rows["id"].to_numpy()
    images = images_of(loaded, run.meta)
    if images is not None:
        kind, examples = "image", images.uris(loaded.rows_for(ids))
    else:
        kind, examples = "text", loaded.texts_for(ids)
    tasks = tasks_for(rows, examples, kind=kind)
    config = label_config(run.classes, kind=kind)
    atomic_write_text(out, json.dumps(tasks, ensure_ascii=False, indent=1) + "\n")
    atomic_write_text(config_path, config)
    print(f"wrote {len(tasks)} task(s) to {out} and the labelling config {config_path}")
    if client is not None:
        project = client.create_project(args.title or f"datacarto: {run.path.name}", config)
        n = client.import_tasks(project, tasks)
        print(f"created project {project} on {client.url} with {n} task(s): "
              f"{client.url}/projects/{project}")
    return 0


def import_labelstudio(args: argparse.Namespace) -> int:
    from ..review.decisions import LOG_NAME, REVIEW_DIR, DecisionLog
    from ..run import load

    client = _client(args)
    if len(args.paths) > 2:
        raise InputError("import labelstudio: give EXPORT.json RUN, or RUN with --url/--token/--project.")
    if len(args.paths) == 2 and client is not None:
        raise InputError("import labelstudio: give either EXPORT.json or --url, not both.")
    if len(args.paths) == 1 and client is None:
        raise InputError("import labelstudio: give EXPORT.json RUN, or RUN with --url/--token/--project.")
    if client is not None and args.project is None:
        raise InputError(f"--url {args.url} needs --project ID (the project's id on the server).")
    run = load(args.paths[-1])
    if client is None:
        source = args.paths[0]
        try:
            export = json.loads(Path(source).read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise InputError(f"{source}: no such file") from err
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"{source}: not a JSON file ({err}).") from err
    else:
        source = f"{client.url} project {args.project}"
        export = client.export(args.project)
    log = DecisionLog(run.path / REVIEW_DIR / LOG_NAME).load()
    labels = _run_labels(run)
    result = decisions_from_export(export, labels=labels, classes=[*run.classes, *log.added],
                                   source=str(source))
    fresh = [d for d in result.decisions if not _same(log.latest.get(str(d["id"])), d)]
    if fresh:
        log.append_batch(fresh, source=SOURCE)
    print(f"{source}: {result.summary()}; {len(fresh)} new, appended to {log.path}")
    return 0


def _run_labels(run: Any) -> dict[str, str]:
    """``str(id)`` -> the given label name of every example of ``run``."""
    dynamics = run.dynamics(logits=False)
    names = np.asarray(run.classes, dtype=object)[np.asarray(dynamics.labels, dtype=np.int64)]
    return {str(i): str(n) for i, n in zip(np.asarray(dynamics.ids).tolist(), names)}


def _same(latest: dict[str, Any] | None, decision: dict[str, Any]) -> bool:
    """A repeated import of the same annotation adds nothing."""
    return latest is not None and latest.get("source") == SOURCE and all(
        latest.get(k) == decision.get(k) for k in ("action", "new_label", "labelstudio_annotation"))

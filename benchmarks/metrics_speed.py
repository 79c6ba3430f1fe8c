"""Metrics speed: datacarto vs allenai's per-example Python loop and vs a pandas groupby.

Case ``loop``: N in {10^5, 10^6} examples x 10 epochs x 3 classes are written through the
Recorder. Then:

* **datacarto**: ``datacarto.load(RUN).metrics()`` — every column (confidence, variability,
  correctness, forgetting, first-learned epoch, threshold closeness, AUM, entropy, mean loss,
  regions, label-error score / suggestion / flag) computed *from the store* (Parquet shards
  read inside the timing), in a fresh process; time (best of 3 calls) and that process's peak
  RSS (``getrusage``; interpreter and libraries included).
* **in-memory path** for reference: ``compute_metrics(run.dynamics())`` in a fresh process.
* **baseline** in this process: the approach of allenai/cartography's
  ``train_dy_filtering.py``, written here from the formulas (not copied): a Python loop over a
  dict ``{guid: {"gold": y, "logits": [[z_1..z_K] per epoch]}}`` with a per-example numpy
  softmax, giving confidence, variability, correctness (count), forgetfulness and threshold
  closeness. Building the dict is *not* timed (allenai reads it from JSON Lines, which is
  slower still), so the ratio is conservative; the baseline also computes 5 columns, datacarto 17.
  At 10^6 the baseline runs on the first 10^5 examples and is extrapolated linearly (it is a
  loop over examples: time is linear in N).

Goal: >= 100x faster than the baseline, 10^6 x 10 in under 5 s, peak memory under 2 GB.

Case ``cli``: a run of 10^6 examples x 10 epochs x 10 classes written through the Recorder, then
two whole processes, each timed from start to exit (interpreter start-up and imports
included), best of 3:

* **datacarto**: ``datacarto metrics RUN`` as a user types it (writes ``RUN/metrics.parquet``;
  the file is removed, untimed, before each repeat);
* **pandas baseline**: ``pd.read_parquet`` of each epoch's shard (columns id, label, gold_prob,
  pred), ``concat``, ``groupby("id")`` -> mean and population std (ddof=0) of gold_prob and mean
  of (pred == label): confidence, variability and correctness, nothing written.

The ratio is baseline time / datacarto time. Goal: ``datacarto metrics`` <= 2 s as a whole
process and >= 3x the pandas groupby. The datacarto that runs is the one ``python -m
datacarto`` imports, so ``PYTHONPATH=OTHER/src`` times another checkout with the same script.

Usage: ``python benchmarks/metrics_speed.py [--case all|loop|cli] [--sizes 1e5,1e6]``; the
default (both cases) writes ``benchmarks/results/metrics_speed.md``, one case alone
``benchmarks/results/metrics_speed_<case>.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from scale import cpu_s, fmt_n, load, machine, peak_rss_gb, write_synthetic_run  # noqa: E402

RESULTS = HERE / "results" / "metrics_speed.md"
EPOCHS, CLASSES = 10, 3
BASELINE_MAX = 100_000  # examples the baseline loop runs on; beyond, linear extrapolation
CLI_EPOCHS, CLI_CLASSES = 10, 10
GOAL_CLI_S, GOAL_CLI_RATIO = 2.0, 3.0


def numpy_softmax(z: list[float]) -> Any:
    x = np.asarray(z, dtype=np.float32)
    q = np.exp(x - x.max())
    return q / q.sum()


def torch_softmax(z: list[float]) -> Any:
    import torch

    return torch.nn.functional.softmax(torch.tensor(z), dim=-1)  # allenai's choice of softmax


def allenai_style_metrics(train_dy: dict[Any, dict[str, Any]],
                          softmax: Any = numpy_softmax) -> dict[str, dict[Any, float]]:
    """The per-example loop of allenai/cartography, from the formulas of Swayamdipta et al.

    For every example: softmax of each epoch's logits, the gold-label probability p_e and
    whether argmax == gold; confidence = mean p_e, variability = population std of p_e,
    correctness = number of correct epochs, forgetfulness = learned -> forgotten transitions
    (1000 when never learned), threshold closeness = mu (1 - mu).
    """
    confidence: dict[Any, float] = {}
    variability: dict[Any, float] = {}
    correctness: dict[Any, float] = {}
    forgetfulness: dict[Any, float] = {}
    threshold_closeness: dict[Any, float] = {}
    for guid, record in train_dy.items():
        gold = record["gold"]
        gold_probs = []
        learned = []
        for epoch_logits in record["logits"]:
            q = softmax(epoch_logits)
            gold_probs.append(float(q[gold]))
            learned.append(int(np.argmax(epoch_logits)) == gold)
        mu = float(np.mean(gold_probs))
        confidence[guid] = mu
        variability[guid] = float(np.std(gold_probs))
        correctness[guid] = sum(learned)
        forgets = sum(1 for prev, cur in zip(learned, learned[1:]) if prev and not cur)
        forgetfulness[guid] = forgets if any(learned) else 1000
        threshold_closeness[guid] = mu * (1.0 - mu)
    return {"confidence": confidence, "variability": variability, "correctness": correctness,
            "forgetfulness": forgetfulness, "threshold_closeness": threshold_closeness}


def child(argv: list[str]) -> dict[str, Any]:
    if argv[0] == "pandas":  # the baseline process of the cli case: nothing but pandas
        pandas_groupby(Path(argv[1]))
        return {}
    import datacarto as dc
    from datacarto.metrics import compute_metrics

    kind, run_dir = argv
    out: dict[str, Any] = {"rss_after_import_gb": peak_rss_gb(), "load_start": load()}
    run = dc.load(run_dir)
    times, cpus = [], []
    for _ in range(3):
        c0, t0 = cpu_s(), time.perf_counter()
        if kind == "stream":
            frame = run.metrics()
        elif kind == "same5":
            frame = same_five_columns(run)
        else:
            frame = compute_metrics(run.dynamics())
        times.append(time.perf_counter() - t0)
        cpus.append(cpu_s() - c0)
        del frame
    best = int(np.argmin(times))
    out.update(first_s=times[0], best_s=times[best], best_cpu_s=cpus[best],
               peak_rss_gb=peak_rss_gb())
    return out


def same_five_columns(run: Any) -> dict[str, Any]:
    """The baseline's five columns, from the store, with datacarto's public array functions."""
    import datacarto as dc

    dyn = run.dynamics(logits=False)  # id, label, gold_prob, pred, ... but no full logits
    conf = dc.confidence(dyn.gold_prob)
    correct = dyn.pred == dyn.labels[:, None]
    return {"confidence": conf, "variability": dc.variability(dyn.gold_prob),
            "correctness": correct.sum(axis=1), "forgetting": dc.forgetting_events(correct),
            "threshold_closeness": dc.threshold_closeness(conf)}


def spawn(kind: str, run_dir: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", kind,
                           str(run_dir)], capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def baseline(run_dir: Path, n_max: int) -> dict[str, Any]:
    """Time the allenai-style loop on the first ``n_max`` examples; check it against datacarto."""
    import datacarto as dc

    dyn = dc.load(run_dir).dynamics()
    n = min(n_max, dyn.n_examples)
    assert dyn.logits is not None
    logits = dyn.logits[:n].tolist()
    labels = dyn.labels[:n].tolist()
    ids = dyn.ids[:n].tolist()
    train_dy = {guid: {"gold": y, "logits": z} for guid, y, z in zip(ids, labels, logits)}
    del logits
    load_start = load()
    c0, t0 = cpu_s(), time.perf_counter()
    result = allenai_style_metrics(train_dy)
    seconds = time.perf_counter() - t0
    cpu = cpu_s() - c0
    torch_seconds = None
    try:
        import torch

        torch.set_num_threads(1)
        t0 = time.perf_counter()
        allenai_style_metrics(train_dy, torch_softmax)
        torch_seconds = time.perf_counter() - t0
    except ImportError:
        pass
    # the two agree (float32 softmax in the loop: within 1e-6)
    ours = dc.compute_metrics(dyn)
    conf = np.array([result["confidence"][g] for g in ids])
    var = np.array([result["variability"][g] for g in ids])
    corr = np.array([result["correctness"][g] for g in ids])
    agree = {"confidence": float(np.abs(conf - ours["confidence"].to_numpy()[:n]).max()),
             "variability": float(np.abs(var - ours["variability"].to_numpy()[:n]).max()),
             "correctness": float(np.abs(corr / dyn.n_epochs - ours["correctness"].to_numpy()[:n]).max())}
    return {"n_timed": n, "seconds": seconds, "cpu_s": cpu, "load_start": load_start,
            "torch_seconds": torch_seconds,
            "per_example_us": seconds / n * 1e6, "agree": agree}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=["all", "loop", "cli"], default="all",
                        help="loop: vs the allenai-style loop; cli: `datacarto metrics` vs pandas")
    parser.add_argument("--sizes", default="1e5,1e6", help="example counts of the loop case")
    parser.add_argument("--cli-examples", default="1e6", help="example count of the cli case")
    parser.add_argument("--tmp", default=tempfile.gettempdir())
    parser.add_argument("--out", help="results file (default: benchmarks/results/metrics_speed"
                                      "[_CASE].md)")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    env_line = machine()
    print(env_line, flush=True)
    sections = []
    if args.case in ("all", "loop"):
        sections.append(render(loop_case([int(float(s)) for s in args.sizes.split(",")], args.tmp)))
    if args.case in ("all", "cli"):
        sections.append(render_cli(cli_case(int(float(args.cli_examples)), args.tmp)))
    report = "\n".join(["# Metrics speed (`benchmarks/metrics_speed.py`)", "",
                        f"{datetime.date.today().isoformat()}; {env_line}.", "", *sections])
    print(report)
    from datacarto.store import atomic_write_text

    out = Path(args.out or (RESULTS if args.case == "all" else
                            RESULTS.with_name(f"metrics_speed_{args.case}.md")))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, report)
    return 0


def loop_case(sizes: list[int], tmp: str) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix=f"datacarto-speed-{n}-", dir=tmp))
        try:
            print(f"n={fmt_n(n)}: recording ...", flush=True)
            write_synthetic_run(work / "run", n, EPOCHS, CLASSES, batch=4096)
            stream = spawn("stream", work / "run")
            print(f"  datacarto {stream['best_s']:.2f} s, peak {stream['peak_rss_gb']:.2f} GB", flush=True)
            same5 = spawn("same5", work / "run")
            print(f"  datacarto, same 5 columns {same5['best_s']:.2f} s", flush=True)
            memory = spawn("memory", work / "run")
            print(f"  in-memory {memory['best_s']:.2f} s, peak {memory['peak_rss_gb']:.2f} GB", flush=True)
            base = baseline(work / "run", BASELINE_MAX)
            base["estimate_s"] = base["seconds"] * n / base["n_timed"]
            if base["torch_seconds"] is not None:
                base["torch_estimate_s"] = base["torch_seconds"] * n / base["n_timed"]
            print(f"  baseline {base['estimate_s']:.1f} s ({'measured' if base['n_timed'] == n else 'extrapolated from ' + fmt_n(base['n_timed'])})",
                  flush=True)
            rows.append({"n": n, "stream": stream, "same5": same5, "memory": memory,
                         "baseline": base})
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


# --------------------------------------------------------------------------- cli case
def pandas_groupby(run_dir: Path) -> Any:
    """The plain-pandas baseline: confidence, variability, correctness by ``groupby("id")``."""
    import pandas as pd

    shards = sorted((Path(run_dir) / "epochs").glob("epoch-*.parquet"))
    frame = pd.concat([pd.read_parquet(p, columns=["id", "label", "gold_prob", "pred"])
                       for p in shards], ignore_index=True)
    frame["correct"] = frame["pred"] == frame["label"]
    by_id = frame.groupby("id", sort=True)
    return pd.DataFrame({"confidence": by_id["gold_prob"].mean(),
                         "variability": by_id["gold_prob"].std(ddof=0),
                         "correctness": by_id["correct"].mean()})


def time_process(argv: list[str], *, before: Any = None, repeats: int = 3) -> dict[str, Any]:
    """Wall time of a whole process from start to exit, best of ``repeats``.

    No peak RSS here: a child's ``ru_maxrss`` starts from the parent's resident size at fork
    (Linux carries it over the exec), and this parent holds the synthetic run's generator.
    """
    walls, loads = [], []
    for _ in range(repeats):
        if before is not None:
            before()  # untimed
        loads.append(load())
        t0 = time.perf_counter()
        proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return {"best_s": min(walls), "all_s": walls, "load_start": loads}


def cli_case(n: int, tmp: str) -> dict[str, Any]:
    import datacarto

    # which checkout runs (PYTHONPATH=OTHER/src): shown here, not written into the results
    print(f"datacarto {datacarto.__version__} from {Path(datacarto.__file__).parent}", flush=True)
    work = Path(tempfile.mkdtemp(prefix=f"datacarto-cli-speed-{n}-", dir=tmp))
    run_dir = work / "run"
    try:
        print(f"cli case, n={fmt_n(n)} x {CLI_EPOCHS} epochs x {CLI_CLASSES} classes: recording ...",
              flush=True)
        write_synthetic_run(run_dir, n, CLI_EPOCHS, CLI_CLASSES)
        output = run_dir / "metrics.parquet"
        ours = time_process([sys.executable, "-m", "datacarto", "metrics", str(run_dir)],
                            before=lambda: output.unlink(missing_ok=True))
        print(f"  datacarto metrics RUN {ours['best_s']:.2f} s", flush=True)
        base = time_process([sys.executable, str(Path(__file__).resolve()), "--child",
                             "pandas", str(run_dir)])
        print(f"  pandas groupby {base['best_s']:.2f} s", flush=True)
        import pandas as pd

        got = pd.read_parquet(output, columns=["id", "confidence", "variability", "correctness"])
        want = pandas_groupby(run_dir).loc[got["id"]]
        agree = {c: float(np.abs(got[c].to_numpy() - want[c].to_numpy()).max())
                 for c in ("confidence", "variability", "correctness")}
        return {"n": n, "datacarto": ours, "pandas": base, "agree": agree}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def render_cli(r: dict[str, Any]) -> str:
    d, b = r["datacarto"], r["pandas"]
    ratio = b["best_s"] / d["best_s"]
    met = d["best_s"] <= GOAL_CLI_S and ratio >= GOAL_CLI_RATIO

    def cell(t: dict[str, Any]) -> str:
        return f"{t['best_s']:.2f} s (runs: {', '.join(f'{s:.2f}' for s in t['all_s'])})"

    lines = [
        f"## `datacarto metrics RUN` vs a pandas groupby, {fmt_n(r['n'])} x {CLI_EPOCHS} x "
        f"{CLI_CLASSES}", "",
        f"A synthetic run of {r['n']:,} examples x {CLI_EPOCHS} epochs x {CLI_CLASSES} classes "
        "written through the `Recorder` (full logits stored). Each timing is a whole process "
        "from start to exit (interpreter start-up and imports included), best of 3. "
        "**datacarto** = `python -m datacarto metrics RUN` with the default "
        "output (`RUN/metrics.parquet`, removed untimed before each repeat), every metric "
        "column. **pandas** = one process that reads each epoch's shard with `pd.read_parquet` "
        "(columns id, label, gold_prob, pred), concatenates them and takes `groupby(\"id\")` "
        "mean and std (ddof=0) of gold_prob and the mean of pred == label (3 columns, nothing "
        "written).", "",
        "| N x epochs x classes | `datacarto metrics RUN` | pandas groupby "
        "| ratio (pandas / datacarto) |", "|---|---|---|---|",
        f"| {fmt_n(r['n'])} x {CLI_EPOCHS} x {CLI_CLASSES} | {cell(d)} | {cell(b)} | "
        f"**{ratio:.2f}x** |", "",
        "Load average (1 min) at the start of each repeat: datacarto " +
        ", ".join(f"{x:.2f}" for x in d["load_start"]) + "; pandas " +
        ", ".join(f"{x:.2f}" for x in b["load_start"]) + ".", "",
        "pandas and datacarto agree (max |difference|): " +
        ", ".join(f"{k} {v:.1e}" for k, v in r["agree"].items()) + ".", "",
        f"Goal: `datacarto metrics` <= {GOAL_CLI_S:g} s as a whole process and >= "
        f"{GOAL_CLI_RATIO:g}x the pandas groupby: {'met' if met else 'not met'}.", ""]
    return "\n".join(lines)


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "## datacarto vs the allenai-style loop", "",
        f"Synthetic runs of N examples x {EPOCHS} epochs x {CLASSES} classes written through the "
        "`Recorder`. **datacarto** = `load(RUN).metrics()`: all 17 columns computed from the "
        "Parquet store (reading included), best of 3 calls in a fresh process; peak memory = "
        "that process's peak RSS (`getrusage`, interpreter and libraries included). "
        "**in-memory** = `compute_metrics(run.dynamics())`, the same result holding every "
        "epoch's arrays. **baseline** = allenai/cartography's approach (a Python loop over a dict "
        "of per-example logit lists with a per-example softmax; written from the formulas) for "
        "5 columns, timed without building the dict; once with a numpy softmax per example-epoch, "
        "once with a torch softmax per example-epoch as allenai's code does "
        "(`torch.set_num_threads(1)`).", "",
        "| N | datacarto | peak RSS | in-memory path | peak RSS | baseline, numpy softmax "
        "| speed-up | baseline, torch softmax (as allenai) | speed-up | speed-up in CPU time "
        "(numpy baseline) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, m, b = r["stream"], r["memory"], r["baseline"]
        how = ("measured" if b["n_timed"] == r["n"] else
               f"timed on the first {fmt_n(b['n_timed'])} examples ({b['seconds']:.1f} s), "
               "extrapolated linearly")
        torch_t = b.get("torch_estimate_s")
        torch_cells = (f"{torch_t:.1f} s | **{torch_t / s['best_s']:.0f}x**" if torch_t
                       else "— | —")
        base_cpu = b["cpu_s"] * r["n"] / b["n_timed"]
        lines.append(f"| {fmt_n(r['n'])} x {EPOCHS} | {s['best_s']:.2f} s (first call "
                     f"{s['first_s']:.2f} s; {s['best_cpu_s']:.2f} CPU-s) | {s['peak_rss_gb']:.2f} GB | "
                     f"{m['best_s']:.2f} s | {m['peak_rss_gb']:.2f} GB | {b['estimate_s']:.1f} s "
                     f"({how}) | **{b['estimate_s'] / s['best_s']:.0f}x** | {torch_cells} | "
                     f"{base_cpu / s['best_cpu_s']:.0f}x |")
    lines += ["", "Same five columns as the baseline (confidence, variability, correctness count, "
              "forgetting, threshold closeness), read from the store (`run.dynamics(logits=False)`, "
              "reading included) and computed with datacarto's public array functions, best of 3 "
              "in a fresh process:", "",
              "| N | datacarto, 5 columns | peak RSS | baseline, numpy softmax | speed-up "
              "| baseline, torch softmax | speed-up |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        f, b = r["same5"], r["baseline"]
        torch_t = b.get("torch_estimate_s")
        lines.append(f"| {fmt_n(r['n'])} x {EPOCHS} | {f['best_s']:.2f} s | {f['peak_rss_gb']:.2f} GB "
                     f"| {b['estimate_s']:.1f} s | **{b['estimate_s'] / f['best_s']:.0f}x** | "
                     + (f"{torch_t:.1f} s | **{torch_t / f['best_s']:.0f}x** |" if torch_t else "— | — |"))
    lines += ["", "Load average (2 cores, shared machine) at the start of each measurement: " +
              "; ".join(f"N = {fmt_n(r['n'])}: datacarto {r['stream']['load_start']:.1f}, "
                        f"baseline {r['baseline']['load_start']:.1f}" for r in rows) + ".",
              "", "Baseline agrees with datacarto on the timed examples (max |difference|): " +
              "; ".join(f"N = {fmt_n(r['n'])}: " + ", ".join(f"{k} {v:.1e}" for k, v in
                                                            r["baseline"]["agree"].items())
                        for r in rows) + ".",
              "", "Goal: >= 100x faster than the baseline; 10^6 x 10 in under 5 s; peak memory "
              "under 2 GB.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

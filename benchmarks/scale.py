"""Scale benchmark: 10^6 and 10^7 examples x 10 epochs x 10 classes.

For each size, a synthetic run is written through the Recorder, then:

* recording throughput: example-rows (examples x epochs) per second spent inside
  ``Recorder.update`` / ``end_epoch`` (the synthetic logits are made outside that time), and the
  recording process's peak RSS;
* metrics on the local engine: ``run.metrics()`` in a fresh process, its time and peak RSS;
* metrics on Dask: ``run.metrics(engine="dask")`` against a ``LocalCluster`` of 2 worker
  processes x 1 thread, the time (cluster start-up excluded), the client's peak RSS and each
  worker's; the frame is checked equal to the local engine's;
* the static data map of the 10^6-example run (``plot_data_map`` to PNG), its time.

Memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak resident set size, includes the
interpreter and the imported libraries) of a fresh subprocess per measurement. Runs are written
under ``--tmp`` (default: the system temp dir) and deleted afterwards.

Goals on 2 cores: recording >= 10^6 example-rows/s; metrics of 10^7 x 10 in < 60 s and < 4 GB;
map of 10^6 points in < 15 s.

Usage::

    python benchmarks/scale.py                      # 10^6 and 10^7 (~10 GB of disk, ~15 min)
    python benchmarks/scale.py --sizes 1e6 --no-dask
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "scale.md"
GOALS = {"record_rows_per_s": 1e6, "metrics_1e7_s": 60.0, "metrics_1e7_gb": 4.0, "map_1e6_s": 15.0}


def peak_rss_gb() -> float:
    """Peak resident set size of this process so far, in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def cpu_s() -> float:
    """CPU seconds (user + system, all threads) this process has used so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


# --------------------------------------------------------------------------- synthetic runs
def write_synthetic_run(path: Path, n: int, epochs: int, k: int, *, seed: int = 0,
                        batch: int = 8192, noise: float = 0.05) -> dict[str, float]:
    """Record a synthetic run through the Recorder, as a shuffled training loop would.

    Each example has an ease (final gold margin) and a learning speed; ``noise`` of the labels
    are flipped, so the model "learns" another class for them (label errors to find). The
    logits of a batch are a slice of a fixed noise pool plus that margin on the learned class:
    cheap to make, so the time inside the Recorder dominates. Returns timings.
    """
    import datacarto as dc

    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    labels = true.copy()
    flip = rng.random(n) < noise
    labels[flip] = (true[flip] + rng.integers(1, k, int(flip.sum()))) % k
    # most examples easy, a quarter ambiguous, a few hard: the shape of a real data map
    ease = rng.normal(6.0, 3.0, n).astype(np.float32)
    speed = rng.gamma(2.0, 4.0, n).astype(np.float32)
    pool = rng.normal(0.0, 1.0, size=(1 << 20, k)).astype(np.float32)
    mask = (1 << 20) - 1
    in_recorder = 0.0
    recorder_cpu = 0.0
    start = time.perf_counter()
    with dc.Recorder(path, num_classes=k, seed=seed, meta={"synthetic": True}) as rec:
        for e in range(epochs):
            progress = 1.0 - np.exp(-speed * (e + 1) / epochs * 3.0)  # (n,) learning curve
            order = rng.permutation(n)
            for s in range(0, n, batch):
                rows = order[s:s + batch]
                z = pool[(rows * 7919 + e * 104729) & mask]
                z[np.arange(len(rows)), true[rows]] += ease[rows] * progress[rows]
                t0, c0 = time.perf_counter(), cpu_s()
                rec.update(rows, z, labels[rows])
                in_recorder += time.perf_counter() - t0
                recorder_cpu += cpu_s() - c0
            t0, c0 = time.perf_counter(), cpu_s()
            rec.end_epoch()
            in_recorder += time.perf_counter() - t0
            recorder_cpu += cpu_s() - c0
    return {"recorder_s": in_recorder, "recorder_cpu_s": recorder_cpu,
            "wall_s": time.perf_counter() - start}


def du_gb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e9


# --------------------------------------------------------------------------- child processes
def child(argv: list[str]) -> dict[str, Any]:
    """One measurement in a fresh process; prints a JSON line."""
    kind, run_dir = argv[0], Path(argv[1])
    out: dict[str, Any] = {"load_start": load()}
    if kind == "record":
        n, epochs, k = int(argv[2]), int(argv[3]), int(argv[4])
        out.update(write_synthetic_run(run_dir, n, epochs, k))
        out["rows"] = n * epochs
    elif kind == "metrics":
        import datacarto as dc

        out["rss_after_import_gb"] = peak_rss_gb()
        run = dc.load(run_dir)
        c0, t0 = cpu_s(), time.perf_counter()
        frame = run.metrics()
        out["seconds"] = time.perf_counter() - t0
        out["cpu_s"] = cpu_s() - c0
        out["peak_rss_gb"] = peak_rss_gb()
        out["n"] = len(frame)
        out["label_errors"] = int(frame["is_label_error"].sum())
        out["regions"] = frame["region"].value_counts().to_dict()
        if len(argv) > 2:  # keep what the map and the dask check need
            frame[["id", "confidence", "variability", "correctness", "region", "label",
                   "is_label_error", "suggested_label"]].to_parquet(argv[2])
    elif kind == "dask":
        import pandas as pd
        from distributed import Client, LocalCluster

        import datacarto as dc

        t0 = time.perf_counter()
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=":0", silence_logs=40) as cluster, \
                Client(cluster) as client:
            # a running cluster has its libraries imported already: warm the workers up
            client.run(lambda: __import__("datacarto.engine") and __import__("pandas"))
            out["cluster_start_s"] = time.perf_counter() - t0
            out["rss_after_start_gb"] = peak_rss_gb()

            def worker_cpu() -> float:
                return sum(client.run(lambda: sum(__import__("resource").getrusage(0)[:2])).values())

            run = dc.load(run_dir)
            c0, w0, t0 = cpu_s(), worker_cpu(), time.perf_counter()
            frame = run.metrics(engine="dask", scheduler=client)
            out["seconds"] = time.perf_counter() - t0
            out["cpu_s"] = cpu_s() - c0
            out["worker_cpu_s"] = worker_cpu() - w0
            out["peak_rss_gb"] = peak_rss_gb()  # before the comparison below reads more
            out["worker_peak_gb"] = sorted(
                v * 1024 / 1e9 for v in client.run(
                    lambda: __import__("resource").getrusage(0).ru_maxrss).values())
        if len(argv) > 2:
            local = pd.read_parquet(argv[2])
            cols = list(local.columns)
            got = frame[cols]
            floats = ["confidence", "variability", "correctness"]
            out["max_abs_diff"] = float(np.max(np.abs(got[floats].to_numpy() - local[floats].to_numpy())))
            out["same_flags"] = bool((got["is_label_error"].to_numpy() == local["is_label_error"].to_numpy()).all()
                                     and (got["region"].to_numpy() == local["region"].to_numpy()).all())
    elif kind == "map":
        import pandas as pd

        import datacarto as dc

        frame = pd.read_parquet(argv[2])
        c0, t0 = cpu_s(), time.perf_counter()
        dc.plot_data_map(frame["confidence"].to_numpy(), frame["variability"].to_numpy(),
                         frame["correctness"].to_numpy(), regions=frame["region"].to_numpy(),
                         out=run_dir / "datamap.png", labels=frame["label"].to_numpy())
        out["seconds"] = time.perf_counter() - t0
        out["cpu_s"] = cpu_s() - c0
        out["n"] = len(frame)
        out["png_mb"] = (run_dir / "datamap.png").stat().st_size / 1e6
    out.setdefault("peak_rss_gb", peak_rss_gb())
    out["load_end"] = load()
    out["process_cpu_s"] = cpu_s()
    return out


def spawn(*args: str, timeout: float = 3600) -> dict[str, Any]:
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- main
def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import pyarrow

    import datacarto

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{cpu}, {os.cpu_count()} cores visible; Python {platform.python_version()}, "
            f"numpy {np.__version__}, pyarrow {pyarrow.__version__}, datacarto "
            f"{datacarto.__version__}; load average at start {load[0]:.2f}")


def fmt_n(n: int) -> str:
    e = int(round(np.log10(n)))
    return f"10^{e}" if 10**e == n else f"{n:,}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1e6,1e7", help="comma-separated example counts")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--tmp", default=tempfile.gettempdir(), help="where runs are written")
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0

    sizes = [int(float(s)) for s in args.sizes.split(",")]
    env_line = machine()
    print(env_line, flush=True)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix=f"datacarto-scale-{n}-", dir=args.tmp))
        run_dir = work / "run"
        frame_file = work / "metrics.parquet"
        try:
            free = shutil.disk_usage(work).free / 1e9
            need = n * args.epochs * (args.classes * 4 + 30) * 1.3 / 1e9
            if free < need:
                raise SystemExit(f"{work}: {free:.1f} GB free, need about {need:.1f} GB for n={n}")
            print(f"n={fmt_n(n)}: recording ...", flush=True)
            rec = spawn("record", str(run_dir), str(n), str(args.epochs), str(args.classes))
            row: dict[str, Any] = {"n": n, "record": rec, "disk_gb": du_gb(run_dir)}
            print(f"  {rec['rows'] / rec['recorder_s']:,.0f} rows/s in the Recorder "
                  f"({rec['recorder_cpu_s']:.0f} CPU-s), peak {rec['peak_rss_gb']:.2f} GB, "
                  f"{row['disk_gb']:.2f} GB on disk, load {rec['load_start']:.1f}", flush=True)
            print("  metrics (local) ...", flush=True)
            row["local"] = spawn("metrics", str(run_dir), str(frame_file))
            print(f"  {row['local']['seconds']:.1f} s ({row['local']['cpu_s']:.0f} CPU-s), peak "
                  f"{row['local']['peak_rss_gb']:.2f} GB, load {row['local']['load_start']:.1f}",
                  flush=True)
            if not args.no_dask:
                print("  metrics (dask, 2 workers) ...", flush=True)
                row["dask"] = spawn("dask", str(run_dir), str(frame_file))
                print(f"  {row['dask']['seconds']:.1f} s (client {row['dask']['cpu_s']:.0f} + workers "
                      f"{row['dask']['worker_cpu_s']:.0f} CPU-s), client peak "
                      f"{row['dask']['peak_rss_gb']:.2f} GB, workers "
                      f"{row['dask']['worker_peak_gb']}", flush=True)
            if n <= 2_000_000:
                row["map"] = spawn("map", str(work), str(frame_file))
                print(f"  map {row['map']['seconds']:.1f} s", flush=True)
            rows.append(row)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    report = render(rows, args, env_line)
    print(report)
    from datacarto.store import atomic_write_text

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, report)
    return 0


def render(rows: list[dict[str, Any]], args: argparse.Namespace, env_line: str) -> str:
    lines = [
        "# Scale benchmark (`benchmarks/scale.py`)", "",
        f"{datetime.date.today().isoformat()}; {env_line}.", "",
        f"Synthetic runs of N examples x {args.epochs} epochs x {args.classes} classes written "
        "through the `Recorder` (shuffled batches of 8,192, full logits stored, 5 % flipped "
        "labels). Each measurement runs in a fresh process: wall time, CPU time (user + system, "
        "all threads; on 2 otherwise idle cores the wall time would be about half of it for the "
        "2-thread local engine) and peak RSS (`getrusage`: interpreter and libraries included). "
        "The machine is shared: the load average at the start of each measurement is given. "
        "Dask: a `LocalCluster` of 2 worker processes x 1 thread on the same machine, started "
        "and warmed up (imports) before the timing; CPU time = client + workers.", "",
        "| N | step | wall | CPU | peak RSS | load | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        n = fmt_n(r["n"])
        rec = r["record"]
        lines.append(
            f"| {n} | recording | {rec['recorder_s']:.1f} s in the Recorder ({rec['wall_s']:.0f} s "
            f"with the synthetic data) | {rec.get('recorder_cpu_s', float('nan')):.1f} s | "
            f"{rec['peak_rss_gb']:.2f} GB | {rec['load_start']:.1f} | "
            f"**{rec['rows'] / rec['recorder_s']:,.0f} example-rows/s**; {r['disk_gb']:.2f} GB on "
            "disk; RSS includes the generator's arrays |")
        loc = r["local"]
        lines.append(f"| {n} | metrics, local | **{loc['seconds']:.1f} s** | {loc['cpu_s']:.1f} s | "
                     f"**{loc['peak_rss_gb']:.2f} GB** | {loc['load_start']:.1f} | "
                     f"{loc['label_errors']:,} flagged |")
        dask = r.get("dask")
        if dask:
            workers = ", ".join(f"{w:.2f}" for w in dask["worker_peak_gb"])
            same = (f"equal to local: max abs diff {dask['max_abs_diff']:.0e}, regions and flags "
                    f"identical: {dask['same_flags']}" if "max_abs_diff" in dask else "")
            lines.append(f"| {n} | metrics, dask | {dask['seconds']:.1f} s | "
                         f"{dask['cpu_s']:.1f} + {dask['worker_cpu_s']:.1f} s | {dask['peak_rss_gb']:.2f} GB "
                         f"client; {workers} GB workers | {dask['load_start']:.1f} | {same} |")
        if "map" in r:
            mp = r["map"]
            lines.append(f"| {n} | static data map (PNG) | **{mp['seconds']:.1f} s** | "
                         f"{mp['cpu_s']:.1f} s | {mp['peak_rss_gb']:.2f} GB | {mp['load_start']:.1f} | "
                         f"{mp['png_mb']:.1f} MB file |")
    lines += ["", "Regions: " + "; ".join(f"N = {fmt_n(r['n'])}: {r['local']['regions']}" for r in rows) + ".",
              "", "Goals (2 cores): recording >= 10^6 example-rows/s; metrics of 10^7 x 10 in "
              "< 60 s and < 4 GB; map of 10^6 points in < 15 s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

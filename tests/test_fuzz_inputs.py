"""Fuzz every command with bad inputs: data files, run directories, run.json fields, output
paths, ids and labels.

Each case runs the CLI in-process in a fresh copy of a small workspace (a data file, a run made
by ``datacarto run`` with row-number ids and one with an id column) and must end with:

* exit code 2 and exactly one line on stderr, ``datacarto: error: ...``, naming the file, row,
  column or field (the case's ``names`` token);
* no traceback (no exception escaping ``main``);
* no file written, changed or removed anywhere in the workspace (inputs byte-identical).

The cases are generated with a fixed seed and bounded in number (the whole module runs in well
under a minute on 2 cores). The tally (tried / clean error / traceback / silent wrong / unclear
message) is printed at the end of the module, and by ``python tests/test_fuzz_inputs.py``.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datacarto.cli import main

SEED = 12
N = 40
DATA = "data.csv"
RUN = "run"  # row-number ids, made by `datacarto run`
RUN_ID = "run_id"  # --id-column id
READERS = ("metrics", "map", "flag", "select", "report", "review", "export")


# ------------------------------------------------------------------------------ workspace
def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    x1, x2 = rng.normal(size=N), rng.normal(size=N)
    label = np.where(x1 + 0.5 * rng.normal(size=N) > 0, "pos", "neg")
    return pd.DataFrame({"id": [f"{i:05d}" for i in range(N)],
                         "text": [f"example {i}, with a comma" for i in range(N)],
                         "label": label, "x1": np.round(x1, 3), "x2": np.round(x2, 3),
                         "zip": [f"{rng.integers(0, 999):05d}" for _ in range(N)]})


def _cli(argv: list[str]) -> tuple[int | None, str, str, str | None]:
    """(exit code, stdout, stderr, traceback text if an exception escaped main)."""
    out, err = io.StringIO(), io.StringIO()
    tb = None
    code: int | None = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code) if isinstance(exc.code, int) else 2
        except BaseException:  # noqa: BLE001 - a traceback is what the fuzz looks for
            tb = traceback.format_exc()
    return code, out.getvalue(), err.getvalue(), tb


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-base")
    _frame().to_csv(root / DATA, index=False)
    here = os.getcwd()
    os.chdir(root)
    try:
        for out, extra in ((RUN, []), (RUN_ID, ["--id-column", "id"])):
            code, _, err, tb = _cli(["run", DATA, "--label-column", "label", "--feature-columns",
                                     "x1,x2", "--out", out, "--epochs", "3", "--heldout", "none",
                                     "-q", *extra])
            assert code == 0 and tb is None, (err, tb)
    finally:
        os.chdir(here)
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under root: file -> sha256, link -> target, directory -> 'dir'."""
    state = {}
    for base_dir, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(base_dir) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                state[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return state


# ---------------------------------------------------------------------------------- cases
@dataclass
class Case:
    name: str
    setup: Callable[[Path], list[str]]  # prepares the workspace, returns argv
    names: str  # a token the error line must contain (file, row, column or field)
    group: str = ""
    #: random mutations may be harmless: exit 0 is then fine if only these outputs were written
    may_succeed: tuple[str, ...] = ()


@dataclass
class Tally:
    tried: int = 0
    clean: int = 0
    traceback: int = 0
    silent_wrong: int = 0
    unclear: int = 0
    harmless: int = 0  # random mutations that were harmless and ran to the end (counted in clean)
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"fuzz: tried {self.tried}, clean error {self.clean - self.harmless} (+ {self.harmless} "
                f"harmless random mutations that ran to the end), traceback {self.traceback}, "
                f"silent wrong {self.silent_wrong}, unclear message {self.unclear}")


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def _csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def bad_data_files(rng: random.Random) -> dict[str, tuple[Callable[[Path], Path], str]]:
    """name -> (make(root) -> path of the bad file, token the error must name)."""
    good = _csv_text(_frame())
    raw = good.encode()

    def make(name: str, data: bytes | str) -> Callable[[Path], Path]:
        return lambda root: _write(root / name, data)

    cut = rng.randint(20, len(raw) - 20)
    lines = good.splitlines(keepends=True)
    k = rng.randint(2, len(lines) - 2)
    files: dict[str, tuple[Callable[[Path], Path], str]] = {
        "empty": (make("empty.csv", b""), "empty.csv"),
        "header-only": (make("head.csv", lines[0]), "head.csv"),
        "latin1": (make("latin.csv", good.replace("example 3,", "exampl\xe9 3,").encode("latin-1")),
                   "latin.csv"),
        "truncated-gz": (make("cut.csv.gz", gzip.compress(raw)[: len(gzip.compress(raw)) // 2]),
                         "cut.csv.gz"),
        "truncated-bz2": (make("cut.csv.bz2", bz2.compress(raw)[: len(bz2.compress(raw)) // 2]),
                          "cut.csv.bz2"),
        "garbage-gz": (make("junk.csv.gz", bytes(rng.randrange(256) for _ in range(300))),
                       "junk.csv.gz"),
        "garbage-bz2": (make("junk.csv.bz2", b"BZh9" + bytes(rng.randrange(256) for _ in range(300))),
                        "junk.csv.bz2"),
        "duplicate-column": (make("dup.csv", good.replace("id,text,label,x1", "id,text,label,label", 1)),
                             "dup.csv"),
        "ragged-row": (make("ragged.csv", "".join(lines[:k]) + lines[k].rstrip("\n") + ",1,2,3\n"
                            + "".join(lines[k + 1:])), "ragged.csv"),
        "unclosed-quote": (make("quote.csv", "".join(lines[:k]) + '"' + "".join(lines[k:])), "quote.csv"),
        "directory": (lambda root: (root / "folder.csv").mkdir() or root / "folder.csv", "folder.csv"),
        "missing": (lambda root: root / "nothere.csv", "nothere.csv"),
        "garbage-parquet": (make("junk.parquet", b"PAR1" + bytes(rng.randrange(256) for _ in range(200))),
                            "junk.parquet"),
        "truncated-parquet": (lambda root: _truncated_parquet(root / "cut.parquet"), "cut.parquet"),
        "bad-jsonl": (make("bad.jsonl", '{"id": 1, "label": "pos"}\n{"id": 2, "lab\n'), "bad.jsonl"),
        "array-jsonl": (make("arr.jsonl", '{"id": 1, "label": "pos"}\n[1, 2]\n'), "arr.jsonl"),
        "duplicate-key-jsonl": (make("dk.jsonl", '{"id": 1, "label": "pos", "label": "neg"}\n'),
                                "dk.jsonl"),
        "blank-jsonl": (make("blank.jsonl", "\n\n  \n"), "blank.jsonl"),
        "deep-jsonl": (make("deep.jsonl", '{"a": ' + "[" * 100000 + "]" * 100000 + "}\n"), "deep.jsonl"),
        "unsupported-ext": (make("data.xlsx", b"PK\x03\x04"), "data.xlsx"),
    }
    return files


def _truncated_parquet(path: Path) -> Path:
    _frame().to_parquet(path, index=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def label_problems(rng: random.Random) -> dict[str, tuple[str, pd.DataFrame | str, list[str], str]]:
    """Files whose rows or labels `run` must refuse: name -> (file, content, extra args, token)."""
    f = _frame()
    out: dict[str, tuple[str, pd.DataFrame | str, list[str], str]] = {}
    reg = f.copy()
    reg["label"] = [round(rng.uniform(0, 100), 4) for _ in range(N)]
    out["regression-target"] = ("reg.csv", reg, [], "label")
    inf = f.copy()
    inf["label"] = [1.0, 2.0] * (N // 2)
    inf.loc[rng.randrange(N), "label"] = float("inf")
    out["inf-label"] = ("inf.csv", inf, [], "row")
    one = f.copy()
    one["label"] = "pos"
    out["single-class"] = ("one.csv", one, [], "label")
    empty = f.copy().astype(object)
    empty.loc[rng.randrange(N), "label"] = ""
    out["empty-label"] = ("el.csv", empty, [], "row")
    dup = f.copy()
    dup.loc[5, "id"] = dup.loc[3, "id"]
    out["duplicate-id"] = ("dupid.csv", dup, ["--id-column", "id"], "row")
    noid = f.copy().astype(object)
    noid.loc[7, "id"] = ""
    out["empty-id"] = ("noid.csv", noid, ["--id-column", "id"], "row 7")
    lst = "".join(json.dumps({"id": i, "label": ["a", "b"] if i == 4 else "pos" if i % 2 else "neg",
                              "x1": i, "x2": -i}) + "\n" for i in range(N))
    out["list-label-jsonl"] = ("lst.jsonl", lst, [], "row 4")
    out["no-label-column"] = ("nl.csv", f.drop(columns=["label"]), [], "label")
    out["no-feature-column"] = ("nf.csv", f, ["--feature-columns-override", "nope*"], "nope")
    return out


def run_json_mutations() -> dict[str, tuple[Callable[[dict], object], str]]:
    """name -> (mutate(meta) -> new meta or raw bytes, token the error must name)."""
    def setter(key: str, value: object) -> Callable[[dict], dict]:
        def f(meta: dict) -> dict:
            meta[key] = value
            return meta
        return f

    def extra(key: str, value: object) -> Callable[[dict], dict]:
        def f(meta: dict) -> dict:
            meta["extra"][key] = value
            return meta
        return f

    def drop(key: str) -> Callable[[dict], dict]:
        def f(meta: dict) -> dict:
            meta.pop(key)
            return meta
        return f

    return {
        "epochs-str": (setter("epochs", "abc"), "epochs"),
        "epochs-mixed": (setter("epochs", [1, "2", 3]), "epochs"),
        "epochs-zero": (setter("epochs", [0, 1, 2]), "epochs"),
        "epochs-bool": (setter("epochs", [True]), "epochs"),
        "epochs-unknown": (setter("epochs", [1, 2, 3, 9]), "9"),
        "classes-int": (setter("classes", 5), "classes"),
        "classes-one": (setter("classes", ["a"]), "classes"),
        "classes-numbers": (setter("classes", [1, 2]), "classes"),
        "classes-dup": (setter("classes", ["a", "a"]), "classes"),
        "num-classes": (setter("num_classes", "2"), "num_classes"),
        "shards-obj": (setter("shards", {"1": "epochs/epoch-00001.parquet"}), "shards"),
        "shards-list": (setter("shards", ["epochs/epoch-00001.parquet"]), "shards"),
        "shards-escape": (lambda m: {**m, "shards": {**m["shards"], "1": ["../data.csv"]}}, "shards"),
        "shards-absolute": (lambda m: {**m, "shards": {**m["shards"], "1": ["/etc/hostname"]}}, "shards"),
        "shards-missing": (lambda m: {**m, "shards": {k: v for k, v in m["shards"].items() if k != "2"}},
                           "shards"),
        "capture": (setter("capture", 3), "capture"),
        "id-type": (setter("id_type", "float"), "id_type"),
        "extra-list": (setter("extra", []), "extra"),
        "schema-str": (setter("schema_version", "1"), "schema_version"),
        "schema-new": (setter("schema_version", 99), "schema_version"),
        "no-format": (drop("format"), "run.json"),
        "no-classes": (drop("classes"), "classes"),
        "fingerprint-int": (setter("data_fingerprint", 5), "data_fingerprint"),
        "seed-str": (setter("seed", "x"), "seed"),
        "logits-stored-str": (setter("logits_stored", "yes"), "logits_stored"),
        "planned-epochs": (setter("planned_epochs", "many"), "planned_epochs"),
        "source-int": (extra("source", 5), "source"),
        "source-path-int": (extra("source", {"path": 5, "label_column": ["x"]}), "source"),
        "curve-str": (extra("curve", "x"), "curve"),
        "curve-bad-rows": (extra("curve", [{"epoch": "a", "heldout_acc": "b"}]), "curve"),
        "memorisation-str": (extra("memorisation_epoch", "x"), "memorisation_epoch"),
        "not-object": (lambda m: b"[1, 2, 3]", "run.json"),
        "truncated": (lambda m: json.dumps(m).encode()[:50], "run.json"),
        "empty": (lambda m: b"", "run.json"),
        "not-utf8": (lambda m: b'{"format": "\xff"}', "run.json"),
    }


def store_damage() -> dict[str, tuple[Callable[[Path], None], str]]:
    def shard(run: Path) -> Path:
        return run / "epochs" / "epoch-00002.parquet"

    def drop_logit_column(run: Path) -> None:
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(shard(run)).drop_columns(["logit_1"]), shard(run))

    return {
        "shard-missing": (lambda run: shard(run).unlink(), "epoch-00002.parquet"),
        "shard-garbage": (lambda run: shard(run).write_bytes(b"PAR1garbagePAR1"), "epoch-00002.parquet"),
        "shard-truncated": (lambda run: shard(run).write_bytes(shard(run).read_bytes()[:300]),
                            "epoch-00002.parquet"),
        "shard-is-dir": (lambda run: (shard(run).unlink(), shard(run).mkdir()), "epoch-00002.parquet"),
        "shard-other-table": (lambda run: pd.DataFrame({"a": [1]}).to_parquet(shard(run)),
                              "epoch-00002.parquet"),
        "shard-logit-column-dropped": (drop_logit_column, "epoch-00002.parquet"),
        "run-json-missing": (lambda run: (run / "run.json").unlink(), "run"),
        "run-is-file": (lambda run: (shutil.rmtree(run), run.write_text("x")), "run"),
    }


def reader_argv(command: str, run: str, *, data: str | None = None, out_tag: str = "o") -> list[str]:
    """argv of a command that reads RUN (and DATA), writing to a new file named after out_tag."""
    d = ["--data", data] if data else []
    if command == "metrics":
        return ["metrics", run, "-o", f"{out_tag}.csv"]
    if command == "map":
        return ["map", run, "-o", f"{out_tag}.png"]
    if command == "flag":
        return ["flag", run, *(d + ["--text-column", "text"] if data else []), "-o", f"{out_tag}.csv"]
    if command == "select":
        return ["select", run, "--region", "ambiguous", "--fraction", "0.5", *d, "-o",
                f"{out_tag}{Path(data).suffix if data and Path(data).suffix in ('.csv', '.tsv', '.jsonl', '.parquet') else '.csv'}"]
    if command == "report":
        return ["report", run, *d, "-o", f"{out_tag}.html", "-q"]
    if command == "review":
        suffix = "".join(Path(data).suffixes) if data else ".csv"
        return ["review", run, *d, "--export", f"{out_tag}{suffix or '.csv'}"]
    if command == "export":
        return ["export", "allenai", run, f"{out_tag}-dir"]
    raise AssertionError(command)


def cases(seed: int = SEED) -> list[Case]:
    rng = random.Random(seed)
    out: list[Case] = []
    # 1. bad data files, for `run` and for every command that reads DATA
    for name, (make, token) in bad_data_files(rng).items():
        def run_case(root: Path, make=make) -> list[str]:
            path = make(root)
            return ["run", path.name, "--label-column", "label", "--feature-columns", "x1,x2",
                    "--out", "newrun", "--epochs", "2", "--heldout", "none", "-q"]
        out.append(Case(f"data/{name}/run", run_case, token, "data file"))
        for command in ("flag", "select", "report", "review"):
            def data_case(root: Path, make=make, command=command) -> list[str]:
                path = make(root)
                return reader_argv(command, RUN, data=path.name)
            out.append(Case(f"data/{name}/{command}", data_case, token, "data file"))
    # 2. labels and ids `run` must refuse
    for name, (fname, content, extra, token) in label_problems(rng).items():
        def label_case(root: Path, fname=fname, content=content, extra=extra) -> list[str]:
            if isinstance(content, str):
                _write(root / fname, content)
            else:
                content.to_csv(root / fname, index=False)
            features = "x1,x2"
            if "--feature-columns-override" in extra:
                features, extra = extra[1], []
            return ["run", fname, "--label-column", "label", "--feature-columns", features,
                    "--out", "newrun", "--epochs", "2", "--heldout", "none", "-q", *extra]
        out.append(Case(f"labels/{name}", label_case, token, "labels and ids"))
    # 3. run.json fields of the wrong type, for every reader
    for name, (mutate, token) in run_json_mutations().items():
        for command in READERS:
            def meta_case(root: Path, mutate=mutate, command=command) -> list[str]:
                path = root / RUN / "run.json"
                new = mutate(json.loads(path.read_text()))
                path.write_bytes(new if isinstance(new, bytes) else json.dumps(new).encode())
                return reader_argv(command, RUN, data=DATA if command in ("flag", "select") else None)
            out.append(Case(f"run.json/{name}/{command}", meta_case, token, "run.json"))
    # 4. a damaged store
    for name, (damage, token) in store_damage().items():
        for command in READERS:
            def store_case(root: Path, damage=damage, command=command) -> list[str]:
                damage(root / RUN)
                return reader_argv(command, RUN)
            out.append(Case(f"store/{name}/{command}", store_case, token, "run store"))
    # 5. output paths that would overwrite an input or a file of the run
    targets: dict[str, Callable[[Path], str]] = {
        "the-data": lambda root: DATA,
        "dotdot": lambda root: (root / "sub").mkdir() or f"sub/../{DATA}",
        "symlink": lambda root: os.symlink(DATA, root / "link.csv") or "link.csv",
        "hardlink": lambda root: os.link(root / DATA, root / "hard.csv") or "hard.csv",
        "run-json": lambda root: f"{RUN}/run.json",
        "shard": lambda root: f"{RUN}/epochs/epoch-00001.parquet",
        "new-in-epochs": lambda root: f"{RUN}/epochs/new.csv",
        "decisions": lambda root: _write(root / RUN / "review" / "decisions.jsonl", "") and
        f"{RUN}/review/decisions.jsonl",
        "directory": lambda root: (root / "adir").mkdir() or "adir",
    }
    for tname, target in targets.items():
        for command in ("metrics", "map", "flag", "select", "report", "review"):
            def out_case(root: Path, target=target, command=command) -> list[str]:
                path = target(root)
                argv = reader_argv(command, RUN, data=DATA if command in ("flag", "select", "review")
                                   else None)
                flag = "--export" if command == "review" else "-o"
                argv[argv.index(flag) + 1] = path
                return argv
            out.append(Case(f"output/{tname}/{command}", out_case, "", "output path"))
    for dname, target in {"the-run": lambda root: RUN, "parent-of-run": lambda root: ".",
                          "inside-epochs": lambda root: f"{RUN}/epochs/x"}.items():
        out.append(Case(f"output/{dname}/export", lambda root, target=target: [
            "export", "allenai", RUN, target(root)], "", "output path"))
    # 6. run --out over directories datacarto did not mark as its run
    def foreign(root: Path, how: str) -> str:
        d = root / "mydata"
        d.mkdir()
        shutil.copy(root / DATA, d / DATA)
        if how == "lookalike":
            _write(d / "epochs" / "best.ckpt", b"weights")
            _write(d / "seed-0" / "notes.txt", "notes")
            _write(d / "metrics.csv", "mine\n")
            (d / DATA).unlink()
        return "mydata"

    run_outs: dict[str, Callable[[Path], tuple[str, str]]] = {
        "holds-input": lambda root: (f"mydata/{DATA}", foreign(root, "input")),
        "symlink-to-input-dir": lambda root: (f"mydata/{DATA}", foreign(root, "input") and
                                              (os.symlink("mydata", root / "ln") or "ln")),
        "cwd": lambda root: (DATA, "."),
        "lookalike-files": lambda root: (DATA, foreign(root, "lookalike")),
        "recorder-run": lambda root: (DATA, _recorder_run(root / "mine")),
        "a-file": lambda root: (DATA, DATA),
        "run-of-other-data": lambda root: (f"mydata/{DATA}", foreign(root, "input") and
                                           _move_run_into(root, "mydata")),
    }
    for oname, make in run_outs.items():
        def out_run(root: Path, make=make) -> list[str]:
            data, target = make(root)
            return ["run", data, "--label-column", "label", "--feature-columns", "x1,x2",
                    "--out", target, "--epochs", "2", "--heldout", "none", "-q"]
        out.append(Case(f"run-out/{oname}", out_run, "", "run --out"))
    # 7. a data file that is not the run's: decisions, texts and selections would be misplaced
    def shuffled(root: Path) -> str:
        f = pd.read_csv(root / DATA, dtype=str)
        f.sample(frac=1.0, random_state=rng.randrange(1000)).to_csv(root / "shuf.csv", index=False)
        return "shuf.csv"

    def relabelled(root: Path) -> str:
        f = pd.read_csv(root / DATA, dtype=str)
        flip = f.sample(frac=0.3, random_state=rng.randrange(1000)).index
        f.loc[flip, "label"] = np.where(f.loc[flip, "label"] == "pos", "neg", "pos")
        f.to_csv(root / "relab.csv", index=False)
        return "relab.csv"

    for command in ("flag", "select", "report", "review"):
        out.append(Case(f"mismatch/row-ids-shuffled/{command}",
                        lambda root, command=command: reader_argv(command, RUN, data=shuffled(root)),
                        "shuf.csv", "wrong data file"))
        out.append(Case(f"mismatch/id-column-relabelled/{command}",
                        lambda root, command=command: [*reader_argv(command, RUN_ID, data=relabelled(root)),
                                                       "--id-column", "id"],
                        "relab.csv", "wrong data file"))
    # 8. seeded random mutations: any run.json field set to a value of a random type, random
    #    bytes spliced into the data file. Harmless ones may succeed, but never with a traceback
    #    or by touching anything but their own output.
    pool: list[object] = [None, "x", "", -1, 0, 1.5, 10**30, True, [], {}, [None], {"a": 1}, ["a"],
                          float("nan"), "../../etc", [1, 2]]
    fields = ["format", "schema_version", "classes", "num_classes", "capture", "inputs", "seed",
              "data_fingerprint", "id_type", "logits_stored", "epochs", "shards", "extra",
              "datacarto_version", "extra.source", "extra.curve", "extra.created_by",
              "extra.memorisation_epoch", "extra.model", "extra.heldout"]
    for i in range(40):
        key, value, command = rng.choice(fields), rng.choice(pool), rng.choice(READERS)

        def random_meta(root: Path, key=key, value=value, command=command) -> list[str]:
            path = root / RUN / "run.json"
            meta = json.loads(path.read_text())
            if key.startswith("extra."):
                meta["extra"][key[6:]] = value
            else:
                meta[key] = value
            path.write_text(json.dumps(meta))
            return reader_argv(command, RUN, data=DATA if command in ("flag", "select") else None)
        outs = ("o.csv", "o.png", "o.html", "o.changes.csv", "o.csv.manifest.json", "o-dir")
        out.append(Case(f"random/run.json/{i}:{key}={value!r}/{command}", random_meta, "",
                        "random", may_succeed=outs))
    specials = ['"', ",", "\n", "\r", "\x00", "\t", '""', "\ufeff", "é", "\r\n", ",,,,"]
    for i in range(40):
        command = rng.choice(("flag", "select", "report", "review"))
        run_dir = rng.choice((RUN, RUN_ID))
        edits = [(rng.random(), rng.choice(specials)) for _ in range(rng.randint(1, 4))]
        raw_bytes = rng.random() < 0.2

        def random_data(root: Path, command=command, run_dir=run_dir, edits=edits,
                        raw_bytes=raw_bytes) -> list[str]:
            data = (root / DATA).read_bytes()
            for where, piece in edits:
                k = int(where * len(data))
                blob = bytes([0xFF, 0xFE]) if raw_bytes else piece.encode("utf-8")
                data = data[:k] + blob + data[k:]
            _write(root / "mut.csv", data)
            argv = reader_argv(command, run_dir, data="mut.csv")
            return argv + (["--id-column", "id"] if run_dir == RUN_ID else [])
        out.append(Case(f"random/data/{i}/{command}/{run_dir}", random_data, "", "random",
                        may_succeed=("o.csv", "o.html", "o.changes.csv", "o.csv.manifest.json")))
    # 9. other formats with odd cells (JSON lists, objects, nulls, huge numbers) read by the
    #    commands that copy or show rows, matched by the id column
    odd: list[object] = [None, [1, 2], {"a": [1]}, 10**40, -0.0, "", "\u2028", True, 1e308, "NaN"]
    for i in range(24):
        fmt = rng.choice(("jsonl", "tsv", "parquet"))
        command = rng.choice(("flag", "select", "report", "review"))
        column = rng.choice(("label", "text", "zip", "x1", "id"))
        value = rng.choice(odd)
        row = rng.randrange(N)

        def odd_cell(root: Path, fmt=fmt, command=command, column=column, value=value,
                     row=row) -> list[str]:
            f = pd.read_csv(root / DATA, dtype=str, keep_default_na=False)
            records = f.to_dict("records")
            name = f"odd.{fmt}"
            if fmt == "jsonl":
                records[row][column] = value
                _write(root / name, "".join(json.dumps(r) + "\n" for r in records))
            else:
                g = pd.DataFrame(records).astype(object)
                g.loc[row, column] = json.dumps(value) if isinstance(value, (list, dict)) else value
                if fmt == "tsv":
                    g.to_csv(root / name, sep="\t", index=False)
                else:
                    g.astype(str).to_parquet(root / name, index=False)
            argv = reader_argv(command, RUN_ID, data=name)
            return [*argv, "--id-column", "id"]
        out.append(Case(f"random/odd-cell/{i}:{fmt}:{column}={value!r}/{command}", odd_cell, "",
                        "random", may_succeed=("o.csv", "o.html", "o.jsonl", "o.parquet", "o.tsv",
                                               "o.changes.csv", "o.csv.manifest.json",
                                               "o.jsonl.manifest.json", "o.parquet.manifest.json",
                                               "o.tsv.manifest.json")))
    return out


def _recorder_run(path: Path) -> str:
    from datacarto import Recorder

    with Recorder(path, num_classes=2) as rec:
        rec.update([0, 1], np.array([[1.0, 0.0], [0.0, 1.0]]), [0, 1])
        rec.end_epoch()
    return path.name


def _move_run_into(root: Path, folder: str) -> str:
    """A real earlier run (ours) in a folder that also holds the input: still refused."""
    for entry in (root / RUN).iterdir():
        shutil.move(str(entry), root / folder / entry.name)
    return folder


def run_case(case: Case, root: Path, tally: Tally) -> None:
    tally.tried += 1
    here = os.getcwd()
    os.chdir(root)
    try:
        argv = case.setup(root)
        before = snapshot(root)
        code, _out, err, tb = _cli([str(a) for a in argv])
        after = snapshot(root)
        altered = _export_altered(root, [str(a) for a in argv]) if code == 0 else None
    finally:
        os.chdir(here)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    problem = None
    if tb is not None or "Traceback" in err:
        tally.traceback += 1
        problem = f"traceback: {(tb or err).strip().splitlines()[-1]}"
    elif altered:
        tally.silent_wrong += 1
        problem = f"export altered untouched bytes: {altered}"
    elif code == 0 and case.may_succeed and all(
            c.split("/")[0] in case.may_succeed for c in changed):
        tally.clean += 1  # a harmless random mutation: it ran and wrote only its own output
        tally.harmless += 1
    elif code != 2 or changed:
        tally.silent_wrong += 1
        problem = f"rc {code}, changed {changed[:5]}, stderr {err.strip()[:200]!r}"
    elif not (err.startswith("datacarto: error: ") and err.count("\n") == 1) or \
            (case.names and case.names not in err):
        tally.unclear += 1
        problem = f"unclear message (want {case.names!r}): {err!r}"
    else:
        tally.clean += 1
    if problem:
        tally.failures.append(f"{case.name} [{' '.join(map(str, argv))}]: {problem}")


def _export_altered(root: Path, argv: list[str]) -> str | None:
    """A review export with no decisions must equal its data file byte for byte (Parquet: the
    same table and schema)."""
    if argv[0] != "review" or "--export" not in argv or "--data" not in argv:
        return None
    out, data = root / argv[argv.index("--export") + 1], root / argv[argv.index("--data") + 1]
    if not out.exists():
        return None
    if data.suffix == ".parquet":
        import pyarrow.parquet as pq

        a, b = pq.read_table(data), pq.read_table(out)
        return None if a.equals(b) and a.schema.equals(b.schema) else f"{out.name} differs from {data.name}"
    return None if out.read_bytes() == data.read_bytes() else f"{out.name} differs from {data.name}"


def run_all(base_dir: Path, work: Path, seed: int = SEED) -> Tally:
    tally = Tally()
    for i, case in enumerate(cases(seed)):
        root = work / f"case-{i:03d}"
        shutil.copytree(base_dir, root, symlinks=True)
        run_case(case, root, tally)
        shutil.rmtree(root, ignore_errors=True)
    return tally


@pytest.mark.filterwarnings("error::UserWarning")
def test_fuzz_every_command_with_bad_inputs(base: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    tally = run_all(base, tmp_path)
    with capsys.disabled():  # the tally, shown even when the test passes
        print(f"\n{tally.line()}")
    assert not tally.failures, tally.line() + "\n" + "\n".join(tally.failures)
    assert tally.tried > 250 and tally.clean == tally.tried


if __name__ == "__main__":  # python tests/test_fuzz_inputs.py: print the tally (and failures)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "base"
        root.mkdir()
        _frame().to_csv(root / DATA, index=False)
        os.chdir(root)
        for out_dir, extra in ((RUN, []), (RUN_ID, ["--id-column", "id"])):
            assert _cli(["run", DATA, "--label-column", "label", "--feature-columns", "x1,x2",
                         "--out", out_dir, "--epochs", "3", "--heldout", "none", "-q", *extra])[0] == 0
        os.chdir(tmp)
        result = run_all(root, Path(tmp))
    print(result.line())
    for line in result.failures:
        print("  " + line)
    sys.exit(1 if result.failures else 0)

"""The on-disk run: ``run.json`` plus one Parquet shard per epoch (and per rank).

Layout (docs/contract.md §6)::

    RUN/run.json                              metadata, committed epochs, schema version
    RUN/epochs/epoch-00001.parquet            one shard per committed epoch
    RUN/epochs/epoch-00001-rank-00001.parquet one per rank when ranks write their own

One module per job: :mod:`~datacarto.store.files` writes every file atomically and reads and
writes ``run.json`` and the other whole-run files; :mod:`~datacarto.store.shards` writes and
reads epoch shards (schema 2: logits as flat ``logit_k`` columns; schema 1 still read);
:mod:`~datacarto.store.reader` reads a whole run (whole epochs, or chunks of rows from every
epoch in lockstep); :mod:`~datacarto.store.heldout` holds the held-out logits file. Every file
is written to a temporary name and renamed, so a crash leaves the last committed epoch intact;
``run.json`` lists the committed epochs and is rewritten only after a shard is in place.
"""

from __future__ import annotations

from ..runmeta import FORMAT_NAME, SCHEMA_VERSION, RunMeta
from . import files, heldout, reader, shards
from .files import (
    EVIDENCE_FILE,
    RUN_FILE,
    SUMMARY_FILE,
    atomic_write,
    atomic_write_text,
    fingerprint_file,
    read_run_doc,
    read_run_json,
    read_run_table,
    update_run_extra,
    write_run_doc,
    write_run_json,
    write_run_table,
)
from .heldout import HELDOUT_FILE, HeldOut, read_heldout, write_heldout
from .reader import (
    VALUE_COLUMNS,
    ChunkReader,
    EpochShards,
    NotStreamable,
    RunPlan,
    RunReader,
    check_same_examples,
    check_unique_ids,
    iter_epoch_shards,
    merge_by_id,
    read_epoch,
    sort_unique_ids,
)
from .shards import (
    DEFAULT_MAX_LOGIT_CLASSES,
    LOGITS,
    REQUIRED_COLUMNS,
    ROW_GROUP_ROWS,
    SHARD_DIR,
    ShardChunk,
    ShardReader,
    logit_columns,
    read_shard,
    shard_name,
    write_shard,
    write_shard_chunks,
)

__all__ = [
    "DEFAULT_MAX_LOGIT_CLASSES", "EVIDENCE_FILE", "FORMAT_NAME", "HELDOUT_FILE", "LOGITS",
    "REQUIRED_COLUMNS", "ROW_GROUP_ROWS", "RUN_FILE", "SCHEMA_VERSION", "SHARD_DIR",
    "SUMMARY_FILE", "VALUE_COLUMNS", "ChunkReader", "EpochShards", "HeldOut", "NotStreamable",
    "RunMeta", "RunPlan", "RunReader", "ShardChunk", "ShardReader", "atomic_write",
    "atomic_write_text", "check_same_examples", "check_unique_ids", "files",
    "fingerprint_file", "heldout", "iter_epoch_shards", "logit_columns", "merge_by_id",
    "read_epoch", "read_heldout", "read_run_doc", "read_run_json", "read_run_table",
    "read_shard", "reader", "shard_name", "sort_unique_ids", "update_run_extra",
    "write_heldout", "write_run_doc", "write_run_json", "write_run_table", "write_shard",
    "write_shard_chunks",
]

"""A run's metadata (``RUN/run.json``), typed: :class:`RunMeta` is its only reader and writer.

The JSON layout is the one of docs/contract.md §6: identity (``format``, ``schema_version``,
``datacarto_version``), what was recorded (``classes``, ``capture``, ``inputs``, ``seed``,
``id_type``, ``logits_stored``, ``data_fingerprint``, ``planned_epochs``), the committed epochs
and their shards, and ``extra``. Inside ``extra`` the fields datacarto itself reads back (the
data file a ``datacarto run`` trained on, the accuracy curve, the memorisation epoch, ...) are
typed attributes here; any other key (an integration's name, a user's own metadata) stays in
:attr:`RunMeta.extra` and is written back unchanged.

Every problem with a file is a :class:`~datacarto.errors.SchemaError` naming the file and the
field. Reading and writing the file itself is :func:`datacarto.store.read_run_json` /
:func:`datacarto.store.write_run_json`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ._version import __version__
from .errors import SchemaError

__all__ = ["CAPTURE_MODES", "FORMAT_NAME", "ID_TYPES", "SCHEMA_VERSION", "DataRecord", "RunMeta"]

FORMAT_NAME = "datacarto-run"
#: Version of the run format (run.json and the epoch shards). A reader refuses a newer one and
#: reads every older one: 2 stores the full logits as flat ``logit_k`` columns, 1 as one list column.
SCHEMA_VERSION = 2
CAPTURE_MODES = ("pass", "eval")
ID_TYPES = ("int", "str")
#: Curve values per epoch that datacarto reads back (each a number or null).
CURVE_VALUES = ("train_acc", "halves_train_acc", "heldout_acc", "gap")


@dataclass(frozen=True)
class DataRecord:
    """The data file a run was trained on and the columns it used (``extra.source``)."""

    path: str | None = None
    label_column: str | None = None
    text_column: str | None = None
    id_column: str | None = None
    feature_columns: tuple[str, ...] | None = None
    #: Other keys of the record, kept as written.
    other: Mapping[str, Any] = field(default_factory=dict)

    _COLUMNS = ("path", "label_column", "text_column", "id_column")

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], *, where: str) -> DataRecord:
        for col in cls._COLUMNS:
            value = obj.get(col)
            if value is not None and not isinstance(value, str):
                raise SchemaError(f"{where}.{col}' must be a string or null; got {_short(value)}.")
        fc = obj.get("feature_columns")
        if fc is not None and not (isinstance(fc, list) and all(isinstance(c, str) for c in fc)):
            raise SchemaError(f"{where}.feature_columns' must be a list of column names or null; "
                              f"got {_short(fc)}.")
        known = {*cls._COLUMNS, "feature_columns"}
        return cls(**{c: obj.get(c) for c in cls._COLUMNS},
                   feature_columns=None if fc is None else tuple(fc),
                   other={k: v for k, v in obj.items() if k not in known})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {c: getattr(self, c) for c in self._COLUMNS}
        if self.feature_columns is not None:
            out["feature_columns"] = list(self.feature_columns)
        return {**dict(self.other), **out}


@dataclass(frozen=True)
class RunMeta:
    """Everything ``run.json`` says about a run.

    Attributes
    ----------
    classes : tuple of str
        Class names; label index k is ``classes[k]``.
    capture : {"pass", "eval"}
        Outputs recorded during the training pass, or by a separate evaluation pass.
    inputs : str or None
        What the recorder was given (``"logits"`` or ``"probs"``).
    id_type : {"int", "str"}
        The type of the example ids in the shards.
    logits_stored : bool
        Whether shards hold the full (K,) logits per row.
    epochs : tuple of int
        Committed epochs, ascending.
    shards : mapping str -> tuple of str
        Shard files of each committed epoch, relative to the run directory.
    source : DataRecord or None
        The data file and columns of a ``datacarto run`` (``extra.source``).
    curve : tuple of dict
        Per-epoch accuracies of ``datacarto run`` (``epoch``, ``train_acc``, ``heldout_acc``, ...).
    heldout_accuracy : tuple of (float or None), or None
        Held-out accuracy per recorded epoch, when the training measured it.
    memorisation_epoch : int or None
        First epoch whose train - held-out gap exceeds ``memorisation_gap``.
    created_by : str or None
        ``"datacarto run"`` for directories that command wrote (it may replace them).
    extra : mapping
        Every other ``extra`` key, written back unchanged.
    """

    classes: tuple[str, ...]
    capture: str = "pass"
    inputs: str | None = "logits"
    seed: int | None = None
    data_fingerprint: str | None = None
    id_type: str = "int"
    logits_stored: bool = False
    epochs: tuple[int, ...] = ()
    shards: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    planned_epochs: int | None = None
    datacarto_version: str | None = __version__
    schema_version: int = SCHEMA_VERSION
    source: DataRecord | None = None
    curve: tuple[Mapping[str, Any], ...] = ()
    heldout_accuracy: tuple[float | None, ...] | None = None
    memorisation_epoch: int | None = None
    memorisation_gap: float | None = None
    created_by: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "epochs", tuple(sorted(int(e) for e in self.epochs)))
        object.__setattr__(self, "shards", MappingProxyType(
            {str(k): tuple(v) for k, v in self.shards.items()}))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ------------------------------------------------------------------ changes (new objects)
    def with_epoch(self, epoch: int, shard_names: list[str], *,
                   planned_epochs: int | None = None) -> RunMeta:
        """This metadata with ``epoch`` committed in ``shard_names`` (replacing an earlier commit)."""
        return replace(self, epochs=tuple(sorted(set(self.epochs) | {int(epoch)})),
                       shards={**self.shards, str(int(epoch)): tuple(shard_names)},
                       planned_epochs=planned_epochs if planned_epochs is not None
                       else self.planned_epochs)

    def truncated(self, last_epoch: int) -> RunMeta:
        """This metadata without the epochs after ``last_epoch``."""
        return replace(self, epochs=tuple(e for e in self.epochs if e <= last_epoch),
                       shards={k: v for k, v in self.shards.items() if int(k) <= last_epoch})

    def with_extra(self, **updates: Any) -> RunMeta:
        """This metadata with ``extra`` keys set (typed fields parsed and checked as on reading)."""
        merged = {**self._extra_json(), **updates}
        return replace(self, **_typed_extra(merged, where="run metadata: field 'extra"))

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """The ``run.json`` document (a new dict)."""
        return {
            "format": FORMAT_NAME,
            "schema_version": self.schema_version,
            "datacarto_version": self.datacarto_version,
            "classes": list(self.classes),
            "num_classes": self.num_classes,
            "capture": self.capture,
            "inputs": self.inputs,
            "seed": self.seed,
            "data_fingerprint": self.data_fingerprint,
            "id_type": self.id_type,
            "logits_stored": self.logits_stored,
            "planned_epochs": self.planned_epochs,
            "epochs": list(self.epochs),
            "shards": {k: list(v) for k, v in sorted(self.shards.items(), key=lambda kv: int(kv[0]))},
            "extra": self._extra_json(),
        }

    def _extra_json(self) -> dict[str, Any]:
        out = dict(self.extra)
        if self.source is not None:
            out["source"] = self.source.to_json()
        if self.curve:
            out["curve"] = [dict(p) for p in self.curve]
        if self.heldout_accuracy is not None:
            out["heldout_accuracy"] = list(self.heldout_accuracy)
        for key in ("memorisation_epoch", "memorisation_gap", "created_by"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_json(cls, doc: Any, path: str | os.PathLike[str]) -> RunMeta:
        """Check a parsed ``run.json`` against the schema; errors name ``path`` and the field."""
        path = Path(path)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
            raise SchemaError(f"{path}: not a datacarto run file (missing \"format\": \"{FORMAT_NAME}\")")
        version = doc.get("schema_version")
        if not _is_int(version) or version > SCHEMA_VERSION:
            raise SchemaError(f"{path}: schema_version {version!r} is newer than this datacarto "
                              f"({__version__}, schema {SCHEMA_VERSION}) can read; upgrade datacarto.")
        for key in ("classes", "epochs", "shards", "capture", "id_type"):
            if key not in doc:
                raise SchemaError(f"{path}: missing key {key!r}")

        def bad(name: str, want: str) -> SchemaError:
            return SchemaError(f"{path}: field {name!r} must be {want}; got {_short(doc.get(name))}.")

        classes = doc["classes"]
        if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
            raise bad("classes", "a list of at least 2 class names (strings)")
        if len(set(classes)) != len(classes):
            raise bad("classes", "a list of distinct class names")
        num = doc.get("num_classes", len(classes))
        if not _is_int(num) or num != len(classes):
            raise bad("num_classes", f"the number of classes ({len(classes)})")
        if doc["capture"] not in CAPTURE_MODES:
            raise bad("capture", "'pass' or 'eval'")
        if doc["id_type"] not in ID_TYPES:
            raise bad("id_type", "'int' or 'str'")
        for name, check, want in (
                ("inputs", lambda v: v is None or isinstance(v, str), "a string"),
                ("seed", lambda v: v is None or _is_int(v), "an integer or null"),
                ("data_fingerprint", lambda v: v is None or isinstance(v, str), "a string or null"),
                ("datacarto_version", lambda v: v is None or isinstance(v, str), "a string"),
                ("logits_stored", lambda v: v is None or isinstance(v, bool), "true or false"),
                ("extra", lambda v: v is None or isinstance(v, dict), "an object"),
                ("planned_epochs", lambda v: v is None or (_is_int(v) and v >= 1),
                 "a positive integer or null")):
            if not check(doc.get(name)):
                raise bad(name, want)
        epochs = doc["epochs"]
        if not isinstance(epochs, list) or not all(_is_int(e) and e >= 1 for e in epochs) \
                or len(set(epochs)) != len(epochs):
            raise bad("epochs", "a list of distinct epoch numbers (integers from 1)")
        shards = doc["shards"]
        if not isinstance(shards, dict) or not all(
                isinstance(v, list) and v and all(isinstance(n, str) and n for n in v)
                for v in shards.values()):
            raise bad("shards", "an object mapping each epoch to a list of shard file names")
        _check_shard_paths(path, epochs, shards)
        return cls(classes=tuple(classes), capture=doc["capture"], inputs=doc.get("inputs"),
                   seed=doc.get("seed"), data_fingerprint=doc.get("data_fingerprint"),
                   id_type=doc["id_type"], logits_stored=bool(doc.get("logits_stored")),
                   epochs=tuple(epochs), shards={k: tuple(v) for k, v in shards.items()},
                   planned_epochs=doc.get("planned_epochs"),
                   datacarto_version=doc.get("datacarto_version"), schema_version=version,
                   **_typed_extra(doc.get("extra") or {}, where=f"{path}: field 'extra"))

    # ------------------------------------------------------------------ dict-style access
    # Kept so that code written against the untyped dict of datacarto 0.1 goes on working.
    def __getitem__(self, key: str) -> Any:
        _deprecated_item_access(key)
        doc = self.to_json()
        if key not in doc:
            raise KeyError(key)
        return doc[key]

    def get(self, key: str, default: Any = None) -> Any:
        _deprecated_item_access(key)
        return self.to_json().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_json()

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def keys(self) -> Any:
        _deprecated_item_access("keys")
        return self.to_json().keys()


#: Off while datacarto's own modules still read the metadata by key.
_WARN_ITEM_ACCESS = True


def _deprecated_item_access(key: str) -> None:
    if _WARN_ITEM_ACCESS:
        warnings.warn(f"run.meta[{key!r}] is deprecated; use the typed attribute "
                  f"(e.g. run.meta.classes, run.meta.extra)", DeprecationWarning, stacklevel=3)


def _typed_extra(extra: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """Split ``extra`` into the typed RunMeta fields and the rest; check what datacarto reads."""
    def bad(name: str, want: str, value: Any) -> SchemaError:
        return SchemaError(f"{where}.{name}' must be {want}; got {_short(value)}.")

    rest = dict(extra)
    out: dict[str, Any] = {}
    # "data" is the key datacarto 0.1 used for the data record
    for key in ("source", "data"):
        value = rest.get(key)
        if value is not None and not isinstance(value, (dict, str)):
            raise bad(key, "an object", value)
        if isinstance(value, dict):
            record = DataRecord.from_json(value, where=f"{where}.{key}")
            if "source" not in out and record.path:
                out["source"] = record
                del rest[key]
    if "curve" in rest:
        curve = rest.pop("curve")
        if not isinstance(curve, list) or not all(isinstance(p, dict) for p in curve):
            raise bad("curve", "a list of objects (one per epoch)", curve)
        for point in curve:
            if not _is_int(point.get("epoch")):
                raise bad("curve[].epoch", "an integer", point.get("epoch"))
            for k in CURVE_VALUES:
                if not _is_number(point.get(k)):
                    raise bad(f"curve[].{k}", "a number or null", point.get(k))
        out["curve"] = tuple(curve)
    if "heldout_accuracy" in rest:
        acc = rest.pop("heldout_accuracy")
        if acc is not None and not (isinstance(acc, list) and all(_is_number(v) for v in acc)):
            raise bad("heldout_accuracy", "a list of numbers", acc)
        out["heldout_accuracy"] = None if acc is None else tuple(acc)
    if "memorisation_epoch" in rest:
        value = rest.pop("memorisation_epoch")
        if value is not None and not _is_int(value):
            raise bad("memorisation_epoch", "an integer or null", value)
        out["memorisation_epoch"] = value
    if "memorisation_gap" in rest:
        value = rest.pop("memorisation_gap")
        if not _is_number(value):
            raise bad("memorisation_gap", "a number", value)
        out["memorisation_gap"] = value
    if isinstance(rest.get("created_by"), str):
        out["created_by"] = rest.pop("created_by")
    out["extra"] = rest
    return out


def _check_shard_paths(path: Path, epochs: list[int], shards: dict[str, list[str]]) -> None:
    root = os.path.realpath(path.parent)
    for epoch in epochs:
        names = shards.get(str(epoch))
        if not names:
            raise SchemaError(f"{path}: field 'shards' lists no shard for committed epoch {epoch}.")
        for name in names:
            target = os.path.realpath(os.path.join(root, name))
            if os.path.isabs(name) or ".." in Path(name).parts or \
                    os.path.commonpath([root, target]) != root:
                raise SchemaError(f"{path}: field 'shards' names {name!r}, which is outside the run "
                                  "directory; shard paths must stay inside it.")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _short(value: Any) -> str:
    import json

    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


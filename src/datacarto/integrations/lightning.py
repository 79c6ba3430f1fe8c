"""Lightning: a callback that records training dynamics, from step outputs or an epoch-end pass.

Give each item its id and return the logits from ``training_step``::

    from datacarto.integrations.lightning import DataMapCallback
    from datacarto.integrations.torch import WithIds

    class Model(L.LightningModule):
        def training_step(self, batch, batch_idx):
            ids, (x, y) = batch
            logits = self(x)
            loss = F.cross_entropy(logits, y)
            return {"loss": loss, "logits": logits}

    loader = DataLoader(WithIds(train_set), batch_size=32, shuffle=True)
    L.Trainer(max_epochs=5, callbacks=[DataMapCallback("runs/mine")]).fit(Model(), loader)

Capture modes:

- ``"pass"`` (default): ``on_train_batch_end`` records ``outputs["logits"]``; ids come from
  ``outputs["ids"]`` or the batch (``(ids, item)`` pairs or a dict with ``id_key``), labels
  from ``outputs["labels"]`` or the item's last element / ``labels`` key.
- ``"eval"``: at each epoch end the callback scores the training set, unshuffled, with the
  module in ``eval()`` (``forward=`` to customise; default calls ``pl_module(x)``).

Resume: the callback's state (run epochs committed, and in pass mode the rows of an
unfinished epoch) is saved in every Lightning checkpoint; ``fit(ckpt_path=...)`` drops run
epochs recorded after the checkpoint. Lightning resumes a mid-epoch checkpoint exactly only
with a resumable (stateful) dataloader; otherwise the resumed epoch replays other batches, so
pass mode does not record it (with a warning) and eval mode records it as usual.

Under DDP every rank records its batches; rank 0 gathers and writes. Padded duplicates from
``DistributedSampler`` are recorded once.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require

require("lightning", extra="lightning", feature="DataMapCallback for Lightning")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.fabric.utilities.types import _Stateful  # noqa: E402

from ..errors import InputError  # noqa: E402
from ..recording_config import RecordingConfig  # noqa: E402
from ._adapter import AdapterRecorder  # noqa: E402
from .torch import TorchDist, eval_pass, split_ids  # noqa: E402
from .torch import Forward  # noqa: E402

__all__ = ["DataMapCallback"]

ADAPTER = "DataMapCallback (Lightning)"
_LABEL_KEYS = ("labels", "label", "y")


class DataMapCallback(pl.Callback):
    """Record per-example training dynamics from a ``lightning.pytorch.Trainer`` fit.

    Parameters
    ----------
    path : str or Path
        Run directory, written by global rank 0.
    capture : {"pass", "eval"}
        See the module docstring. Default ``"pass"``.
    id_key : str
        Key of the id in dict batches (``WithIds(ds, key=...)``); pair batches need none.
    logits_key : str
        Key of the logits in the dict ``training_step`` returns.
    forward : callable, optional
        Eval mode: ``forward(module, batch_without_ids) -> (logits, labels)``.
    eval_batch_size : int, optional
        Eval mode batch size; default the training loader's.
    inputs, classes, num_classes, seed, meta
        As for :class:`~datacarto.Recorder` (collected in :attr:`config`, a
        :class:`~datacarto.recording_config.RecordingConfig`).
    """

    def __init__(self, path: str | Path, *, capture: str = "pass", id_key: str = "id",
                 logits_key: str = "logits", forward: Forward | None = None,
                 eval_batch_size: int | None = None, inputs: str = "logits",
                 classes: list[str] | None = None, num_classes: int | None = None,
                 seed: int | None = None, meta: dict[str, Any] | None = None) -> None:
        self.config = RecordingConfig(  # validated now: a typo fails before training starts
            capture=capture, inputs=inputs, classes=classes, num_classes=num_classes, seed=seed,
            meta=meta or {}, where=ADAPTER).with_meta(integration="lightning")
        self.path = Path(path)
        self.id_key = id_key
        self.logits_key = logits_key
        self.forward = forward
        self.eval_batch_size = eval_batch_size
        self.run_offset: int | None = None
        self._rec: AdapterRecorder | None = None
        self._loaded: dict[str, Any] | None = None
        self._skip_epoch: int | None = None
        self._last_batch: int | None = None  # batch_idx of the epoch's latest batch

    @property
    def capture(self) -> str:
        """``"pass"`` or ``"eval"``, as constructed."""
        return self.config.capture

    @property
    def state_key(self) -> str:
        return f"{type(self).__qualname__}[path={str(self.path)!r}]"

    # ----------------------------------------------------------------- set-up
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        loader = trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        expected = len(dataset) if hasattr(dataset, "__len__") else None
        self._rec = AdapterRecorder(
            ADAPTER, self.path, self.config, dist=TorchDist, expected_n=expected,
            ids_hint="Wrap the training set as WithIds(dataset) (batches become (ids, batch)), "
                     "or return {'loss': ..., 'logits': ..., 'ids': ids} from training_step.",
            incomplete_hint="limit_train_batches < 1.0 or a DataLoader with drop_last=True "
                            "leaves examples out: train on whole epochs, or use capture='eval'.")
        if self.capture == "eval":
            self._check_eval_dataset(dataset)
        if self._loaded is None:
            self.run_offset = self._rec.committed()
        else:
            self._resume(trainer, pl_module)

    def _check_eval_dataset(self, dataset: Any) -> None:
        if dataset is None or not hasattr(dataset, "__len__") or not len(dataset):
            raise InputError(f"{ADAPTER}: capture='eval' scores the training set, but the "
                             "training dataloader has no map-style dataset.")
        first = dataset[0]
        if isinstance(first, Mapping):
            has_id = self.id_key in first
        else:  # a WithIds pair: (scalar id, item)
            has_id = (isinstance(first, (tuple, list)) and len(first) == 2
                      and isinstance(first[0], (int, str, np.integer))
                      and not isinstance(first[0], bool))
        if not has_id:
            raise InputError(f"{ADAPTER}: training items carry no ids. Wrap the training set as "
                             "WithIds(dataset) from datacarto.integrations.torch.")

    def _resume(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rec = self._rec
        assert rec is not None and self._loaded is not None
        state, self._loaded = self._loaded, None
        self.run_offset = int(state.get("run_offset") or 0)
        pending = _from_checkpoint(state["pending"]) if state.get("pending") else None
        committed = int(state["epoch"])
        if pending is not None and len(pending["ids"]):
            if rec.expected_n is not None and len(np.unique(pending["ids"])) == rec.expected_n:
                rec.load_state_dict(pending)  # a whole epoch saved before its end event
                rec.commit()
                return
            loaders = getattr(getattr(trainer.fit_loop, "_combined_loader", None), "flattened", [])
            if loaders and all(isinstance(dl, _Stateful) for dl in loaders):
                rec.load_state_dict(pending)
                return
            rec.truncate(committed)
            self._skip_epoch = trainer.current_epoch
            return
        rec.truncate(committed)
        if self.capture == "eval" and rec.committed() < self.run_offset + trainer.current_epoch:
            self._eval(trainer, pl_module)  # the checkpoint closed an epoch not yet scored
            rec.commit()

    # ---------------------------------------------------------------- batches
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        self._last_batch = batch_idx
        if self.capture != "pass" or self._rec is None or self._skip_epoch is not None:
            return
        out = outputs if isinstance(outputs, Mapping) else {}
        logits = out.get(self.logits_key)
        if logits is None:
            raise InputError(f"{ADAPTER} (epoch {trainer.current_epoch + 1}, batch {batch_idx}): "
                             f"training_step returned no '{self.logits_key}'. Return "
                             f"{{'loss': loss, '{self.logits_key}': logits}} from training_step, "
                             "or use capture='eval'.")
        ids, rest = split_ids(batch, self.id_key)
        ids = out.get("ids", ids)
        labels = out.get("labels", _labels_of(rest))
        self._rec.add(ids, logits.detach() if isinstance(logits, torch.Tensor) else logits, labels)

    # ----------------------------------------------------------------- epochs
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rec = self._rec
        if rec is None:
            return
        last, self._last_batch = self._last_batch, None
        if self._skip_epoch is not None:
            epoch, self._skip_epoch = self._skip_epoch, None
            rec.discard()
            if rec.is_writer:
                warnings.warn(f"{ADAPTER}: epoch {epoch + 1} resumed from a mid-epoch checkpoint "
                              "with a dataloader that is not resumable; pass mode does not record "
                              "it (it saw other batches than an uninterrupted run).",
                              UserWarning, stacklevel=2)
            return
        total = trainer.num_training_batches
        if last is None or (total != float("inf") and last + 1 < total):
            # max_steps or a stop signal ended the epoch early: nothing whole to record
            rec.discard(f"training stopped before the end of epoch {trainer.current_epoch + 1}; "
                        "its rows are not recorded.")
            return
        if self.capture == "eval":
            self._eval(trainer, pl_module)
        rec.commit()

    def _eval(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        rec = self._rec
        assert rec is not None
        loader = trainer.train_dataloader
        bs = self.eval_batch_size or getattr(loader, "batch_size", None) or 256
        d = rec.dist
        for ids, logits, labels in eval_pass(pl_module, loader.dataset, batch_size=bs,
                                             collate_fn=loader.collate_fn, forward=self.forward,
                                             key=self.id_key, rank=d.rank,
                                             world_size=d.world_size):
            rec.add(ids, logits, labels)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._rec is not None:
            self._rec.close()

    # ------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        rec = self._rec
        if rec is None:
            return {"epoch": 0, "run_offset": self.run_offset, "pending": None}
        pending = rec.state_dict()  # a collective under DDP; None off rank 0
        return {"epoch": int(pending["epoch"]) if pending is not None else 0,
                "run_offset": self.run_offset,
                "pending": _to_checkpoint(pending) if pending is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = dict(state_dict)


def _labels_of(rest: Any) -> Any:
    if isinstance(rest, Mapping):
        key = next((k for k in _LABEL_KEYS if k in rest), None)
        return rest[key] if key is not None else None
    if isinstance(rest, (tuple, list)) and len(rest) >= 2:
        return rest[-1]
    return None


def _to_checkpoint(state: dict[str, Any]) -> dict[str, Any]:
    # tensors, lists and ints only: loadable by torch.load(weights_only=True)
    ids = state["ids"]
    return {"epoch": int(state["epoch"]),
            "num_classes": None if state["num_classes"] is None else int(state["num_classes"]),
            "ids": ids.tolist() if ids.dtype.kind == "U" else torch.from_numpy(ids),
            "outputs": torch.from_numpy(np.asarray(state["outputs"], np.float32)),
            "labels": torch.from_numpy(np.asarray(state["labels"], np.int64))}


def _from_checkpoint(state: dict[str, Any]) -> dict[str, Any]:
    ids = state["ids"]
    return {"epoch": int(state["epoch"]), "num_classes": state["num_classes"],
            "ids": np.asarray(ids) if isinstance(ids, list) else ids.numpy(),
            "outputs": state["outputs"].numpy(), "labels": state["labels"].numpy()}

"""Hugging Face ``Trainer``: a callback that records training dynamics, resumable, DDP-aware.

Give each training item an ``id`` and add the callback::

    from datacarto.integrations.huggingface import DataMapCallback
    from datacarto.integrations.torch import WithIds

    trainer = Trainer(model, args, train_dataset=WithIds(train_set, key="id"),
                      callbacks=[DataMapCallback("runs/mine")])
    trainer.train()                                  # or train(resume_from_checkpoint=True)

Capture modes (``TrainerCallback`` events receive no logits, so each mode brings its own):

- ``"eval"`` (default): at each epoch end the callback scores the training set, unshuffled,
  with the model in ``eval()``. Works with the Trainer's defaults (``remove_unused_columns``
  drops the ``id`` column before the model; the callback reads ids from the dataset itself).
- ``"pass"``: forward hooks on the model take the ``id`` column out of the inputs before
  ``forward`` runs and record the logits of every training forward pass. The ``id`` column
  must survive to the model: set ``TrainingArguments(remove_unused_columns=False)``.

Resume: the callback keeps ``run_offset`` (the run's epochs before this training) in the
Trainer's checkpoint state. ``train(resume_from_checkpoint=...)`` truncates the run to the
epochs completed at the checkpoint, so epochs recorded after it are recorded again, once. In
pass mode a checkpoint taken mid-epoch stores the epoch's rows so far in ``RUN/resume/``,
and the resumed epoch completes them (the Trainer skips the batches already trained).

Under DDP every process runs the callback; rows are gathered to world rank 0, which writes.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require

require("transformers", extra="hf", feature="DataMapCallback for Hugging Face")
require("torch", extra="hf", feature="DataMapCallback for Hugging Face")

import torch  # noqa: E402
from torch.utils.data import DataLoader, Subset  # noqa: E402
from transformers import TrainerCallback  # noqa: E402
from transformers.trainer_callback import ExportableState  # noqa: E402

from .. import store  # noqa: E402
from ..errors import InputError  # noqa: E402
from ..recording_config import RecordingConfig  # noqa: E402
from ._adapter import AdapterRecorder  # noqa: E402
from .torch import TorchDist, logits_of, unwrap  # noqa: E402

__all__ = ["DataMapCallback"]

ADAPTER = "DataMapCallback (Hugging Face)"
RESUME_DIR = "resume"
_EPS = 1e-6


class DataMapCallback(TrainerCallback, ExportableState):
    """Record per-example training dynamics from a ``transformers.Trainer`` run.

    Parameters
    ----------
    path : str
        Run directory, written by world rank 0.
    capture : {"eval", "pass"}
        See the module docstring. Default ``"eval"``.
    id_column : str
        Key of the example id in every training item (``WithIds(ds, key="id")``).
    label_column : str
        Key of the gold label in a collated batch (the default collator renames ``label`` to
        ``labels``).
    logits_key : str
        Key of the logits in the model's output.
    inputs : {"logits", "probs"}
        Declare ``"probs"`` only if the model's output under ``logits_key`` is probabilities.
    classes : list of str, optional
        Class names; default ``model.config.id2label`` when present.
    eval_batch_size : int, optional
        Batch size of the eval-mode pass; default ``args.per_device_eval_batch_size``.
    seed, meta
        Stored in the run's metadata; ``seed`` defaults to ``args.seed``.

    The recording settings are collected in :attr:`config`, a
    :class:`~datacarto.recording_config.RecordingConfig`.
    """

    def __init__(self, path: str, *, capture: str = "eval", id_column: str = "id",
                 label_column: str = "labels", logits_key: str = "logits",
                 inputs: str = "logits", classes: list[str] | None = None,
                 eval_batch_size: int | None = None, seed: int | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        # validated now, so that a typo fails when the Trainer is built, not after an epoch
        self.config = RecordingConfig(capture=capture, inputs=inputs, classes=classes, seed=seed,
                                      meta=meta or {}, where=ADAPTER)
        self.path = str(path)
        self.id_column = id_column
        self.label_column = label_column
        self.logits_key = logits_key
        self.eval_batch_size = eval_batch_size
        self.run_offset: int | None = None  # run epochs before this training; in checkpoints
        self._rec: AdapterRecorder | None = None
        self._hooks: list[Any] = []
        self._stash: tuple[Any, Any] | None = None
        self._epoch_index = 0
        self._dataset: Any = None
        self._collate: Any = None

    @property
    def capture(self) -> str:
        """``"eval"`` or ``"pass"``, as constructed."""
        return self.config.capture

    # ------------------------------------------------------- ExportableState
    def state(self) -> dict[str, Any]:
        cfg = self.config
        return {"args": {"path": self.path, "capture": cfg.capture, "id_column": self.id_column,
                         "label_column": self.label_column, "logits_key": self.logits_key,
                         "inputs": cfg.inputs,
                         "classes": None if cfg.classes is None else list(cfg.classes),
                         "eval_batch_size": self.eval_batch_size, "seed": cfg.seed,
                         "meta": dict(cfg.meta)},
                "attributes": {"run_offset": self.run_offset}}

    def _saved_offset(self, state: Any) -> int | None:
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, list):
            saved = next((s for s in saved if s.get("args", {}).get("path") == self.path), None)
        if not isinstance(saved, Mapping):
            return None
        value = saved.get("attributes", {}).get("run_offset")
        return None if value is None else int(value)

    # ----------------------------------------------------------------- hooks
    def _pre_hook(self, module: torch.nn.Module, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        # the id must never reach forward(), in any mode (evaluate() batches carry it too)
        ids = kwargs.pop(self.id_column, None)
        if self.capture == "pass" and module.training:
            self._stash = (ids, kwargs.get(self.label_column))
        return args, kwargs

    def _post_hook(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                   output: Any) -> None:
        if self._stash is None or self._rec is None:
            return
        ids, labels = self._stash
        self._stash = None
        logits = logits_of(output, self.logits_key)
        if labels is None and ids is not None:
            raise InputError(f"{ADAPTER}: the training batch reached the model without "
                             f"'{self.label_column}' (a label smoother or compute_loss_func keeps "
                             "the labels from the model). Use capture='eval', or set "
                             "label_column to the key that holds the labels.")
        self._rec.add(ids, None if logits is None else logits.detach(), labels)

    def _remove_hooks(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    # ---------------------------------------------------------------- events
    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None,
                       train_dataloader: Any = None, **kwargs: Any) -> None:
        module = unwrap(model)
        self._dataset = getattr(train_dataloader, "dataset", None)
        self._collate = getattr(train_dataloader, "collate_fn", None)
        self._check_dataset(args, module)
        config = self.config.with_meta(integration="huggingface")
        if config.classes is None:
            id2label = getattr(getattr(module, "config", None), "id2label", None)
            if isinstance(id2label, Mapping) and len(id2label) >= 2:
                config = config.replace(classes=[str(id2label[k]) for k in sorted(id2label, key=int)],
                                        where=ADAPTER)
        if config.seed is None and getattr(args, "seed", None) is not None:
            config = config.replace(seed=args.seed, where=ADAPTER)
        expected = len(self._dataset) if hasattr(self._dataset, "__len__") else None
        self._rec = AdapterRecorder(
            ADAPTER, self.path, config, dist=TorchDist, expected_n=expected,
            ids_hint=(f"The Trainer's remove_unused_columns=True drops every column that "
                      f"model.forward does not take, '{self.id_column}' included: set "
                      "TrainingArguments(remove_unused_columns=False) and give each training "
                      f"item an '{self.id_column}' (WithIds(train_set, key='{self.id_column}')), "
                      "or use capture='eval'."),
            incomplete_hint="TrainingArguments(dataloader_drop_last=True) leaves examples out: "
                            "set it to False, or use capture='eval'.")
        self._remove_hooks()
        self._hooks = [module.register_forward_pre_hook(self._pre_hook, with_kwargs=True),
                       module.register_forward_hook(self._post_hook, with_kwargs=True)]
        if state.global_step > 0:
            self._resume(args, state, module)
        else:
            self.run_offset = self._rec.committed()

    def _check_dataset(self, args: Any, module: torch.nn.Module) -> None:
        ds = self._dataset
        if ds is None or not hasattr(ds, "__getitem__") or not hasattr(ds, "__len__") or not len(ds):
            raise InputError(f"{ADAPTER}: the Trainer has no map-style training set to record; "
                             "pass train_dataset= with items that carry an "
                             f"'{self.id_column}' (WithIds(train_set, key='{self.id_column}')).")
        first = ds[0]
        if not isinstance(first, Mapping) or self.id_column not in first:
            got = sorted(first) if isinstance(first, Mapping) else type(first).__name__
            raise InputError(f"{ADAPTER}: training items have no '{self.id_column}' (got {got}). "
                             "Wrap the training set: train_dataset=WithIds(train_set, "
                             f"key='{self.id_column}') from datacarto.integrations.torch.")
        takes_id = self.id_column in inspect.signature(module.forward).parameters
        if self.capture == "pass" and args.remove_unused_columns and not takes_id:
            raise InputError(f"{ADAPTER}: capture='pass' needs the '{self.id_column}' column in "
                             "every training batch, but remove_unused_columns=True drops it "
                             "before the model. Set TrainingArguments(remove_unused_columns=False), "
                             "or use capture='eval'.")

    def _resume(self, args: Any, state: Any, module: torch.nn.Module) -> None:
        rec = self._rec
        assert rec is not None
        saved = self._saved_offset(state)
        self.run_offset = saved if saved is not None else (
            self.run_offset if self.run_offset is not None else 0)
        completed = math.floor(state.epoch + _EPS)
        target = self.run_offset + completed  # run epochs the checkpoint had finished
        if self.capture == "pass":
            # the rows saved with the checkpoint: the epoch so far (empty at an epoch end, or a
            # whole epoch when the checkpoint closed it before the epoch-end event ran)
            pending = self._load_pending(state.global_step) if rec.is_writer else None
            found = rec.dist.broadcast(pending is not None) if rec.dist.world_size > 1 else (
                pending is not None)
            if not found:
                if state.epoch > completed + _EPS or rec.committed() < target:
                    raise InputError(
                        f"{ADAPTER}: resuming at step {state.global_step} in pass mode needs the "
                        f"rows recorded before that checkpoint, "
                        f"{self._pending_path(state.global_step)}, which is missing. Resume "
                        "from a checkpoint saved at an epoch end, or record with capture='eval'.")
                rec.truncate(target)
                return
            rec.load_state_dict(pending or {"epoch": 0, "ids": []})  # truncates to its epoch
            if rec.committed() < target:
                rec.commit()
            return
        rec.truncate(target)
        if rec.committed() < target:
            # the checkpoint closed an epoch whose end-of-epoch pass had not run yet
            self._eval_pass(args, module)
            rec.commit()

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._epoch_index = math.floor(state.epoch + _EPS)

    def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None,
                     **kwargs: Any) -> None:
        rec = self._rec
        if rec is None:
            return
        if state.epoch + _EPS < self._epoch_index + 1:
            rec.discard(f"training stopped before the end of epoch {self._epoch_index + 1}; its "
                        "rows are not recorded (resuming from a checkpoint completes the epoch).")
            return
        if self.capture == "eval":
            self._eval_pass(args, unwrap(model))
        rec.commit()

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        rec = self._rec
        if rec is None or self.capture != "pass":
            return
        pending = rec.state_dict()  # a collective: every rank takes part
        if pending is None or not rec.is_writer:
            return
        target = self._pending_path(state.global_step)
        target.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in pending.items()
                                if k != "num_classes"},
                         num_classes=np.int64(pending["num_classes"] or 0))
        store.atomic_write(target, write)
        self._prune_pending(args, keep=state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._remove_hooks()
        if self._rec is not None:
            self._rec.close()

    # --------------------------------------------------------------- helpers
    def _eval_pass(self, args: Any, module: torch.nn.Module) -> None:
        rec = self._rec
        assert rec is not None and self._dataset is not None
        d = rec.dist
        ds = self._dataset
        collate = self._collate or _default_collate()
        id_column = self.id_column

        def collate_with_ids(items: list[Mapping[str, Any]]) -> tuple[list[Any], Any]:
            # the id never reaches the Trainer's collator (it may not take strings)
            ids = [it[id_column] for it in items]
            return ids, collate([{k: v for k, v in it.items() if k != id_column} for it in items])

        shard = Subset(ds, range(d.rank, len(ds), d.world_size)) if d.world_size > 1 else ds
        loader = DataLoader(shard, batch_size=self.eval_batch_size or args.per_device_eval_batch_size,
                            shuffle=False, collate_fn=collate_with_ids,
                            num_workers=getattr(args, "dataloader_num_workers", 0) or 0)
        device = next((p.device for p in module.parameters()), torch.device("cpu"))
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for ids, batch in loader:
                    batch = dict(batch)
                    labels = batch.pop(self.label_column, None)
                    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v
                             for k, v in batch.items()}
                    logits = logits_of(module(**batch), self.logits_key)
                    rec.add(ids, None if logits is None else logits.detach(), labels)
        finally:
            module.train(was_training)

    def _pending_path(self, step: int) -> Path:
        return Path(self.path) / RESUME_DIR / f"step-{int(step):09d}.npz"

    def _load_pending(self, step: int) -> dict[str, Any] | None:
        p = self._pending_path(step)
        if not p.is_file():
            return None
        with np.load(p, allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
        state["epoch"] = int(state["epoch"])
        state["num_classes"] = int(state["num_classes"]) or None
        return state

    def _prune_pending(self, args: Any, keep: int) -> None:
        # mirror the Trainer's checkpoint rotation: a file whose checkpoint is gone is useless
        folder = Path(self.path) / RESUME_DIR
        out = Path(args.output_dir) if getattr(args, "output_dir", None) else None
        if out is None or not out.is_dir():
            return
        live = {int(m.group(1)) for p in out.iterdir()
                if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))}
        for f in folder.glob("step-*.npz"):
            step = int(f.stem.split("-")[1])
            if step != keep and step not in live:
                f.unlink(missing_ok=True)


def _default_collate() -> Any:
    from transformers import default_data_collator

    return default_data_collator

"""Plain PyTorch: give every item its id, record the loop, on one process or under DDP.

Pass mode (the default) records the logits your training step already computed; eval mode
scores the training set, unshuffled, with the model in ``eval()`` at every epoch end::

    from datacarto.integrations.torch import LoopRecorder, WithIds

    loader = DataLoader(WithIds(train_set), batch_size=32, shuffle=True)   # items: (id, item)
    rec = LoopRecorder("runs/mine")                                       # capture="pass"
    for epoch in range(epochs):
        for ids, (x, y) in loader:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            ...
            rec.update(ids, logits, y)
        rec.end_epoch()
    rec.close()

``LoopRecorder("runs/mine", capture="eval", dataset=WithIds(train_set))`` ignores ``update`` and
runs the extra inference pass in ``end_epoch(model)`` instead.

Under ``torch.distributed`` every rank calls the same methods; rows are gathered to rank 0
(``gather_object``), the only process that writes. ``DistributedSampler`` pads the ranks by
repeating the first examples of its (shuffled) index list; a repeated id is recorded once,
keeping the lowest rank's row, which is the example's own position (pads go to the last ranks).
The eval pass shards the data without padding: rank r scores items r, r+W, r+2W, ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require

require("torch", extra="torch", feature="datacarto.integrations.torch")

import torch  # noqa: E402
import torch.distributed as torch_dist  # noqa: E402
from torch.utils.data import DataLoader, Dataset, Subset  # noqa: E402

from .._validation import check_ids, fmt_id  # noqa: E402
from ..dynamics import TrainingDynamics  # noqa: E402
from ..errors import InputError  # noqa: E402
from ..recorder import Recorder  # noqa: E402
from ..recording_config import RecordingConfig  # noqa: E402
from ._adapter import AdapterRecorder  # noqa: E402

__all__ = ["LoopRecorder", "TorchDist", "WithIds", "default_forward", "eval_pass", "logits_of",
           "unwrap"]

#: What ``forward`` returns in an eval pass: (logits (n, K), labels (n,)).
Forward = Callable[[torch.nn.Module, Any], tuple[Any, Any]]

_LABEL_KEYS = ("labels", "label", "y")


class WithIds(Dataset):  # type: ignore[type-arg]
    """A map-style dataset whose items carry the example id.

    ``item = dataset[i]`` becomes ``(id, item)``, so a default ``DataLoader`` yields
    ``(ids, batch)``. With ``key="id"`` a dict item instead gets one more key,
    ``{**item, "id": id}`` (the form the Hugging Face adapter expects).

    Parameters
    ----------
    dataset : map-style dataset
        Anything with ``__len__`` and ``__getitem__``.
    ids : sequence of int or str, optional
        One stable id per item, unique. Default: the item's index, 0..N-1.
    key : str, optional
        Put the id into dict items under this key instead of pairing it.

    Examples
    --------
    >>> ds = WithIds([("a", 0), ("b", 1)], ids=["x-1", "x-2"])
    >>> ds[1]
    ('x-2', ('b', 1))
    >>> WithIds([{"v": 1}], key="id")[0]
    {'v': 1, 'id': 0}
    """

    def __init__(self, dataset: Any, ids: Sequence[Any] | np.ndarray | None = None, *,
                 key: str | None = None) -> None:
        self.dataset = dataset
        self.key = key
        self.ids: np.ndarray | None = None
        if ids is not None:
            arr = check_ids(list(ids) if not isinstance(ids, np.ndarray) else ids,
                            where="WithIds")
            if len(arr) != len(dataset):
                raise InputError(f"WithIds: ids has {len(arr)} entries but the dataset has "
                                 f"{len(dataset)} items; give one id per item.")
            uniq, counts = np.unique(arr, return_counts=True)
            if len(uniq) != len(arr):
                raise InputError(f"WithIds: ids must be unique; {fmt_id(uniq[counts > 1][0])} appears "
                                 f"{counts.max()} times.")
            self.ids = arr

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        item = self.dataset[index]
        ident: Any = int(index) if self.ids is None else self.ids[index].item()
        if self.key is None:
            return ident, item
        if not isinstance(item, Mapping):
            raise InputError(f"WithIds(key={self.key!r}): item {index} is a "
                             f"{type(item).__name__}, not a dict; key= adds the id to dict items. "
                             "Omit key= to get (id, item) pairs.")
        return {**item, self.key: ident}


class TorchDist:
    """:class:`~datacarto.integrations._adapter.Dist` over ``torch.distributed`` (any backend).

    Inactive (rank 0 of 1) unless a process group with more than one rank is initialized.
    With NCCL, set ``torch.cuda.set_device(local_rank)`` first, as ``gather_object`` requires.
    """

    def __init__(self) -> None:
        self.active = bool(torch_dist.is_available() and torch_dist.is_initialized()
                           and torch_dist.get_world_size() > 1)
        self.rank = torch_dist.get_rank() if self.active else 0
        self.world_size = torch_dist.get_world_size() if self.active else 1

    def gather(self, obj: Any) -> list[Any] | None:
        if not self.active:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.rank == 0 else None
        torch_dist.gather_object(obj, out, dst=0)
        return out

    def broadcast(self, obj: Any) -> Any:
        if not self.active:
            return obj
        box = [obj]
        torch_dist.broadcast_object_list(box, src=0)
        return box[0]


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside DistributedDataParallel / DataParallel wrappers (no collectives)."""
    while isinstance(model, (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)):
        model = model.module
    return model


def logits_of(output: Any, key: str = "logits") -> Any:
    """The logits in a model's output: a tensor, ``output[key]`` (dicts, ModelOutput), or ``output[0]``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) or hasattr(output, "keys"):
        return output[key] if key in output else None
    if isinstance(output, (tuple, list)) and output:
        return output[0]
    return None


def _to_device(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj


def _device_of(model: Any) -> torch.device:
    for p in (model.parameters() if hasattr(model, "parameters") else ()):
        return p.device
    return torch.device("cpu")


def default_forward(model: torch.nn.Module, batch: Any) -> tuple[Any, Any]:
    """Score one collated batch (without its ids) in an eval pass.

    ``(x, y)`` or ``(x1, ..., y)`` tuples call ``model(x, ...)`` and take the last element as
    labels; dicts take ``labels`` (or ``label``, ``y``) out and call ``model(**rest)``.
    Outputs may be a tensor, a dict / ``ModelOutput`` with ``logits``, or a tuple.
    """
    batch = _to_device(batch, _device_of(model))
    if isinstance(batch, Mapping):
        key = next((k for k in _LABEL_KEYS if k in batch), None)
        labels = batch[key] if key is not None else None
        out = model(**{k: v for k, v in batch.items() if k != key})
    elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
        labels = batch[-1]
        out = model(*batch[:-1])
    else:
        raise InputError(f"eval pass: cannot split a batch of type {type(batch).__name__} into "
                         "inputs and labels. Pass forward=lambda model, batch: (logits, labels).")
    return logits_of(out), labels


def _id_like(x: Any) -> bool:
    """A collated batch of ids: a 1-D integer tensor / array, or a list of str or int."""
    if isinstance(x, torch.Tensor):
        return x.ndim == 1 and not x.dtype.is_floating_point and not x.dtype.is_complex
    if isinstance(x, np.ndarray):
        return x.ndim == 1 and x.dtype.kind in "iuU"
    if isinstance(x, (list, tuple)):
        return all(isinstance(v, (str, int, np.integer)) and not isinstance(v, bool) for v in x)
    return False


def split_ids(batch: Any, key: str | None = None) -> tuple[Any, Any]:
    """``(ids, rest)`` from a batch of :class:`WithIds` items: a pair, or a dict with ``key``.

    A pair counts as ``(ids, rest)`` only when its first element looks like ids (1-D integers
    or strings), so that a plain ``(x, y)`` batch gives ``(None, batch)``.
    """
    if isinstance(batch, Mapping):
        k = key or "id"
        if k not in batch:
            return None, batch
        return batch[k], {name: v for name, v in batch.items() if name != k}
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and _id_like(batch[0]):
        return batch[0], batch[1]
    return None, batch


def eval_pass(model: torch.nn.Module, dataset: Any, *, batch_size: int = 256,
              collate_fn: Callable[[list[Any]], Any] | None = None,
              forward: Forward | None = None, key: str | None = None, rank: int = 0,
              world_size: int = 1) -> Iterator[tuple[Any, Any, Any]]:
    """Yield ``(ids, logits, labels)`` for this rank's share of ``dataset``, unshuffled, in eval mode.

    ``dataset`` yields :class:`WithIds` items. Rank r scores items r, r+W, ... (no padding, so
    no duplicates). The model is put in ``eval()`` under ``torch.no_grad()`` and its training
    flag restored afterwards; a DDP wrapper is bypassed so that no collective runs.
    """
    module = unwrap(model)
    was_training = module.training
    shard = Subset(dataset, range(rank, len(dataset), world_size)) if world_size > 1 else dataset
    loader = DataLoader(shard, batch_size=batch_size, shuffle=False, collate_fn=collate_fn)
    fwd = forward or default_forward
    module.eval()
    try:
        with torch.no_grad():
            for batch in loader:
                ids, rest = split_ids(batch, key)
                logits, labels = fwd(module, rest)
                yield ids, logits, labels
    finally:
        module.train(was_training)


class LoopRecorder:
    """Record a hand-written PyTorch training loop (see the module docstring).

    Parameters
    ----------
    path : str, Path or None
        Run directory (written by rank 0 only); ``None`` keeps the run in memory.
    capture : {"pass", "eval"}
        ``"pass"`` (default): record what ``update`` receives from the training step.
        ``"eval"``: ``update`` does nothing; ``end_epoch(model)`` scores ``dataset``.
    dataset : WithIds dataset, optional
        The training set. Required for eval mode; in pass mode, used only to check that each
        epoch saw every example (recommended).
    batch_size, collate_fn, forward
        How the eval pass batches and scores ``dataset``: ``forward(model, batch)`` gets the
        collated batch without ids and returns ``(logits, labels)`` (default:
        :func:`default_forward`).
    inputs, classes, num_classes, seed, meta, on_duplicate
        As for :class:`~datacarto.Recorder` (collected in :attr:`config`, a
        :class:`~datacarto.recording_config.RecordingConfig`).

    Examples
    --------
    >>> import torch
    >>> rec = LoopRecorder(None, num_classes=2)
    >>> rec.update(torch.tensor([3, 1]), torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    >>> rec.end_epoch()
    1
    >>> rec.to_dynamics().ids.tolist()
    [1, 3]
    """

    ADAPTER = "LoopRecorder"

    def __init__(self, path: str | Path | None = None, *, capture: str = "pass",
                 dataset: Any = None, batch_size: int = 256,
                 collate_fn: Callable[[list[Any]], Any] | None = None,
                 forward: Forward | None = None, inputs: str = "logits",
                 classes: list[str] | None = None, num_classes: int | None = None,
                 seed: int | None = None, meta: dict[str, Any] | None = None,
                 on_duplicate: str | None = None) -> None:
        self.config = RecordingConfig(
            capture=capture, inputs=inputs, classes=classes, num_classes=num_classes, seed=seed,
            meta=meta or {}, on_duplicate=on_duplicate, where=self.ADAPTER,
        ).with_meta(integration="torch")
        if capture == "eval" and dataset is None:
            raise InputError("LoopRecorder(capture='eval') needs dataset=: the training set "
                             "wrapped in WithIds, which end_epoch(model) scores unshuffled.")
        self.dataset = dataset
        self.batch_size = batch_size
        self.collate_fn = collate_fn
        self.forward = forward
        expected = len(dataset) if dataset is not None and hasattr(dataset, "__len__") else None
        self._rec = AdapterRecorder(
            self.ADAPTER, path, self.config, dist=TorchDist, expected_n=expected,
            ids_hint="Wrap the training set as WithIds(dataset) and pass the ids it yields: "
                      "`for ids, (x, y) in loader: ... rec.update(ids, logits, y)`.",
            incomplete_hint="A DataLoader with drop_last=True (or a sampler that skips examples) "
                            "leaves some out: use drop_last=False, or capture='eval'.")

    @property
    def capture(self) -> str:
        """``"pass"`` or ``"eval"``, as constructed."""
        return self.config.capture

    @property
    def recorder(self) -> Recorder:
        """The underlying :class:`~datacarto.Recorder` (the writer on rank 0)."""
        return self._rec.recorder

    @property
    def is_writer(self) -> bool:
        return self._rec.is_writer

    def update(self, ids: Any, logits: Any, labels: Any) -> None:
        """Record one training batch (pass mode; a no-op in eval mode)."""
        if self.capture == "eval":
            return
        self._rec.add(ids, logits, labels)

    def end_epoch(self, model: torch.nn.Module | None = None) -> int:
        """Finish the epoch: in eval mode score ``dataset`` with ``model`` first. Returns its number.

        Every rank must call it (it gathers to rank 0).
        """
        if self.capture == "eval":
            if model is None:
                raise InputError("LoopRecorder.end_epoch: capture='eval' scores the training set "
                                 "with the model: call end_epoch(model).")
            d = self._rec.dist
            for ids, logits, labels in eval_pass(model, self.dataset, batch_size=self.batch_size,
                                                 collate_fn=self.collate_fn, forward=self.forward,
                                                 rank=d.rank, world_size=d.world_size):
                self._rec.add(ids, logits, labels)
        return self._rec.commit()

    def state_dict(self) -> dict[str, Any] | None:
        """For a checkpoint: committed epochs and the current epoch's rows so far (rank 0; None elsewhere)."""
        return self._rec.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Resume from :meth:`state_dict`: epochs committed after it are dropped from the run."""
        if state is not None:
            self._rec.load_state_dict(state)

    def to_dynamics(self) -> TrainingDynamics:
        return self._rec.to_dynamics()

    def close(self) -> None:
        self._rec.close()

    def __enter__(self) -> LoopRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self._rec.discard()
        self.close()

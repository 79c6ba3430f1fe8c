"""Lightning adapter: conformance (incl. fit(ckpt_path=...)) in both modes, bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning")
torch = pytest.importorskip("torch")

import lightning.pytorch as pl  # noqa: E402
from conftest import tiny_data  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset  # noqa: E402

import datacarto  # noqa: E402
from datacarto.errors import InputError  # noqa: E402
from datacarto.testing import Capture, check_integration  # noqa: E402
from datacarto.integrations.lightning import DataMapCallback  # noqa: E402
from datacarto.integrations.torch import WithIds  # noqa: E402

torch.set_num_threads(1)
logging.getLogger("lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
pytestmark = [
    # lightning 2.6 on torch 2.13 (third-party, not ours)
    pytest.mark.filterwarnings("ignore:.*LeafSpec.* is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*smaller than the logging interval.*"),
    pytest.mark.filterwarnings("ignore:.*Checkpoint directory .* exists and is not empty.*"),
    pytest.mark.filterwarnings("ignore:The dirpath has changed from.*"),
]
EPOCHS = 3


class LitTiny(pl.LightningModule):
    def __init__(self, seed: int = 0, cap: Capture | None = None, mode: str = "logits") -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.linear = torch.nn.Linear(4, 3)
        self.cap = cap
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def training_step(self, batch, batch_idx):
        ids, (x, y) = batch
        logits = self(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        if self.cap is not None:
            self.cap.add_batch(ids, logits.detach(), y)
        if self.mode == "loss-only":
            return loss
        if self.mode == "probs":
            return {"loss": loss, "logits": torch.softmax(logits, 1)}
        if self.mode == "bad-labels":
            return {"loss": loss, "logits": logits, "labels": y + 3}
        return {"loss": loss, "logits": logits}

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.3)


class EvalCapture(pl.Callback):
    def __init__(self, cap: Capture, X: np.ndarray, y: np.ndarray, ids: np.ndarray) -> None:
        self.cap, self.X, self.y, self.ids = cap, X, y, ids

    def on_train_epoch_end(self, trainer, pl_module):
        with torch.no_grad():
            pl_module.eval()
            self.cap.add_batch(self.ids, pl_module(torch.from_numpy(self.X)), self.y)
            pl_module.train()
        self.cap.end_epoch()


class PassCapture(pl.Callback):
    def __init__(self, cap: Capture) -> None:
        self.cap = cap

    def on_train_epoch_end(self, trainer, pl_module):
        self.cap.end_epoch()


def _loader(batch_size: int = 5, drop_last: bool = False, ds=None):
    X, y, ids = tiny_data()
    ds = ds or WithIds(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), ids=ids)
    # a shuffle that depends only on the epoch (Lightning calls set_epoch), so resumes replay it
    sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=True, seed=0)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, drop_last=drop_last)


def _trainer(max_epochs: int = EPOCHS, callbacks=(), **kw) -> pl.Trainer:
    base = dict(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False,
                enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0)
    base.update(kw)
    if any(isinstance(c, ModelCheckpoint) for c in callbacks):
        base["enable_checkpointing"] = True
    return pl.Trainer(callbacks=list(callbacks), **base)


def lightning_run(capture: str):
    def run(path: Path, resume: bool) -> Capture:
        X, y, ids = tiny_data()
        cap = Capture()
        model = LitTiny(cap=cap if capture == "pass" else None)
        watch = EvalCapture(cap, X, y, ids) if capture == "eval" else PassCapture(cap)
        if not resume:
            _trainer(callbacks=[DataMapCallback(path, capture=capture), watch]).fit(model, _loader())
            return cap
        ckpts = path.parent / f"{path.name}-ckpt"
        saver = ModelCheckpoint(dirpath=ckpts, filename="{epoch}", save_top_k=-1,
                                save_on_train_epoch_end=True)
        # "crash" after 2 epochs, then resume from the checkpoint of epoch 1: epoch 2 is
        # dropped from the run and recorded again
        _trainer(max_epochs=2, callbacks=[DataMapCallback(path, capture=capture), watch, saver]
                 ).fit(model, _loader())
        assert datacarto.load(path).epochs == [1, 2]
        saver2 = ModelCheckpoint(dirpath=ckpts / "again", filename="{epoch}", save_top_k=-1,
                                 save_on_train_epoch_end=True)
        _trainer(callbacks=[DataMapCallback(path, capture=capture), saver2]).fit(
            LitTiny(seed=7), _loader(), ckpt_path=str(ckpts / "epoch=0.ckpt"))
        return cap
    return run


@pytest.mark.parametrize("capture", ["pass", "eval"])
def test_conformance(capture: str, tmp_path: Path) -> None:
    _, _, ids = tiny_data()
    check_integration(lightning_run(capture), tmp_path, expected_ids=ids)
    run = datacarto.load(tmp_path / "full")
    assert run.capture == capture and run.meta.extra["integration"] == "lightning"


def test_max_steps_mid_epoch_drops_the_partial_epoch(tmp_path: Path) -> None:
    trainer = _trainer(max_steps=7, callbacks=[DataMapCallback(tmp_path)])
    with pytest.warns(UserWarning, match=r"training stopped before the end of epoch 2"):
        trainer.fit(LitTiny(), _loader())
    assert datacarto.load(tmp_path).epochs == [1]


def _fit(tmp_path: Path, model=None, loader=None, **cb) -> None:
    _trainer(max_epochs=1, callbacks=[DataMapCallback(tmp_path / "run", **cb)]).fit(
        model or LitTiny(), loader or _loader())


@pytest.mark.parametrize("mode, match", [
    ("loss-only", r"DataMapCallback \(Lightning\) \(epoch 1, batch 0\): training_step returned no "
                  r"'logits'\. Return \{'loss': loss, 'logits': logits\}"),
    ("probs", r"DataMapCallback \(Lightning\) \(epoch 1, batch 1\): the outputs look like "
              r"probabilities"),
    ("bad-labels", r"DataMapCallback \(Lightning\) \(epoch 1, batch 1\): labels\[0\] .*is outside 0..2"),
], ids=["no-logits", "probs-as-logits", "label-range"])
def test_bad_step_outputs(mode: str, match: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=match):
        _fit(tmp_path, model=LitTiny(mode=mode))


def test_declared_probabilities(tmp_path: Path) -> None:
    _fit(tmp_path, model=LitTiny(mode="probs"), inputs="probs")
    assert datacarto.load(tmp_path / "run").meta.inputs == "probs"


class NoIdModule(LitTiny):
    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        return {"loss": torch.nn.functional.cross_entropy(logits, y), "logits": logits}


def test_batches_without_ids(tmp_path: Path) -> None:
    X, y, _ = tiny_data()
    loader = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=24)
    with pytest.raises(InputError, match=r"DataMapCallback \(Lightning\) \(epoch 1, batch 1\): "
                                         r"the batch carries no example ids\. Wrap the training "
                                         r"set as WithIds"):
        _fit(tmp_path, model=NoIdModule(), loader=loader)
    with pytest.raises(InputError, match=r"DataMapCallback \(Lightning\): training items carry no "
                                         r"ids\. Wrap the training set as WithIds"):
        _fit(tmp_path, model=NoIdModule(), loader=loader, capture="eval")


def test_drop_last_is_an_incomplete_epoch(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"epoch 1 saw 20 distinct example ids but the training "
                                         r"set has 24; .*drop_last=True"):
        _fit(tmp_path, loader=_loader(drop_last=True))


def test_bad_capture_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"'capture' parameter of DataMapCallback \(Lightning\)"):
        DataMapCallback(tmp_path, capture="val")


def _step_checkpoints(tmp_path: Path, every: int, capture: str = "pass") -> Path:
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{step}", save_top_k=-1,
                            every_n_train_steps=every)
    _trainer(max_epochs=2, callbacks=[DataMapCallback(tmp_path / "run", capture=capture), saver]
             ).fit(LitTiny(), _loader())
    return tmp_path / "ckpt"


@pytest.mark.parametrize("capture", ["pass", "eval"])
def test_resume_from_a_checkpoint_saved_on_the_last_batch(capture: str, tmp_path: Path) -> None:
    # saved by on_train_batch_end of the epoch's last batch, before the epoch-end record ran:
    # the callback's state holds the whole epoch (pass) or the run lacks it (eval)
    ckpts = _step_checkpoints(tmp_path, every=5, capture=capture)
    full = datacarto.load(tmp_path / "run").dynamics()
    _trainer(max_epochs=2, callbacks=[DataMapCallback(tmp_path / "run", capture=capture),
                                      ModelCheckpoint(dirpath=tmp_path / "c2", save_top_k=-1,
                                                      every_n_train_steps=5)]).fit(
        LitTiny(seed=3), _loader(), ckpt_path=str(ckpts / "step=5.ckpt"))
    again = datacarto.load(tmp_path / "run").dynamics()
    assert again.epochs.tolist() == [1, 2]
    np.testing.assert_allclose(again.gold_prob, full.gold_prob, atol=1e-6)


@pytest.mark.filterwarnings("ignore:.*resuming from a checkpoint that ended before the epoch ended.*")
def test_mid_epoch_resume_with_plain_dataloader_skips_that_epoch_in_pass_mode(tmp_path: Path) -> None:
    ckpts = _step_checkpoints(tmp_path, every=7)
    trainer = _trainer(max_epochs=3, callbacks=[DataMapCallback(tmp_path / "run"),
                                                ModelCheckpoint(dirpath=tmp_path / "c2",
                                                                save_top_k=-1,
                                                                every_n_train_steps=7)])
    with pytest.warns(UserWarning, match=r"epoch 2 resumed from a mid-epoch checkpoint .*not "
                                         r"resumable; pass mode does not record it"):
        trainer.fit(LitTiny(seed=3), _loader(), ckpt_path=str(ckpts / "step=7.ckpt"))
    assert datacarto.load(tmp_path / "run").epochs == [1, 2]  # trainer epochs 1 and 3

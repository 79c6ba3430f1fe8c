"""Hugging Face Trainer adapter: conformance (incl. resume_from_checkpoint) in both modes, bad input."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from conftest import tiny_data  # noqa: E402
from transformers import Trainer, TrainerCallback, TrainingArguments  # noqa: E402

import datacarto  # noqa: E402
from datacarto.errors import InputError  # noqa: E402
from datacarto.testing import Capture, check_integration  # noqa: E402
from datacarto.integrations.huggingface import DataMapCallback  # noqa: E402
from datacarto.integrations.torch import WithIds  # noqa: E402

torch.set_num_threads(1)
logging.getLogger("transformers").setLevel(logging.ERROR)
EPOCHS = 3


class TinyClassifier(torch.nn.Module):
    """What Trainer needs: forward(**batch) -> dict with loss (when labels are given) and logits."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.linear(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


def _dataset(with_ids: bool = True):
    X, y, _ = tiny_data()
    items = ListDataset([{"x": torch.from_numpy(X[i]), "labels": int(y[i])} for i in range(len(y))])
    ids = np.arange(100, 100 + len(y))
    return (WithIds(items, ids=ids, key="id") if with_ids else items), ids, X, y


def _args(out: Path, **kw) -> TrainingArguments:
    base = dict(output_dir=str(out), num_train_epochs=EPOCHS, per_device_train_batch_size=5,
                per_device_eval_batch_size=7, learning_rate=0.5, lr_scheduler_type="constant",
                optim="sgd", weight_decay=0.0, report_to=[], use_cpu=True,
                dataloader_num_workers=0, save_strategy="no", logging_strategy="no",
                disable_tqdm=True, seed=0, data_seed=0)
    base.update(kw)
    return TrainingArguments(**base)


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


class CaptureCallback(TrainerCallback):
    """Independent record of the logits: pass mode from forward hooks, eval mode by scoring X."""

    def __init__(self, cap: Capture, mode: str, X: np.ndarray, y: np.ndarray, ids: np.ndarray) -> None:
        self.cap, self.mode, self.X, self.y, self.ids = cap, mode, X, y, ids
        self._stash = None

    def hook(self, model: torch.nn.Module) -> None:
        def pre(module, args, kwargs):
            if module.training:
                self._stash = (kwargs["id"].clone(), kwargs["labels"].clone())

        def post(module, args, kwargs, output):
            if self._stash is not None:
                self.cap.add_batch(self._stash[0], output["logits"].detach(), self._stash[1])
                self._stash = None
        # registered before the DataMapCallback's hooks, so it still sees the id column
        model.register_forward_pre_hook(pre, with_kwargs=True)
        model.register_forward_hook(post, with_kwargs=True)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if abs(state.epoch - round(state.epoch)) > 1e-6:
            self.cap.drop_partial()
            return
        if self.mode == "eval":
            with torch.no_grad():
                model.eval()
                self.cap.add_batch(self.ids, model(torch.from_numpy(self.X))["logits"], self.y)
                model.train()
        self.cap.end_epoch()


def hf_run(capture: str):
    def run(path: Path, resume: bool) -> Capture:
        ds, ids, X, y = _dataset()
        cap = Capture()
        extra = {"remove_unused_columns": False} if capture == "pass" else {}
        out = path.parent / f"{path.name}-trainer"
        model = TinyClassifier()
        capcb = CaptureCallback(cap, capture, X, y, ids)
        if capture == "pass":
            capcb.hook(model)
        if not resume:
            trainer = Trainer(model, _args(out, **extra), train_dataset=ds,
                              callbacks=[DataMapCallback(str(path), capture=capture), capcb])
            trainer.train()
            return cap
        # 5 steps per epoch; checkpoint at step 7 (mid epoch 2); stop at step 12, after
        # epoch 2 was committed, then resume from step 7: epoch 2 must be recorded once, again
        trainer = Trainer(model, _args(out, save_strategy="steps", save_steps=7, **extra),
                          train_dataset=ds,
                          callbacks=[DataMapCallback(str(path), capture=capture), capcb,
                                     StopAt(12)])
        stopped = (pytest.warns(UserWarning, match=r"training stopped before the end of epoch 3")
                   if capture == "pass" else contextlib.nullcontext())  # eval mode drops no rows
        with stopped:
            trainer.train()
        assert datacarto.load(path).epochs == [1, 2]
        model2 = TinyClassifier(seed=123)
        trainer = Trainer(model2, _args(out, save_strategy="steps", save_steps=7, **extra),
                          train_dataset=ds, callbacks=[DataMapCallback(str(path), capture=capture)])
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-7"))
        return cap
    return run


@pytest.mark.parametrize("capture", ["eval", "pass"])
def test_conformance(capture: str, tmp_path: Path) -> None:
    _, ids, _, _ = _dataset()
    check_integration(hf_run(capture), tmp_path, expected_ids=ids)
    run = datacarto.load(tmp_path / "full")
    assert run.capture == capture and run.meta.extra["integration"] == "huggingface"
    assert run.epochs == [1, 2, 3]


def test_pass_mode_keeps_rows_of_a_mid_epoch_checkpoint(tmp_path: Path) -> None:
    ds, _, _, _ = _dataset()
    args = _args(tmp_path / "t", remove_unused_columns=False, save_strategy="steps", save_steps=7)
    trainer = Trainer(TinyClassifier(), args, train_dataset=ds,
                      callbacks=[DataMapCallback(str(tmp_path / "run"), capture="pass")])
    trainer.train()
    saved = sorted(p.name for p in (tmp_path / "run" / "resume").glob("*.npz"))
    # the last checkpoint (step 15) is saved before the epoch-end event: all of epoch 3 pending
    assert saved == ["step-000000007.npz", "step-000000014.npz", "step-000000015.npz"]
    for name, epoch, rows in (("step-000000007.npz", 1, 10), ("step-000000015.npz", 2, 24)):
        with np.load(tmp_path / "run" / "resume" / name) as z:
            assert int(z["epoch"]) == epoch and len(z["ids"]) == rows


def test_resume_from_the_last_step_checkpoint_records_the_closed_epoch(tmp_path: Path) -> None:
    ds, _, _, _ = _dataset()
    for capture in ("pass", "eval"):
        kw = {"remove_unused_columns": False} if capture == "pass" else {}
        args = _args(tmp_path / capture, save_strategy="steps", save_steps=5, **kw)
        run = tmp_path / f"run-{capture}"
        Trainer(TinyClassifier(), args, train_dataset=ds,
                callbacks=[DataMapCallback(str(run), capture=capture)]).train()
        full = datacarto.load(run).dynamics()
        # step 10 closes epoch 2; its checkpoint is saved before the epoch-end record runs
        trainer = Trainer(TinyClassifier(seed=5), args, train_dataset=ds,
                          callbacks=[DataMapCallback(str(run), capture=capture)])
        trainer.train(resume_from_checkpoint=str(tmp_path / capture / "checkpoint-10"))
        again = datacarto.load(run).dynamics()
        assert again.epochs.tolist() == [1, 2, 3]
        np.testing.assert_allclose(again.gold_prob, full.gold_prob, atol=1e-6)


def test_missing_resume_rows_is_an_error(tmp_path: Path) -> None:
    ds, _, _, _ = _dataset()
    args = _args(tmp_path / "t", remove_unused_columns=False, save_strategy="steps", save_steps=7)
    run = tmp_path / "run"
    trainer = Trainer(TinyClassifier(), args, train_dataset=ds,
                      callbacks=[DataMapCallback(str(run), capture="pass"), StopAt(8)])
    with pytest.warns(UserWarning, match="training stopped"):
        trainer.train()
    (run / "resume" / "step-000000007.npz").unlink()
    trainer = Trainer(TinyClassifier(), args, train_dataset=ds,
                      callbacks=[DataMapCallback(str(run), capture="pass")])
    with pytest.raises(InputError, match=r"resuming at step 7 in pass mode needs the rows .*missing"):
        trainer.train(resume_from_checkpoint=str(tmp_path / "t" / "checkpoint-7"))


def test_class_names_from_model_config(tmp_path: Path) -> None:
    ds, _, _, _ = _dataset()
    model = TinyClassifier()
    model.config = type("Config", (), {"id2label": {0: "neg", 1: "neu", 2: "pos"}})()
    trainer = Trainer(model, _args(tmp_path / "t", num_train_epochs=1), train_dataset=ds,
                      callbacks=[DataMapCallback(str(tmp_path / "run"))])
    trainer.train()
    assert datacarto.load(tmp_path / "run").classes == ("neg", "neu", "pos")


def _train(tmp_path: Path, ds, *, args_kw=None, model=None, **cb):
    trainer = Trainer(model or TinyClassifier(), _args(tmp_path / "t", num_train_epochs=1,
                                                       **(args_kw or {})),
                      train_dataset=ds, callbacks=[DataMapCallback(str(tmp_path / "run"), **cb)])
    trainer.train()


def test_training_set_without_ids(tmp_path: Path) -> None:
    ds, _, _, _ = _dataset(with_ids=False)
    with pytest.raises(InputError, match=r"DataMapCallback \(Hugging Face\): training items have "
                                         r"no 'id' \(got \['labels', 'x'\]\)\. Wrap the training set"):
        _train(tmp_path, ds)


def test_pass_mode_needs_remove_unused_columns_false(tmp_path: Path) -> None:
    ds, _, _, _ = _dataset()
    with pytest.raises(InputError, match=r"capture='pass' needs the 'id' column .*"
                                         r"remove_unused_columns=False"):
        _train(tmp_path, ds, capture="pass")


class ProbsClassifier(TinyClassifier):
    def forward(self, x, labels=None):
        out = super().forward(x, labels)
        out["logits"] = torch.softmax(out["logits"], dim=1)
        return out


@pytest.mark.parametrize("capture", ["eval", "pass"])
def test_probabilities_as_logits(capture: str, tmp_path: Path) -> None:
    ds, _, _, _ = _dataset()
    with pytest.raises(InputError, match=r"DataMapCallback \(Hugging Face\) \(epoch 1, batch 1\): "
                                         r"the outputs look like probabilities"):
        _train(tmp_path, ds, model=ProbsClassifier(), capture=capture,
               args_kw={"remove_unused_columns": False})


def test_probabilities_when_declared(tmp_path: Path) -> None:
    ds, _, _, _ = _dataset()
    _train(tmp_path, ds, model=ProbsClassifier(), inputs="probs")
    assert datacarto.load(tmp_path / "run").meta.inputs == "probs"


class LooseClassifier(TinyClassifier):
    """A loss that never indexes by label, so a bad label reaches the callback."""

    def forward(self, x, labels=None):
        logits = self.linear(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = (logits - labels[:, None].float()).pow(2).mean()
        return out


@pytest.mark.parametrize("capture", ["eval", "pass"])
def test_label_outside_class_range(capture: str, tmp_path: Path) -> None:
    ds, _, _, _ = _dataset()
    ds.dataset.items[0] = {**ds.dataset.items[0], "labels": 3}
    with pytest.raises(InputError, match=r"DataMapCallback \(Hugging Face\) \(epoch 1, batch \d+\): .*"
                                         r"\(id=100\) = 3 is outside 0..2"):
        _train(tmp_path, ds, model=LooseClassifier(), capture=capture,
               args_kw={"remove_unused_columns": False})


def test_bad_capture_fails_at_construction() -> None:
    with pytest.raises(InputError, match=r"'capture' parameter of DataMapCallback \(Hugging Face\)"):
        DataMapCallback("x", capture="passs")


def test_state_round_trips_through_from_state() -> None:
    cb = DataMapCallback("runs/x", capture="pass", classes=["a", "b"])
    cb.run_offset = 2
    again = DataMapCallback.from_state(cb.state())
    assert again.state() == cb.state() and again.run_offset == 2

"""Plain PyTorch adapter: WithIds, LoopRecorder in pass and eval mode, conformance, bad input."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import tiny_data  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import datacarto  # noqa: E402
from datacarto.errors import InputError, StateError  # noqa: E402
from datacarto.testing import Capture, check_integration  # noqa: E402
from datacarto.integrations.torch import (LoopRecorder, WithIds, default_forward,  # noqa: E402
                                          eval_pass, logits_of, split_ids, unwrap)

torch.set_num_threads(1)
EPOCHS = 3
BATCH = 5


def _setup(seed: int = 0):
    X, y, ids = tiny_data()
    ds = WithIds(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), ids=ids)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    return ds, ids, model, opt


def _batches(ds, epoch: int):
    # the shuffle depends only on the epoch, so a resumed run sees the same batches
    g = torch.Generator().manual_seed(1000 + epoch)
    return list(DataLoader(ds, batch_size=BATCH, shuffle=True, generator=g))


def _step(model, opt, x, t):
    out = model(x)
    loss = torch.nn.functional.cross_entropy(out, t)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return out


def torch_run(capture: str):
    def run(path: Path, resume: bool) -> Capture:
        ds, ids, model, opt = _setup()
        cap = Capture()
        rec = LoopRecorder(path, capture=capture, dataset=ds, batch_size=7)
        stop = (1, 2)  # epoch index 1, after 2 batches
        ckpt = None
        epoch = 0
        while epoch < EPOCHS:
            batches = _batches(ds, epoch)
            start = 0
            if ckpt is not None and epoch == stop[0]:
                start, ckpt = stop[1], None
            for b, (bid, (x, t)) in enumerate(batches[start:], start=start):
                if resume and ckpt is None and (epoch, b) == stop and start == 0:
                    # checkpoint mid-epoch, keep running past it, then "crash" after the epoch
                    ckpt = copy.deepcopy({"model": model.state_dict(), "opt": opt.state_dict(),
                                          "rec": rec.state_dict()})
                out = _step(model, opt, x, t)
                rec.update(bid, out, t)
                if capture == "pass":
                    cap.add_batch(bid, out.detach(), t)
            rec.end_epoch(model)
            if capture == "eval":
                with torch.no_grad():
                    model.eval()
                    X_all = torch.stack([ds.dataset[i][0] for i in range(len(ds))])
                    y_all = torch.stack([ds.dataset[i][1] for i in range(len(ds))])
                    cap.add_batch(ids, model(X_all), y_all)
                    model.train()
            cap.end_epoch()
            if ckpt is not None and epoch == stop[0]:
                # crash: rebuild everything from the checkpoint, a fresh recorder on the same path
                _, _, model, opt = _setup(seed=99)
                model.load_state_dict(ckpt["model"])
                opt.load_state_dict(ckpt["opt"])
                rec = LoopRecorder(path, capture=capture, dataset=ds, batch_size=7)
                rec.load_state_dict(ckpt["rec"])
                continue  # redo epoch `stop[0]` from batch `stop[1]`
            epoch += 1
        rec.close()
        return cap
    return run


@pytest.mark.parametrize("capture", ["pass", "eval"])
def test_conformance(capture: str, tmp_path: Path) -> None:
    _, ids, _, _ = _setup()
    cap = check_integration(torch_run(capture), tmp_path, expected_ids=ids)
    run = datacarto.load(tmp_path / "full")
    assert run.capture == capture and run.meta.extra["integration"] == "torch"
    assert len(cap.epochs) == EPOCHS


def test_resume_truncates_epochs_recorded_after_the_checkpoint(tmp_path: Path) -> None:
    ds, ids, model, opt = _setup()
    rec = LoopRecorder(tmp_path, dataset=ds)
    for epoch in range(2):
        for bid, (x, t) in _batches(ds, epoch):
            rec.update(bid, _step(model, opt, x, t), t)
        rec.end_epoch()
        if epoch == 0:
            state = rec.state_dict()
    assert datacarto.load(tmp_path).epochs == [1, 2]
    again = LoopRecorder(tmp_path, dataset=ds)
    again.load_state_dict(state)
    assert datacarto.load(tmp_path).epochs == [1]
    assert not (tmp_path / "epochs" / "epoch-00002.parquet").exists()
    assert again.recorder.epoch == 2


def test_with_ids_forms() -> None:
    base = [(torch.zeros(2), 1), (torch.ones(2), 0)]
    assert WithIds(base)[1][0] == 1
    assert WithIds(base, ids=np.array([7, 9]))[1][0] == 9
    item = WithIds([{"x": 1}], ids=["a"], key="id")[0]
    assert item == {"x": 1, "id": "a"}
    ids, rest = split_ids({"id": torch.tensor([3]), "x": torch.zeros(1)})
    assert ids.tolist() == [3] and list(rest) == ["x"]
    assert split_ids({"x": 1}) == (None, {"x": 1})
    assert split_ids([1, 2, 3]) == (None, [1, 2, 3])
    x, y = torch.zeros(2, 4), torch.tensor([0, 1])
    assert split_ids((x, y))[0] is None  # a plain (x, y) batch carries no ids
    assert split_ids((["a", "b"], (x, y)))[0] == ["a", "b"]
    assert split_ids((np.array([1, 2]), (x, y)))[0].tolist() == [1, 2]


@pytest.mark.parametrize("kwargs, match", [
    ({"ids": [1, 2, 3]}, r"WithIds: ids has 3 entries but the dataset has 2 items"),
    ({"ids": [5, 5]}, r"WithIds: ids must be unique; 5 appears 2 times"),
], ids=["length", "duplicates"])
def test_with_ids_rejects_bad_ids(kwargs, match) -> None:
    with pytest.raises(InputError, match=match):
        WithIds([0, 1], **kwargs)


def test_with_ids_key_needs_dict_items() -> None:
    with pytest.raises(InputError, match=r"WithIds\(key='id'\): item 0 is a tuple, not a dict"):
        WithIds([(1, 2)], key="id")[0]


def _rec(**kw) -> LoopRecorder:
    return LoopRecorder(None, **kw)


LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.3, -2.0]])


@pytest.mark.parametrize("ids, outputs, labels, match", [
    (None, LOGITS, torch.tensor([0, 1]),
     r"LoopRecorder \(epoch 1, batch 1\): the batch carries no example ids\. Wrap the training "
     r"set as WithIds"),
    (torch.tensor([1, 2]), LOGITS, None, r"LoopRecorder .*: the batch carries no labels"),
    (torch.tensor([1, 2]), None, torch.tensor([0, 1]), r"the model returned no logits"),
    (torch.tensor([1, 2, 3]), LOGITS, torch.tensor([0, 1, 1]),
     r"LoopRecorder \(epoch 1, batch 1\): ids has 3 entries, outputs has 2 rows"),
    (torch.tensor([1, 2]), torch.softmax(LOGITS, 1), torch.tensor([0, 1]),
     r"outputs look like probabilities .*inputs='probs'"),
    (torch.tensor([1, 2]), torch.tensor([0, 2]), torch.tensor([0, 1]),
     r"expected logits of shape \(batch, n_classes\) .*got shape \(2,\)"),
    (torch.tensor([1, 2]), LOGITS[:, :1], torch.tensor([0, 1]), r"got shape \(2, 1\)"),
    (torch.tensor([1, 2]), LOGITS, torch.tensor([0, 3]),
     r"LoopRecorder \(epoch 1, batch 1\): labels\[1\] \(id=2\) = 3 is outside 0..2"),
], ids=["no-ids", "no-labels", "no-logits", "lengths", "probs-as-logits", "classes-not-logits",
        "one-column", "label-range"])
def test_bad_batches_fail_at_the_first_batch(ids, outputs, labels, match) -> None:
    with pytest.raises(InputError, match=match):
        _rec().update(ids, outputs, labels)


def test_declared_probabilities_are_accepted() -> None:
    rec = _rec(inputs="probs")
    rec.update(torch.tensor([1, 2]), torch.softmax(LOGITS, 1), torch.tensor([0, 1]))
    rec.end_epoch()
    np.testing.assert_allclose(rec.to_dynamics().gold_prob[:, 0],
                               torch.softmax(LOGITS, 1)[[0, 1], [0, 1]].numpy(), atol=1e-6)


def test_eval_mode_needs_dataset_and_model() -> None:
    with pytest.raises(InputError, match=r"LoopRecorder\(capture='eval'\) needs dataset="):
        LoopRecorder(None, capture="eval")
    rec = LoopRecorder(None, capture="eval", dataset=WithIds([(torch.zeros(2), 0)]))
    with pytest.raises(InputError, match=r"call end_epoch\(model\)"):
        rec.end_epoch()


def test_bad_capture_mode() -> None:
    with pytest.raises(InputError, match=r"'capture' parameter of LoopRecorder .*Did you mean 'eval'"):
        LoopRecorder(None, capture="evl")


def test_incomplete_epoch_is_an_error(tmp_path: Path) -> None:
    ds, _, model, opt = _setup()
    rec = LoopRecorder(tmp_path, dataset=ds)
    for bid, (x, t) in DataLoader(ds, batch_size=BATCH, drop_last=True):
        rec.update(bid, _step(model, opt, x, t), t)
    with pytest.raises(InputError, match=r"LoopRecorder: epoch 1 saw 20 distinct example ids but "
                                         r"the training set has 24.*drop_last=False"):
        rec.end_epoch()
    assert not (tmp_path / "run.json").exists()


def test_end_epoch_without_rows() -> None:
    with pytest.raises(StateError, match=r"epoch 1 has no rows"):
        _rec().end_epoch()


def test_to_dynamics_only_on_rank_zero() -> None:
    rec = _rec()
    rec._rec._dist = type("Rank1", (), {"rank": 1, "world_size": 2})()
    with pytest.raises(StateError, match=r"only rank 0 holds the run"):
        rec.to_dynamics()


def test_exit_with_error_discards_partial_epoch(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with LoopRecorder(tmp_path) as rec:
            rec.update([1, 2], LOGITS, [0, 1])
            raise RuntimeError("boom")
    assert not (tmp_path / "run.json").exists()


def test_eval_pass_helpers_restore_training_flag() -> None:
    ds, _, model, _ = _setup()
    wrapped = torch.nn.DataParallel(model)
    assert unwrap(wrapped) is model
    rows = list(eval_pass(wrapped, ds, batch_size=10, rank=1, world_size=2))
    assert sum(len(r[0]) for r in rows) == 12 and model.training
    assert logits_of({"logits": 1}) == 1 and logits_of((2, 3)) == 2 and logits_of(object()) is None
    dict_batch = {"x": torch.zeros(2, 4), "labels": torch.tensor([0, 1])}
    logits, labels = default_forward(lambda x: x[:, :3], dict_batch)  # type: ignore[arg-type]
    assert logits.shape == (2, 3) and labels.tolist() == [0, 1]
    with pytest.raises(InputError, match=r"eval pass: cannot split a batch of type Tensor"):
        default_forward(model, torch.zeros(2, 4))


def test_later_batches_are_held_and_errors_still_name_their_batch() -> None:
    rec = _rec()
    rec.update(torch.tensor([0, 1]), LOGITS, torch.tensor([0, 1]))   # checked at once
    rec.update(torch.tensor([2, 3]), LOGITS, torch.tensor([0, 1]))   # held
    rec.update(torch.tensor([4, 5]), LOGITS, torch.tensor([0, 7]))   # held, bad label
    with pytest.raises(InputError, match=r"LoopRecorder \(epoch 1, batch 3\): labels\[1\] "
                                         r"\(id=5\) = 7 is outside 0..2"):
        rec.end_epoch()
    rec = _rec()
    rec.update(torch.tensor([0, 1]), LOGITS, torch.tensor([0, 1]))
    rec.update(torch.tensor([2, 3]), torch.zeros(2, 4), torch.tensor([0, 1]))
    with pytest.raises(InputError, match=r"LoopRecorder \(epoch 1, batch 2\): outputs have 4 "
                                         r"columns but the run has 3 classes"):
        rec.state_dict()


def test_held_batches_reach_the_run_in_groups() -> None:
    rec = _rec()
    rec._rec.flush_every = 4
    for b in range(10):
        rec.update(torch.tensor([2 * b, 2 * b + 1]), LOGITS, torch.tensor([0, 1]))
    assert len(rec._rec._held) == 1  # batch 1 alone, then 2-5 and 6-9 flushed, 10 held
    assert len(rec.state_dict()["ids"]) == 20 and not rec._rec._held
    rec.end_epoch()
    assert rec.to_dynamics().ids.tolist() == list(range(20))
    rec.update(torch.tensor([0, 1]), LOGITS, torch.tensor([0, 1]))
    rec.update(torch.tensor([2, 3]), LOGITS, torch.tensor([0, 1]))
    rec._rec.discard()
    assert not rec._rec._held and len(rec.state_dict()["ids"]) == 0

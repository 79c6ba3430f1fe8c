"""Run by test_ddp_callbacks.py: the Lightning and Hugging Face callbacks under 2-process DDP (gloo).

``python _ddp_callbacks_worker.py lightning OUT`` (Lightning launches its 2 processes itself)
``python -m torch.distributed.run --nproc_per_node=2 _ddp_callbacks_worker.py hf OUT``

Each rank also saves, independently of datacarto, the logits of every training forward pass it
ran and, after each epoch, the model's weights, for the test's reference.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import tiny_data  # noqa: E402

N = 11
EPOCHS = 2


class Saver:
    """Per-rank record of training logits and per-epoch weights."""

    def __init__(self, out: str, rank: int) -> None:
        self.out, self.rank = Path(out), rank
        self.rows: dict[str, list] = {"epoch": [], "id": [], "logits": []}

    def add(self, epoch: int, ids: torch.Tensor, logits: torch.Tensor) -> None:
        self.rows["epoch"] += [epoch] * len(ids)
        self.rows["id"] += [int(i) for i in ids]
        self.rows["logits"].append(logits.detach().cpu().numpy())

    def weights(self, epoch: int, linear: torch.nn.Linear) -> None:
        if self.rank == 0:
            np.savez(self.out / f"weights-{epoch}.npz", W=linear.weight.detach().cpu().numpy(),
                     b=linear.bias.detach().cpu().numpy())

    def save(self, mode: str) -> None:
        np.savez(self.out / f"rows-{mode}-{self.rank}.npz", epoch=np.array(self.rows["epoch"]),
                 id=np.array(self.rows["id"]), logits=np.concatenate(self.rows["logits"]))


def lightning(out: str) -> None:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    from datacarto.integrations.lightning import DataMapCallback
    from datacarto.integrations.torch import WithIds

    X, y, _ = tiny_data(N)
    ds = WithIds(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
                 ids=np.arange(100, 100 + N))

    class Model(pl.LightningModule):
        def __init__(self, saver: Saver | None = None) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(4, 3)
            self.saver = saver

        def forward(self, x):
            return self.linear(x)

        def training_step(self, batch, batch_idx):
            ids, (x, t) = batch
            logits = self(x)
            self.saver.add(self.current_epoch, ids, logits)
            return {"loss": torch.nn.functional.cross_entropy(logits, t), "logits": logits}

        def on_train_epoch_end(self):
            self.saver.weights(self.current_epoch + 1, self.linear)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.3)

    for mode in ("pass", "eval"):
        trainer = pl.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=2, strategy="ddp",
                             logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False,
                             callbacks=[DataMapCallback(Path(out) / mode, capture=mode)])
        saver = Saver(out, int(os.environ.get("LOCAL_RANK", "0")))
        (Path(out) / f"weights-{mode}").mkdir(exist_ok=True)
        saver.out = Path(out) / f"weights-{mode}"
        trainer.fit(Model(saver), DataLoader(ds, batch_size=2, shuffle=True))
        saver.out = Path(out)
        saver.save(mode)


def huggingface(out: str) -> None:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from datacarto.integrations.huggingface import DataMapCallback
    from datacarto.integrations.torch import WithIds

    rank = int(os.environ["RANK"])
    X, y, _ = tiny_data(N)
    items = [{"x": torch.from_numpy(X[i]), "labels": int(y[i])} for i in range(N)]
    ds = WithIds(items, ids=np.arange(100, 100 + N), key="id")

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x, labels=None):
            logits = self.linear(x)
            out = {"logits": logits}
            if labels is not None:
                out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
            return out

    class Watch(TrainerCallback):
        def __init__(self, saver: Saver, model: Model) -> None:
            self.saver, self.stash = saver, None
            model.register_forward_pre_hook(self.pre, with_kwargs=True)  # before datacarto's
            model.register_forward_hook(self.post, with_kwargs=True)
            self.epoch = 0

        def pre(self, module, args, kwargs):
            if module.training:
                self.stash = kwargs["id"].clone()

        def post(self, module, args, kwargs, output):
            if self.stash is not None:
                self.saver.add(self.epoch, self.stash, output["logits"])
                self.stash = None

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            self.epoch += 1
            self.saver.weights(self.epoch, model.linear)

    for mode in ("pass", "eval"):
        saver = Saver(out, rank)
        (Path(out) / f"weights-{mode}").mkdir(exist_ok=True)
        saver.out = Path(out) / f"weights-{mode}"
        model = Model()
        args = TrainingArguments(output_dir=str(Path(out) / f"trainer-{mode}"),
                                 num_train_epochs=EPOCHS, per_device_train_batch_size=2,
                                 learning_rate=0.3, lr_scheduler_type="constant", optim="sgd",
                                 weight_decay=0.0, use_cpu=True, report_to=[],
                                 save_strategy="no", logging_strategy="no", disable_tqdm=True,
                                 remove_unused_columns=False, ddp_backend="gloo",
                                 dataloader_num_workers=0, seed=0)
        Trainer(model, args, train_dataset=ds,
                callbacks=[DataMapCallback(str(Path(out) / mode), capture=mode),
                           Watch(saver, model)]).train()
        saver.out = Path(out)
        saver.save(mode)


if __name__ == "__main__":
    torch.set_num_threads(1)
    {"lightning": lightning, "hf": huggingface}[sys.argv[1]](sys.argv[2])
    if torch.distributed.is_initialized():
        # an undestroyed gloo group can abort the interpreter at exit ("terminate called ...")
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()

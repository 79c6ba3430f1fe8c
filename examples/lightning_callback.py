"""Lightning with DataMapCallback (pass mode: the logits training_step returns).

Run: python examples/lightning_callback.py [RUN_DIR]
"""

import sys
import tempfile

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import datacarto
from datacarto.integrations.lightning import DataMapCallback
from datacarto.integrations.torch import WithIds


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.linear(x)

    def training_step(self, batch, batch_idx):
        ids, (x, y) = batch                                   # WithIds batches: (ids, batch)
        logits = self(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        return {"loss": loss, "logits": logits}               # the callback reads "logits"

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


run_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="datacarto-")
rng = np.random.default_rng(0)
y = rng.integers(0, 3, 64)
X = rng.normal(size=(3, 8))[y] + rng.normal(size=(64, 8))
train_set = WithIds(TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y)))

trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, callbacks=[DataMapCallback(run_dir)])
trainer.fit(Classifier(), DataLoader(train_set, batch_size=16, shuffle=True))

metrics = datacarto.load(run_dir).metrics()
print(f"recorded {len(metrics)} examples x 3 epochs -> {run_dir}")
print(metrics[["id", "confidence", "variability", "region"]].head())

"""Hugging Face Trainer with DataMapCallback (eval mode: an inference pass at each epoch end).

A tiny torch model stands in for a transformer, so nothing is downloaded.
Run: python examples/huggingface_trainer.py [RUN_DIR]
"""

import sys
import tempfile

import numpy as np
import torch
from transformers import Trainer, TrainingArguments

import datacarto
from datacarto.integrations.huggingface import DataMapCallback
from datacarto.integrations.torch import WithIds


class TinyClassifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(8, 3)

    def forward(self, features, labels=None):
        logits = self.linear(features)
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return {"loss": loss, "logits": logits}


run_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="datacarto-")
rng = np.random.default_rng(0)
y = rng.integers(0, 3, 64)
X = (rng.normal(size=(3, 8))[y] + rng.normal(size=(64, 8))).astype(np.float32)
items = [{"features": torch.from_numpy(X[i]), "labels": int(y[i])} for i in range(64)]

args = TrainingArguments(output_dir=tempfile.mkdtemp(), num_train_epochs=3,
                         per_device_train_batch_size=16, learning_rate=0.1, use_cpu=True,
                         report_to=[], save_strategy="no", logging_strategy="no",
                         disable_tqdm=True, dataloader_num_workers=0)
trainer = Trainer(TinyClassifier(), args,
                  train_dataset=WithIds(items, key="id"),          # each item gets an "id"
                  callbacks=[DataMapCallback(run_dir)])            # capture="eval"
trainer.train()

metrics = datacarto.load(run_dir).metrics()
print(f"recorded {len(metrics)} examples x 3 epochs -> {run_dir}")
print(metrics[["id", "confidence", "variability", "region"]].head())

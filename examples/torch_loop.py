"""Plain PyTorch loop recorded in pass mode (the logits the training step already computed).

Run: python examples/torch_loop.py [RUN_DIR]
"""

import sys
import tempfile

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

import datacarto
from datacarto.integrations.torch import LoopRecorder, WithIds

run_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="datacarto-")
rng = np.random.default_rng(0)
y = rng.integers(0, 3, 64)
X = rng.normal(size=(3, 8))[y] + rng.normal(size=(64, 8))
train_set = TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))

loader = DataLoader(WithIds(train_set), batch_size=16, shuffle=True)   # batches: (ids, (x, y))
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
opt = torch.optim.SGD(model.parameters(), lr=0.1)

rec = LoopRecorder(run_dir, dataset=WithIds(train_set))                 # capture="pass"
for epoch in range(4):
    for ids, (x, t) in loader:
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rec.update(ids, logits, t)                                      # one line per batch
    rec.end_epoch()                                                     # one line per epoch
rec.close()

metrics = datacarto.load(run_dir).metrics()
print(f"recorded {metrics.shape[0]} examples x 4 epochs -> {run_dir}")
print(metrics[["id", "confidence", "variability", "correctness", "region"]].head())

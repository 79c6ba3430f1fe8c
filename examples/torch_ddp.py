"""DDP on 2 CPU processes (gloo): every rank records its batches, rank 0 gathers and writes.

DistributedSampler pads 61 examples to 62 by repeating one; it is recorded once.
Run: python examples/torch_ddp.py [RUN_DIR]
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import datacarto
from datacarto.integrations.torch import LoopRecorder, WithIds


def train(rank: int, run_dir: str, world: int) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{run_dir}.pg", rank=rank, world_size=world)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 61)
    X = rng.normal(size=(3, 8))[y] + rng.normal(size=(61, 8))
    train_set = WithIds(TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y)))
    sampler = DistributedSampler(train_set, shuffle=True, seed=0)
    loader = DataLoader(train_set, batch_size=8, sampler=sampler)
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = LoopRecorder(run_dir, dataset=train_set)           # same line on every rank
    for epoch in range(3):
        sampler.set_epoch(epoch)
        for ids, (x, t) in loader:
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.update(ids, logits, t)
        rec.end_epoch()                                      # gathers to rank 0, which writes
    rec.close()
    dist.barrier()  # no rank tears the group down while a peer still talks to it
    dist.destroy_process_group()


if __name__ == "__main__":
    run_dir = sys.argv[1] if len(sys.argv) > 1 else str(Path(tempfile.mkdtemp()) / "run")
    Path(run_dir).parent.mkdir(parents=True, exist_ok=True)  # holds the rendezvous file
    mp.spawn(train, args=(run_dir, 2), nprocs=2, join=True)
    run = datacarto.load(run_dir)
    print(f"recorded {run.dynamics().n_examples} examples x {len(run.epochs)} epochs from 2 ranks "
          f"-> {run_dir}")

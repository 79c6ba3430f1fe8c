"""Run by test_torch_ddp.py as a script: 2 CPU processes, gloo, DistributedSampler over 11 examples.

Each rank trains a DDP-wrapped linear model and records it twice (pass mode and eval mode) with
LoopRecorder; it also saves, independently of datacarto, the logits it computed and which of its
samples were DistributedSampler padding, so the test can build the single-process reference.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import tiny_data  # noqa: E402

from datacarto.integrations.torch import LoopRecorder, WithIds  # noqa: E402

N = 11
WORLD = 2
EPOCHS = 3
BATCH = 2


def worker(rank: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{out}/pg", rank=rank, world_size=WORLD)
    X, y, ids = tiny_data(N)
    ds = WithIds(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), ids=ids)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.5)
    sampler = DistributedSampler(ds, num_replicas=WORLD, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(ds, batch_size=BATCH, sampler=sampler)
    rec_pass = LoopRecorder(Path(out) / "pass", dataset=ds)
    rec_eval = LoopRecorder(Path(out) / "eval", capture="eval", dataset=ds, batch_size=4)
    rows: dict[str, list] = {"epoch": [], "id": [], "logits": [], "label": [], "pad": []}
    for epoch in range(EPOCHS):
        sampler.set_epoch(epoch)
        k = 0
        for bid, (x, t) in loader:
            logits = ddp(x)
            loss = torch.nn.functional.cross_entropy(logits, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec_pass.update(bid, logits, t)
            for j in range(len(bid)):
                # the k-th sample of rank r sits at r + W*k in the padded index list
                rows["pad"].append(rank + WORLD * (k + j) >= N)
            k += len(bid)
            rows["epoch"] += [epoch] * len(bid)
            rows["id"] += list(bid)
            rows["logits"].append(logits.detach().numpy())
            rows["label"].append(t.numpy())
        assert rec_pass.end_epoch() == epoch + 1
        assert rec_eval.end_epoch(ddp) == epoch + 1
        if rank == 0:
            np.savez(Path(out) / f"weights-{epoch + 1}.npz", W=model.weight.detach().numpy(),
                     b=model.bias.detach().numpy())
    np.savez(Path(out) / f"rows-{rank}.npz", epoch=np.array(rows["epoch"]), id=np.array(rows["id"]),
             logits=np.concatenate(rows["logits"]), label=np.concatenate(rows["label"]),
             pad=np.array(rows["pad"]))
    info = {"rank": rank, "writer": rec_pass.is_writer,
            "path": None if rec_pass.recorder.path is None else str(rec_pass.recorder.path)}
    (Path(out) / f"rank-{rank}.json").write_text(json.dumps(info))
    rec_pass.close()
    rec_eval.close()
    dist.barrier()  # no rank tears the group down while a peer still talks to it
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(worker, args=(sys.argv[1],), nprocs=WORLD, join=True)

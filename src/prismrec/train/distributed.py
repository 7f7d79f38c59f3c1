"""Data-parallel training on PyTorch's own engine: torch.distributed + DistributedDataParallel.

Every rank loads the same training set and draws the same shuffled batch order from the same
seed; each global batch of ``batch_size`` rows is then dealt out across ranks (row ``r``,
``r+W``, ... of the longest-first batch to rank ``r``), so a rank only materialises its own
rows and every rank sees whole user histories (truncated BPTT stays exact). DDP averages the
gradients; each rank scales its mean loss by its share of the global positions of the step,
so the averaged gradient is the single-process gradient of the whole batch. Ranks run the
same number of optimiser steps: a rank whose rows end before the batch's longest row takes
zero-weight steps on a one-event dummy input, which keeps DDP's all-reduce and the sampled
softmax's negative draws in step. Rank 0 validates and its decisions (metrics, time limit)
are broadcast, so early stopping and learning-rate step-downs stay identical on all ranks.

With dropout the ranks draw different masks than one process would, so results then match
single-process training in distribution, not bit for bit; with dropout 0 they match up to
floating-point order. ``negatives="in-batch"`` uses each rank's own targets as negatives.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from prismrec.models.base import SequenceEncoder
from prismrec.train.batching import Batch, TrainBatches

log = logging.getLogger(__name__)

T = TypeVar("T")


def default_backend(device: torch.device | str = "cpu") -> str:
    """``"nccl"`` for CUDA tensors when NCCL is built in, else ``"gloo"`` (CPU)."""
    device = torch.device(device)
    if device.type == "cuda" and dist.is_nccl_available():
        return "nccl"
    return "gloo"


def init_distributed(rank: int, world_size: int, *, init_method: str = "env://",
                     backend: str | None = None, local_rank: int | None = None,
                     device: torch.device | str = "cpu") -> DistContext:
    """Join the process group (``init_method="env://"``: torchrun's MASTER_ADDR/PORT).

    The caller says who it is (the CLI reads torchrun's RANK, WORLD_SIZE and LOCAL_RANK);
    on CUDA the process is bound to GPU ``local_rank``.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank} of {world_size}")
    if not dist.is_available():
        raise RuntimeError("this torch build has no torch.distributed")
    device = torch.device(device)
    if device.type == "cuda" and local_rank is not None:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend or default_backend(device), init_method=init_method,
                                rank=rank, world_size=world_size)
    return DistContext.current()


def shutdown(*, wait_for_peers: bool = True) -> None:
    """Leave the process group (no-op when none was joined).

    After a clean run every rank first waits for the others, so none tears down gloo's
    connections while a peer still uses them.
    After an error pass ``wait_for_peers=False``: a peer may be stuck in a collective, and
    leaving at once makes it fail instead of waiting for the timeout.
    """
    if dist.is_available() and dist.is_initialized():
        # training leaves reference cycles behind that still hold gloo objects; when the
        # collector first reaches them while the interpreter shuts down, a rank can abort
        # (std::terminate, SIGABRT: 4 of 40 two-rank runs without this, 0 of 120 with it)
        gc.collect()
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


@dataclass(frozen=True)
class DistContext:
    """Who this process is in the process group; ``world == 1`` without one."""

    rank: int = 0
    world: int = 1

    @classmethod
    def current(cls) -> DistContext:
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ data sharding

    def shard(self, idx: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """This rank's rows of one global batch: every W-th row of the longest-first order."""
        idx = idx[np.argsort(-lengths[idx], kind="stable")]
        return idx[self.rank::self.world]

    def epoch(self, batches: TrainBatches, rng: np.random.Generator, tbptt: int,
              recurrent: bool) -> Iterator[tuple[Batch | None, list[int]]]:
        """(this rank's batch or None, global positions per optimiser step) per global batch.

        The step list is the same on every rank: one entry per truncated-BPTT chunk of the
        batch's longest row (one for windowed models).
        """
        for idx in batches.order(rng):
            lengths = batches.lengths[idx]
            if recurrent:
                totals = [int(np.clip(lengths - c, 0, tbptt).sum())
                          for c in range(0, int(lengths.max()), tbptt)]
            else:
                totals = [int(lengths.sum())]
            mine = self.shard(idx, batches.lengths) if self.active else idx
            yield (batches.batch(mine) if len(mine) else None), totals

    def loss_weight(self, n: int, total: int) -> float:
        """Factor on this rank's mean loss so DDP's gradient average is the global mean."""
        return n * self.world / total

    # ------------------------------------------------------------------ collectives

    def sum(self, *values: float) -> tuple[float, ...]:
        """Element-wise sum over ranks (float64); the values themselves when alone."""
        if not self.active:
            return values
        # NCCL reduces CUDA tensors only; gloo the CPU's
        on = (torch.device("cuda", torch.cuda.current_device())
              if dist.get_backend() == "nccl" else torch.device("cpu"))
        t = torch.tensor(values, dtype=torch.float64, device=on)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return tuple(t.tolist())

    def from_main(self, value: T) -> T:
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.active:
            return value
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 only and hand its result to every rank."""
        return self.from_main(fn() if self.is_main else None)


# ---------------------------------------------------------------------- running the model


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether bf16 autocast runs natively here (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                    or getattr(cpu, "_is_amx_tile_supported", lambda: False)())
    return False


class _Forward(nn.Module):
    """The module DDP wraps: ``forward`` or, for recurrent models, ``run`` of the encoder."""

    def __init__(self, model: SequenceEncoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, run: bool = False, **kwargs: Any):
        return self.model.run(*args, **kwargs) if run else self.model(*args, **kwargs)


class StepRunner:
    """How the trainer calls the encoder: through DDP when distributed, under bf16 autocast
    when asked and supported. Hidden vectors come back in float32, so every loss runs in
    full precision. Quacks like the model for ``chunk_steps`` (``recurrent``, ``run``, call).
    """

    def __init__(self, model: SequenceEncoder, ctx: DistContext, *, amp: bool = False) -> None:
        self.model, self.ctx = model, ctx
        self.recurrent = model.recurrent
        device = next(model.parameters()).device
        self.amp = amp and bf16_supported(device)
        if amp and not self.amp:
            log.warning("amp=True but %s has no native bf16: training in float32", device)
        self.device_type, self.device = device.type, device
        wrapped = _Forward(model)
        if ctx.active:
            from torch.nn.parallel import DistributedDataParallel

            wrapped = DistributedDataParallel(  # one GPU per process on CUDA
                wrapped, device_ids=[device] if device.type == "cuda" else None)
        self._call = wrapped

    def _autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def __call__(self, items, lengths, gaps=None) -> torch.Tensor:
        with self._autocast():
            hidden = self._call(items, lengths, gaps)
        return hidden.float()

    def run(self, items, lengths, gaps=None, state=None, exact_state: bool = True):
        with self._autocast():
            hidden, state = self._call(items, lengths, gaps, state, run=True,
                                       exact_state=exact_state)
        return hidden.float(), state

    def idle(self, future: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(hidden (1, D), targets) of a one-event dummy step, for a rank with no rows left.

        Its loss is weighted 0: it exists so the rank joins DDP's gradient all-reduce and
        draws the step's sampled negatives like the others.
        """
        on = self.device
        x = torch.zeros((1, 1), dtype=torch.int64, device=on)
        lengths = torch.ones(1, dtype=torch.int64, device=on)
        gaps = None if self.model.gap_emb is None else torch.full((1, 1), -1.0,
                                                                   dtype=torch.float64,
                                                                   device=on)
        if self.recurrent:
            hidden, _ = self.run(x, lengths, gaps, None, exact_state=False)
        else:
            hidden = self(x, lengths, gaps)
        targets = torch.zeros((1,) if future == 1 else (1, future), dtype=torch.int64,
                              device=on)
        return hidden[:, 0], targets

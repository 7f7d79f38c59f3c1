"""The one training loop: next-item prediction at every position, for every model.

Recurrent models read each user's whole history in truncated-BPTT chunks of ``tbptt``
steps; the state is carried from chunk to chunk (detached), so the state the model trains
from after k events is the state streaming those k events produces. Windowed models read
the last ``max_len`` events. AdamW, gradient clipping, full-ranking validation after every
``eval_every`` epochs, early stopping with the best weights kept in memory.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases
from prismrec.errors import DataError
from prismrec.models._recurrent import detach_state, take_state
from prismrec.models.base import SequenceEncoder, padding_mask
from prismrec.train.batching import Batch, TrainBatches, recent_inputs
from prismrec.train.config import TrainConfig
from prismrec.train.device import placed, resolve_device
from prismrec.train.distributed import DistContext, StepRunner, bf16_supported
from prismrec.train.losses import SampledSoftmax, full_ce
from prismrec.train.validation import rank_metrics

log = logging.getLogger(__name__)


class Chunk(NamedTuple):
    """Model output for positions ``start..start+T-1`` of the first ``B`` rows of a batch."""

    hidden: torch.Tensor  # (B, T, D)
    targets: torch.Tensor  # (B, T)
    lengths: torch.Tensor  # (B,) real positions per row in this chunk
    start: int


def chunk_steps(model: SequenceEncoder, batch: Batch, tbptt: int) -> Iterator[Chunk]:
    """Run a batch as the trainer does; one chunk per optimiser step.

    Rows are sorted longest first, so the rows still going at a chunk are a prefix and
    every row that continues filled the previous chunk (its carried state is exact).
    """
    if not model.recurrent:
        yield Chunk(model(batch.inputs, batch.lengths, batch.gaps), batch.targets,
                    batch.lengths, 0)
        return
    state = None
    t = batch.inputs.shape[1]
    for c in range(0, t, tbptt):
        lens = (batch.lengths - c).clamp(0, tbptt)  # (B,)
        active = int((lens > 0).sum())
        sl = slice(c, c + tbptt)
        x, lens = batch.inputs[:active, sl], lens[:active]  # (b, t'), (b,)
        g = None if batch.gaps is None else batch.gaps[:active, sl]
        if state is not None:
            state = take_state(state, slice(0, active))
        hidden, state = model.run(x, lens, g, state, exact_state=False)  # (b, t', D)
        yield Chunk(hidden, batch.targets[:active, sl], lens, c)
        state = detach_state(state)


@dataclass
class TrainResult:
    """What happened in training; ``history`` has one dict per epoch."""

    best_epoch: int
    best_metrics: dict[str, float]
    seconds: float  # wall time of the whole fit, validation included
    seconds_to_best: float  # wall time until the end of the best epoch's validation
    seconds_per_epoch: float  # mean training time of an epoch, validation excluded
    epochs: int
    stopped: str  # "epochs" | "patience" | "time"
    history: list[dict] = field(default_factory=list)
    cpu_seconds_to_best: float = 0.0  # process CPU time to the best epoch: the cost on a
    # machine shared with other work, where wall time overstates it
    loss: str = ""  # the loss used: "ce" or "sampled" (TrainConfig.loss "auto" resolved)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    other = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": other, "weight_decay": 0.0}]


def _epoch_line(name: str, row: dict, epochs: int) -> str:
    valid = row.get("valid_ndcg@10")
    return (f"{name} epoch {row['epoch']}/{epochs}: loss {row['loss']:.4f}"
            + ("" if valid is None else f", valid NDCG@10 {valid:.4f}")
            + f" ({row['seconds']:.1f} s)")


class Trainer:
    """Trains any ``prismrec.models`` model on training sequences with ``fit``.

    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``; None: where the model is) is where the
    model, batches, losses and validation scores live during ``fit``; the model goes back
    to its own device afterwards (``prismrec.train.device``). On a CUDA GPU with native bf16
    the encoder runs under bf16 autocast, as ``amp=True`` asks for elsewhere.
    """

    def __init__(self, config: TrainConfig | dict | None = None, *,
                 log_dir: str | Path | None = None,
                 device: str | torch.device | None = None) -> None:
        if config is None:
            config = TrainConfig()
        elif isinstance(config, dict):
            config = TrainConfig.from_dict(config)
        config.validate()
        self.config = config
        self.log_dir = None if log_dir is None else Path(log_dir)
        self.device = None if device is None else resolve_device(device)

    def fit(self, model: SequenceEncoder, train: Sequences,
            valid: EvalCases | None = None) -> TrainResult:
        """Train ``model`` in place; with ``valid``, keep the weights of the best epoch."""
        c = self.config
        if train.n_events and (train.items.min() < 0 or train.items.max() >= model.n_items):
            raise DataError(
                f"training items must be indices in [0, {model.n_items}); build the model "
                "with the size of the item vocabulary"
            )
        threads = torch.get_num_threads()
        if c.threads is not None:
            torch.set_num_threads(c.threads)
        writer = None
        try:
            if self.log_dir is not None and DistContext.current().is_main:  # rank 0 logs
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(self.log_dir))
            with placed(model, self.device) as device:
                return self._fit(model, train, valid, writer, device)
        finally:
            if writer is not None:
                writer.close()
            torch.set_num_threads(threads)

    def _fit(self, model: SequenceEncoder, train: Sequences, valid: EvalCases | None,
             writer, device: torch.device) -> TrainResult:
        c = self.config
        torch.manual_seed(c.seed)
        rng = np.random.default_rng(c.seed)
        windowed = not model.recurrent
        max_len = c.max_len
        if windowed:
            max_len = model.max_len if max_len is None else min(max_len, model.max_len)
        batches = TrainBatches(train, batch_size=c.batch_size, windowed=windowed,
                               max_len=max_len, max_windows=c.max_windows,
                               with_gaps=model.gap_emb is not None, future=c.future_targets)
        loss_name = c.loss_for(model.n_items)
        if loss_name == "ce":
            loss_fn = functools.partial(full_ce, decay=c.future_decay)
        else:
            gen = torch.Generator().manual_seed(c.seed)
            counts = np.bincount(train.items, minlength=model.n_items)
            loss_fn = SampledSoftmax(counts, c.n_negatives, c.negatives, gen)
        opt = torch.optim.AdamW(_param_groups(model, c.weight_decay), lr=c.lr)
        # [distributed] data-parallel when a process group is up (see distributed.py); the
        # runner calls the encoder through DDP and, with c.amp, under bf16 autocast
        shard = DistContext.current()
        amp = c.amp or (device.type == "cuda" and bf16_supported(device))
        runner = StepRunner(model, shard, amp=amp)
        best_state, best_epoch, best_metrics = None, 0, {}
        best_value, bad, history, stopped = -np.inf, 0, [], "epochs"
        t_fit, train_seconds, to_best, step = time.perf_counter(), 0.0, 0.0, 0
        cpu_fit, cpu_to_best = time.process_time(), 0.0
        log.info("training %s on %d events (%d samples, %d batches)", model.name,
                 batches.n_events, len(batches.starts), len(batches))
        for epoch in range(1, c.epochs + 1):
            model.train()
            t0 = time.perf_counter()
            loss_sum, n_sum = 0.0, 0
            with tqdm(total=batches.n_events, unit="ev", unit_scale=True, leave=False,
                      desc=f"{model.name} epoch {epoch}/{c.epochs}",
                      disable=not c.progress or not shard.is_main) as bar:
                # [distributed] this rank's rows of each global batch (all rows when alone)
                # and the global positions of every step; all ranks take the same steps
                for batch, totals in shard.epoch(batches, rng, c.tbptt, model.recurrent):
                    batch = None if batch is None else batch.to(device)
                    seen = (recent_inputs(batch.inputs, c.exclude_seen)
                            if c.exclude_seen and batch is not None else None)
                    chunks = iter(()) if batch is None else chunk_steps(runner, batch, c.tbptt)
                    for total in totals:
                        chunk = next(chunks, None)
                        if chunk is None:  # [distributed] no rows left here: zero-weight step
                            hidden, targets = runner.idle(c.future_targets)
                            extra, n = {}, 0
                        else:
                            b, t = chunk.hidden.shape[:2]
                            mask = padding_mask(chunk.lengths, t)  # (B, T)
                            extra = {} if seen is None else {
                                "exclude": seen[:b, chunk.start:chunk.start + t][mask]}
                            hidden, targets, n = chunk.hidden[mask], chunk.targets[mask], int(
                                mask.sum())
                        loss = loss_fn(model, hidden, targets, **extra)
                        if model.text_bias is not None:  # the text head's own softmax
                            loss = loss + model.config.text_head * loss_fn(
                                model, hidden, targets, output=model.text_output(), **extra)
                        opt.zero_grad(set_to_none=True)
                        # [distributed] weight by this rank's share of the step's positions
                        (loss * shard.loss_weight(n, total) if shard.active else loss).backward()
                        if c.clip_norm > 0:
                            torch.nn.utils.clip_grad_norm_(model.parameters(), c.clip_norm)
                        opt.step()
                        loss_sum, n_sum, step = loss_sum + loss.item() * n, n_sum + n, step + 1
                        bar.update(total)
            seconds = time.perf_counter() - t0
            loss_sum, n_sum = shard.sum(loss_sum, n_sum)  # [distributed] over all ranks
            train_seconds += seconds
            row = {"epoch": epoch, "loss": loss_sum / max(n_sum, 1), "seconds": seconds,
                   "lr": opt.param_groups[0]["lr"]}
            if valid is not None and epoch % c.eval_every == 0:
                metrics = shard.on_main(  # [distributed] rank 0 validates, all ranks decide
                    lambda: rank_metrics(model, valid, k=10, filter_seen=c.valid_filter_seen))
                row.update({f"valid_{k}": v for k, v in metrics.items()})
                if metrics[c.valid_metric] > best_value:
                    best_value, best_epoch, best_metrics, bad = (
                        metrics[c.valid_metric], epoch, metrics, 0)
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    to_best = time.perf_counter() - t_fit
                    cpu_to_best = time.process_time() - cpu_fit
                else:
                    bad += 1
                    if c.lr_decay < 1.0 and bad % c.lr_patience == 0:
                        model.load_state_dict(best_state)  # step down from the best point
                        for group in opt.param_groups:
                            group["lr"] *= c.lr_decay
            history.append(row)
            if shard.is_main:
                self._report(model.name, row, step, writer)
                if c.progress:  # one line per epoch stays on screen after the bar is gone
                    tqdm.write(_epoch_line(model.name, row, c.epochs), file=sys.stderr)
            if valid is not None and c.patience and bad >= c.patience:
                stopped = "patience"
                break
            if c.max_seconds is not None and shard.from_main(  # [distributed] rank 0's clock
                    time.perf_counter() - t_fit > c.max_seconds):
                stopped = "time"
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        else:
            best_epoch, to_best = len(history), time.perf_counter() - t_fit
            cpu_to_best = time.process_time() - cpu_fit
        model.eval()
        if stopped == "time" and shard.is_main:
            log.warning("%s: stopped by time after %d epochs (max_seconds=%g)", model.name,
                        len(history), c.max_seconds)
        return TrainResult(best_epoch, best_metrics, time.perf_counter() - t_fit, to_best,
                           train_seconds / len(history), len(history), stopped, history,
                           cpu_to_best, loss_name)

    @staticmethod
    def _report(name: str, row: dict, step: int, writer) -> None:
        valid = " ".join(f"{k[6:]} {v:.4f}" for k, v in row.items() if k.startswith("valid_"))
        log.info("%s epoch %d: loss %.4f %s lr %.2g (%.1fs)", name, row["epoch"], row["loss"],
                 f"valid {valid} " if valid else "", row["lr"], row["seconds"])
        if writer is not None:
            writer.add_scalar("train/loss", row["loss"], row["epoch"])
            writer.add_scalar("train/lr", row["lr"], row["epoch"])
            writer.add_scalar("train/epoch_seconds", row["seconds"], row["epoch"])
            writer.add_scalar("train/steps", step, row["epoch"])
            for k, v in row.items():
                if k.startswith("valid_"):
                    writer.add_scalar(f"valid/{k[6:]}", v, row["epoch"])
            writer.flush()

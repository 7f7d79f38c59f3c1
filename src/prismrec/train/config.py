"""Training settings: one typed config for the one training loop every model uses."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

LOSSES = ("auto", "ce", "sampled")
# loss="auto": the full softmax up to this many items, the sampled softmax (logQ) above it.
# Its cost per position grows with the catalogue; see docs/benchmarks.md, section `scale`.
SAMPLED_ABOVE = 20_000
NEGATIVES = ("popularity", "uniform", "in-batch")
VALID_METRICS = ("ndcg@10", "hr@10")


@dataclass
class TrainConfig:
    """How to train; the defaults suit catalogues up to ~100k items on a CPU."""

    epochs: int = 200  # an upper bound: early stopping usually ends training much sooner
    batch_size: int = 64  # users (recurrent) or windows (SASRec) per step
    lr: float = 3e-3  # with batch 64 and patience 3: a good model on the synthetic shop in
    # about 2 minutes on 2 cores (docs/benchmarks.md, section fit_defaults)
    weight_decay: float = 0.1  # AdamW, on matrices and embeddings only (not biases/norms)
    max_len: int | None = None  # train on the last max_len events (None: whole history for
    # recurrent models, the model's own window for SASRec)
    max_windows: int = 1  # windowed models: windows of max_len per user, from the end (0: all)
    tbptt: int = 50  # recurrent models: steps per truncated-BPTT chunk (state carried, detached)
    patience: int = 3  # evaluations without improvement before stopping
    lr_decay: float = 1.0  # multiply lr by this after lr_patience evaluations without
    lr_patience: int = 2  # improvement, then go on from the best weights (1.0: never)
    seed: int = 0
    threads: int | None = 2  # torch threads during fit (None: leave as is)
    amp: bool = False  # bf16 autocast of the encoder where the hardware runs bf16 natively
    # (losses stay float32); off by default: on small CPU models it is rarely faster
    loss: str = "auto"  # "ce" full softmax | "sampled" softmax with logQ correction |
    # "auto": "ce" up to SAMPLED_ABOVE items, "sampled" above
    future_targets: int = 1  # "ce": each position predicts the next K items (1: next item)
    future_decay: float = 1.0  # weight decay**j of the j-th next item (normalised per row)
    exclude_seen: int = 0  # "ce": leave each position's last W input items out of its
    # softmax (0: off), as filter_seen leaves them out of recommendations
    n_negatives: int = 1024  # sampled loss: shared negatives per step
    negatives: str = "popularity"  # sampled loss: "popularity" | "uniform" | "in-batch"
    clip_norm: float = 1.0  # 0 disables gradient clipping
    eval_every: int = 1  # epochs between validations
    valid_metric: str = "ndcg@10"  # early-stopping metric, full ranking
    valid_filter_seen: bool = True  # remove each user's seen items when validating
    max_seconds: float | None = None  # stop after the epoch that crosses this training time
    progress: bool = True  # tqdm bar per epoch

    def validate(self) -> None:
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "tbptt": self.tbptt,
                    "n_negatives": self.n_negatives, "eval_every": self.eval_every}
        bad = [f"{k}={v}" for k, v in positive.items() if v < 1]
        if bad:
            raise ValueError(f"these settings must be at least 1: {', '.join(bad)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.clip_norm < 0:
            raise ValueError("lr must be positive; weight_decay and clip_norm non-negative")
        if self.max_len is not None and self.max_len < 1:
            raise ValueError(f"max_len must be positive or None, got {self.max_len}")
        if not 0.0 < self.lr_decay <= 1.0 or self.lr_patience < 1:
            raise ValueError("lr_decay must be in (0, 1] and lr_patience at least 1")
        if self.max_windows < 0 or self.patience < 0:
            raise ValueError("max_windows and patience must not be negative")
        if self.future_targets < 1 or not 0.0 < self.future_decay <= 1.0:
            raise ValueError("future_targets must be >= 1 and future_decay in (0, 1]")
        if self.future_targets > 1 and self.loss == "sampled":
            raise ValueError("future_targets > 1 works with loss='ce' only")
        if self.exclude_seen < 0 or (self.exclude_seen and self.loss == "sampled"):
            raise ValueError("exclude_seen must be >= 0 and works with loss='ce' only")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {self.negatives!r}")
        if self.valid_metric not in VALID_METRICS:
            raise ValueError(
                f"valid_metric must be one of {VALID_METRICS}, got {self.valid_metric!r}"
            )
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be positive or None, got {self.threads}")

    def loss_for(self, n_items: int) -> str:
        """The loss used for a catalogue of ``n_items``: "ce" or "sampled"."""
        if self.loss != "auto":
            return self.loss
        if self.future_targets > 1 or self.exclude_seen:  # options of the full softmax
            return "ce"
        return "sampled" if n_items > SAMPLED_ABOVE else "ce"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {unknown}; known: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes: Any) -> TrainConfig:
        return TrainConfig.from_dict({**self.to_dict(), **changes})

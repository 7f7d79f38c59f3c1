"""Step 4 of the path: one training loop for every model, checkpoints, tuning."""

from prismrec.train.batching import Batch, TrainBatches, event_gaps
from prismrec.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from prismrec.train.config import TrainConfig
from prismrec.train.device import resolve_device
from prismrec.train.distributed import (
    DistContext,
    bf16_supported,
    default_backend,
    init_distributed,
    shutdown,
)
from prismrec.train.inference import encode_sequences, score_sequences
from prismrec.train.trainer import Chunk, Trainer, TrainResult, chunk_steps
from prismrec.train.tune import tune
from prismrec.train.validation import rank_metrics

__all__ = [
    "Batch",
    "Checkpoint",
    "Chunk",
    "DistContext",
    "TrainBatches",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "bf16_supported",
    "chunk_steps",
    "default_backend",
    "encode_sequences",
    "event_gaps",
    "init_distributed",
    "load_checkpoint",
    "rank_metrics",
    "resolve_device",
    "save_checkpoint",
    "score_sequences",
    "shutdown",
    "tune",
]

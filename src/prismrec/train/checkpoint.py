"""Checkpoints: weights in safetensors, everything else in JSON; never unpickled.

A checkpoint is a folder with two files:

- ``model.safetensors``: the model's tensors under ``model.<name>`` and any extra arrays
  (e.g. user histories) under ``extra.<name>``;
- ``checkpoint.json``: format and prismrec versions, model name, model and training
  configs, the shape and dtype of every tensor, the SHA-256 of the weights file, and free
  ``meta`` (vocabularies and the like).

Loading checks the format version, the checksum, and every shape against the model the
config describes before any weight is copied; anything wrong raises ``CheckpointError``
saying what and where. Files are written to temporary names and renamed, JSON last.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import prismrec
from prismrec.errors import CheckpointError
from prismrec.models import MODELS, SequenceEncoder
from prismrec.train.config import TrainConfig
from prismrec.train.device import resolve_device

FORMAT = "prismrec-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "checkpoint.json"


@dataclass
class Checkpoint:
    model: SequenceEncoder
    train_config: TrainConfig | None
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # the whole JSON document


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(path: str | Path, model: SequenceEncoder, *,
                    train_config: TrainConfig | None = None, meta: dict | None = None,
                    extra: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``model`` (+ JSON-able ``meta`` and ``extra`` tensors) to the folder ``path``."""
    if model.name not in MODELS or not isinstance(model, MODELS[model.name]):
        raise ValueError(f"{type(model).__name__} is not a registered model; see MODELS")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone()
               for k, v in model.state_dict().items()}
    tensors |= {f"extra.{k}": torch.as_tensor(v).detach().cpu().contiguous().clone()
                for k, v in (extra or {}).items()}
    _write_atomic(path / WEIGHTS, lambda p: save_file(tensors, str(p), metadata={"format": "pt"}))
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "prismrec_version": prismrec.__version__,
        "model": model.name,
        "n_items": model.n_items,
        "model_config": model.config.to_dict(),
        "train_config": None if train_config is None else train_config.to_dict(),
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")}
                    for k, v in tensors.items()},
        "sha256": _sha256(path / WEIGHTS),
        "meta": meta or {},
    }
    text = json.dumps(doc, indent=1)
    _write_atomic(path / CONFIG, lambda p: p.write_text(text, encoding="utf-8"))
    return path


def _read_doc(path: Path) -> dict:
    missing = [n for n in (CONFIG, WEIGHTS) if not (path / n).is_file()]
    if not path.is_dir() or missing:
        raise CheckpointError(
            f"no checkpoint at {path}: missing {', '.join(missing) or 'the folder'}; "
            "give the folder that save() wrote"
        )
    try:
        doc = json.loads((path / CONFIG).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path / CONFIG} is not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path / CONFIG} is not a prismrec checkpoint description")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r} (written by prismrec "
            f"{doc.get('prismrec_version')}); this prismrec {prismrec.__version__} reads "
            f"version {FORMAT_VERSION}: retrain, or load it with the version that wrote it"
        )
    for key in ("model", "n_items", "model_config", "tensors", "sha256"):
        if key not in doc:
            raise CheckpointError(f"{path / CONFIG} lacks the field {key!r}")
    return doc


def load_checkpoint(path: str | Path, *,
                    device: str | torch.device | None = None) -> Checkpoint:
    """Read a checkpoint folder; validates everything before building the model.

    The weights are saved from the CPU and read onto the CPU, so a checkpoint written on any
    device loads anywhere; ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``) then moves the
    model there (``extra`` tensors stay on the CPU).
    """
    path = Path(path)
    target = None if device is None else resolve_device(device)
    doc = _read_doc(path)
    if _sha256(path / WEIGHTS) != doc["sha256"]:
        raise CheckpointError(
            f"{path / WEIGHTS} does not match its checksum in {CONFIG}: the file is corrupt "
            "or was replaced; restore both files from the same save"
        )
    if doc["model"] not in MODELS:
        raise CheckpointError(f"{path}: unknown model {doc['model']!r}; known: {sorted(MODELS)}")
    try:
        cfg = dict(doc["model_config"])
        cfg.setdefault("interest_route", "item")  # saved before routing existed: item vectors
        model = MODELS[doc["model"]](int(doc["n_items"]), cfg)
        train_config = (None if doc.get("train_config") is None
                        else TrainConfig.from_dict(doc["train_config"]))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid configuration in {CONFIG}: {exc}") from exc
    try:
        tensors = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path / WEIGHTS} is not a readable safetensors file: {exc}") from exc
    declared = {k: tuple(v["shape"]) for k, v in doc["tensors"].items()}
    expected = {f"model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    for name, shape in expected.items():
        got = [("file", tuple(tensors[name].shape) if name in tensors else None),
               (CONFIG, declared.get(name))]
        for where, s in got:
            if s != shape:
                raise CheckpointError(
                    f"{path}: tensor {name!r} has shape {s} in the {where}, but the "
                    f"{doc['model']} model its config describes needs {shape}"
                )
    unexpected = sorted(k for k in tensors if k.startswith("model.") and k not in expected)
    if unexpected or set(tensors) != set(declared):
        raise CheckpointError(
            f"{path}: the weights file and {CONFIG} list different tensors "
            f"(unexpected: {unexpected[:5]})"
        )
    model.load_state_dict({k[6:]: tensors[k] for k in expected})
    model.eval()
    if target is not None:
        model.to(target)
    extra = {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}
    return Checkpoint(model, train_config, dict(doc.get("meta") or {}), extra, doc)

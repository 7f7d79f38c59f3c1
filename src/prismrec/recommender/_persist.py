"""Saving and loading a Recommender: one checkpoint folder, safetensors + JSON, never pickle.

Every user's full known history (streamed events included) and the training record's
per-user cuts (``training_``: where training and selection stopped; its split name and data
hash go in ``checkpoint.json``) and, for a blended model, the item-item weights go in
the safetensors file under ``extra``; the item text vectors are part of the model's weights
there; the catalogue, if any, goes to ``catalog.json`` (JSON rows, checksummed in
``checkpoint.json``); the encoder name, text template and the blend's chosen settings and
validation table go in ``checkpoint.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from prismrec.data.catalog import Catalog
from prismrec.data.sequences import Sequences
from prismrec.data.vocab import Vocab
from prismrec.errors import CheckpointError
from prismrec.models.item_item import ItemItem, check_size
from prismrec.recommender._blend import BlendResult, resolve
from prismrec.recommender._cold import ColdPlacement
from prismrec.recommender._defaults import Choices
from prismrec.recommender._provenance import TrainingRecord
from prismrec.train.checkpoint import load_checkpoint, save_checkpoint
from prismrec.train.config import TrainConfig
from prismrec.train.trainer import TrainResult

if TYPE_CHECKING:
    from prismrec.recommender.core import Recommender

RECOMMENDER_FORMAT = 1
CATALOG_FILE = "catalog.json"
ITEM_ITEM_KEY = "item_item_weights"
TRAIN_CUT_KEY, SELECT_CUT_KEY = "training_train_cut", "training_select_cut"


def save(rec: Recommender, path: str | Path) -> Path:
    """See ``Recommender.save``."""
    rec._check_fitted()
    path = Path(path)
    h = rec.histories_
    template = getattr(rec, "text_template_", None)
    meta = {"recommender_format": RECOMMENDER_FORMAT, "users": rec.users_.to_list(),
            "items": rec.items_.to_list(),
            "result": _result_meta(rec.result_),
            "refit_result": _result_meta(getattr(rec, "refit_result_", None)),
            "text": {"encoder": getattr(rec, "text_encoder_", None),
                     "template": None if template is None else template.to_dict()}}
    if getattr(rec, "catalog_", None) is not None:
        path.mkdir(parents=True, exist_ok=True)
        data = json.dumps(_catalog_to_json(rec.catalog_), ensure_ascii=False,
                          allow_nan=False, separators=(",", ":")).encode("utf-8")
        _write_bytes(path / CATALOG_FILE, data)
        meta["catalog"] = {"file": CATALOG_FILE, "items": len(rec.catalog_),
                           "sha256": hashlib.sha256(data).hexdigest()}
    extra = {"history_offsets": torch.from_numpy(h.offsets),
             "history_items": torch.from_numpy(h.items),
             "history_times": torch.from_numpy(h.times)}
    tr = getattr(rec, "training_", None)
    if tr is not None:
        meta["training"] = tr.to_meta()
        extra[TRAIN_CUT_KEY] = torch.from_numpy(tr.train_cut)
        extra[SELECT_CUT_KEY] = torch.from_numpy(tr.select_cut)
    placement = getattr(rec, "cold_placement_", None)
    if placement is not None:
        meta["cold_placement"] = placement.to_dict()
    choices = getattr(rec, "choices_", None)
    if choices is not None:
        meta["choices"] = choices.to_dict()
    ii = getattr(rec, "item_item_", None)
    if ii is not None:
        meta["blend"] = rec.blend_.to_dict()
        cfg = resolve(rec.blend_option_)
        meta["blend_config"] = None if cfg is None else cfg.to_dict()
        extra[ITEM_ITEM_KEY] = ii.weights
    return save_checkpoint(path, rec.model_, train_config=rec.train_config_, meta=meta,
                           extra=extra)


def load(cls: type[Recommender], path: str | Path) -> Recommender:
    """See ``Recommender.load``."""
    from prismrec.text import TextTemplate

    path = Path(path)
    ck = load_checkpoint(path)
    meta, extra = ck.meta, ck.extra
    if meta.get("recommender_format") != RECOMMENDER_FORMAT:
        raise CheckpointError(f"{path} is a model checkpoint, not a saved Recommender")
    try:
        users, items = Vocab.from_list(meta["users"]), Vocab.from_list(meta["items"])
        hist = Sequences(extra["history_offsets"].numpy(), extra["history_items"].numpy(),
                         extra["history_times"].numpy())
        text = meta.get("text") or {}
        template = (None if text.get("template") is None
                    else TextTemplate.from_dict(text["template"]))
        encoder = text.get("encoder")
        if encoder is not None and not (isinstance(encoder.get("name"), str)
                                        and isinstance(encoder.get("dim"), int)):
            raise ValueError("the text encoder record needs a name and a dim")
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: saved vocabularies, histories or text settings "
                              f"are invalid ({exc})") from exc
    if len(items) != ck.model.n_items or len(hist) != len(users) or (
            hist.n_events and (hist.items.min() < 0 or hist.items.max() >= len(items))):
        raise CheckpointError(f"{path}: vocabularies, histories and model sizes disagree")
    item_item, blend = _read_blend(path, meta, extra, len(items))
    training = _read_training(path, meta, extra, len(users))
    placement = _read_cold_placement(path, meta)
    rec = cls(ck.model.name, model_config=ck.model.config.to_dict(),
              train_config=ck.train_config,
              blend=None if blend is None else (meta.get("blend_config") or True))
    rec.model_, rec.users_, rec.items_, rec.histories_ = ck.model, users, items, hist
    rec.train_config_ = ck.train_config or TrainConfig()
    rec.result_, rec.refit_result_ = (_result_from(meta.get(k)) for k in ("result",
                                                                           "refit_result"))
    rec.catalog_ = _read_catalog(path, meta.get("catalog"))
    rec.text_encoder_, rec.text_template_, rec._encoder = encoder, template, None
    rec.item_item_, rec.blend_ = item_item, blend
    rec.training_ = training
    rec.cold_placement_ = placement
    rec.choices_ = _read_choices(path, meta, rec.blend)
    return rec


def _read_choices(path: Path, meta: dict, blend_option: Any) -> Choices | None:
    """What the fit chose and why, or None for a checkpoint written before it was kept."""
    info = meta.get("choices")
    if info is None:
        return None
    try:
        return Choices.from_dict(info, blend_option)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: the saved fit choices are invalid ({exc}); "
                              "save the model again") from exc


def _read_cold_placement(path: Path, meta: dict) -> ColdPlacement | None:
    """The saved cold-item placement, or None for a checkpoint written before it was kept
    (its ``add_items`` then gives new items a zero ID row and the mean bias, as then)."""
    info = meta.get("cold_placement")
    if info is None:
        return None
    try:
        return ColdPlacement.from_dict(info)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: the saved cold-item placement is invalid ({exc}); "
                              "save the model again") from exc


def _read_training(path: Path, meta: dict, extra: dict[str, torch.Tensor],
                   n_users: int) -> TrainingRecord | None:
    """The saved training record, or None for a checkpoint written before it was kept."""
    info = meta.get("training")
    if info is None:
        return None
    try:
        tr = TrainingRecord.from_meta(info, extra[TRAIN_CUT_KEY].numpy(),
                                      extra[SELECT_CUT_KEY].numpy())
        if len(tr.train_cut) > n_users:
            raise ValueError(f"{len(tr.train_cut)} cuts for {n_users} users")
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path}: the saved training record is invalid ({exc}); "
                              "save the model again") from exc
    return tr


def _read_blend(path: Path, meta: dict, extra: dict[str, torch.Tensor],
                n_items: int) -> tuple[ItemItem | None, BlendResult | None]:
    """The saved item-item part and blend settings, or (None, None) for an unblended model."""
    info = meta.get("blend")
    if info is None:
        return None, None
    check_size(n_items)
    try:
        result = BlendResult.from_dict(info)
        weights = extra[ITEM_ITEM_KEY]
        if tuple(weights.shape) != (n_items, n_items) or weights.dtype != torch.float32:
            raise ValueError(f"item-item weights are {tuple(weights.shape)} "
                             f"{weights.dtype}, expected ({n_items}, {n_items}) float32")
        if not torch.isfinite(weights).all():
            raise ValueError("item-item weights are not finite")
        ii = ItemItem(0, result.decay, result.lam)
        ii.weights, ii.text_alpha = weights, result.text_alpha
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: the saved blend (item-item weights and settings) is "
                              f"invalid ({exc}); save the model again") from exc
    return ii, result


def _json_value(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_json_value(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if pd.isna(v):
        return None
    return str(v)  # dates and other objects: their text


def _catalog_to_json(cat: Catalog) -> dict:
    f = cat.frame
    return {"items": [str(i) for i in f.index],
            "columns": {str(c): [_json_value(v) for v in f[c].tolist()] for c in f.columns}}


def _read_catalog(path: Path, info: dict | None) -> Catalog | None:
    if info is None:
        return None
    file = path / str(info.get("file", CATALOG_FILE))
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: the catalogue file {file.name} is missing or "
                              f"unreadable ({exc}); restore it from the same save") from exc
    if hashlib.sha256(data).hexdigest() != info.get("sha256"):
        raise CheckpointError(f"{file} does not match its checksum in checkpoint.json: "
                              "restore both from the same save")
    try:
        doc = json.loads(data.decode("utf-8"))
        frame = pd.DataFrame(doc["columns"], index=pd.Index(doc["items"], name="item"))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{file} is not a valid catalogue ({exc})") from exc
    return Catalog(frame)


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _result_meta(result: TrainResult | None) -> dict:
    return {} if result is None else {k: v for k, v in result.to_dict().items()
                                      if k != "history"}


def _result_from(meta: dict | None) -> TrainResult | None:
    return TrainResult(**{**meta, "history": []}) if meta else None

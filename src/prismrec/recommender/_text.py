"""Item text for a Recommender: encoding at fit, similar items, search, new items from text.

Plain functions taking the recommender; ``Recommender`` exposes them as methods.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from prismrec.data.catalog import TEXT_FIELDS, Catalog
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError, PrismrecError, UnknownIdError
from prismrec.models.item_item import check_size
from prismrec.recommender import _cold

if TYPE_CHECKING:  # prismrec.text loads lazily: id-only users never pay for it
    from prismrec.profile.live import LiveBundle
    from prismrec.recommender.core import Recommender
    from prismrec.text import TextEncoder, TextTemplate

log = logging.getLogger(__name__)

TEXT_MODES = ("text", "id+text")


class NoTextPathError(PrismrecError, ValueError):
    """The model has no text part (``embedding='id'``): it cannot place items from text."""


def text_inputs(rec: Recommender, items: Vocab, catalog: Catalog | None,
                text_vectors: np.ndarray | None, text: bool | str,
                encoder: TextEncoder | None, template: TextTemplate | None,
                cache: str | os.PathLike | None) -> tuple[np.ndarray | None, str | None]:
    """(text vectors or None, embedding mode to force or None); records the encoder."""
    from prismrec.text import TextTemplate, default_encoder

    if text not in (True, False, "auto"):
        raise ValueError(f"text must be True, False or 'auto', got {text!r}")
    mode = rec._config_dict().get("embedding", "id")
    if text is True and text_vectors is not None:
        raise ValueError("give text_vectors or text=True (encode the catalogue), not both")
    encode = text is True or (text == "auto" and mode in TEXT_MODES
                              and text_vectors is None and catalog is not None)
    rec._encoder = encoder
    rec.text_missing_: dict[str, int] = {}
    rec.text_encoder_: dict[str, Any] | None = None
    rec.text_template_: TextTemplate | None = template
    if encode:
        if catalog is None:
            raise DataError("text=True needs a catalogue with item text: pass catalog=")
        enc = encoder if encoder is not None else default_encoder()
        template = template if template is not None else TextTemplate()
        text_vectors, rec.text_missing_ = encode_items(items, catalog, enc, template, cache,
                                                        rec._train_config().progress)
        rec._encoder, rec.text_template_ = enc, template
    if text_vectors is not None and rec._encoder is not None:
        dim = int(np.asarray(text_vectors).shape[-1])
        if int(rec._encoder.dim) != dim:
            raise ValueError(f"encoder {rec._encoder.name!r} gives {rec._encoder.dim}-d "
                             f"vectors but text_vectors are {dim}-d")
        rec.text_encoder_ = {"name": rec._encoder.name, "dim": dim}
    force = None
    if encode and mode == "id":
        force = "id+text"
    return text_vectors, force


def encode_items(items: Vocab, catalog: Catalog, encoder: TextEncoder,
                  template: TextTemplate, cache, progress: bool
                  ) -> tuple[np.ndarray, dict[str, int]]:
    """(N, D) vectors in item order; items without a catalogue row or with empty text get
    a zero vector (no text: they learn from their id alone, and add nothing to EASE's text
    side information), counted in the second value."""
    from prismrec.text import encode_catalog

    ids = items.to_list()
    present, with_text = items_with_text(ids, catalog, template)
    if not with_text:
        raise DataError(f"none of the {len(ids)} items has catalogue text in field(s) "
                        f"{', '.join(template.resolve_fields(catalog.frame.columns))}: "
                        "train without text")
    missing = {"no_catalogue_row": len(ids) - len(present),
               "empty_text": len(present) - len(with_text)}
    if any(missing.values()):
        log.warning("item text: %d item(s) have no catalogue row and %d have empty text; "
                    "they train with empty text (a zero text vector)",
                    missing["no_catalogue_row"], missing["empty_text"])
    vecs = encode_catalog(Catalog(catalog.frame.loc[with_text]), encoder, template, cache,
                          progress=progress)
    out = np.zeros((len(ids), vecs.shape[1]), dtype=np.float32)  # (N, D)
    out[items.index(with_text)] = vecs
    return out, {k: v for k, v in missing.items() if v}


def items_with_text(ids: list, catalog: Catalog, template: TextTemplate
                    ) -> tuple[list, list]:
    """(the ``ids`` with a catalogue row, those whose text by ``template`` is not empty)."""
    from prismrec.text import compose_texts

    present = [i for i in ids if i in catalog]
    texts = compose_texts(Catalog(catalog.frame.loc[present]), template, allow_empty=True)
    return present, [i for i, t in zip(present, texts, strict=True) if t.strip()]


def text_vectors(rec: Recommender) -> np.ndarray | None:
    """The frozen item text vectors (N, Dt) the model uses, item order; None for 'id'."""
    rec._check_fitted()
    emb = rec.model_.items
    if emb.proj is None:
        return None
    return emb.text_vectors[1:].detach().cpu().numpy().copy()


def item_index(rec: Recommender, item) -> int:
    try:
        return rec.items_.index_of(item)
    except UnknownIdError:
        raise UnknownIdError(
            f"unknown item {Vocab._key(item)!r}: not in this model's catalogue; add it with "
            "add_items() (models with a text part) or retrain with it"
        ) from None


def need_text(rec: Recommender, what: str) -> None:
    rec._check_fitted()
    if rec.model_.items.proj is None:
        raise NoTextPathError(
            f"{what} needs item text vectors, but this {rec.model_.name} model was "
            f"trained with embedding={rec.model_.config.embedding!r} (no text part); "
            "retrain with fit(..., catalog, text=True) or "
            "model_config={'embedding': 'id+text'}"
        )


def resolve_encoder(rec: Recommender, encoder: TextEncoder | None) -> TextEncoder:
    """The given encoder, the one from fit, or one rebuilt from the saved encoder name."""
    from prismrec.text import EncoderError

    recorded = getattr(rec, "text_encoder_", None)
    if encoder is None:
        encoder = getattr(rec, "_encoder", None)
    if encoder is None and recorded is not None:
        encoder = encoder_from_name(recorded["name"])
        rec._encoder = encoder
    if encoder is None:
        known = "an unknown encoder" if recorded is None else repr(recorded["name"])
        raise EncoderError(
            f"this model's text vectors came from {known}, which prismrec cannot rebuild "
            "by name: pass encoder= (the same encoder that made the training vectors)")
    if recorded is not None and encoder.name != recorded["name"]:
        log.warning("encoder %r differs from %r, which made the training vectors; new "
                    "vectors may not match the model", encoder.name, recorded["name"])
    return encoder


def check_dim(rec: Recommender, encoder: TextEncoder) -> None:
    from prismrec.text import DimensionMismatchError

    want = rec.model_.items.text_dim
    if int(encoder.dim) != want:
        raise DimensionMismatchError(
            f"encoder {encoder.name!r} gives {encoder.dim}-d vectors but this model's "
            f"text part takes {want}-d vectors: use the encoder the model was trained with"
        )


def similar_items(rec: Recommender, item, k: int, by: str) -> pd.DataFrame:
    from prismrec.text import cosine_topk

    rec._check_fitted()
    k = check_k(k)
    if by == "model":
        with torch.no_grad():
            table = rec.model_.output_table().detach().float().cpu().numpy()  # (N, D)
    elif by == "text":
        need_text(rec, "similar_items(by='text')")
        table = text_vectors(rec)
    else:
        raise ValueError(f"by must be 'model' or 'text', got {by!r}")
    idx = item_index(rec, item)
    found, scores = cosine_topk(table[idx: idx + 1], table, k + 1)
    keep = found[0] != idx
    found, scores = found[0][keep][:k], scores[0][keep][:k]
    return pd.DataFrame({"rank": np.arange(1, len(found) + 1), "item": rec.items_.ids(found),
                         "score": scores.astype(np.float64)})


def search(rec: Recommender, text: str, k: int, encoder: TextEncoder | None) -> pd.DataFrame:
    from prismrec.text import cosine_topk

    need_text(rec, "search")
    k = check_k(k)
    if not isinstance(text, str) or not text.strip():
        raise DataError("search needs a non-empty query text")
    enc = resolve_encoder(rec, encoder)
    check_dim(rec, enc)
    query = np.asarray(enc.encode([text]), dtype=np.float32)  # (1, Dt)
    found, scores = cosine_topk(query, text_vectors(rec), k)
    return pd.DataFrame({"rank": np.arange(1, found.shape[1] + 1),
                         "item": rec.items_.ids(found[0]),
                         "score": scores[0].astype(np.float64)})


def add_items(rec: Recommender, rows: pd.DataFrame | Catalog,
              encoder: TextEncoder | None) -> list[str]:
    from prismrec.text import TextTemplate, encode_catalog

    need_text(rec, "add_items")
    cat = as_catalog(rows)
    if len(cat) == 0:
        return []
    ids = cat.ids
    new = [j for j, i in enumerate(ids) if i not in rec.items_]
    if getattr(rec, "item_item_", None) is not None:  # refuse before anything changes
        check_size(len(rec.items_) + len(new))
    enc = resolve_encoder(rec, encoder)
    check_dim(rec, enc)
    template = rec.text_template_ or TextTemplate()
    vectors = encode_catalog(cat, enc, template, progress=False)  # (M, Dt)
    if not np.isfinite(vectors).all():
        raise DataError("the encoder returned NaN or infinite vectors")
    known = [j for j, i in enumerate(ids) if i in rec.items_]
    emb = rec.model_.items
    if known:
        tv = emb.text_vectors[1:].clone()  # (N, Dt)
        at = torch.from_numpy(rec.items_.index([ids[j] for j in known]))
        tv[at] = torch.from_numpy(vectors[known]).to(tv.dtype)
        emb.set_text_vectors(tv)
        rec._states.clear()  # states over re-encoded items are stale
    if new:
        first = rec.model_.n_items
        rec.model_.add_items(torch.from_numpy(vectors[new]))  # zero ID row, mean bias
        placement = getattr(rec, "cold_placement_", None)
        if placement is not None:  # then placed as chosen on validation (``_cold``)
            _cold.place(rec.model_, torch.arange(first, rec.model_.n_items), placement)
        rec.items_.add([ids[j] for j in new])
        if getattr(rec, "item_item_", None) is not None:  # new items: zero rows and columns
            rec.item_item_.resize(len(rec.items_))
    rec.catalog_ = merge_catalogs(rec.catalog_, cat)
    return [ids[j] for j in new]


def live_bundle(rec: Recommender) -> LiveBundle:
    """See ``Recommender.live_bundle``."""
    from prismrec.profile.live import LiveBundle

    ii = getattr(rec, "item_item_", None)
    return LiveBundle(rec.model_, rec.items_, rec.users_, rec.histories_, ii,
                      0.0 if ii is None else float(rec.blend_.weight),
                      getattr(rec, "catalog_", None),
                      lambda rows, encoder: _grown(rec, rows, encoder), rec)


def _grown(rec: Recommender, rows, encoder) -> tuple[LiveBundle, list[str]]:
    """A copy of ``rec`` with the items of ``rows`` added, as a new bundle; ``rec`` itself
    is not changed (the live service swaps the new bundle in whole)."""
    grown = copy.copy(rec)
    grown.model_ = copy.deepcopy(rec.model_)
    grown.items_ = Vocab.from_list(rec.items_.to_list())
    grown.histories_ = rec.histories_  # a fresh set of streaming caches, same histories
    if getattr(rec, "item_item_", None) is not None:
        grown.item_item_ = copy.deepcopy(rec.item_item_)
    added = add_items(grown, rows, encoder)
    if getattr(grown, "_encoder", None) is not None:
        rec._encoder = grown._encoder  # keep a loaded encoder for the next growth
    return live_bundle(grown), added


# -- helpers --------------------------------------------------------------------------------------

def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def encoder_from_name(name: str) -> TextEncoder | None:
    """The encoder a saved name stands for, when prismrec can build it without guessing."""
    from prismrec.text import DEFAULT_MODEL, HashingEncoder, default_encoder

    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return default_encoder()
    m = re.fullmatch(r"hashing-(\d+)(-bigrams)?", name)
    if m:
        return HashingEncoder(int(m.group(1)), bigrams=m.group(2) is not None)
    return None


def as_catalog(rows: pd.DataFrame | Catalog) -> Catalog:
    """A Catalog from a Catalog or a DataFrame with an ``item`` column (extra columns kept)."""
    if isinstance(rows, Catalog):
        return rows
    if not isinstance(rows, pd.DataFrame):
        raise TypeError(f"add_items takes a DataFrame or a Catalog, got {type(rows).__name__}")
    if "item" not in rows.columns:
        raise DataError(f"item rows need an 'item' column; columns present: "
                        f"{', '.join(map(repr, map(str, rows.columns))) or '(none)'}")
    if rows["item"].isna().any():
        raise DataError("item rows have a missing item id")
    named = {f: (f if f in rows.columns else None) for f in TEXT_FIELDS}
    cat = Catalog.from_frame(rows, item="item", source="item rows", **named)
    other = [c for c in rows.columns if c != "item" and c not in TEXT_FIELDS]
    if other:
        frame = cat.frame.copy()
        for c in other:
            frame[c] = rows[c].to_numpy()
        cat = Catalog(frame)
    return cat


def merge_catalogs(old: Catalog | None, new: Catalog) -> Catalog:
    """``old`` with ``new``'s rows added or replacing; text fields a side lacks are blank."""
    if old is None:
        return new
    frame = old.merge(new).frame
    for f in TEXT_FIELDS:
        if f in frame.columns:
            blank = [] if f in ("categories", "tags") else ""
            frame[f] = [blank if not isinstance(v, (list, str)) else v for v in frame[f]]
    return Catalog(frame)

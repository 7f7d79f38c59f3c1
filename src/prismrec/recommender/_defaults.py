"""What ``Recommender()`` (``model="auto"``) and ``prismrec train`` train when told nothing.

The default is the strongest configuration measured (docs/benchmarks.md, section
"Sequence models": on Amazon Scientific SASRec with item text, blended with EASE, test
NDCG@10 0.1085 filtered over 3 seeds, against 0.0635 for the LSTM with its defaults), with
the parts the data cannot support switched off, each decision recorded with its reason:

- model: SASRec with the settings of that row (``AUTO_MODEL_CONFIG``, ``AUTO_TRAIN_CONFIG``,
  chosen on Scientific's validation cases in ``bench/sequence.py``); ``model_config`` and
  ``train_config`` given by the caller override them key by key.
- item text: on when the catalogue gives text for at least one item (encoder: the one
  passed to ``fit``, else the packaged all-MiniLM-L6-v2); the ``id+text`` embedding
  (``AUTO_TEXT_CONFIG``). Off without a catalogue or without text in it.
- the EASE blend: on when the fit has validation cases, the catalogue has at most
  ``AUTO_BLEND_MAX_ITEMS`` items and its dense N x N fit fits in the memory available
  now. Its weight is chosen on validation from a grid that includes 0 (the sequence model
  alone), so on the validation cases the blend never scores below the sequence model
  alone.
- refit: off. Refitting trains on the validation targets, so validation cannot tell
  whether it helps; it costs a second training. ``refit=True`` asks for it.

A named model (``Recommender("lstm")``, ``"gru"``, ``"sasrec"``) keeps explicit
behaviour: its own config defaults, text only when asked (``text=True`` or a text
embedding in ``model_config``), the blend only when asked (``blend=True``/``"auto"``/...).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from prismrec.data.catalog import Catalog
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError
from prismrec.models.item_item import available_bytes, blend_bytes

if TYPE_CHECKING:
    from prismrec.recommender.core import Recommender

AUTO = "auto"
AUTO_MODEL = "sasrec"
# bench/sequence.py, amazon-scientific "sasrec+text+blend" (chosen on validation there)
AUTO_MODEL_CONFIG: dict[str, Any] = {"dim": 64, "dropout": 0.5, "attn_dropout": 0.5,
                                     "max_len": 50}
AUTO_TEXT_CONFIG: dict[str, Any] = {"embedding": "id+text", "id_dropout": 0.1}
AUTO_TRAIN_CONFIG: dict[str, Any] = {"lr": 1e-3, "batch_size": 64, "patience": 10}
# The blend's grid solves 6 EASE systems (18 with item text); one solve took 158 CPU s at
# 20,000 items (docs/benchmarks.md, section ease), so above this the auto blend stays off.
AUTO_BLEND_MAX_ITEMS = 10_000


@dataclass
class Choices:
    """What a fit trains and why: ``Recommender.choices_``, and the ``choices`` of
    ``prismrec train --json``.

    ``model_config``/``train_config`` are what the model and trainer were given (the
    recipe merged with the caller's settings); ``text`` and ``blend`` are on or off;
    ``reasons`` says, per decision (model, text, blend, refit), why.
    """

    model: str
    auto: bool  # model="auto": the recipe was used
    model_config: dict[str, Any]
    train_config: dict[str, Any] | None
    text: bool
    blend: bool
    refit: bool
    reasons: dict[str, str] = field(default_factory=dict)
    blend_option: Any = None  # what _blend.resolve takes (None: off); not serialised

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("blend_option")
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], blend_option: Any = None) -> Choices:
        """The record ``to_dict`` wrote (a saved model's); ``blend_option`` is not in it."""
        train_config = d["train_config"]
        return cls(model=str(d["model"]), auto=bool(d["auto"]),
                   model_config=dict(d["model_config"]),
                   train_config=None if train_config is None else dict(train_config),
                   text=bool(d["text"]), blend=bool(d["blend"]), refit=bool(d["refit"]),
                   reasons={str(k): str(v) for k, v in d.get("reasons", {}).items()},
                   blend_option=blend_option)


def choose(rec: Recommender, items: Vocab, catalog: Catalog | None, *,
           text: bool | str, text_vectors: np.ndarray | None, refit: bool,
           validated: bool = True, available: int | None = None) -> Choices:
    """The model, its settings, text, blend and refit for this fit, with reasons.

    ``validated``: the fit has validation cases (the auto blend needs them to choose its
    weight; without them it stays off)."""
    auto = rec.model == AUTO
    given_model = _as_dict(rec.model_config)
    reasons: dict[str, str] = {}
    if auto:
        name = AUTO_MODEL
        model_config = {**AUTO_MODEL_CONFIG, **given_model}
        reasons["model"] = ("model='auto': SASRec with the settings of the strongest measured "
                            "configuration (docs/benchmarks.md, Sequence models)")
    else:
        name, model_config = rec.model, given_model
        reasons["model"] = f"model={rec.model!r} was asked for"
    use_text, reasons["text"] = _choose_text(auto, name, text, text_vectors, model_config,
                                             items, catalog)
    if auto and use_text:
        model_config = {**AUTO_MODEL_CONFIG, **AUTO_TEXT_CONFIG, **given_model}
    train_config = rec.train_config
    if auto and (train_config is None or isinstance(train_config, dict)):
        train_config = {**AUTO_TRAIN_CONFIG, **(train_config or {})}
    option, reasons["blend"] = _choose_blend(auto, rec.blend, len(items), use_text,
                                             validated, available)
    reasons["refit"] = ("asked for (refit=True): a second training on train + validation"
                        if refit else "off: refitting trains on the validation targets, so "
                        "validation cannot show whether it helps; it costs a second training "
                        "(refit=True / --refit asks for it)")
    return Choices(name, auto, model_config,
                   None if train_config is None else _as_dict(train_config),
                   use_text, option is not None, refit, reasons, option)


def _as_dict(cfg) -> dict[str, Any]:
    if cfg is None:
        return {}
    return dict(cfg) if isinstance(cfg, dict) else cfg.to_dict()


def _choose_text(auto: bool, name: str, text: bool | str, text_vectors, model_config: dict,
                 items: Vocab, catalog: Catalog | None) -> tuple[bool, str]:
    from prismrec.recommender._text import TEXT_MODES, items_with_text
    from prismrec.text import TextTemplate

    if text not in (True, False, AUTO):
        raise ValueError(f"text must be True, False or 'auto', got {text!r}")
    if text_vectors is not None:
        return True, "text_vectors were given"
    if text is True:
        return True, "asked for (text=True)"
    if text is False:
        return False, "off: asked for (text=False)"
    if not auto or "embedding" in model_config:  # the caller chose the embedding
        if model_config.get("embedding", "id") in TEXT_MODES:
            return True, f"model_config asks for embedding={model_config['embedding']!r}"
        if auto:
            return False, "off: model_config asks for embedding='id'"
        return False, (f"off: model={name!r} trains as configured; text=True asks for "
                       "item text")
    if catalog is None:
        return False, "off: the data has no item catalogue"
    try:
        _, with_text = items_with_text(items.to_list(), catalog, TextTemplate())
    except DataError as exc:  # the catalogue has none of the text fields
        return False, f"off: {exc}"
    if not with_text:
        return False, "off: no item has text in the catalogue"
    return True, (f"on: the catalogue has text for {len(with_text):,} of {len(items):,} "
                  "items; encoded once (cost: one pass of the text encoder over them)")


def _choose_blend(auto: bool, blend, n_items: int, text: bool, validated: bool,
                  available: int | None) -> tuple[Any, str]:
    if blend is False:
        return None, "off: asked for (blend=False)"
    if blend is None and not auto:
        return None, "off: a named model blends only when asked (blend=True or 'auto')"
    if blend is not None and blend != AUTO:
        return blend, ("asked for; its weight is chosen on validation" if validated else
                       "asked for; no validation cases, so BlendConfig's default weights")
    if not validated:
        return None, ("off: no validation cases to choose its weight on (the blend could "
                      "then score below the sequence model alone)")
    if n_items > AUTO_BLEND_MAX_ITEMS:
        return None, (f"off: {n_items:,} items is more than {AUTO_BLEND_MAX_ITEMS:,}, where "
                      "the blend's EASE solves (N x N, 6-18 of them) take too long for a "
                      "default; blend=True / --blend asks for it")
    need = blend_bytes(n_items, text=text)
    have = available_bytes() if available is None else available
    if need > have:
        return None, (f"off: EASE on {n_items:,} items needs about {need / 2**30:.1f} GiB "
                      f"and {have / 2**30:.1f} GiB is available")
    return True, (f"on: {n_items:,} items, EASE needs about {need / 2**30:.2f} GiB of "
                  f"{have / 2**30:.1f} GiB available; its weight is chosen on validation "
                  "from 0 (the sequence model alone) to 1, so validation never scores it "
                  "below the sequence model alone (cost: 6 EASE solves, 18 with text)")

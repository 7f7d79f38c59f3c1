"""The blended model: sequence-model scores mixed with EASE item-item scores.

    blended = (1 - a) * z(sequence scores) + a * z(item-item scores)

``z`` standardizes each user's row over every item (``prismrec.models.item_item.blend``).
Item-item scores are the user's recency-weighted history bag (the t-th of L items weighted
``decay ** (L - 1 - t)``) times EASE weights fitted on the training sequences. On sparse
catalogues co-purchase structure is what a sequence model learns slowest, and the two
rank errors are only partly shared, so a blend beats either part (measured on Amazon
Scientific: see docs/benchmarks.md).

A model with item text (``id+text``/``text``) also gives EASE side information: its Gram
matrix becomes ``X^T X + alpha * S`` with S the cosine similarity of the frozen text vectors
(``models.item_item.text_gram``), so co-purchase counts borrow strength from similar text.
``alpha`` 0 is plain EASE; on Amazon Scientific validation picks alpha 10-30 (+13% NDCG@10
for the item-item part alone).

After the sequence model is trained, the EASE penalty ``lam``, the text weight ``alpha``,
the ``decay`` and the weight ``a`` are chosen together on the validation cases only
(filtered NDCG@k, the trainer's definition: ties count against the model); without
validation cases the documented defaults are used.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases
from prismrec.models.item_item import ItemItem, blend, gram_matrix, standardize, text_gram
from prismrec.ranking import ndcg
from prismrec.train.inference import encode_sequences

if TYPE_CHECKING:
    from prismrec.recommender.core import Recommender

log = logging.getLogger(__name__)

SCORE_FLOATS = 8_000_000  # validation rows scored at a time: a few (B, N) float32 blocks
CACHE_FLOATS = 64_000_000  # keep every row's standardized sequence scores up to ~256 MB


@dataclass
class BlendConfig:
    """What the blend tries on validation, and what it uses without validation cases."""

    lams: tuple[float, ...] = (10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
    decays: tuple[float, ...] = (1.0, 0.8, 0.6)
    weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    text_alphas: tuple[float, ...] = (0.0, 10.0, 30.0)  # models with item text only
    # Without validation cases: the values chosen on Amazon Scientific's validation set.
    default_lam: float = 50.0
    default_decay: float = 0.8
    default_weight: float = 0.4
    default_text_alpha: float = 10.0
    k: int = 10  # validation metric: filtered NDCG@k

    def validate(self) -> None:
        for name in ("lams", "decays", "weights", "text_alphas"):
            if len(getattr(self, name)) == 0:
                raise ValueError(f"blend {name} is empty: give at least one value to try")
        if any(not lam > 0 for lam in (*self.lams, self.default_lam)):
            raise ValueError("blend lam values must be positive")
        if any(not 0.0 < d <= 1.0 for d in (*self.decays, self.default_decay)):
            raise ValueError("blend decay values must be in (0, 1]")
        if any(not 0.0 <= a <= 1.0 for a in (*self.weights, self.default_weight)):
            raise ValueError("blend weights must be in [0, 1]")
        if any(not 0.0 <= a < float("inf") for a in (*self.text_alphas,
                                                      self.default_text_alpha)):
            raise ValueError("blend text_alphas must be finite and >= 0")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"blend k must be a positive integer, got {self.k!r}")

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlendConfig:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown blend option(s) {unknown}; known: {sorted(known)}")
        d = dict(d)
        for k in ("lams", "decays", "weights", "text_alphas"):
            if k not in d:
                continue
            v = d[k]
            if not isinstance(v, (list, tuple)) or any(
                    isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
                raise ValueError(f"blend {k} must be a list of numbers, got {v!r}")
            d[k] = tuple(float(x) for x in v)
        return cls(**d)


@dataclass
class BlendResult:
    """The blend in use: its ``lam``, ``decay``, weight ``a`` and text weight ``text_alpha``
    (0: plain EASE), and how they were chosen.

    ``chosen_on`` is ``"validation"`` (``table`` lists every point tried with its
    validation metric; ``weight`` 0 is the sequence model alone, 1 item-item alone) or
    ``"defaults"`` (no validation cases).
    """

    lam: float
    decay: float
    weight: float
    chosen_on: str
    metric: str
    best: float | None = None
    table: list[dict[str, float]] = field(default_factory=list)
    text_alpha: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def alone(self) -> float | None:
        """The best validation metric at weight 0 (the sequence model alone): ``best`` is
        never below it. None when weight 0 was not tried or nothing was validated."""
        scores = [r[self.metric] for r in self.table if r["weight"] == 0.0]
        return max(scores) if scores else None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlendResult:
        return cls(lam=float(d["lam"]), decay=float(d["decay"]), weight=float(d["weight"]),
                   chosen_on=str(d["chosen_on"]), metric=str(d["metric"]),
                   best=None if d.get("best") is None else float(d["best"]),
                   table=[dict(r) for r in d.get("table", [])],
                   text_alpha=float(d.get("text_alpha", 0.0)))  # older checkpoints: none


def resolve(blend_opt: bool | str | dict | BlendConfig | None) -> BlendConfig | None:
    """The ``Recommender(blend=...)`` argument as a validated config, or None (no blend)."""
    if blend_opt is None or blend_opt is False:
        return None
    if blend_opt is True or blend_opt == "ease":
        cfg = BlendConfig()
    elif isinstance(blend_opt, BlendConfig):
        cfg = blend_opt
    elif isinstance(blend_opt, dict):
        cfg = BlendConfig.from_dict(blend_opt)
    else:
        raise ValueError(f"blend must be None/False, True, 'ease', a dict or a BlendConfig; "
                         f"got {blend_opt!r}")
    cfg.validate()
    return cfg


def fit_blend(rec: Recommender, train: Sequences, valid: EvalCases | None) -> None:
    """Fit the item-item part on ``train`` and choose the blend on ``valid``; sets
    ``rec.item_item_`` and ``rec.blend_`` (both None when the blend is off)."""
    cfg = resolve(rec.blend_option_)
    rec.item_item_, rec.blend_ = None, None
    if cfg is None:
        return
    n = len(rec.items_)
    gram = gram_matrix(train, n)  # (N, N), once for every lam
    similarity = _text_similarity(rec)  # (N, N) or None: the model has no item text
    alphas = cfg.text_alphas if similarity is not None else (0.0,)
    metric = f"ndcg@{cfg.k}"
    if valid is None or len(valid) == 0:
        alpha = cfg.default_text_alpha if similarity is not None else 0.0
        rec.item_item_ = ItemItem(n, cfg.default_decay).fit_gram(
            _with_text(gram, similarity, alpha), cfg.default_lam, alpha)
        rec.blend_ = BlendResult(cfg.default_lam, cfg.default_decay, cfg.default_weight,
                                 "defaults", metric, text_alpha=alpha)
        log.info("blend: no validation cases; defaults lam=%g decay=%g a=%g text alpha=%g",
                 cfg.default_lam, cfg.default_decay, cfg.default_weight, alpha)
        return
    table, fitted = _validation_table(rec, gram, similarity, alphas, valid, cfg)
    scores = np.array([r[metric] for r in table])
    best = table[int(np.argmax(scores))]  # ties: the first point tried
    if (fitted.lam, fitted.text_alpha) != (best["lam"], best["text_alpha"]):
        fitted = ItemItem(n).fit_gram(_with_text(gram, similarity, best["text_alpha"]),
                                      best["lam"], best["text_alpha"])  # rounding near-ties
    fitted.decay = best["decay"]
    rec.item_item_ = fitted
    rec.blend_ = BlendResult(best["lam"], best["decay"], best["weight"], "validation", metric,
                             best[metric], table, best["text_alpha"])
    alone = rec.blend_.alone()
    log.info("blend: lam=%g decay=%g a=%g text alpha=%g, validation %s=%.5f (sequence model "
             "alone %s)", best["lam"], best["decay"], best["weight"], best["text_alpha"],
             metric, best[metric], "n/a" if alone is None else f"{alone:.5f}")


def refit_item_item(rec: Recommender, train: Sequences) -> None:
    """Refit the chosen item-item part on ``train`` (``Recommender(refit=True)``), keeping
    the lam, decay and text weight the validation chose."""
    b = rec.blend_
    gram = _with_text(gram_matrix(train, len(rec.items_)), _text_similarity(rec),
                      b.text_alpha)
    rec.item_item_ = ItemItem(len(rec.items_), b.decay).fit_gram(gram, b.lam, b.text_alpha)


def _text_similarity(rec: Recommender) -> np.ndarray | None:
    emb = rec.model_.items
    if getattr(emb, "proj", None) is None:
        return None
    return text_gram(emb.text_vectors[1:].detach().cpu().numpy())  # (N, N)


def _with_text(gram: np.ndarray, similarity: np.ndarray | None, alpha: float) -> np.ndarray:
    if similarity is None or alpha == 0.0:
        return gram
    out = similarity * alpha  # one new (N, N) array, not two
    out += gram
    return out


@torch.no_grad()
def _validation_table(rec: Recommender, gram: np.ndarray, similarity: np.ndarray | None,
                      alphas: tuple[float, ...], valid: EvalCases, cfg: BlendConfig
                      ) -> tuple[list[dict[str, float]], ItemItem]:
    """Mean filtered NDCG@k on ``valid`` for every (text alpha, lam, decay, weight), and the
    item-item part fitted with the best (alpha, lam) (kept, so it is not solved twice)."""
    model = rec.model_
    was_training = model.training
    model.eval()
    try:
        reprs = encode_sequences(model, valid.history)  # (R, D), once
        n = model.n_items
        step = max(1, SCORE_FLOATS // n)
        chunks = [np.arange(lo, min(lo + step, len(valid))) for lo in range(0, len(valid), step)]
        keep = len(valid) * n <= CACHE_FLOATS  # keep z(sequence scores) between lams
        cache: dict[int, torch.Tensor] = {}
        sums = np.zeros((len(alphas), len(cfg.lams), len(cfg.decays), len(cfg.weights)))
        best: tuple[float, ItemItem] | None = None
        for ai, alpha in enumerate(alphas):
            g = _with_text(gram, similarity, alpha)
            for li, lam in enumerate(cfg.lams):
                ii = ItemItem(n).fit_gram(g, lam, alpha)
                for c, rows in enumerate(chunks):
                    hist, tgt = valid.history.take(rows), valid.targets.take(rows)
                    seq = cache.get(c)
                    if seq is None:
                        seq = standardize(model.score_all(reprs[rows[0]:rows[-1] + 1]))
                        _filter(seq, hist)  # (b, N)
                        if keep:
                            cache[c] = seq
                    for di, decay in enumerate(cfg.decays):
                        ii.decay = decay
                        other = _filter(standardize(ii.scores(hist)), hist)  # (b, N)
                        sums[ai, li, di] += _ndcg_sums(seq, other, tgt, cfg.weights, cfg.k)
                if best is None or sums[ai, li].max() > best[0]:  # ties: the first tried
                    best = (float(sums[ai, li].max()), ii)
            del g
    finally:
        model.train(was_training)
    metric = f"ndcg@{cfg.k}"
    table = [{"text_alpha": float(alpha), "lam": float(lam), "decay": float(d),
              "weight": float(a), metric: float(sums[ai, li, di, wi] / len(valid))}
             for ai, alpha in enumerate(alphas) for li, lam in enumerate(cfg.lams)
             for di, d in enumerate(cfg.decays) for wi, a in enumerate(cfg.weights)]
    return table, best[1]


def _filter(scores: torch.Tensor, hist: Sequences) -> torch.Tensor:
    """Seen items to -inf, in place (after standardizing, as the evaluation protocol does)."""
    if hist.n_events:
        scores[torch.from_numpy(hist.row_ids()), torch.from_numpy(hist.items)] = -torch.inf
    return scores


def _ndcg_sums(x: torch.Tensor, y: torch.Tensor, tgt: Sequences,
               weights: tuple[float, ...], k: int) -> np.ndarray:
    """Summed NDCG@k of the rows of ``(1 - a) * x + a * y`` for each weight ``a``: (W,).

    ``x`` and ``y`` are the standardized parts with seen items at -inf. Ranks follow the
    trainer's validation: rank = items scoring at least the target (ties count against the
    model), a filtered target is a miss, several targets per row allowed. An item at least
    as good as the target in both parts beats it at every weight (rounding is monotone),
    so a target with more than ``k`` such items scores 0 everywhere and only the other
    targets are ranked per weight.
    """
    b = x.shape[0]
    pairs = np.unique(np.stack([tgt.row_ids(), tgt.items], 1), axis=0)  # distinct targets
    r, it = torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])
    one_each = len(pairs) == b and bool((pairs[:, 0] == np.arange(b)).all())
    xr, yr = (x, y) if one_each else (x[r], y[r])  # (E, N)
    xt, yt = x[r, it], y[r, it]  # (E,)
    dominated = ((xr >= xt[:, None]) & (yr >= yt[:, None])).sum(1, dtype=torch.int32)  # (E,)
    live = torch.nonzero(torch.isfinite(xt) & (dominated <= k)).flatten()  # (L,)
    n_t = np.bincount(pairs[:, 0], minlength=b)
    out = np.zeros(len(weights))
    if len(live) == 0:
        return out
    xl, yl = xr[live], yr[live]  # (L, N)
    at = (torch.arange(len(live)), it[live])
    live_rows = r[live].numpy()
    mixed, part = torch.empty_like(xl), torch.empty_like(xl)  # (L, N) buffers, reused
    for wi, a in enumerate(weights):
        torch.mul(xl, 1.0 - a, out=mixed)  # as blend() computes it, op by op
        torch.mul(yl, a, out=part)
        mixed.add_(part)
        target = mixed[at]  # (L,)
        rank = (mixed >= target[:, None]).sum(1, dtype=torch.int32)  # (L,) 1-based
        out[wi] = float(ndcg(live_rows, rank.numpy(), n_t, k).sum())
    return out


def blended(rec: Recommender, scores: torch.Tensor, histories: Sequences) -> torch.Tensor:
    """The sequence model's (B, N) ``scores`` blended with item-item scores of ``histories``
    (row b is the history behind ``scores[b]``); unchanged when the blend is off."""
    ii = getattr(rec, "item_item_", None)
    if ii is None:
        return scores
    if len(histories) != scores.shape[0]:
        raise ValueError(f"{scores.shape[0]} score rows but {len(histories)} histories")
    return blend(scores, ii.scores(histories), rec.blend_.weight)

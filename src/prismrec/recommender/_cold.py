"""Cold items: an ID row and an output bias imputed from the item's text.

An item with no training events (one the data has but training never saw, or one added
later with ``add_items``) used to get a zero ID row and the trained items' mean bias, so it
was scored by the text projection alone: a vector training only shows the model for the
``id_dropout`` share of positions, at the bias of an average item. On Amazon Scientific
that put cold targets at 0.13x the NDCG@10 of warm ones (docs/benchmarks.md, "Item text").

Here, after training, a ridge regression from an item's frozen text vector to what
training learned for it — its ID row (D) and its output bias (1) — is fitted on the trained
items that have text, and cold items get its prediction:

    [id_row, bias] = (t - t_mean) @ W + y_mean,   W = (X'X + lam I)^-1 X'Y   (X, Y centred)

Each target group (the ID row; the bias) gets its own ``lam``, the one with the smallest
leave-one-out squared error over ``LAMBDAS`` (closed form from one SVD of X, so choosing
costs no scoring pass). Items without text are left out of the fit; a cold item without
text gets ``y_mean`` (the mean trained ID row and bias). Above ``MAX_ITEMS`` trained items
with text, the map is fitted on a fixed-seed sample of that many (``ColdMap.n_items`` says
how many it saw). The fitted map is kept
(``Recommender.cold_map_``) and saved with the model, so ``add_items`` after ``load``
places new items the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prismrec.models.base import SequenceEncoder

# candidate ridge penalties; the text vectors are unit-length MiniLM rows (or similar), so
# X'X has eigenvalues between ~0 and ~n/Dt·something: the grid spans both regimes
LAMBDAS = (0.01, 0.1, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0)
MIN_ITEMS = 10  # fewer trained items with text than this: no map (zero ID row, mean bias)
MAX_ITEMS = 50_000  # more: the map is fitted on this many of them, drawn with a fixed seed
# (one SVD of an (n, Dt) float64 matrix: 150 MB and about a second at this size)


@dataclass
class ColdMap:
    """A fitted text → (ID row, bias) regression; ``weight`` is (Dt, D_out)."""

    weight: torch.Tensor  # (Dt, D_out): D columns for the ID row (if any), then 1 for the bias
    text_mean: torch.Tensor  # (Dt,)
    target_mean: torch.Tensor  # (D_out,)
    id_dim: int  # 0 when the model has no ID table (embedding="text")
    has_bias: bool
    lam_id: float | None  # None: nothing of that kind to predict
    lam_bias: float | None
    n_items: int  # trained items with text the map was fitted on

    def predict(self, text: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(M, Dt) text vectors → (ID rows (M, D) or None, biases (M,) or None)."""
        t = text.to(self.weight.dtype)
        out = (t - self.text_mean) @ self.weight + self.target_mean  # (M, D_out)
        none = ~t.ne(0).any(dim=1)  # no text: the mean trained item
        out[none] = self.target_mean
        rows = out[:, : self.id_dim] if self.id_dim else None  # (M, D)
        bias = out[:, self.id_dim] if self.has_bias else None  # (M,)
        return rows, bias

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {"weight": self.weight, "text_mean": self.text_mean,
                "target_mean": self.target_mean}

    def to_meta(self) -> dict:
        return {"id_dim": self.id_dim, "has_bias": self.has_bias, "lam_id": self.lam_id,
                "lam_bias": self.lam_bias, "n_items": self.n_items}

    @classmethod
    def from_saved(cls, meta: dict, tensors: dict[str, torch.Tensor]) -> ColdMap:
        cm = cls(tensors["weight"].float(), tensors["text_mean"].float(),
                 tensors["target_mean"].float(), int(meta["id_dim"]), bool(meta["has_bias"]),
                 _opt(meta["lam_id"]), _opt(meta["lam_bias"]), int(meta["n_items"]))
        d_out = cm.id_dim + int(cm.has_bias)
        if (cm.weight.ndim != 2 or cm.weight.shape[1] != d_out
                or cm.text_mean.shape != (cm.weight.shape[0],)
                or cm.target_mean.shape != (d_out,)):
            raise ValueError(f"cold-item map tensors have shapes {tuple(cm.weight.shape)}, "
                             f"{tuple(cm.text_mean.shape)}, {tuple(cm.target_mean.shape)} "
                             f"for {d_out} outputs")
        return cm


def _opt(v) -> float | None:
    return None if v is None else float(v)


def _loo_lambda(u: torch.Tensor, s: torch.Tensor, y: torch.Tensor,
                lams: tuple[float, ...]) -> float:
    """The lam of ``lams`` with the smallest leave-one-out error of ridge on centred y
    (centred once, on all rows: the usual closed form, exact for the fit without intercept).

    With X = U S V', ridge's fit is H y, H = U diag(s² / (s² + lam)) U', and the
    leave-one-out residual of row i is (y_i - (H y)_i) / (1 - H_ii).
    """
    uty = u.T @ y  # (r, k)
    best, best_err = lams[0], float("inf")
    for lam in lams:
        shrink = s**2 / (s**2 + lam)  # (r,)
        fit = u @ (shrink[:, None] * uty)  # (n, k)
        h = (u**2 @ shrink).clamp(max=1.0 - 1e-6)  # (n,)
        err = float((((y - fit) / (1.0 - h)[:, None]) ** 2).mean())
        if err < best_err:
            best, best_err = lam, err
    return best


def _ridge(u: torch.Tensor, s: torch.Tensor, vt: torch.Tensor, y: torch.Tensor,
           lam: float) -> torch.Tensor:
    """W (Dt, k) of ridge on centred X = U S V' and centred y (n, k)."""
    return vt.T @ ((s / (s**2 + lam))[:, None] * (u.T @ y))


@torch.no_grad()
def fit_cold_map(model: SequenceEncoder, trained: torch.Tensor,
                 lams: tuple[float, ...] = LAMBDAS) -> ColdMap | None:
    """The text → (ID row, bias) map fitted on the ``trained`` items (bool (N,)) with text.

    None when the model has no text part, no tied item table, nothing to predict, or fewer
    than ``MIN_ITEMS`` trained items with text.
    """
    emb = model.items
    if emb.proj is None or model.out_table is not None:
        return None
    has_id, has_bias = emb.id is not None, model.out_bias is not None
    if not (has_id or has_bias):
        return None
    text = emb.text_vectors[1:]  # (N, Dt)
    fit_on = trained.bool() & text.ne(0).any(dim=1)  # (N,)
    if int(fit_on.sum()) < MIN_ITEMS:
        return None
    fit_on = torch.nonzero(fit_on).flatten()  # item indices
    if fit_on.numel() > MAX_ITEMS:
        g = torch.Generator().manual_seed(0)
        fit_on = fit_on[torch.randperm(fit_on.numel(), generator=g)[:MAX_ITEMS]].sort().values
    parts = ([emb.id.weight[1:]] if has_id else []) + (
        [model.out_bias[:, None]] if has_bias else [])
    x = text[fit_on].double()  # (n, Dt)
    y = torch.cat([p.detach()[fit_on].double() for p in parts], dim=1)  # (n, D_out)
    x_mean, y_mean = x.mean(0), y.mean(0)
    x, y = x - x_mean, y - y_mean
    u, s, vt = torch.linalg.svd(x, full_matrices=False)  # (n, r), (r,), (r, Dt)
    d = emb.dim if has_id else 0
    lam_id = _loo_lambda(u, s, y[:, :d], lams) if has_id else None
    lam_bias = _loo_lambda(u, s, y[:, d:], lams) if has_bias else None
    cols = []
    if has_id:
        cols.append(_ridge(u, s, vt, y[:, :d], lam_id))
    if has_bias:
        cols.append(_ridge(u, s, vt, y[:, d:], lam_bias))
    return ColdMap(torch.cat(cols, dim=1).float(), x_mean.float(), y_mean.float(), d,
                   has_bias, lam_id, lam_bias, int(fit_on.numel()))


@torch.no_grad()
def impute(model: SequenceEncoder, items: torch.Tensor, cold_map: ColdMap) -> None:
    """Write ``cold_map``'s ID rows and biases for ``items`` (dataset indices, (M,))."""
    if items.numel() == 0:
        return
    emb = model.items
    rows, bias = cold_map.predict(emb.text_vectors[items + 1])  # model row = index + 1
    if rows is not None and emb.id is not None:
        emb.id.weight[items + 1] = rows.to(emb.id.weight.dtype)
    if bias is not None and model.out_bias is not None:
        model.out_bias[items] = bias.to(model.out_bias.dtype)

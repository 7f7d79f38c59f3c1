"""Item-item scores from EASE's closed form (Steck, WWW 2019), with a recency-weighted history.

    min_B ||X - X B||^2 + lam ||B||^2  subject to diag(B) = 0
    P = (X^T X + lam I)^-1,  B_ij = -P_ij / P_jj (i != j),  B_jj = 0

X is the binary user x item training matrix. A user's scores are their history bag times B.
The bag weighs the t-th of L history items by ``decay ** (L - 1 - t)`` (the latest item 1);
an item seen more than once keeps the weight of its latest occurrence, so ``decay=1`` is
EASE's binary bag. Co-purchase structure is what sequence models learn slowest on sparse
catalogues, so these scores are a strong partner for them (``blend``).

One N x N inverse per fit: Cholesky factor and inverse in float64, in place, through torch's
LAPACK (MKL in the CPU wheels), not scipy's OpenBLAS, whose ``potrf`` crashed (SIGSEGV) near
16k items with its default threads on a 2-core machine (issue 16). scipy pinned to one
thread used less CPU in ``bench/ease_solver.py`` (docs/benchmarks.md, section ``ease``) but
was not run at the size that crashed; the torch path is the one the 20,000-item test fits.
Seconds for a few thousand items, minutes at 20,000, and O(N^2) memory, O(N^3) time:
``fit_bytes`` and ``blend_bytes`` estimate the peak memory, and ``check_memory`` refuses a fit
that would not fit in the memory available, with the numbers, before it starts.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from prismrec.data.sequences import Sequences
from prismrec.errors import DataError, PrismrecError

MAX_ITEMS = 40_000  # the dense N x N float64 Gram matrix alone is 12.8 GB at this size
WORKSPACE_BYTES = 512 * 2**20  # scoring blocks, validation caches and the interpreter's slack


class NotEnoughMemoryError(PrismrecError, ValueError):
    """An item-item fit would need more memory than the machine has available."""


def fit_bytes(n_items: int, *, keep_gram: bool = False, kept_models: int = 1) -> int:
    """Peak bytes of one EASE fit: the float64 Gram matrix solved in place, the float32
    weights, ``kept_models`` float32 weights held elsewhere (a model chosen earlier), and,
    with ``keep_gram`` (several penalties from one Gram), a float64 working copy."""
    n2 = n_items * n_items
    return n2 * (8 + 4 + 4 * kept_models + (8 if keep_gram else 0)) + WORKSPACE_BYTES


def blend_bytes(n_items: int, *, text: bool) -> int:
    """Peak bytes of the blend's fit: the Gram matrix, a working copy, the current and the
    best float32 weights, and with item text the text similarity and Gram + alpha * S."""
    n2 = n_items * n_items
    return n2 * (8 + 8 + 4 + 4 + (16 if text else 0)) + WORKSPACE_BYTES


def available_bytes() -> int:
    """Memory the OS can give this process now (MemAvailable; free pages elsewhere)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(need: int, what: str, available: int | None = None) -> None:
    """Refuse, with the numbers, a job whose estimated peak ``need`` exceeds what is free."""
    have = available_bytes() if available is None else available
    if need > have:
        raise NotEnoughMemoryError(
            f"{what} needs about {need / 2**30:.1f} GiB at its peak, and "
            f"{have / 2**30:.1f} GiB is available: use fewer items (e.g. drop rare ones), "
            "a machine with more memory, or a model without item-item weights "
            "(ItemKNN, or the sequence model without --blend)")


def check_items(seqs: Sequences, n_items: int, what: str) -> None:
    """Raise a DataError naming ``what`` if any item is not an index in [0, n_items)."""
    if n_items < 1:
        raise ValueError(f"n_items must be at least 1, got {n_items}")
    if seqs.n_events and (seqs.items.min() < 0 or seqs.items.max() >= n_items):
        raise DataError(
            f"{what} items must be indices in [0, {n_items}); got "
            f"[{seqs.items.min()}, {seqs.items.max()}]: pass the catalogue size as n_items"
        )


def check_size(n_items: int) -> None:
    """Refuse catalogues whose dense N x N matrices would not fit in memory."""
    if n_items > MAX_ITEMS:
        raise ValueError(
            f"item-item (EASE) weights need an N x N dense matrix; {n_items} items is more "
            f"than {MAX_ITEMS}. Use ItemKNN or the sequence model alone for catalogues this "
            "large."
        )


def history_bag(histories: Sequences, n_items: int, decay: float = 1.0) -> sp.csr_matrix:
    """(B, n_items) float32: weight ``decay ** age`` per item (age 0 = latest event).

    An item that occurs more than once keeps the weight of its latest occurrence.
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    age = np.repeat(histories.lengths, histories.lengths) - 1 - histories.positions()  # (E,)
    rows, items = histories.row_ids(), histories.items
    order = np.lexsort((age, items, rows))  # per (row, item): youngest first
    rows, items, age = rows[order], items[order], age[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
    w = np.power(float(decay), age[first].astype(np.float64)).astype(np.float32)
    return sp.csr_matrix((w, (rows[first], items[first])), shape=(len(histories), n_items))


def gram_matrix(train: Sequences, n_items: int) -> np.ndarray:
    """Dense X^T X (item co-occurrence counts) of the binary training matrix, (N, N) float64."""
    check_size(n_items)
    check_items(train, n_items, "training")
    x = history_bag(train, n_items).astype(np.float64)  # (U, N) binary
    return (x.T @ x).toarray()  # (N, N)


def text_gram(vectors: np.ndarray) -> np.ndarray:
    """(N, N) float64 cosine similarities of item text vectors: EASE's side information.

    Added to the Gram matrix as ``X^T X + alpha * S`` (EASE with side information, Jeunen
    et al. 2020): as if alpha-weighted pseudo-users had bought every pair of items in
    proportion to how alike their texts are, so sparse co-purchase counts borrow strength
    from meaning. S = F F^T with unit rows is positive semi-definite, so the sum stays
    positive definite and the closed form still applies. An all-zero vector (an item without
    text) adds nothing.
    """
    f = np.asarray(vectors, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"text vectors must be (N, D), got shape {f.shape}")
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    f = np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)
    return f @ f.T


def ease_weights(gram: np.ndarray, lam: float, *, overwrite: bool = False) -> np.ndarray:
    """B (N, N) float64 from the (symmetric) Gram matrix X^T X; ``overwrite=True`` solves in
    ``gram``'s own memory (it becomes B), otherwise ``gram`` is not modified."""
    if not lam > 0:
        raise ValueError(f"lam must be positive, got {lam}")
    g = np.asarray(gram, dtype=np.float64)
    if g.flags.f_contiguous and not g.flags.c_contiguous:
        g = g.T  # the same symmetric matrix, C-ordered, same memory
    if not overwrite or not g.flags.c_contiguous or not g.flags.writeable:
        g = np.array(g, dtype=np.float64, order="C", copy=True)
    t = torch.from_numpy(g)  # (N, N), shares g's memory
    t.diagonal().add_(lam)
    info = torch.empty((), dtype=torch.int32)
    torch.linalg.cholesky_ex(t, out=(t, info))  # lower factor L, in place
    if int(info) != 0:
        raise DataError(f"X^T X + {lam} I is not positive definite; use a larger lam (> 0)")
    torch.cholesky_inverse(t, out=t)  # P = (X^T X + lam I)^-1, in place
    d = t.diagonal().clone()  # (N,) P_jj
    t.div_(-d[None, :])  # B_ij = -P_ij / P_jj
    t.diagonal().zero_()
    return g


def standardize(scores: torch.Tensor) -> torch.Tensor:
    """Per-row z-scores (B, N); a constant row gives zeros.

    The two parts of a blend live on unrelated scales (logits vs. regression outputs), so
    each is put on a unit scale per user before mixing.
    """
    std, mean = torch.std_mean(scores, dim=1, correction=0, keepdim=True)  # (B, 1) each
    return torch.where(std > 0, (scores - mean) / std.clamp_min(1e-12), torch.zeros_like(scores))


def blend(sequence: torch.Tensor, item_item: torch.Tensor, weight: float) -> torch.Tensor:
    """(1 - weight) * z(sequence) + weight * z(item_item), both (B, N)."""
    if weight == 0.0:
        return standardize(sequence)
    if weight == 1.0:
        return standardize(item_item)
    return (1.0 - weight) * standardize(sequence) + weight * standardize(item_item)


class ItemItem(nn.Module):
    """EASE weights (N, N) as a float32 buffer and the recency ``decay`` of the history bag.

    ``fit`` solves the closed form; ``scores`` is the (decayed) history bag times the
    weights. Items added later (``resize``) get zero rows and columns: they neither score
    nor contribute until the weights are refitted.
    """

    weights: torch.Tensor

    def __init__(self, n_items: int = 0, decay: float = 1.0, lam: float | None = None) -> None:
        super().__init__()
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        check_size(n_items)
        self.decay = float(decay)
        self.lam = lam  # the ridge penalty the weights were fitted with; None: not fitted
        self.text_alpha = 0.0  # weight of the text similarity in the Gram (0: plain EASE)
        self.register_buffer("weights", torch.zeros(n_items, n_items))  # (N, N)

    @property
    def n_items(self) -> int:
        return int(self.weights.shape[0])

    def extra_repr(self) -> str:
        return (f"n_items={self.n_items}, decay={self.decay}, lam={self.lam}, "
                f"text_alpha={self.text_alpha}")

    def fit(self, train: Sequences, n_items: int, lam: float) -> ItemItem:
        """Solve for the weights on ``train`` (item indices in [0, n_items)); returns self."""
        return self.fit_gram(gram_matrix(train, n_items), lam)

    def fit_gram(self, gram: np.ndarray, lam: float, text_alpha: float = 0.0) -> ItemItem:
        """The same from a precomputed ``gram_matrix`` (to try several lam cheaply);
        ``text_alpha`` records the weight of a ``text_gram`` already added to ``gram``."""
        w = ease_weights(gram, lam)  # (N, N) float64
        self.weights = torch.from_numpy(w.astype(np.float32))
        del w
        self.lam = float(lam)
        self.text_alpha = float(text_alpha)
        return self

    def resize(self, n_items: int) -> None:
        """Grow to ``n_items`` items; the new rows and columns are zero."""
        n = self.n_items
        if n_items < n:
            raise ValueError(f"cannot shrink item-item weights from {n} to {n_items} items")
        if n_items == n:
            return
        check_size(n_items)
        w = torch.zeros(n_items, n_items, dtype=self.weights.dtype)
        w[:n, :n] = self.weights
        self.weights = w

    @torch.no_grad()
    def scores(self, histories: Sequences) -> torch.Tensor:
        """(B, N) float32: each row's decayed history bag times the weights."""
        check_items(histories, self.n_items, "history")
        bag = history_bag(histories, self.n_items, self.decay)  # (B, N) sparse
        w = self.weights.detach().cpu().numpy()  # (N, N), a view
        return torch.from_numpy(np.ascontiguousarray(bag @ w, dtype=np.float32))  # (B, N)


__all__ = ["MAX_ITEMS", "ItemItem", "NotEnoughMemoryError", "available_bytes", "blend",
           "blend_bytes", "check_memory", "ease_weights", "fit_bytes", "gram_matrix",
           "history_bag", "standardize", "text_gram"]

"""A user's live model state and its encoding in the store (safetensors bytes, never pickle).

The blob holds the recurrent state tensors, the last hidden output, the interest head's
running state, the last folded timestamp, counters, the recent items and the model items seen
in the log. It is read back by the ``safetensors`` library (``safetensors.numpy.load``).

It is written by ``write_safetensors`` below, a hand-written writer of the same layout, and
not by ``safetensors.numpy.save``: a state is written on every update, and
``python bench/state_codec.py`` measured the hand-written writer at about a quarter of the
library's time per state (10-13 µs against 47-52 µs on a busy 2-core machine; docs/
benchmarks.md, section "Live state encoding"), with identical arrays read back. Dtypes or
names it does not cover go to the library's writer.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, replace

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_tensors

log = logging.getLogger(__name__)

STATE_FORMAT = 1  # bump when the blob layout changes; older blobs are rebuilt from the log
RECENT = 10  # recent items kept for reasons and the profile view
_META = ("format", "n_folded", "n_train", "n_logged", "n_late", "n_unknown", "last_ts")


@dataclass
class UserState:
    """A user's decoded model state (numpy, so it serializes without torch)."""

    rnn: np.ndarray | None  # (S, L, D) float32: S = 2 for LSTM (h, c), 1 for GRU; None: SASRec
    hidden: np.ndarray  # (D,) float32, the model output after the last folded event
    recent_items: np.ndarray  # (<= R,) int64 last folded items, oldest first
    recent_times: np.ndarray  # (<= R,) float64 their timestamps
    seen: np.ndarray  # sorted unique int64 model items in the user's log
    n_folded: int = 0  # events fed to the model, the known history included
    n_train: int = 0  # of which from the known (checkpoint) history
    n_logged: int = 0  # log positions covered (what StoredState.n_events says)
    n_unknown: int = 0  # logged events with items the model does not know
    last_ts: float = 0.0  # timestamp of the last folded event (meaningless if n_folded == 0)
    head: np.ndarray | None = None  # (K, F) float32 the interest head's running state
    # (recurrent models built with interests=K), carried beside the RNN state

    def copy(self) -> UserState:
        return replace(self, rnn=None if self.rnn is None else self.rnn.copy(),
                       hidden=self.hidden.copy(),
                       head=None if self.head is None else self.head.copy())


@dataclass(frozen=True)
class StateShape:
    """What a state must look like for one model: checked on every decode."""

    dim: int
    recurrent: bool
    head: bool  # a recurrent model with an interest head carries its state
    n_items: int


def encode_state(st: UserState) -> bytes:
    meta = np.array([STATE_FORMAT, st.n_folded, st.n_train, st.n_logged, 0,  # n_late: late
                     st.n_unknown, st.last_ts], dtype=np.float64)  # events are recomputed
    # at once (engine rule 4), so none waits in a state; the slot keeps the layout
    tensors = {"meta": meta, "hidden": st.hidden.astype(np.float32, copy=False),
               "recent_items": st.recent_items, "recent_times": st.recent_times,
               "seen": st.seen}
    if st.rnn is not None:
        tensors["rnn"] = st.rnn.astype(np.float32, copy=False)
    if st.head is not None:
        tensors["head"] = st.head.astype(np.float32, copy=False)
    return write_safetensors(tensors)


def decode_state(user: str, blob: bytes, shape: StateShape) -> UserState | None:
    """The state in ``blob``, or None (logged) when it is unreadable or another layout."""
    try:
        t = load_tensors(blob)
        meta = dict(zip(_META, t["meta"].tolist(), strict=True))
        if meta["format"] != STATE_FORMAT:
            raise ValueError(f"state format {meta['format']} is not {STATE_FORMAT}")
        rnn, head = t.get("rnn"), t.get("head")
        if t["hidden"].shape != (shape.dim,) or (rnn is None) == shape.recurrent:
            raise ValueError("state shapes do not match the model")
        if (head is None) == (shape.recurrent and shape.head):
            raise ValueError("interest head state does not match the model")
        st = UserState(rnn=rnn, hidden=t["hidden"], recent_items=t["recent_items"],
                       recent_times=t["recent_times"], seen=t["seen"],
                       n_folded=int(meta["n_folded"]), n_train=int(meta["n_train"]),
                       n_logged=int(meta["n_logged"]),
                       n_unknown=int(meta["n_unknown"]), last_ts=meta["last_ts"], head=head)
        for arr in (st.seen, st.recent_items):
            if len(arr) and (arr.min() < 0 or arr.max() >= shape.n_items):
                raise ValueError("item indices out of range")
        return st
    except (SafetensorError, KeyError, ValueError, TypeError, IndexError) as exc:
        log.warning("live profiles: stored state of user %r is unreadable (%s); rebuilding "
                    "it from the log", user, exc)
        return None


_SAFETENSORS_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
                       np.dtype(np.int64): "I64"}


def write_safetensors(tensors: dict[str, np.ndarray]) -> bytes:
    """The safetensors bytes of a few small arrays, as ``safetensors.numpy.save`` writes them
    (read by its ``load``); see the module docstring for why it is written by hand.

    Layout: u64 little-endian header length, JSON header {name: dtype, shape, data_offsets}
    padded with spaces to 8 bytes, then the arrays' little-endian bytes back to back.
    """
    fields = []
    parts = []
    offset = 0
    for name in sorted(tensors):
        a = tensors[name]
        dtype = _SAFETENSORS_DTYPES.get(a.dtype)
        if dtype is None or not name.isidentifier():  # not ours: the library's writer
            from safetensors.numpy import save

            return save(tensors)
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()  # C order
        shape = ",".join(map(str, a.shape))
        fields.append(f'"{name}":{{"dtype":"{dtype}","shape":[{shape}],'
                      f'"data_offsets":[{offset},{offset + len(data)}]}}')
        parts.append(data)
        offset += len(data)
    head = ("{" + ",".join(fields) + "}").encode()
    head += b" " * (-len(head) % 8)
    return b"".join([struct.pack("<Q", len(head)), head, *parts])


def insert_sorted(seen: np.ndarray, new: list[int]) -> np.ndarray:
    """``seen`` (sorted, unique) with ``new`` added: a few items per update, so no union1d."""
    for x in set(new):
        p = int(np.searchsorted(seen, x))
        if p == len(seen) or seen[p] != x:
            seen = np.concatenate((seen[:p], np.array([x], dtype=seen.dtype), seen[p:]))
    return seen

"""A loaded dataset: events, catalogue, vocabularies and (for benchmark files) a given split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from prismrec.data.catalog import Catalog
from prismrec.data.interactions import Interactions
from prismrec.data.sequences import Sequences
from prismrec.data.split import Split, leave_one_out, temporal_quantile
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError


@dataclass
class Dataset:
    """Everything a recommender needs from one source.

    ``sequences`` has one row per user in ``users`` order with item indices in ``items``
    order. ``given_split`` is set when the source ships its own train/valid/test files.
    """

    name: str
    sequences: Sequences
    users: Vocab
    items: Vocab
    catalog: Catalog | None = None
    interactions: Interactions | None = None
    given_split: Split | None = None
    has_time: bool = True
    info: dict = field(default_factory=dict)

    @classmethod
    def from_interactions(cls, name: str, inter: Interactions, catalog: Catalog | None = None,
                          **info) -> Dataset:
        """Index users and items.

        Catalogue items come first, so items without events have indices too.
        """
        users, items = Vocab(), Vocab()
        if catalog is not None:
            items.add(np.asarray(catalog.ids, dtype=object))
        seqs = Sequences.from_interactions(inter, users, items)
        return cls(name, seqs, users, items, catalog, inter, None, inter.has_time, dict(info))

    def split(self, how: str = "default", **kwargs) -> Split:
        """``"loo"``, ``"temporal"`` or ``"given"``.

        ``"default"`` is the given split when the source ships one, else leave-one-out.
        """
        if how == "default":
            how = "given" if self.given_split is not None else "loo"
        if how == "given":
            if self.given_split is None:
                raise DataError(
                    f"dataset {self.name!r} has no given split; use 'loo' or 'temporal'"
                )
            return self.given_split
        if how == "loo":
            return leave_one_out(self.sequences)
        if how == "temporal":
            if not self.has_time:
                raise DataError(
                    f"dataset {self.name!r} has no timestamps, so a temporal split is not possible"
                )
            return temporal_quantile(self.sequences, **kwargs)
        raise DataError(f"unknown split {how!r}; choose loo, temporal or given")

    def dropped(self) -> dict[str, int]:
        """Rows the loader left out or merged, by reason (bad rows, repeats, ...)."""
        out = dict(self.info.get("dropped", {}))
        attrs = {} if self.interactions is None else self.interactions.frame.attrs
        for why, n in attrs.get("skipped_reasons", {}).items():
            out[f"bad rows: {why}"] = int(n)
        if attrs.get("skipped") and not attrs.get("skipped_reasons"):
            out["bad rows"] = int(attrs["skipped"])
        return {k: v for k, v in out.items() if v}

    def shuffle_ties(self, seed: int = 0) -> Dataset:
        """This dataset with events of equal time (per user) in a seeded random order.

        A split shipped by the source was cut in its own order, so it cannot be reshuffled:
        use ``split("loo")`` or ``"temporal"`` on the result.
        """
        from dataclasses import replace

        return replace(self, sequences=self.sequences.shuffle_ties(seed), given_split=None,
                       info={**self.info, "ties": f"shuffled (seed {seed})"})

    def summary(self) -> dict:
        return {
            "dataset": self.name,
            "users": len(self.users),
            "items": len(self.items),
            "events": self.sequences.n_events,
            "has_time": self.has_time,
            "catalog_items": 0 if self.catalog is None else len(self.catalog),
            "dropped": self.dropped(),
            **{k: self.info[k] for k in ("events_file", "ties") if k in self.info},
        }

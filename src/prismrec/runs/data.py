"""Loading a dataset for a job: layout options, column names, dropped rows, tied targets."""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path

from prismrec.data import Dataset, Split, load_dataset
from prismrec.data.registry import DATASETS
from prismrec.errors import DataError

TIE_WARN_SHARE = 0.10  # above this share of tied targets, say that file order decides them
TIES = ("file", "shuffle")
COLUMN_OPTIONS = ("user", "item", "timestamp", "event")  # the events layout's column names


@dataclass
class DataSpec:
    """Which data, how to read it and how to split it.

    ``columns`` maps ``user``/``item``/``timestamp``/``event`` to the file's column names and
    ``time_unit`` is ``s``, ``ms`` or ``iso`` (the ``events`` layout); ``options`` go to the
    layout's loader as they are. ``keep_duplicates`` keeps rows a layout would drop or merge
    as repeats. ``ties="shuffle"`` puts events with equal timestamps in a seeded random order
    before splitting (``"file"``: the file's order).
    """

    dataset: str
    data_dir: str | None = None
    split: str = "default"
    columns: dict[str, str] = field(default_factory=dict)
    time_unit: str | None = None
    options: dict = field(default_factory=dict)
    strict: bool = True
    keep_duplicates: bool = False
    ties: str = "file"
    seed: int = 0

    def loader_options(self) -> dict:
        unknown = sorted(set(self.columns) - set(COLUMN_OPTIONS))
        if unknown:
            raise DataError(f"unknown column role(s) {unknown}; known: {list(COLUMN_OPTIONS)}")
        opts = {**self.options, **{k: v for k, v in self.columns.items() if v}}
        if self.time_unit is not None:
            opts["time_unit"] = self.time_unit
        if not self.strict:
            opts["strict"] = False
        if self.keep_duplicates:
            info = DATASETS.get(self.dataset)
            if info is None or "drop_duplicates" not in inspect.signature(
                    info.loader).parameters:
                raise DataError(f"{self.dataset}: this layout drops no repeated rows, so "
                                "there is nothing to keep (--keep-duplicates)")
            opts["drop_duplicates"] = False
        return opts

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "data_dir": None if self.data_dir is None
                else str(Path(self.data_dir).resolve()), "split": self.split,
                "columns": dict(self.columns), "time_unit": self.time_unit,
                "options": dict(self.options), "strict": self.strict,
                "keep_duplicates": self.keep_duplicates, "ties": self.ties, "seed": self.seed}


@dataclass
class Prepared:
    """A loaded dataset, its split and what the user should know about both."""

    spec: DataSpec
    dataset: Dataset
    split: Split
    tied: dict[str, float]  # "valid"/"test": share of targets tied with the previous event

    def data_doc(self) -> dict:
        """The ``data`` part of a job's JSON document."""
        return {**self.dataset.summary(), "split": self.split.name,
                "valid_cases": len(self.split.valid), "test_cases": len(self.split.test),
                "tied_targets": dict(self.tied), "ties": self.spec.ties}

    def lines(self) -> list[str]:
        """Notes for the user: rows left out, tied targets."""
        d, out = self.dataset, []
        if "events_file" in d.info:
            out.append(f"events read from {d.info['events_file']}")
        for why, n in d.dropped().items():
            if why.startswith("bad rows"):
                out.append(f"skipped {n} bad row(s) while reading {d.name}"
                           f"{why[len('bad rows'):]}")
            else:
                out.append(f"dropped {n} row(s) while reading {d.name}: {why}")
        if d.info.get("dropped"):
            out.append("  (--keep-duplicates keeps repeated rows)")
        if d.info.get("kept_duplicates"):
            out.append(f"kept {d.info['kept_duplicates']} repeated row(s) (--keep-duplicates)")
        shares = ", ".join(f"{k} {v:.1%}" for k, v in self.tied.items())
        out.append(f"targets tied in time with the previous event: {shares}"
                   + (" (ties shuffled with seed "
                      f"{self.spec.seed})" if self.spec.ties == "shuffle" else ""))
        if self.spec.ties == "file" and max(self.tied.values(), default=0.0) > TIE_WARN_SHARE:
            out.append(f"warning: more than {TIE_WARN_SHARE:.0%} of targets share their "
                       "timestamp with the previous event; their order comes from the file. "
                       "Compare with --ties shuffle before crediting a sequence model's lead")
        return out


def prepare(spec: DataSpec) -> Prepared:
    """Load ``spec``'s dataset, apply its tie order and split it."""
    if spec.ties not in TIES:
        raise DataError(f"ties must be one of {TIES}, got {spec.ties!r}")
    dataset = load_dataset(spec.dataset, spec.data_dir, **spec.loader_options())
    if spec.ties == "shuffle":
        if spec.split == "given" or (spec.split == "default" and dataset.given_split):
            raise DataError(f"{dataset.name} ships its own split, cut in the source's order: "
                            "--ties shuffle needs --split loo or --split temporal")
        dataset = dataset.shuffle_ties(spec.seed)
    split = dataset.split(spec.split)
    tied = {"valid": split.valid.tied_share(), "test": split.test.tied_share()}
    return Prepared(spec, dataset, split, tied)

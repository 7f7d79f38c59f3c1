"""Step 1 of the path: events and catalogues in, id vocabularies and per-user sequences out."""

from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.filters import dedupe, k_core, min_user_events
from prismrec.data.interactions import Interactions
from prismrec.data.readers import read_catalog, read_events
from prismrec.data.registry import (
    DATASETS,
    DatasetInfo,
    download,
    list_datasets,
    load_dataset,
)
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, Split, leave_one_out, temporal, temporal_quantile
from prismrec.data.vocab import Vocab

__all__ = [
    "DATASETS",
    "Catalog",
    "Dataset",
    "DatasetInfo",
    "EvalCases",
    "Interactions",
    "Sequences",
    "Split",
    "Vocab",
    "dedupe",
    "download",
    "k_core",
    "leave_one_out",
    "list_datasets",
    "load_dataset",
    "min_user_events",
    "read_catalog",
    "read_events",
    "temporal",
    "temporal_quantile",
]

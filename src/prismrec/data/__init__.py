"""Step 1 of the path: events and catalogues in, id vocabularies and per-user sequences out."""

from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.interactions import Interactions
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, Split, leave_one_out, temporal, temporal_quantile
from prismrec.data.vocab import Vocab

__all__ = [
    "Catalog",
    "Dataset",
    "EvalCases",
    "Interactions",
    "Sequences",
    "Split",
    "Vocab",
    "leave_one_out",
    "temporal",
    "temporal_quantile",
]

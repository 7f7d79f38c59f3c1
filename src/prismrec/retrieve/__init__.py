"""prismrec.retrieve: candidate search and composition of a user's interests into one list.

``build_index`` gives an ``ItemIndex`` over item vectors (``ExactIndex``: exact torch matmul;
``FaissIndex``: HNSW or IVF from the ``ann`` extra, for large catalogues). ``compose`` turns K
weighted interest vectors into one list, each item tagged with the interest it serves, with
a diversity knob between pure relevance and interest quotas. ``exclusion_mask`` turns
business rules (blocked ids, categories) into the mask both accept.
"""

from prismrec.retrieve.compose import (
    ComposedList,
    InterestCoverage,
    compose,
    compose_many,
    interest_coverage,
    intra_list_diversity,
    quotas,
)
from prismrec.retrieve.filters import exclusion_mask
from prismrec.retrieve.index import ExactIndex, FaissIndex, ItemIndex, build_index

__all__ = [
    "ComposedList",
    "ExactIndex",
    "FaissIndex",
    "InterestCoverage",
    "ItemIndex",
    "build_index",
    "compose",
    "compose_many",
    "exclusion_mask",
    "interest_coverage",
    "intra_list_diversity",
    "quotas",
]

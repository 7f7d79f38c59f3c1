"""Offline evaluation: full-ranking metrics, the evaluation loop, reports and baselines."""

from prismrec.eval.baselines import BASELINES, EASE, ItemKNN, MostPopular, tune_ease
from prismrec.eval.evaluate import Scorer, evaluate, select_on_validation
from prismrec.eval.metrics import bootstrap_ci, popularity, top_k
from prismrec.eval.report import Report

__all__ = [
    "BASELINES",
    "EASE",
    "ItemKNN",
    "MostPopular",
    "Report",
    "Scorer",
    "bootstrap_ci",
    "evaluate",
    "popularity",
    "select_on_validation",
    "top_k",
    "tune_ease",
]

"""The jobs the ``prismrec`` command runs, as library calls: load + split, train, evaluate, tune.

Each job takes plain arguments (a ``DataSpec`` for the data), does its work through the
steps below it (data, recommender, eval) and returns a result with ``to_dict()`` (the
``--json`` document) and ``lines()`` (what the command prints). ``cli.py`` only parses.
"""

from prismrec.runs.data import TIE_WARN_SHARE, DataSpec, Prepared, prepare
from prismrec.runs.evaluate import EvalRun, evaluate_baseline, evaluate_checkpoint
from prismrec.runs.train import TrainRun, train_model
from prismrec.runs.tune import TuneRun, tune_model

__all__ = ["TIE_WARN_SHARE", "DataSpec", "EvalRun", "Prepared", "TrainRun", "TuneRun",
           "evaluate_baseline", "evaluate_checkpoint", "prepare", "train_model", "tune_model"]

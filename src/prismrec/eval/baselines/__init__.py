"""Reference recommenders every new model is compared against, with a visible registry."""

from prismrec.eval.baselines.ease import EASE, tune_ease
from prismrec.eval.baselines.itemknn import ItemKNN
from prismrec.eval.baselines.pop import MostPopular

BASELINES = {"pop": MostPopular, "itemknn": ItemKNN, "ease": EASE}

__all__ = ["BASELINES", "EASE", "ItemKNN", "MostPopular", "tune_ease"]

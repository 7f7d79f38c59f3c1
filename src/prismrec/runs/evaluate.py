"""``prismrec evaluate``: a baseline chosen on validation, or a trained checkpoint, on test."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from prismrec.errors import PrismrecError
from prismrec.runs.data import DataSpec, prepare

SOURCE_FILE = "source.json"  # beside a checkpoint: the data it was trained on


@dataclass
class EvalRun:
    """The ``--json`` document (``doc``) and the notes about the data (``notes``)."""

    doc: dict
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return self.doc

    def lines(self) -> list[str]:
        """The results the command prints (``notes``, about the data, go to stderr)."""
        return format_metrics(self.doc)


def evaluate_baseline(spec: DataSpec, model: str, *, ks: tuple[int, ...] = (10, 20, 50),
                      filter_seen: bool = True) -> EvalRun:
    """Fit ``model`` (pop, itemknn, ease) on the training part, choose its settings on
    validation and score the test cases."""
    from prismrec.eval.runner import run_baseline

    prep = prepare(spec)
    result = run_baseline(prep.dataset, model, split=prep.split, ks=ks, filter_seen=filter_seen)
    doc = result.to_dict()
    doc["data"] = {**doc["data"], **prep.data_doc()}
    return EvalRun(doc, prep.lines())


def read_source(checkpoint: str | Path) -> dict:
    path = Path(checkpoint) / SOURCE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def write_source(checkpoint: str | Path, spec: DataSpec, split_name: str,
                 test_metrics: dict | None = None) -> None:
    """Record beside a checkpoint the data it was trained on and, from ``train``, the test
    metrics it printed (the dashboard's model card shows them)."""
    doc = {**spec.to_dict(), "split": split_name}
    if test_metrics is not None:
        doc["test_metrics"] = test_metrics
    (Path(checkpoint) / SOURCE_FILE).write_text(json.dumps(doc, indent=2))


def source_spec(checkpoint: str | Path, spec: DataSpec | None) -> DataSpec:
    """The data a checkpoint was trained on, as recorded beside it; ``spec`` overrides it."""
    src = read_source(checkpoint)
    if spec is not None and spec.dataset:
        return spec
    if not src.get("dataset"):
        raise PrismrecError("this checkpoint does not record its dataset: pass --dataset "
                            "(and --data-dir)")
    return DataSpec(dataset=src["dataset"], data_dir=src.get("data_dir"),
                    split=src.get("split", "default"), columns=src.get("columns", {}),
                    time_unit=src.get("time_unit"), options=src.get("options", {}),
                    strict=src.get("strict", True),
                    keep_duplicates=src.get("keep_duplicates", False),
                    ties=src.get("ties", "file"), seed=src.get("seed", 0))


def evaluate_checkpoint(checkpoint: str | Path, spec: DataSpec | None = None, *,
                        split: str | None = None, ks: tuple[int, ...] = (10, 20, 50),
                        filter_seen: bool = True, device: str = "cpu") -> EvalRun:
    """Score a saved model on the test cases of the data it was trained on (``spec``: other
    data; ``split``: another split of the recorded data).

    Only cases the model neither trained on nor used for model selection are scored (its
    training record says which); when none are left it refuses and says what to run instead.
    ``device`` is where the model scores (``Recommender(device=...)``).
    """
    from prismrec.eval import evaluate, popularity
    from prismrec.recommender import Recommender
    from prismrec.recommender._provenance import unseen_cases

    rec = Recommender.load(checkpoint, device=device)
    spec = source_spec(checkpoint, spec)
    if split is not None:
        spec = replace(spec, split=split)
    prep = prepare(spec)
    dataset, split = prep.dataset, prep.split
    _check_same_items(rec, dataset)
    unseen = unseen_cases(getattr(rec, "training_", None), dataset.sequences, split.test)
    if len(unseen.cases) == 0:
        raise PrismrecError(
            f"refusing to score this checkpoint on the {split.name!r} test cases: "
            f"{unseen.reason}, so its figures would be measured on data the model has seen. "
            f"Train a checkpoint that holds those cases out (`prismrec train --dataset "
            f"{spec.dataset} --split {split.name} --out DIR`) and evaluate that, or evaluate a "
            f"baseline (`prismrec evaluate --dataset {spec.dataset} --model ease`)")
    notes = list(prep.lines())
    if unseen.reason:
        notes.append(f"scoring {len(unseen.cases)} of {unseen.total} test cases: "
                     f"{unseen.reason}")
    rep = evaluate(rec, unseen.cases, ks=ks, filter_seen=filter_seen,
                   item_popularity=popularity(split.train, len(dataset.items)))
    doc = {"dataset": dataset.name, "split": split.name, "model": rec.model,
           "config": {"model": rec.model_.config.to_dict(),
                      "train": rec.train_config_.to_dict()},
           "filter_seen": filter_seen, "metrics": rep.metrics,
           "ci95": {k: list(v) for k, v in rep.ci.items()},
           "timings": {"train": None if rec.result_ is None else rec.result_.to_dict()},
           "data": {**prep.data_doc(), "test_cases": len(unseen.cases),
                    "test_cases_left_out": unseen.total - len(unseen.cases),
                    "left_out_because": unseen.reason or None},
           "checkpoint": str(checkpoint)}
    return EvalRun(doc, notes)


def _check_same_items(rec, dataset) -> None:
    if rec.items_.to_list() != dataset.items.to_list():
        raise PrismrecError(
            f"the checkpoint's {len(rec.items_)} items differ from the dataset's "
            f"{len(dataset.items)}: evaluate it on the data it was trained on"
        )


def format_metrics(doc: dict) -> list[str]:
    """The metrics table ``prismrec evaluate`` prints."""
    out = [f"{doc['model']} on {doc['dataset']} ({doc['split']} split, "
           f"{'seen items filtered' if doc['filter_seen'] else 'unfiltered'}, "
           f"{doc['data'].get('test_cases', '?')} test cases)"]
    metrics, ci = doc["metrics"], doc.get("ci95", {})
    names = ["ndcg", "hr", "recall", "mrr", "coverage", "novelty"]
    ks = sorted({int(key.split("@")[1]) for key in metrics})
    out.append("  " + f"{'K':>4}" + "".join(f"{n:>10}" for n in names))
    for k in ks:
        cells = [metrics.get(f"{n}@{k}") for n in names]
        out.append("  " + f"{k:>4}" + "".join(f"{c:>10.4f}" if c is not None else f"{'-':>10}"
                                              for c in cells))
    key = f"ndcg@{ks[0]}"
    if key in ci:
        out.append(f"  95% bootstrap interval of {key}: [{ci[key][0]:.4f}, {ci[key][1]:.4f}]")
    if doc.get("validation") and doc.get("config"):
        out.append(f"  chosen on validation: {doc['config']}")
    return out

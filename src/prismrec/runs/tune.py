"""``prismrec tune``: search a model's settings on validation; optionally keep the best."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from prismrec.runs.data import DataSpec, prepare
from prismrec.runs.evaluate import write_source


@dataclass
class TuneRun:
    table: pd.DataFrame
    doc: dict
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return self.doc

    def lines(self) -> list[str]:
        """The results the command prints (``notes``, about the data, go to stderr)."""
        return [self.table.to_string(index=False), *self.summary]


def tune_model(spec: DataSpec, model: str, grid: dict[str, list], *, search: str = "grid",
               trials: int | None = None, train_config: dict | None = None,
               model_config: dict | None = None, text: bool = False, blend: bool = False,
               refit: bool = False, out: str | Path | None = None) -> TuneRun:
    """One model per setting, ranked by validation NDCG@10 (the test cases are never used).

    ``text`` gives every trial the ``id+text`` embedding from the catalogue (encoded once).
    Trials with the decay interest head route by the catalogue's categories when it has
    some (``interest_route="auto"``, as ``Recommender.fit`` does).
    With ``blend``, ``refit`` or ``out`` the best setting is trained once more as a
    ``Recommender``: ``blend`` chooses an EASE blend for it on validation, ``refit``
    retrains it on train + validation, and ``out`` saves it.
    """
    from prismrec.errors import DataError
    from prismrec.recommender import Recommender, _routing
    from prismrec.recommender._text import encode_items
    from prismrec.text import TextTemplate, default_encoder
    from prismrec.train import tune

    if refit and out is None:
        raise DataError("--refit trains a final model: give --out to keep it")
    prep = prepare(spec)
    dataset, split = prep.dataset, prep.split
    vectors, missing, notes = None, {}, list(prep.lines())
    tc = dict(train_config or {})
    if text:
        if dataset.catalog is None:
            raise DataError(f"{dataset.name} has no item catalogue: drop --text")
        vectors, missing = encode_items(dataset.items, dataset.catalog, default_encoder(),
                                        TextTemplate(), None, tc.get("progress", False))
        notes.append("item text: every trial uses the id+text embedding" + (
            "; trained with empty text: " + ", ".join(
                f"{n} item(s) {w.replace('_', ' ')}" for w, n in missing.items())
            if missing else ""))
    ids = dataset.items.to_list()  # interest_route "auto" trials route as fit would
    routes = (_routing.category_vectors(dataset.catalog, ids)
              if _routing.has_categories(dataset.catalog, ids) else None)
    table = tune(model, split.train, split.valid, len(dataset.items), grid, search=search,
                 n_trials=trials, model_config=model_config, train_config=tc,
                 text_vectors=vectors, route_vectors=routes)
    best = table.attrs["best"]
    summary = [f"best on validation: {best}"]
    doc = {"dataset": dataset.name, "split": split.name, "model": model, "best": best,
           "trials": table.to_dict(orient="records"), "data": prep.data_doc(),
           "text": {"missing": missing} if text else None, "final": None}
    if blend or refit or out is not None:
        m_cfg, t_cfg = dict(model_config or {}), dict(tc)
        _apply(model, best, m_cfg, t_cfg)
        if vectors is not None:
            m_cfg.setdefault("embedding", "id+text")
        rec = Recommender(model, model_config=m_cfg, train_config=t_cfg,
                          blend=True if blend else None)
        rec.fit_split(split, dataset.users, dataset.items, dataset.catalog, refit=refit,
                      text_vectors=vectors, text=False if vectors is None else "auto",
                      histories=dataset.sequences)
        final = {"valid_ndcg@10": rec.result_.best_metrics.get("ndcg@10"),
                 "blend": None if rec.blend_ is None else rec.blend_.to_dict(),
                 "refit": None if rec.refit_result_ is None else rec.refit_result_.to_dict(),
                 "saved": None}
        if rec.blend_ is not None and rec.blend_.best is not None:
            summary.append(f"best setting blended with EASE: validation ndcg@10 "
                           f"{rec.blend_.best:.4f} (weight {rec.blend_.weight}, lam "
                           f"{rec.blend_.lam})")
        if rec.refit_result_ is not None:
            summary.append(f"refit on train + validation for {rec.refit_result_.epochs} epochs")
        if out is not None:
            saved = rec.save(out)
            write_source(saved, spec, split.name)
            final["saved"] = str(saved)
            summary.append(f"best setting saved to {saved}")
        doc["final"] = final
    return TuneRun(table, doc, notes, summary)


def _apply(model: str, best: dict, m_cfg: dict, t_cfg: dict) -> None:
    """Put each winning setting into the model or the training config."""
    from prismrec.train.tune import _resolve

    for key, (where, name) in _resolve(model, list(best)).items():
        (m_cfg if where == "model" else t_cfg)[name] = best[key]

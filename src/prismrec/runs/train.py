"""``prismrec train``: fit a sequence model on a split, report test metrics, save it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prismrec.runs.data import DataSpec, prepare
from prismrec.runs.evaluate import write_source


@dataclass
class TrainRun:
    """What ``train`` did: the ``--json`` document and the lines the command prints."""

    doc: dict
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    out: Path | None = None

    def to_dict(self) -> dict:
        return self.doc

    def lines(self) -> list[str]:
        """The results the command prints (``notes``, about the data, go to stderr)."""
        return list(self.summary)


def train_model(spec: DataSpec, model: str, out: str | Path | None, *,
          model_config: dict | None = None, train_config: dict | None = None,
          log_dir: str | Path | None = None, refit: bool = False, text: bool | None = None,
          blend: bool | dict | None = None, filter_seen: bool = True, main_rank: bool = True,
          device: str = "cpu") -> TrainRun:
    """Train ``model`` on ``spec``'s split (early stopping on validation), score the test
    cases with seen items filtered and unfiltered, and save the model to ``out``.

    ``model`` ``"auto"`` is ``Recommender()``'s default configuration
    (``prismrec.recommender._defaults``). ``text`` True encodes the catalogue's item text
    (``id+text`` embedding), False never, None: the model's default (auto: on when the
    catalogue has text). ``blend`` True mixes in EASE item-item scores chosen on
    validation, False never, None: the model's default (auto: on when the catalogue fits);
    a dict of ``BlendConfig`` fields is on, over that grid.
    ``refit`` retrains on train + validation for the chosen epochs. What was chosen and
    why is printed and goes under ``choices`` in the document. Under several data-parallel
    ranks only ``main_rank`` evaluates and saves; the others return an empty run.
    ``device`` is where training and test scoring run (``Recommender(device=...)``).
    """
    from prismrec.eval import evaluate, popularity
    from prismrec.recommender import Recommender

    prep = prepare(spec)
    dataset, split = prep.dataset, prep.split
    if text is True and dataset.catalog is None:
        from prismrec.errors import DataError

        raise DataError(f"{dataset.name} has no item catalogue, so there is no text to "
                        "train with: drop --text")
    rec = Recommender(model, model_config=model_config, train_config=train_config,
                      log_dir=log_dir, blend=blend, device=device)
    rec.fit_split(split, dataset.users, dataset.items, dataset.catalog, refit=refit,
                  text="auto" if text is None else text, histories=dataset.sequences)
    if not main_rank:  # torchrun: rank 0 evaluates, prints and writes the checkpoint
        return TrainRun({})
    popular = popularity(split.train, len(dataset.items))
    metrics = {}
    for filt in (True, False):
        rep = evaluate(rec, split.test, ks=(10, 20, 50), filter_seen=filt, n_bootstrap=0,
                       item_popularity=popular)
        metrics["filtered" if filt else "unfiltered"] = rep.metrics
    saved = None
    if out is not None:
        saved = rec.save(out)
        write_source(saved, spec, split.name,
                     test_metrics=metrics["filtered" if filter_seen else "unfiltered"])
    r = rec.result_
    missing = getattr(rec, "text_missing_", {})
    ch = rec.choices_
    name = ch.model if model == ch.model else f"{model} ({ch.model})"
    lines = [f"{name} on {dataset.name} ({split.name} split): best epoch {r.best_epoch} "
             f"of {r.epochs}, {r.seconds_per_epoch:.1f} s/epoch, {r.seconds_to_best:.0f} s "
             f"to best (stopped by {_stop_reason(r)}; loss {_loss_text(rec)}; "
             f"device {rec.device_})"]
    lines += [f"  {what}: {why}" for what, why in ch.reasons.items()]
    if rec.text_encoder_ is not None:
        lines.append(f"  item text: encoder {rec.text_encoder_['name']}" + (
            "; trained with empty text: " + ", ".join(
                f"{n} item(s) {why.replace('_', ' ')}" for why, n in missing.items())
            if missing else ""))
    if rec.blend_ is not None:
        b = rec.blend_
        lines.append(f"  blend with EASE: weight {b.weight}, lam {b.lam}, decay {b.decay}, "
                     f"text alpha {b.text_alpha} (chosen on {b.chosen_on})")
        alone = b.alone()
        if alone is not None:
            lines.append(f"  validation {b.metric}: {b.best:.4f} blended, {alone:.4f} the "
                         "sequence model alone (weight 0)")
    if rec.refit_result_ is not None:
        lines.append(f"  refit on train + validation for {rec.refit_result_.epochs} epochs: "
                     f"{rec.refit_result_.seconds:.0f} s")
    for tag, m in metrics.items():
        lines.append(f"  test {tag:<10} ndcg@10 {m['ndcg@10']:.4f}  hr@10 {m['hr@10']:.4f}  "
                     f"recall@50 {m['recall@50']:.4f}")
    if saved is not None:
        lines.append(f"saved to {saved}")
    doc = {"dataset": dataset.name, "split": split.name, "model": ch.model,
           "choices": ch.to_dict(),
           "device": str(rec.device_),
           "metrics": metrics["filtered" if filter_seen else "unfiltered"],
           "filter_seen": filter_seen, "all_metrics": metrics,
           "training": r.to_dict(),
           "refit": None if rec.refit_result_ is None else rec.refit_result_.to_dict(),
           "blend": None if rec.blend_ is None else rec.blend_.to_dict(),
           "text": ({"encoder": rec.text_encoder_, "missing": missing}
                    if rec.text_encoder_ is not None else None),
           "config": {"model": rec.model_.config.to_dict(),
                      "train": rec.train_config_.to_dict()},
           "data": prep.data_doc()}
    return TrainRun(doc, prep.lines(), lines, saved)


def _loss_text(rec) -> str:
    from prismrec.train.config import SAMPLED_ABOVE

    used = rec.result_.loss or rec.train_config_.loss
    if rec.train_config_.loss != "auto":
        return used
    return (f"{used}: auto, the catalogue has {len(rec.items_):,} items "
            f"({'above' if used == 'sampled' else 'at most'} {SAMPLED_ABOVE:,})")


def _stop_reason(r) -> str:
    return {"epochs": f"the epoch limit ({r.epochs})", "patience": "early stopping",
            "time": f"time after {r.epochs} epochs"}.get(r.stopped, r.stopped)

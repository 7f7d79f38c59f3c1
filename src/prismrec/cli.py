"""The ``prismrec`` command: thin commands that parse arguments and call the library."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from prismrec import __version__
from prismrec.errors import PrismrecError

log = logging.getLogger("prismrec")


def _ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected cut-offs like 10,20,50, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError("cut-offs must be positive integers")
    return ks


def _write_json(path: str | None, doc: dict) -> None:
    if path is None:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=False))
    tmp.replace(target)
    log.info("wrote %s", target)


def _threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


# ---------------------------------------------------------------------------- commands


def cmd_datasets(args: argparse.Namespace) -> int:
    from prismrec.data import list_datasets

    rows = list_datasets()
    width = max(len(d.name) for d in rows)
    for d in rows:
        print(f"{d.name:<{width}}  {d.description}")
    print("\nLoad one with: prismrec evaluate --dataset NAME --data-dir DIR --model ease")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from prismrec.data import load_dataset
    from prismrec.eval.runner import run_baseline

    _threads(args.threads)
    if args.checkpoint:
        return _evaluate_checkpoint(args)
    if not (args.dataset and args.model):
        raise SystemExit("evaluate needs --dataset and --model (or --checkpoint)")
    dataset = load_dataset(args.dataset, args.data_dir)
    result = run_baseline(dataset, args.model, split=args.split, ks=args.k,
                          filter_seen=args.filter_seen)
    doc = result.to_dict()
    _print_metrics(doc)
    _write_json(args.json, doc)
    return 0


def _evaluate_checkpoint(args: argparse.Namespace) -> int:
    raise PrismrecError("evaluating a checkpoint needs the sequence models (not built yet)")


def _print_metrics(doc: dict) -> None:
    print(f"{doc['model']} on {doc['dataset']} ({doc['split']} split, "
          f"{'seen items filtered' if doc['filter_seen'] else 'unfiltered'}, "
          f"{doc['data'].get('test_cases', '?')} test cases)")
    metrics, ci = doc["metrics"], doc.get("ci95", {})
    names = ["ndcg", "hr", "recall", "mrr", "coverage", "novelty"]
    ks = sorted({int(key.split("@")[1]) for key in metrics})
    print("  " + f"{'K':>4}" + "".join(f"{n:>10}" for n in names))
    for k in ks:
        cells = [metrics.get(f"{n}@{k}") for n in names]
        print("  " + f"{k:>4}" + "".join(f"{c:>10.4f}" if c is not None else f"{'-':>10}"
                                        for c in cells))
    key = f"ndcg@{ks[0]}"
    if key in ci:
        print(f"  95% bootstrap interval of {key}: [{ci[key][0]:.4f}, {ci[key][1]:.4f}]")
    if doc.get("config"):
        print(f"  chosen on validation: {doc['config']}")


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="prismrec",
        description="Recommendation that follows each user's dynamic interests.",
    )
    p.add_argument("--version", action="version", version=f"prismrec {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("datasets", help="list the dataset layouts prismrec reads",
                       description="List the dataset layouts prismrec can read from a folder.")
    s.set_defaults(func=cmd_datasets)

    s = sub.add_parser(
        "evaluate", help="evaluate a baseline or a trained checkpoint (full ranking)",
        description="Full-ranking evaluation. Baselines are fitted on the training part and "
        "their settings chosen on validation; metrics are on the test cases.")
    s.add_argument("--dataset", help="dataset layout name (see `prismrec datasets`)")
    s.add_argument("--data-dir", help="folder holding the dataset's files (not for synthetic)")
    s.add_argument("--model", choices=["pop", "itemknn", "ease"], help="baseline to evaluate")
    s.add_argument("--checkpoint", help="a trained model folder (from `prismrec train`)")
    s.add_argument("--split", default="default", choices=["default", "loo", "temporal", "given"],
                   help="default: the dataset's own split if it ships one, else leave-one-out")
    s.add_argument("--filter-seen", action=argparse.BooleanOptionalAction, default=True,
                   help="remove items the user already interacted with before ranking "
                   "(default: on; RecBole's sequential figures are unfiltered)")
    s.add_argument("-k", "--k", type=_ks, default=(10, 20, 50), help="cut-offs, e.g. 10,20,50")
    s.add_argument("--json", help="write the result document to this file")
    s.add_argument("--threads", type=int, default=2, help="torch/OpenMP threads (default 2)")
    s.set_defaults(func=cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except PrismrecError as exc:
        print(f"prismrec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"prismrec {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

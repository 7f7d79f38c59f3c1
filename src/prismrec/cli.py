"""The ``prismrec`` command: thin commands that parse arguments and call the library."""

from __future__ import annotations

import argparse
import json
import logging
import math
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


def _number(kind, low: float, what: str, *, strict: bool = False):
    """An argparse type: ``kind`` (int/float) at least ``low`` (above it when ``strict``)."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


_POSITIVE = _number(int, 1, "a positive integer")
_NON_NEGATIVE = _number(int, 0, "an integer >= 0")
_POSITIVE_FLOAT = _number(float, 0.0, "a positive number", strict=True)
_NON_NEGATIVE_FLOAT = _number(float, 0.0, "a number >= 0")


def _option(text: str) -> tuple[str, object]:
    """--option KEY=VALUE: the value as JSON when it parses (numbers, true/false), else text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), _json_or_text(value)


def _json_or_text(v: str):
    try:
        return json.loads(v)
    except ValueError:
        return v


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"dim\": 64}}', "
                                         f"got {text!r}")
    return value


def _train_config_json(text: str) -> dict:
    """--train-config: a JSON object of TrainConfig fields, less those with their own flag
    that always has a value (--threads, --quiet), which would silently override it."""
    value = _json_object(text)
    owned = sorted({"threads", "progress"} & set(value))
    if owned:
        raise argparse.ArgumentTypeError(
            f"{owned} cannot be set here: use --threads N and --quiet instead")
    return value


def _blend_config_json(text: str) -> dict:
    """--blend-config: a JSON object of BlendConfig fields, checked at parse time."""
    from prismrec.recommender import BlendConfig

    value = _json_object(text)
    try:
        BlendConfig.from_dict(value).validate()
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


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


def _print(run) -> None:
    """A job's notes about the data (stderr), then its results (stdout)."""
    if run.notes:
        print("\n".join(run.notes), file=sys.stderr, flush=True)
    print("\n".join(run.lines()), flush=True)


def _spec(args: argparse.Namespace):
    """The --dataset ... data flags as a DataSpec (None when no --dataset was given)."""
    from prismrec.runs import DataSpec

    if not getattr(args, "dataset", None):
        return None
    columns = {role: getattr(args, f"{flag}_col") for role, flag in
               (("user", "user"), ("item", "item"), ("timestamp", "time"), ("event", "event"))
               if getattr(args, f"{flag}_col", None)}
    return DataSpec(dataset=args.dataset, data_dir=args.data_dir, split=args.split,
                    columns=columns, time_unit=args.time_unit, options=dict(args.option or ()),
                    strict=args.strict, keep_duplicates=args.keep_duplicates, ties=args.ties,
                    seed=args.ties_seed)


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
    from prismrec.runs import evaluate_baseline, evaluate_checkpoint

    _threads(args.threads)
    if args.checkpoint:
        run = evaluate_checkpoint(args.checkpoint, _spec(args), ks=args.k,
                                  split=None if args.split == "default" else args.split,
                                  filter_seen=args.filter_seen, device=args.device)
    elif args.dataset and args.model:
        if args.device != "cpu":
            raise PrismrecError("--device applies to --checkpoint: the baselines (pop, "
                                "itemknn, ease) run on the CPU")
        run = evaluate_baseline(_spec(args), args.model, ks=args.k, filter_seen=args.filter_seen)
    else:
        args.parser.error("evaluate needs --dataset and --model (or --checkpoint)")
    _print(run)
    _write_json(args.json, run.to_dict())
    return 0


def _torchrun_rank() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when torchrun started this process with 2+ ranks."""
    import os

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world < 2:
        return None
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def _relaunch_under_torchrun(args: argparse.Namespace) -> int:
    """``prismrec train ... --nproc N``: run the same command as N torchrun ranks here."""
    import subprocess

    if _torchrun_rank() is not None:
        args.parser.error("--nproc is for a plain start; under torchrun the process count "
                          "comes from --nproc_per_node")
    argv, skip = [], False
    for a in args.argv:
        if skip or a.startswith("--nproc="):
            skip = False
            continue
        skip = a == "--nproc"
        if not skip:
            argv.append(a)
    per_rank = max(1, args.threads // args.nproc)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={args.nproc}", "-m", "prismrec.cli", *argv,
           "--threads", str(per_rank)]
    log.info("relaunching: %s", " ".join(cmd))
    return subprocess.call(cmd)


def cmd_train(args: argparse.Namespace) -> int:
    if args.nproc > 1:
        return _relaunch_under_torchrun(args)
    ranked = _torchrun_rank()
    if ranked is None:
        return _train(args)
    from prismrec.train.distributed import init_distributed, shutdown

    rank, world, local_rank = ranked
    from prismrec.train.device import resolve_device

    # NCCL when the ranks train on CUDA GPUs (one each), gloo on CPUs
    init_distributed(rank, world, local_rank=local_rank,  # MASTER_ADDR/PORT from torchrun
                     device=resolve_device(args.device))
    try:
        code = _train(args, main_rank=rank == 0, local_rank=local_rank)
    except BaseException:
        shutdown(wait_for_peers=False)
        raise
    shutdown()
    return code


TRAIN_FLAGS = ("epochs", "batch_size", "lr", "weight_decay", "patience", "max_seconds", "seed",
               "max_len", "loss")


def _train_config(args: argparse.Namespace) -> dict:
    config = {**(getattr(args, "train_config", None) or {}),
              "progress": not getattr(args, "quiet", False), "threads": args.threads}
    for key in TRAIN_FLAGS:  # a flag wins over the same key in --train-config
        if getattr(args, key, None) is not None:
            config[key] = getattr(args, key)
    return config


def _rank_device(device: str, local_rank: int | None) -> str:
    """Under torchrun on CUDA each rank takes GPU ``local_rank``; elsewhere ``device``."""
    from prismrec.train.device import resolve_device

    dev = resolve_device(device)
    return f"cuda:{local_rank}" if dev.type == "cuda" and local_rank is not None else str(dev)


def _train(args: argparse.Namespace, main_rank: bool = True,
           local_rank: int | None = None) -> int:
    from prismrec.runs import train_model

    _threads(args.threads)
    blend = args.blend
    if args.blend_config is not None:
        if blend is False:
            args.parser.error("--blend-config turns the blend on: drop --no-blend")
        blend = args.blend_config
    run = train_model(_spec(args), args.model, args.out, model_config=args.model_config,
                      train_config=_train_config(args), log_dir=args.log_dir,
                      refit=args.refit, text=args.text, blend=blend,
                      filter_seen=args.filter_seen, main_rank=main_rank,
                      device=_rank_device(args.device, local_rank))
    if not main_rank:  # torchrun: rank 0 prints and writes
        return 0
    _print(run)
    _write_json(args.json, run.to_dict())
    return 0


def _interest_ids(text: str) -> list[int]:
    try:
        ids = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected interest ids like 0,2 (see `prismrec "
                                         f"profile`), got {text!r}") from None
    if not ids:
        raise argparse.ArgumentTypeError("give at least one interest id")
    return ids


def cmd_recommend(args: argparse.Namespace) -> int:
    from prismrec.runs.recommend import recommend_from_checkpoint

    _threads(args.threads)
    items = None if args.items is None else [x.strip() for x in args.items.split(",")
                                             if x.strip()]
    frame, doc = recommend_from_checkpoint(
        args.checkpoint, user=args.user, items=items, k=args.k, filter_seen=args.filter_seen,
        diversity=args.diversity, mute=args.mute, boost=args.boost, explain=args.explain,
        device=args.device)
    if args.json:
        doc["recommendations"] = json.loads(frame.to_json(orient="records"))
        print(json.dumps(doc))
        return 0
    if doc.get("fallback"):
        print(f"interests: {doc['fallback']}")
    elif doc.get("components"):
        print(f"interests: the model's {doc['components']} interest head")
    print(frame.to_string(index=False))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from prismrec.explain.interests import narrate_profile, plot_profile, profile_for
    from prismrec.recommender import Recommender
    from prismrec.runs.evaluate import read_source

    _threads(args.threads)
    rec = Recommender.load(args.checkpoint)
    catalog = getattr(rec, "catalog_", None)
    source = read_source(args.checkpoint)
    name = args.dataset or source.get("dataset")
    if catalog is None and name:  # labels read the catalogue the model was trained with
        from prismrec.data import load_dataset

        catalog = load_dataset(name, args.data_dir or source.get("data_dir")).catalog
    labeler = None
    if args.llm_labels:
        from prismrec.explain import ChatEndpointNarrator, ChatLabeler

        if not args.chat_url:
            raise SystemExit("--llm-labels needs --chat-url (an OpenAI-compatible endpoint)")
        labeler = ChatLabeler(ChatEndpointNarrator(args.chat_url, model=args.chat_model))
    prof = profile_for(rec, args.user, catalog=catalog, labeler=labeler)
    if args.plot:
        log.info("wrote %s", plot_profile(prof, args.plot))
    if args.json:  # the profile document, exactly as Profile.to_dict gives it
        print(json.dumps(prof.to_dict(timeline=args.timeline)))
        return 0
    print(prof)
    if prof.fallback:
        print(f"  ({prof.fallback})")
    print(narrate_profile(prof, _narrator(args)).text)
    return 0


def _narrator(args: argparse.Namespace):
    from prismrec.explain import (
        ChatEndpointNarrator,
        FallbackNarrator,
        LocalLLMNarrator,
        TemplateNarrator,
    )

    if args.narrator == "template":
        return TemplateNarrator()
    if args.narrator == "local":
        return FallbackNarrator(LocalLLMNarrator())
    if not args.chat_url:
        args.parser.error("--narrator chat needs --chat-url (an OpenAI-compatible endpoint)")
    return FallbackNarrator(ChatEndpointNarrator(args.chat_url, model=args.chat_model))


def cmd_tune(args: argparse.Namespace) -> int:
    from prismrec.runs import tune_model

    _threads(args.threads)
    if args.search == "random" and args.trials is None:
        args.parser.error("--search random needs --trials N")
    train_config = {"progress": False, "threads": args.threads,
                    **({"max_seconds": args.max_seconds} if args.max_seconds else {})}
    run = tune_model(_spec(args), args.model, dict(args.grid), search=args.search,
                     trials=args.trials, train_config=train_config, text=args.text,
                     blend=args.blend, refit=args.refit, out=args.out)
    _print(run)
    _write_json(args.json, run.to_dict())
    return 0


def _grid_arg(text: str) -> tuple[str, list]:
    key, sep, values = text.partition("=")
    if not sep or not values or not key.strip():
        raise argparse.ArgumentTypeError(f"expected SETTING=V1,V2,... (got {text!r})")
    return key.strip(), [_json_or_text(v) for v in values.split(",")]


def cmd_quickstart(args: argparse.Namespace) -> int:
    from prismrec.quickstart import format_result, run

    _threads(args.threads)
    print(f"Generating a synthetic shop and training the {args.model.upper()} (a minute or two "
          "on 2 cores; no time limit, early stopping ends it)...", flush=True)
    result = run(args.out, model=args.model, progress=not args.quiet)
    print(format_result(result))
    return 0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def _duration(text: str) -> float:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` or plain seconds, as seconds (>= 0)."""
    value = text.strip().lower()
    scale = _UNITS.get(value[-1:], None)
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: give a number >= 0 with a unit s, m, h, d or w "
            "(90d, 12h) or plain seconds")
    return seconds


def _read_key(path: str | None, env: str, flag: str, command: str = "serve") -> str | None:
    """A key from a file only its owner can read (``--api-key-file``), else from ``env``.

    Keys never come from the command line (``ps`` shows it to every user of the machine).
    """
    import os
    import stat

    if path is None:
        return os.environ.get(env) or None
    try:
        mode = os.stat(path).st_mode
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"prismrec {command}: {flag} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SystemExit(f"prismrec {command}: {flag} {path} is not UTF-8 text") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SystemExit(f"prismrec {command}: {flag} {path} can be read by other users "
                         f"(mode {stat.S_IMODE(mode):o}); run chmod 600 {path}")
    key = text.strip()
    if not key:
        raise SystemExit(f"prismrec {command}: {flag} {path} is empty")
    return key


def cmd_serve(args: argparse.Namespace) -> int:
    import os
    import shutil
    import tempfile

    from prismrec.serve.worker import CONFIG_FILE_ENV, WorkerConfig, build, settle

    if args.workers < 1:
        raise SystemExit("prismrec serve: --workers must be at least 1")
    if args.admin_port is not None:
        if not 1 <= args.admin_port <= 65535 or args.admin_port == args.port:
            raise SystemExit(f"prismrec serve: --admin-port {args.admin_port} must be a port "
                             f"number (1-65535) other than --port {args.port}")
    settings = {
        "api_key": _read_key(args.api_key_file, "PRISMREC_API_KEY", "--api-key-file"),
        "admin_key": _read_key(args.admin_key_file, "PRISMREC_ADMIN_KEY", "--admin-key-file"),
        "dashboard_key": _read_key(args.dashboard_key_file, "PRISMREC_DASHBOARD_KEY",
                                   "--dashboard-key-file"),
        "max_body_bytes": args.max_body_bytes, "max_batch": args.max_batch,
        "workers": args.workers, "rate_limit": args.rate_limit, "rate_burst": args.rate_burst,
        "max_concurrent": args.max_concurrent, "max_user_events": args.max_user_events,
        "max_event_age": args.max_event_age, "admin_port": args.admin_port or 0,
        "login_rate": args.login_rate, "login_burst": args.login_burst,
    }
    config = WorkerConfig(checkpoint=str(args.checkpoint), store=args.store,
                          threads=args.threads, settings=settings)
    try:
        app = build(config)  # refuses a corrupt or other-version checkpoint before listening
    except ValueError as exc:
        if isinstance(exc, PrismrecError):
            raise
        raise SystemExit(f"prismrec serve: {exc}") from None
    live = app.state.live
    if args.rebuild_stale:
        done = live.rebuild_stale()
        log.warning("rebuilt %d stale profile(s) for checkpoint %s", len(done), live.checkpoint)
    if settings["api_key"] is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s without an API key: anyone who reaches it can post events",
                    args.host)
    print(f"prismrec serve: {live.model.name} model, checkpoint {live.checkpoint}, store "
          f"{live.store!r}, http://{args.host}:{args.port} ({args.workers} worker(s))",
          file=sys.stderr, flush=True)
    import uvicorn

    common = {"host": args.host, "port": args.port, "log_level": args.log_level,
              "access_log": args.access_log}
    if args.admin_port is not None:
        print(f"prismrec serve: operational routes on http://{args.admin_host}:"
              f"{args.admin_port} only", file=sys.stderr, flush=True)
    if args.workers == 1:
        settle()
        if args.admin_port is None:
            uvicorn.run(app, **common)
        else:  # one server, two listening sockets; the gate tells the ports apart
            uvicorn.Server(uvicorn.Config(app, **common)).run(sockets=_sockets(args, app))
        return 0
    live.store.close()
    # Workers get the configuration, keys included, from a file only this user can read
    # (mkstemp makes it 0600), never from the environment; and they add up their metrics
    # in a private folder (prometheus_client's multiprocess mode).
    private = tempfile.mkdtemp(prefix="prismrec-serve-")  # 0700
    try:
        fd, path = tempfile.mkstemp(dir=private, suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(config.to_json())
        os.makedirs(os.path.join(private, "metrics"))
        for name in ("PRISMREC_API_KEY", "PRISMREC_ADMIN_KEY", "PRISMREC_DASHBOARD_KEY"):
            os.environ.pop(name, None)
        os.environ[CONFIG_FILE_ENV] = path
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(private, "metrics")
        factory = "prismrec.serve.worker:app_from_environ"
        if args.admin_port is None:
            uvicorn.run(factory, factory=True, workers=args.workers, **common)
        else:  # what uvicorn.run does for workers, with the admin port's socket added
            from uvicorn.supervisors import Multiprocess

            multi = uvicorn.Config(factory, factory=True, workers=args.workers, **common)
            Multiprocess(multi, sockets=_sockets(args, factory)).run()
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return 0


def _sockets(args: argparse.Namespace, app) -> list:
    """The main and the admin listening sockets, bound the way uvicorn binds its own."""
    import uvicorn

    return [uvicorn.Config(app, host=host, port=port).bind_socket()
            for host, port in ((args.host, args.port), (args.admin_host, args.admin_port))]


def cmd_ui(args: argparse.Namespace) -> int:
    from prismrec.recommender import Recommender
    from prismrec.serve.ui import create_ui_app

    key = _read_key(args.key_file, "PRISMREC_DASHBOARD_KEY", "--key-file", "ui")
    if key is None:
        raise SystemExit("prismrec ui: the dashboard needs a key: put it in a file only you can "
                         "read (chmod 600) and pass --key-file PATH, or set "
                         "PRISMREC_DASHBOARD_KEY; then type the same key into the login form")
    _threads(args.threads)
    rec = Recommender.load(args.checkpoint)
    try:
        app = create_ui_app(rec, key, checkpoint_dir=args.checkpoint,
                            login_rate=args.login_rate, login_burst=args.login_burst)
    except ValueError as exc:
        raise SystemExit(f"prismrec ui: {exc}") from None
    print(f"prismrec ui: {rec.model_.name} model from {args.checkpoint} (read-only, training "
          f"histories), http://{args.host}:{args.port}/ui", file=sys.stderr, flush=True)
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                access_log=False)
    return 0


# ---------------------------------------------------------------------------- parser


def _strict_arg(s: argparse.ArgumentParser) -> None:
    s.add_argument("--strict", action=argparse.BooleanOptionalAction, default=True,
                   help="stop at the first bad row (default); --no-strict skips bad rows "
                   "and reports how many")


def _device_arg(s: argparse.ArgumentParser) -> None:
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu",
                   help="where the model, batches and score tables live while training and "
                   "scoring (default cpu; auto: CUDA when torch sees a GPU; cuda without one "
                   "stops with an error). Training on CUDA GPUs with bf16 runs the encoder "
                   "under bf16 autocast. Streaming, explanations and profiles run on the CPU; "
                   "the GPU path has not been run on a GPU yet")


def _data_args(s: argparse.ArgumentParser, *, required: bool = True) -> None:
    g = s.add_argument_group("data")
    g.add_argument("--dataset", required=required,
                   help="dataset layout name (see `prismrec datasets`); `events` is a folder "
                   "with your own events.csv and optional items.csv")
    g.add_argument("--data-dir", help="folder holding the dataset's files (not for synthetic)")
    g.add_argument("--split", default="default", choices=["default", "loo", "temporal", "given"],
                   help="default: the dataset's own split if it ships one, else leave-one-out")
    g.add_argument("--user-col", help="events layout: the user id column (default: user)")
    g.add_argument("--item-col", help="events layout: the item id column (default: item; also "
                   "the id column of items.csv when it has one)")
    g.add_argument("--time-col", help="events layout: the timestamp column (default: "
                   "timestamp if present, else file order)")
    g.add_argument("--event-col", help="events layout: the event type column (optional)")
    g.add_argument("--time-unit", choices=["s", "ms", "iso"],
                   help="how timestamps are written: unix seconds, milliseconds or ISO "
                   "date-times (default: numbers are seconds, text is a date-time)")
    g.add_argument("--option", action="append", type=_option, metavar="KEY=VALUE",
                   help="an option of the layout's loader, e.g. events=listens for "
                   "lastfm-hetrec (repeatable; values are JSON when they parse)")
    g.add_argument("--keep-duplicates", action="store_true",
                   help="keep rows the layout would drop or merge as repeats (Amazon repeated "
                   "reviews, HetRec tags applied together); counts are always reported")
    g.add_argument("--ties", choices=["file", "shuffle"], default="file",
                   help="order of a user's events with equal timestamps: the file's "
                   "(default) or a seeded shuffle, to check a sequence model's lead")
    g.add_argument("--ties-seed", type=_NON_NEGATIVE, default=0,
                   help="seed of --ties shuffle (default 0)")
    s.add_argument("--threads", type=_POSITIVE, default=2,
                   help="torch/OpenMP threads (default 2)")
    _strict_arg(s)


def _default_args(s: argparse.ArgumentParser) -> None:
    """train: --model auto and the auto/on/off switches (prismrec.recommender._defaults)."""
    s.add_argument("--model", default="auto", choices=["auto", "lstm", "gru", "sasrec"],
                   help="auto (default): the strongest configuration measured, SASRec with "
                   "tuned settings plus item text and the EASE blend where the data allows "
                   "(see --text, --blend); it costs more than a bare model (a text-encoder "
                   "pass over the catalogue, EASE solves, more epochs: lr 1e-3, patience 10). "
                   "A named model trains as "
                   "configured: its defaults, text and blend only when asked")
    s.add_argument("--text", action=argparse.BooleanOptionalAction, default=None,
                   help="encode the catalogue's item text (all-MiniLM-L6-v2, packaged) and "
                   "train the id+text embedding; items without text train with empty text "
                   "(reported). Default (auto): on for --model auto when the catalogue has "
                   "text (costs one encoder pass over the items, about 40 s for 4,400 items "
                   "on 2 cores), off for a named model")
    s.add_argument("--blend", action=argparse.BooleanOptionalAction, default=None,
                   help="mix in EASE item-item scores; the weight (0, the sequence model "
                   "alone, allowed), EASE penalty and recency decay are chosen on "
                   "validation. Default (auto): on for --model auto when the catalogue has "
                   "at most 10,000 items, EASE fits in the memory available and the split "
                   "has validation cases (costs 6 "
                   "dense N x N solves, 18 with text), off for a named model")
    s.add_argument("--blend-config", type=_blend_config_json, metavar="JSON",
                   help="the blend's grid as JSON (BlendConfig fields), e.g. '{\"lams\": "
                   "[500, 1000], \"weights\": [0, 0.05, 0.1]}'; turns the blend on")
    s.add_argument("--refit", action=argparse.BooleanOptionalAction, default=False,
                   help="after validation has chosen the epochs, train a fresh model on "
                   "train + validation for that many epochs (costs a second training; "
                   "default off: validation cannot show whether it helps)")


def _model_choice_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--model", default="lstm", choices=["lstm", "gru", "sasrec"])
    s.add_argument("--text", action="store_true",
                   help="encode the catalogue's item text (all-MiniLM-L6-v2) and train the "
                   "id+text embedding; items without text train with empty text (reported)")
    s.add_argument("--blend", action="store_true",
                   help="mix in EASE item-item scores; the weight, EASE penalty and recency "
                   "decay are chosen on validation")
    s.add_argument("--refit", action="store_true",
                   help="after validation has chosen the epochs, train a fresh model on "
                   "train + validation for that many epochs (costs a second training)")


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
        "their settings chosen on validation; metrics are on the test cases. Prints rows the "
        "reader dropped and the share of targets tied in time with the previous event.")
    _data_args(s, required=False)
    s.add_argument("--model", choices=["pop", "itemknn", "ease"], help="baseline to evaluate")
    s.add_argument("--checkpoint", help="a trained model folder (from `prismrec train`); its "
                   "data is the one recorded at training unless --dataset is given; only test "
                   "cases it neither trained on nor used for selection are scored (it refuses "
                   "when none are left)")
    s.add_argument("--filter-seen", action=argparse.BooleanOptionalAction, default=True,
                   help="remove items the user already interacted with before ranking "
                   "(default: on; RecBole's sequential figures are unfiltered)")
    s.add_argument("-k", "--k", type=_ks, default=(10, 20, 50), help="cut-offs, e.g. 10,20,50")
    _device_arg(s)
    s.add_argument("--json", help="write the result document to this file")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("quickstart", help="the main job on the embedded synthetic data",
                       description="Generate a synthetic shop whose users' interests drift, "
                       "train a sequence model, compare it with baselines on a leave-one-out "
                       "test, and show recommendations for three users.")
    s.add_argument("--out", help="keep the fitted model in this folder")
    s.add_argument("--model", default="lstm", choices=["lstm", "gru", "sasrec"])
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument("--threads", type=_POSITIVE, default=2,
                   help="torch/OpenMP threads (default 2)")
    s.set_defaults(func=cmd_quickstart)

    s = sub.add_parser("train", help="train a sequence model and save a checkpoint",
                       description="Train on the training part of a split, stop early on "
                       "validation NDCG@10, report test metrics and save a checkpoint "
                       "(safetensors + JSON). Progress shows epoch N/M, loss and validation "
                       "NDCG@10. By default it trains the strongest configuration the data "
                       "supports (--model auto) and says what it chose and why.")
    _data_args(s)
    _default_args(s)
    s.add_argument("--out", required=True, help="checkpoint folder to write")
    s.add_argument("--model-config", type=_json_object,
                   help='model settings as JSON, e.g. \'{"dim": 128}\'')
    for flag, typ in (("--epochs", _POSITIVE), ("--batch-size", _POSITIVE),
                      ("--lr", _POSITIVE_FLOAT), ("--weight-decay", _NON_NEGATIVE_FLOAT),
                      ("--patience", _NON_NEGATIVE), ("--max-seconds", _POSITIVE_FLOAT),
                      ("--seed", _NON_NEGATIVE), ("--max-len", _POSITIVE)):
        s.add_argument(flag, type=typ, help="training setting (default: TrainConfig's)")
    s.add_argument("--train-config", type=_train_config_json,
                   help='other training settings as JSON (TrainConfig fields), e.g. '
                   '\'{"exclude_seen": 200, "lr_decay": 0.3}\'; the flags above win over '
                   'the same keys here')
    s.add_argument("--loss", choices=["auto", "ce", "sampled"],
                   help="full softmax (ce), sampled softmax with logQ correction, or auto: "
                   "chosen by catalogue size (default: TrainConfig's)")
    s.add_argument("--log-dir", help="write TensorBoard event files here")
    s.add_argument("--filter-seen", action=argparse.BooleanOptionalAction, default=True,
                   help="which test metrics go under 'metrics' in --json")
    s.add_argument("--json", help="write the result document to this file")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    _device_arg(s)
    s.add_argument("--nproc", type=_POSITIVE, default=1,
                   help="data-parallel processes on this machine (relaunches under torchrun; "
                   "--threads is shared among them). For several machines start "
                   "`torchrun --nnodes M --nproc_per_node N --rdzv-endpoint HOST:PORT -m "
                   "prismrec.cli train ...` on each (README: Scaling out)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("recommend", help="recommend from a checkpoint",
                       description="Top-k items for a known user, or for any history of items. "
                       "For a known user each item comes with its title, the interest it "
                       "serves (id and label) and a reason naming, by title, the history "
                       "items that contribute most to its score.")
    s.add_argument("--checkpoint", required=True, help="folder written by `prismrec train`")
    s.add_argument("--user", help="a user id from the training data")
    s.add_argument("--items", help="a history of item ids, oldest first: ID,ID,...")
    s.add_argument("-k", type=_POSITIVE, default=10, help="how many items (default 10)")
    s.add_argument("--filter-seen", action=argparse.BooleanOptionalAction, default=True)
    s.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True,
                   help="add title, interest, label and reason (default: on; "
                   "--no-explain skips the attribution pass)")
    s.add_argument("--diversity", type=float, help="--user: compose the list from the "
                   "user's interests with this λ in [0, 1] (0: by relevance, 1: in "
                   "proportion to the interest weights)")
    s.add_argument("--mute", type=_interest_ids, metavar="ID,ID",
                   help="--user: interest ids (from `prismrec profile`) whose items are "
                   "removed; composes the list (default λ unless --diversity)")
    s.add_argument("--boost", type=_interest_ids, metavar="ID,ID",
                   help="--user: interest ids whose share of the list is raised")
    s.add_argument("--json", action="store_true", help="print a JSON document instead of a "
                   "table: user, components, fallback, recommendations")
    _device_arg(s)
    s.add_argument("--threads", type=_POSITIVE, default=2,
                   help="torch/OpenMP threads (default 2)")
    s.set_defaults(func=cmd_recommend)

    s = sub.add_parser("profile", help="a user's interests, their weights over time and a "
                       "short narrative",
                       description="Read a known user's history through a checkpoint: named "
                       "interests with weight, horizon and first/last seen, a timeline plot "
                       "and a narrative.")
    s.add_argument("--checkpoint", required=True, help="folder written by `prismrec train`")
    s.add_argument("--user", required=True, help="a user id from the training data")
    s.add_argument("--plot", help="write the interest-weight timeline (PNG) here")
    s.add_argument("--json", action="store_true", help="print the profile document as JSON "
                   "(each interest: id, label, weight, horizon, first/last seen, top items)")
    s.add_argument("--timeline", action="store_true",
                   help="--json: add each interest's weight after every event")
    s.add_argument("--narrator", default="template", choices=["template", "local", "chat"])
    s.add_argument("--llm-labels", action="store_true",
                   help="name the interests with the chat model at --chat-url from their "
                   "items' titles and categories (default: the catalogue label; a failed "
                   "request keeps it)")
    s.add_argument("--chat-url", help="--narrator chat / --llm-labels: base URL of the chat "
                   "endpoint")
    s.add_argument("--chat-model", default="default", help="chat endpoint model name")
    s.add_argument("--dataset", help="dataset whose catalogue names the interests "
                   "(default: the one the checkpoint records)")
    s.add_argument("--data-dir", help="folder of that dataset")
    s.add_argument("--threads", type=_POSITIVE, default=2,
                   help="torch/OpenMP threads (default 2)")
    s.set_defaults(func=cmd_profile)

    s = sub.add_parser("tune", help="search settings of a sequence model on validation",
                       description="Train one model per setting and rank them by validation "
                       "NDCG@10. The test cases are never used. With --blend, --refit or "
                       "--out the best setting is trained once more (blended, refitted, "
                       "saved).")
    _data_args(s)
    _model_choice_args(s)
    s.add_argument("--grid", nargs="+", required=True, metavar="SETTING=V1,V2", type=_grid_arg,
                   help="e.g. dim=32,64 lr=0.001,0.003 (model.* or train.* to disambiguate)")
    s.add_argument("--search", choices=["grid", "random"], default="grid")
    s.add_argument("--trials", type=_POSITIVE, help="how many settings random search tries")
    s.add_argument("--max-seconds", type=_POSITIVE_FLOAT,
                   help="training time limit per trial (a trial stopped by it says so in "
                   "its 'stopped' column)")
    s.add_argument("--out", help="save the best setting's model here")
    s.add_argument("--json", help="write the trials table to this file")
    s.set_defaults(func=cmd_tune)

    s = sub.add_parser(
        "serve", help="serve recommendations over HTTP with live profiles",
        allow_abbrev=False,  # --api-key is no abbreviation of --api-key-file
        description="Start the HTTP service: events in, recommendations out, profiles updated "
        "per event in the store. Keys come from files (--api-key-file, --admin-key-file, "
        "--dashboard-key-file; mode 600) or the environment variables PRISMREC_API_KEY/"
        "PRISMREC_ADMIN_KEY/PRISMREC_DASHBOARD_KEY, never from the command line. API docs at "
        "/docs (admin key); the dashboard at /ui opens with the admin key or the read-only "
        "dashboard key.")
    s.add_argument("--checkpoint", required=True, help="folder written by `prismrec train`")
    s.add_argument("--store", required=True,
                   help="profile store: sqlite:///path.db or redis://127.0.0.1:6379/0")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    s.add_argument("--workers", type=int, default=1,
                   help="worker processes on this machine, sharing the store (SQLite: one "
                   "file, one writer at a time; Redis: several machines too). With more than 1 "
                   "POST /v1/items is refused: each worker holds its own copy of the model")
    s.add_argument("--api-key-file", metavar="PATH", help="file holding the client key, "
                   "readable by its owner only (default: $PRISMREC_API_KEY; none: open)")
    s.add_argument("--admin-key-file", metavar="PATH", help="file holding the admin key for "
                   "DELETE /v1/users, POST /v1/items, /metrics and /docs (default: "
                   "$PRISMREC_ADMIN_KEY; none: admin routes off)")
    s.add_argument("--dashboard-key-file", metavar="PATH", help="file holding a read-only "
                   "key for the dashboard at /ui (default: $PRISMREC_DASHBOARD_KEY; the admin "
                   "key opens it too; neither: /ui off)")
    s.add_argument("--admin-port", type=int, metavar="PORT",
                   help="serve /metrics, /docs, /redoc and /openapi.json on this port only "
                   "(still behind the admin key), the API and /ui on --port only (default: "
                   "all on --port)")
    s.add_argument("--admin-host", default="127.0.0.1",
                   help="address the admin port binds (default 127.0.0.1)")
    s.add_argument("--rate-limit", type=float, default=0.0, metavar="PER_SECOND",
                   help="requests per second per key, per worker (token bucket; over it: 429 "
                   "with Retry-After; default 0: off)")
    s.add_argument("--rate-burst", type=int, default=50,
                   help="requests one key may send at once before the rate applies (default 50)")
    s.add_argument("--max-user-events", type=int, default=0, metavar="N",
                   help="per-user log quota: events past N logged events of their user are not "
                   "stored and are counted (over_quota in the reply, a metric); default 0: none")
    s.add_argument("--max-event-age", type=_duration, default=0.0, metavar="AGE",
                   help="age limit: an event whose timestamp is older than AGE (90d, 12h, "
                   "seconds) by the server's clock when it arrives is not stored and is "
                   "counted (too_old in the reply, a metric); logged events are not removed "
                   "as they age; default 0: none")
    s.add_argument("--max-concurrent", type=int, default=256,
                   help="requests in flight per worker; more get 503 with Retry-After "
                   "(default 256)")
    _login_flags(s)
    s.add_argument("--max-body-bytes", type=int, default=1_048_576,
                   help="largest request body accepted (default 1 MiB)")
    s.add_argument("--max-batch", type=int, default=1000, help="most events per POST")
    s.add_argument("--rebuild-stale", action="store_true",
                   help="before serving, rebuild profiles computed by another checkpoint or "
                   "flagged by late events")
    s.add_argument("--threads", type=int, default=1,
                   help="torch threads per worker (default 1: requests run in parallel)")
    s.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])
    s.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=False,
                   help="log every request (default: off)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser(
        "ui", help="the web dashboard over a checkpoint alone (read-only)",
        allow_abbrev=False,  # --key is no abbreviation of --key-file
        description="Serve the dashboard (/ui) over a checkpoint without a store: model card, "
        "users' interests and composed lists from their training histories, items and "
        "search. The login form opens with the key in --key-file (mode 600) or "
        "$PRISMREC_DASHBOARD_KEY, never a key on the command line. For "
        "live profiles use `prismrec serve`, which has the same dashboard.")
    s.add_argument("--checkpoint", required=True, help="folder written by `prismrec train`")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    s.add_argument("--key-file", metavar="PATH", help="file holding the dashboard key, "
                   "readable by its owner only (default: $PRISMREC_DASHBOARD_KEY)")
    _login_flags(s)
    s.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    s.add_argument("--log-level", default="warning",
                   choices=["critical", "error", "warning", "info", "debug"])
    s.set_defaults(func=cmd_ui)
    return p


def _login_flags(s: argparse.ArgumentParser) -> None:
    s.add_argument("--login-rate", type=float, default=0.2, metavar="PER_SECOND",
                   help="dashboard login attempts per second per client address (token "
                   "bucket; over it: 429 with Retry-After; default 0.2, one per 5 s; 0: off)")
    s.add_argument("--login-burst", type=int, default=20, metavar="N",
                   help="login attempts one address may make at once (default 20)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.parser = _subparser(parser, args.command)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for train --nproc's relaunch
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args) or 0)
    except PrismrecError as exc:
        print(f"prismrec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:  # bad settings: TrainConfig, grids, ...
        print(f"prismrec {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The sub-command's parser, so that usage errors print that command's usage."""
    for action in parser._subparsers._group_actions:  # noqa: SLF001
        if command in getattr(action, "choices", {}):
            return action.choices[command]
    return parser


if __name__ == "__main__":
    sys.exit(main())

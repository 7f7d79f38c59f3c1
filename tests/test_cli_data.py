"""The command line on a user's own files: column flags, usage errors, dropped rows, ties."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from prismrec.cli import main
from prismrec.runs import DataSpec, prepare

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_commands() -> list[list[str]]:
    """The own-CSV example's prismrec commands, as the README shows them."""
    text = README.read_text()
    block = text[text.index("The same from the command line"):]
    block = block[block.index("```bash") + 7:]
    block = block[:block.index("```")].replace("\\\n", " ")
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("prismrec")]


def _shop(folder: Path, n_users: int = 40) -> Path:
    """events.csv/items.csv with the README's column names: ISO times, cyclic users."""
    rng = np.random.default_rng(0)
    rows = ["user_id,product,ts,action"]
    users = ["alice"] + [f"user{u}" for u in range(1, n_users)]
    for u, name in enumerate(users):
        start = int(rng.integers(0, 12))
        for j in range(6):
            minute = u * 60 + j * 5
            rows.append(f"{name},p{(start + j) % 12 + 1},2024-03-01T{10 + minute // 600:02d}:"
                        f"{minute % 60:02d}:{(minute // 60) % 10:02d}Z,"
                        f"{'buy' if j % 3 == 0 else 'view'}")
    (folder / "events.csv").write_text("\n".join(rows) + "\n")
    titles = ["Trail shoes", "Rain jacket", "Head torch", "Tent", "Stove", "Map", "Compass",
              "Gloves", "Rope", "Bottle", "Stool", "Axe"]
    (folder / "items.csv").write_text("product,title\n" + "".join(
        f"p{i + 1},{t}\n" for i, t in enumerate(titles)))
    return folder


def test_readme_own_csv_example_runs_with_flags_only(tmp_path, capsys, monkeypatch):
    commands = _readme_commands()
    assert [c[0] for c in commands] == ["evaluate", "train", "recommend"]
    shop = _shop(tmp_path)
    (tmp_path / "shop").mkdir()
    for name in ("events.csv", "items.csv"):
        (tmp_path / "shop" / name).write_bytes((shop / name).read_bytes())
    monkeypatch.chdir(tmp_path)
    header = (tmp_path / "shop" / "events.csv").read_text().splitlines()[0]
    assert header in README.read_text()  # the file the README shows
    fast = {"train": ["--epochs", "2", "--quiet", "--threads", "1"]}
    for cmd in commands:
        assert main([*cmd, *fast.get(cmd[0], [])]) == 0, cmd
    out = capsys.readouterr().out
    assert "ease on events" in out and "saved to" in out
    table = out[out.rindex("rank"):]
    titles = r"Trail|Rain|Head|Tent|Stove|Map|Compass|Gloves|Rope|Bottle|Stool|Axe"
    assert re.search(titles, table)  # recommend prints titles


def test_columns_missing_from_the_file_are_named(tmp_path, capsys):
    _shop(tmp_path)
    code = main(["evaluate", "--dataset", "events", "--data-dir", str(tmp_path), "--model",
                 "pop", "--user-col", "customer"])
    err = capsys.readouterr().err
    assert code == 2 and "'customer' (user)" in err and "'user_id'" in err
    assert "Traceback" not in err


def test_time_unit_reads_milliseconds_and_refuses_text_as_numbers(tmp_path, capsys):
    (tmp_path / "events.csv").write_text("u,i,t\n" + "".join(
        f"u{u},i{(u + j) % 5},{1_700_000_000_000 + 1000 * j}\n" for u in range(8)
        for j in range(4)))
    out = tmp_path / "r.json"
    args = ["evaluate", "--dataset", "events", "--data-dir", str(tmp_path), "--model", "pop",
            "--user-col", "u", "--item-col", "i", "--time-col", "t"]
    assert main([*args, "--time-unit", "ms", "--json", str(out)]) == 0
    spec = DataSpec("events", str(tmp_path), columns={"user": "u", "item": "i",
                                                      "timestamp": "t"}, time_unit="ms")
    assert prepare(spec).dataset.interactions.frame["timestamp"].iloc[0] == 1_700_000_000.0
    assert main([*args, "--time-unit", "iso"]) == 2
    assert "expected an ISO date-time" in capsys.readouterr().err


@pytest.mark.parametrize("argv, complaint", [
    (["recommend", "--checkpoint", "x", "--user", "u", "-k", "0"], "expected a positive"),
    (["train", "--dataset", "synthetic", "--out", "x", "--epochs", "0"], "expected a positive"),
    (["train", "--dataset", "synthetic", "--out", "x", "--lr", "-1"], "a positive number"),
    (["train", "--dataset", "synthetic", "--out", "x", "--threads", "0"], "expected a positive"),
    (["train", "--dataset", "synthetic", "--out", "x", "--model-config", "{dim"],
     "not valid JSON"),
    (["train", "--dataset", "synthetic", "--out", "x", "--train-config", "[1]"],
     "expected a JSON object"),
    (["train", "--dataset", "synthetic", "--out", "x", "--train-config", '{"threads": 4}'],
     "use --threads N and --quiet instead"),
    (["evaluate", "--dataset", "synthetic", "--model", "pop", "-k", "0"], "positive integers"),
    (["tune", "--dataset", "synthetic", "--grid", "dim"], "SETTING=V1,V2"),
    (["evaluate", "--dataset", "synthetic", "--model", "pop", "--option", "oops"],
     "KEY=VALUE"),
])
def test_bad_values_are_usage_errors_not_tracebacks(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "usage: prismrec" in err and complaint in err
    assert "Traceback" not in err


def test_keep_duplicates_on_a_layout_that_drops_nothing_is_refused(tmp_path, capsys):
    _shop(tmp_path)
    code = main(["evaluate", "--dataset", "events", "--data-dir", str(tmp_path), "--model",
                 "pop", "--user-col", "user_id", "--item-col", "product", "--time-col", "ts",
                 "--keep-duplicates"])
    assert code == 2 and "drops no repeated rows" in capsys.readouterr().err


def _amazon(folder: Path) -> Path:
    lines = []
    for u in range(12):
        for j in range(5):
            r = {"reviewerID": f"U{u}", "asin": f"X{(u + j) % 7}", "overall": 5.0,
                 "unixReviewTime": 1_500_000_000 + 86400 * (j // 2)}  # pairs share a day
            lines += [r, r] if j == 0 else [r]  # each user's first review is repeated
    (folder / "Shop_5.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def test_dropped_repeats_and_tied_targets_are_reported(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    _amazon(data)
    out = tmp_path / "r.json"
    args = ["evaluate", "--dataset", "amazon-2018", "--data-dir", str(data), "--model",
            "pop", "--json", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "dropped 12 row(s) while reading Shop: repeated (user, item, time) reviews" in err
    doc = json.loads(out.read_text())["data"]
    assert doc["dropped"] == {"repeated (user, item, time) reviews": 12}
    # each user: days 0,0,1,1,2 -> the test target (day 2) is not tied, validation (day 1) is
    assert doc["tied_targets"] == {"valid": 1.0, "test": 0.0}
    assert "warning: more than 10% of targets share their timestamp" in err
    assert main([*args, "--keep-duplicates"]) == 0
    err = capsys.readouterr().err
    assert "kept 12 repeated row(s)" in err
    assert json.loads(out.read_text())["data"]["events"] == 72


def test_ties_shuffle_reorders_only_events_with_equal_times(tmp_path, capsys):
    _amazon(tmp_path)
    spec = DataSpec("amazon-2018", str(tmp_path), split="loo")
    file_order = prepare(spec).dataset.sequences
    shuffled = prepare(DataSpec("amazon-2018", str(tmp_path), split="loo",
                                ties="shuffle", seed=1)).dataset.sequences
    assert np.array_equal(file_order.times, shuffled.times)
    assert not np.array_equal(file_order.items, shuffled.items)
    for r in range(len(file_order)):  # the same events in each tie group
        for t in np.unique(file_order.row_times(r)):
            assert sorted(file_order.row(r)[file_order.row_times(r) == t]) == sorted(
                shuffled.row(r)[shuffled.row_times(r) == t])
    again = prepare(DataSpec("amazon-2018", str(tmp_path), split="loo", ties="shuffle",
                             seed=1)).dataset.sequences
    assert np.array_equal(again.items, shuffled.items)  # seeded
    assert main(["evaluate", "--dataset", "amazon-2018", "--data-dir", str(tmp_path),
                 "--model", "pop", "--ties", "shuffle"]) == 0
    err = capsys.readouterr().err
    assert "ties shuffled with seed 0" in err and "warning" not in err


def test_train_shows_epoch_progress_and_how_it_stopped(tmp_path, capsys):
    _shop(tmp_path)
    base = ["train", "--dataset", "events", "--data-dir", str(tmp_path), "--user-col", "user_id",
            "--item-col", "product", "--time-col", "ts", "--model", "gru", "--threads", "1"]
    assert main([*base, "--out", str(tmp_path / "m1"), "--epochs", "2", "--patience", "0"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"gru epoch 1/2: loss \d+\.\d+, valid NDCG@10 \d\.\d{4}", captured.err)
    assert "gru epoch 2/2" in captured.err
    assert "stopped by the epoch limit (2); loss ce: auto" in captured.out
    assert main([*base, "--out", str(tmp_path / "m2"), "--epochs", "50", "--max-seconds",
                 "1e-6", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "stopped by time after 1 epochs" in captured.out
    assert "epoch 1/50" not in captured.err  # --quiet: no progress lines


@pytest.mark.slow
def test_text_blend_refit_are_flags_and_items_without_text_are_counted(tmp_path, capsys):
    _shop(tmp_path)
    items = (tmp_path / "items.csv").read_text().splitlines()
    (tmp_path / "items.csv").write_text("\n".join(items[:-2]) + "\n")  # p11, p12: no row
    data = ["--dataset", "events", "--data-dir", str(tmp_path), "--user-col", "user_id",
            "--item-col", "product", "--time-col", "ts", "--time-unit", "iso", "--threads", "1"]
    out = tmp_path / "train.json"
    assert main(["train", *data, "--model", "sasrec", "--text", "--blend", "--refit",
                 "--epochs", "2", "--quiet", "--out", str(tmp_path / "m"),
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "trained with empty text: 2 item(s) no catalogue row" in printed
    assert "blend with EASE: weight" in printed and "refit on train + validation" in printed
    doc = json.loads(out.read_text())
    assert doc["text"]["missing"] == {"no_catalogue_row": 2}
    assert doc["config"]["model"]["embedding"] == "id+text"
    assert doc["blend"]["chosen_on"] == "validation" and doc["refit"]["epochs"] >= 1
    tuned = tmp_path / "tune.json"
    assert main(["tune", *data, "--model", "gru", "--grid", "dim=8,16", "epochs=1", "--text",
                 "--blend", "--out", str(tmp_path / "best"), "--json", str(tuned)]) == 0
    doc = json.loads(tuned.read_text())
    assert doc["text"]["missing"] == {"no_catalogue_row": 2}
    assert doc["final"]["blend"]["chosen_on"] == "validation"
    assert (tmp_path / "best" / "source.json").exists()
    assert main(["recommend", "--checkpoint", str(tmp_path / "best"), "--user", "alice",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.splitlines()[-1])["recommendations"]
    assert len(rows) >= 5 and all("title" in r for r in rows)


def test_layout_options_pass_through_and_the_tag_file_read_is_named(tmp_path, capsys):
    plays = "".join(f"{u}\t{50 + (u + j) % 6}\t{100 - j}\n" for u in range(8) for j in range(4))
    (tmp_path / "user_artists.dat").write_text("userID\tartistID\tweight\n" + plays)
    (tmp_path / "artists.dat").write_text("id\tname\turl\tpictureURL\n" + "".join(
        f"{50 + a}\tArtist {a}\thttp://x/{a}\t\n" for a in range(6)))
    (tmp_path / "user_taggedartists.dat").write_text(
        "userID\tartistID\ttagID\tday\tmonth\tyear\n" + "".join(
            f"{u}\t{50 + (u + j) % 6}\t1\t{1 + j}\t5\t2009\n" for u in range(8) for j in range(4)))
    args = ["evaluate", "--dataset", "lastfm-hetrec", "--data-dir", str(tmp_path), "--model",
            "pop", "--json", str(tmp_path / "r.json")]
    assert main(args) == 0
    assert "events read from user_taggedartists.dat" in capsys.readouterr().err
    assert main([*args, "--option", "events=listens"]) == 0
    assert "events read from user_artists.dat" in capsys.readouterr().err
    assert json.loads((tmp_path / "r.json").read_text())["data"]["has_time"] is False
    assert main([*args, "--option", "colour=red"]) == 2
    assert "takes no option(s) colour" in capsys.readouterr().err


def test_sasrec_layout_protocol_loo_through_the_cli(tmp_path):
    d = tmp_path / "ml-1m-sas"
    (d / "train").mkdir(parents=True)
    (d / "val").mkdir()
    (d / "test").mkdir()
    rows = [" ".join(str(1 + (u + j) % 7) for j in range(6 + u % 3)) for u in range(12)]
    (d / "train/input.txt").write_text("\n".join(rows) + "\n")
    (d / "val/input.txt").write_text(rows[0] + " 1\n")
    (d / "val/output.txt").write_text("2\n")
    (d / "test/output.txt").write_text("3\n" * 12)
    base = ["evaluate", "--dataset", "ml-1m-sas", "--data-dir", str(d), "--model", "pop"]
    out = tmp_path / "loo.json"
    assert main([*base, "--option", "protocol=loo", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["data"]["split"] == "loo"
    assert doc["data"]["valid_cases"] == doc["data"]["test_cases"] == 12  # every user
    out = tmp_path / "skip.json"
    assert main([*base, "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["data"]["split"] == "given" and doc["data"]["valid_cases"] == 1

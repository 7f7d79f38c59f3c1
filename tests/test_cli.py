"""The command line: each command's contract, its JSON output and its error messages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from prismrec.cli import build_parser, main
from prismrec.data.synthetic import generate


@pytest.fixture(scope="module")
def events_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    generate(n_users=150, n_items=80, seed=3).save(folder)
    return folder


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001
    for name in commands:
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0
        assert "usage: prismrec" in capsys.readouterr().out


def test_datasets_lists_the_layouts(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("ml-100k", "amazon-scientific", "mind", "lastfm-1k", "synthetic", "events"):
        assert name in out


def test_evaluate_writes_metrics_json(events_dir, tmp_path, capsys):
    out = tmp_path / "result.json"
    code = main(["evaluate", "--dataset", "events", "--data-dir", str(events_dir),
                 "--model", "pop", "--split", "loo", "--json", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == "pop" and doc["split"] == "loo" and doc["filter_seen"] is True
    assert 0.0 <= doc["metrics"]["ndcg@10"] <= 1.0
    assert {"hr@10", "recall@50", "mrr@20", "coverage@10"} <= set(doc["metrics"])
    assert doc["data"]["users"] == 150
    assert "ndcg" in capsys.readouterr().out


def test_evaluate_records_unfiltered_setting(events_dir, tmp_path):
    out = tmp_path / "result.json"
    main(["evaluate", "--dataset", "events", "--data-dir", str(events_dir), "--model", "pop",
          "--no-filter-seen", "-k", "5", "--json", str(out)])
    doc = json.loads(out.read_text())
    assert doc["filter_seen"] is False
    assert set(doc["metrics"]) >= {"ndcg@5", "hr@5"} and "ndcg@10" not in doc["metrics"]


def test_missing_data_folder_is_a_message_not_a_traceback(tmp_path, capsys):
    code = main(["evaluate", "--dataset", "ml-100k", "--data-dir", str(tmp_path / "nope"),
                 "--model", "ease"])
    err = capsys.readouterr().err
    assert code == 2
    assert "not found" in err and "Traceback" not in err


def test_malformed_events_file_names_file_and_line(tmp_path, capsys):
    (tmp_path / "events.csv").write_text("user,item,timestamp\nu1,i1,100\nu1,i2,yesterday-ish\n")
    code = main(["evaluate", "--dataset", "events", "--data-dir", str(tmp_path), "--model", "pop"])
    err = capsys.readouterr().err
    assert code == 2
    assert "events.csv" in err and "line 3" in err


def test_installed_command_runs():
    done = subprocess.run([sys.executable, "-m", "prismrec.cli", "--version"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("prismrec ")


@pytest.fixture(scope="module")
def checkpoint(events_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "gru"
    code = main(["train", "--dataset", "events", "--data-dir", str(events_dir), "--model", "gru",
                 "--out", str(out), "--epochs", "2", "--quiet", "--threads", "1"])
    assert code == 0
    return out


def test_train_saves_a_checkpoint_that_evaluates_on_its_own_data(checkpoint, tmp_path):
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["model"] == "gru" and doc["dataset"] == "events" and doc["split"] == "loo"
    assert 0.0 <= doc["metrics"]["ndcg@10"] <= 1.0


def test_train_refit_retrains_on_train_and_validation(events_dir, tmp_path, capsys):
    out, doc = tmp_path / "refit", tmp_path / "train.json"
    assert main(["train", "--dataset", "events", "--data-dir", str(events_dir), "--model",
                 "lstm", "--out", str(out), "--epochs", "2", "--quiet", "--threads", "1",
                 "--refit", "--json", str(doc)]) == 0
    assert "refit on train + validation for" in capsys.readouterr().out
    result = json.loads(doc.read_text())
    assert result["refit"]["epochs"] == result["training"]["best_epoch"]


def test_recommend_for_a_user_and_for_a_history(checkpoint, capsys):
    assert main(["recommend", "--checkpoint", str(checkpoint), "--user", "u0003", "-k", "4",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["recommendations"]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4]
    assert all(r["reason"] for r in rows)
    assert main(["recommend", "--checkpoint", str(checkpoint), "--items", "i00001,i00002",
                 "-k", "3", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = doc["recommendations"]
    assert doc["items"] == ["i00001", "i00002"] and all(r["reason"] for r in rows)
    assert len(rows) == 3 and {"i00001", "i00002"}.isdisjoint(r["item"] for r in rows)


def test_recommend_unknown_user_is_a_clear_error(checkpoint, capsys):
    code = main(["recommend", "--checkpoint", str(checkpoint), "--user", "nobody"])
    assert code == 2 and "unknown user 'nobody'" in capsys.readouterr().err


def test_recommend_from_a_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    code = main(["recommend", "--checkpoint", str(tmp_path / "none"), "--user", "u1"])
    assert code == 2 and "no checkpoint" in capsys.readouterr().err


def test_tune_ranks_settings_on_validation(events_dir, tmp_path):
    out = tmp_path / "tune.json"
    assert main(["tune", "--dataset", "events", "--data-dir", str(events_dir), "--model", "gru",
                 "--grid", "dim=8,16", "epochs=1", "--json", str(out), "--threads", "1"]) == 0
    doc = json.loads(out.read_text())
    assert len(doc["trials"]) == 2 and "dim" in doc["best"]
    scores = [t["valid_ndcg@10"] for t in doc["trials"]]
    assert scores == sorted(scores, reverse=True)


def test_no_strict_skips_bad_rows_and_says_how_many(tmp_path, capsys):
    rows = ["user,item,timestamp"] + [f"u{u},i{(u + j) % 7},{100 + j}" for u in range(6)
                                      for j in range(5)]
    rows.insert(4, "u1,i2,not-a-time")
    (tmp_path / "events.csv").write_text("\n".join(rows) + "\n")
    args = ["evaluate", "--dataset", "events", "--data-dir", str(tmp_path), "--model", "pop"]
    assert main(args) == 2
    assert "line 5" in capsys.readouterr().err
    assert main([*args, "--no-strict"]) == 0
    assert "skipped 1 bad row" in capsys.readouterr().err


def test_an_option_the_layout_lacks_is_refused(capsys):
    code = main(["evaluate", "--dataset", "synthetic", "--model", "pop", "--no-strict"])
    assert code == 2 and "takes no option(s) strict" in capsys.readouterr().err

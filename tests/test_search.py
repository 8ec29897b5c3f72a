"""End to end: ``autodnn search`` on digits into a SQLite study, resume, Ctrl-C, ``studies`` and ``show``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import REPO, assert_user_error
from optuna.trial import TrialState

SEARCH = ("search", "--dataset", "digits", "--space", "quick", "--max-epochs", "3", "--no-baselines", "--no-final")


def finished(study: optuna.Study) -> list:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def test_two_trial_search_records_config_result_history_and_study_attributes(run_cli, sqlite_url) -> None:
    result = run_cli(*SEARCH, "--n-trials", "2", "--storage", sqlite_url, "--study", "t")
    assert result.code == 0, result.err
    assert "Best trial" in result.out and "val_accuracy" in result.out
    study = optuna.load_study(study_name="t", storage=sqlite_url)
    trials = finished(study)
    assert len(trials) == 2
    for trial in trials:
        config = trial.user_attrs["config"]
        assert config["batch_size"] == 64 and config["activation"] in ("relu", "elu", "swish")
        history = trial.user_attrs["history"]
        epochs = trial.user_attrs["result"]["epochs"] if "result" in trial.user_attrs else len(history["loss"])
        assert 1 <= epochs <= 3
        assert len(history["val_accuracy"]) == len(trial.user_attrs["epoch_times"]) == epochs
        assert set(trial.intermediate_values) == set(range(1, len(trial.intermediate_values) + 1)), "1-based"
        if trial.state == TrialState.COMPLETE:
            assert 0.0 <= trial.value <= 1.0
            assert trial.value == pytest.approx(trial.user_attrs["result"]["val_accuracy"])
    attrs = study.user_attrs
    assert len(attrs["dataset"]["fingerprint"]) >= 16
    assert attrs["dataset"]["name"] == "digits"
    assert attrs["space"]["name"] == "quick" and attrs["space_digest"]
    assert attrs["environment"]["backend"] == os.environ["KERAS_BACKEND"]
    assert attrs["settings"]["max_epochs"] == 3


def test_rerun_runs_only_the_missing_trials(run_cli, sqlite_url) -> None:
    assert run_cli(*SEARCH, "--n-trials", "2", "--storage", sqlite_url, "--study", "r").code == 0
    again = run_cli(*SEARCH, "--n-trials", "3", "--storage", sqlite_url, "--study", "r")
    assert again.code == 0, again.err
    assert "2 of 3 trials finished" in again.out
    study = optuna.load_study(study_name="r", storage=sqlite_url)
    assert len(study.trials) == 3 and len(finished(study)) == 3
    third = run_cli(*SEARCH, "--n-trials", "3", "--storage", sqlite_url, "--study", "r")
    assert third.code == 0 and len(optuna.load_study(study_name="r", storage=sqlite_url).trials) == 3


def test_ctrl_c_mid_trial_leaves_a_resumable_study(tmp_path: Path, run_cli) -> None:
    from autodnn.study.storage import open_storage

    space = tmp_path / "slow.yaml"
    space.write_text("params:\n  n_hidden: 2\n  n_units: 64\n  learning_rate: {low: 1.0e-4, high: 1.0e-3, log: true}\n"
                     "  batch_size: 16\n  patience: 1000\n")
    url = f"sqlite:///{tmp_path / 'c.db'}"
    search = [sys.executable, "-m", "autodnn", "search", "--dataset", "digits", "--space", str(space),
              "--storage", url, "--study", "c", "--n-trials", "2", "--max-epochs", "5000", "--no-baselines",
              "--no-final"]
    # The search must get Ctrl-C as a terminal delivers it, even where this test process runs with SIGINT
    # ignored (a child inherits an ignored signal, and Python then installs no handler for it). A small
    # launcher resets SIGINT and execs the search: a preexec_fn would run Python in a fork of this process,
    # whose JAX threads can leave it deadlocked.
    launcher = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execv(sys.argv[1], sys.argv[1:])")
    process = subprocess.Popen([sys.executable, "-c", launcher, *search], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 120
    storage = None
    try:
        while time.monotonic() < deadline:
            if storage is None and (tmp_path / "c.db").exists():
                # autodnn's own opening, which waits while the search is still making the database's tables.
                storage = open_storage(url, create=False)
            if storage is not None and "c" in optuna.get_all_study_names(storage):
                trials = optuna.load_study(study_name="c", storage=storage).trials
                if any(len(t.intermediate_values) >= 2 for t in trials):
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the search never reached its second epoch")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, (out, err)
    assert "finished trials are saved" in err and "Resume with: autodnn search" in err
    assert "Traceback" not in err
    study = optuna.load_study(study_name="c", storage=url)
    assert [t.state for t in study.trials] == [TrialState.FAIL]
    resumed = run_cli("search", "--dataset", "digits", "--space", space, "--storage", url, "--study", "c",
                      "--n-trials", "2", "--max-epochs", "2", "--no-baselines", "--no-final")
    assert resumed.code == 0, resumed.err
    study = optuna.load_study(study_name="c", storage=url)
    assert len(finished(study)) == 2
    assert [t.state for t in study.trials].count(TrialState.FAIL) == 1


def test_a_warm_start_then_the_baselines_train_first_unpruned_and_each_network_is_tested_once(
        run_cli, sqlite_url, tmp_path: Path) -> None:
    space = tmp_path / "small.yaml"
    space.write_text("params:\n  n_hidden: 2\n  n_units: 32\n  learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n")
    result = run_cli("search", "--dataset", "digits", "--space", space, "--max-epochs", "2", "--n-trials", "1",
                     "--seeds", "1", "--storage", sqlite_url, "--study", "b")
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="b", storage=sqlite_url)
    trials = study.trials
    assert trials[0].user_attrs.get("warm_start") == "small-adam" and "baseline" not in trials[0].user_attrs
    assert [t.user_attrs.get("baseline") for t in trials[1:]] == ["book-2e", "book-3e", "book-selu"]
    for trial in trials[1:]:
        assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("reason")
        config = trial.user_attrs["config"]
        assert (config["n_hidden"], config["n_units"], config["lr_finder"]) == (2, 32, True), "the space fixes both"
        assert trial.user_attrs["lr_finder"]["suggestion"] == pytest.approx(trial.user_attrs["result"]["learning_rate"])
    evaluation = study.user_attrs["evaluation"]
    names = [e["name"] for e in evaluation["entries"]]
    assert names == ["best", "book-2e", "book-3e", "book-selu"]
    # Digits' 144 validation rows: the best is the one that cross-validated best, the warm start or a baseline.
    assert evaluation["entries"][0]["trial_number"] == evaluation["selection"]["chosen"] in {0, 1, 2, 3}
    for entry in evaluation["entries"]:
        (run,) = entry["runs"]
        assert 0.0 <= run["test_accuracy"] <= 1.0
        # A baseline's one seed is its tested search run; the best is retrained, never judged on its search run
        # (unless it is a baseline's configuration, whose runs it shares).
        assert ("search_trial" in run) == (entry["kind"] == "baseline" or "baseline" in entry)
        assert entry["test_accuracy_mean"] == run["test_accuracy"] and entry["test_accuracy_std"] == 0.0
        assert len(run["history"]["val_loss"]) == run["epochs"] <= 2
    assert "Final evaluation" in result.out and "book-selu" in result.out and "best is" in result.out
    shown = run_cli("show", "b", "--storage", sqlite_url)
    assert "Best trial 0" in shown.out and "book-2e" in shown.out


def test_studies_and_show_list_what_the_search_stored(run_cli, workdir: Path) -> None:
    assert run_cli(*SEARCH, "--n-trials", "2", "--study", "shown").code == 0
    assert (workdir / "studies" / "shown.db").exists()
    listing = run_cli("studies")
    assert listing.code == 0
    assert "shown" in listing.out and "digits" in listing.out and "quick" in listing.out
    shown = run_cli("show", "shown")
    assert shown.code == 0, shown.err
    assert "Best trial" in shown.out and "Trials:" in shown.out
    assert "learning_rate" in shown.out
    assert "COMPLETE" in shown.out or "PRUNED" in shown.out


def test_a_different_dataset_is_refused_for_an_existing_study(run_cli, sqlite_url) -> None:
    assert run_cli(*SEARCH, "--n-trials", "1", "--storage", sqlite_url, "--study", "d").code == 0
    refused = run_cli("search", "--dataset", "iris", "--space", "quick", "--n-trials", "2", "--storage", sqlite_url,
                      "--study", "d", "--no-baselines")
    assert_user_error(refused, "was made for dataset digits", "--force")
    assert len(optuna.load_study(study_name="d", storage=sqlite_url).trials) == 1


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("search", "--dataset", "digitz"), ["digitz", "Did you mean 'digits'"]),
        (("search", "--space", "nope"), ["search space 'nope' not found"]),
        (("search", "--n-trials", "0"), ["--n-trials must be >= 1"]),
        (("search", "--n-trials", "-3"), ["--n-trials must be >= 1"]),
        (("search", "--max-epochs", "0"), ["--max-epochs must be >= 1"]),
        (("search", "--storage", "notaurl"), ["not a database URL"]),
        (("search", "--dataset", "csv:missing.csv", "--target", "y"), ["missing.csv"]),
        (("search", "--study", "bad name!"), ["not a valid name"]),
        (("search", "--valid-fraction", "0.9"), ["--valid-fraction must be 'auto' or in (0, 0.5]"]),
        (("search", "--n-trials", "many"), ["invalid int value: 'many'"]),
        (("search", "--bogus",), ["unrecognized arguments: --bogus"]),
        (("show", "nothere"), ["no study database"]),
        (("frobnicate",), ["invalid choice: 'frobnicate'"]),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(run_cli, workdir: Path, args, fragments) -> None:
    result = run_cli(*args)
    assert_user_error(result, *fragments)
    assert not list((workdir / "studies").glob("*.db")) if (workdir / "studies").exists() else True


def test_show_names_the_studies_that_exist(run_cli, sqlite_url) -> None:
    assert run_cli(*SEARCH, "--n-trials", "1", "--storage", sqlite_url, "--study", "here").code == 0
    assert_user_error(run_cli("show", "there", "--storage", sqlite_url), "no study named 'there'", "here")


def test_malformed_space_file_is_a_usage_error(run_cli, tmp_path: Path, workdir: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("params:\n  n_hidden: {low: 1, high: 2\n")
    assert_user_error(run_cli("search", "--space", bad), "malformed YAML at line")
    assert not (workdir / "studies").exists() or not list((workdir / "studies").glob("*.db"))


def test_help_is_available_everywhere(run_cli) -> None:
    for command in ((), ("search",), ("studies",), ("show",)):
        result = run_cli(*command, "--help")
        assert result.code == 0 and "usage: autodnn" in result.out


def test_python_dash_m_and_cli_shim_run_the_same_command_line(tmp_path: Path) -> None:
    for command in ([sys.executable, "-m", "autodnn", "show", "x", "--storage", "sqlite:///nowhere/x.db"],
                    [sys.executable, str(REPO / "cli.py"), "show", "x", "--storage", "sqlite:///nowhere/x.db"]):
        done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode == 2 and done.stderr.startswith("Error: no study database"), done.stderr


def test_a_nan_loss_prunes_the_trial_with_its_reason_and_the_search_goes_on(run_cli, sqlite_url,
                                                                            tmp_path: Path) -> None:
    space = tmp_path / "explode.yaml"
    space.write_text("params:\n  n_hidden: 2\n  n_units: 32\n  optimizer: sgd\n"
                     "  learning_rate: {choices: [1.0e+30, 1.0e-2]}\n  batch_size: 64\n")
    result = run_cli("search", "--dataset", "digits", "--space", space, "--max-epochs", "3", "--n-trials", "4",
                     "--seed", "1", "--storage", sqlite_url, "--study", "n", "--no-baselines", "--no-final",
                     "--pruner", "none")
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="n", storage=sqlite_url)
    exploded = [t for t in study.trials if t.params["learning_rate"] == 1e30]
    sane = [t for t in study.trials if t.params["learning_rate"] == 1e-2]
    assert exploded and sane, "the seeded sampler should try both rates in four trials"
    for trial in exploded:
        assert trial.state == TrialState.PRUNED
        assert trial.user_attrs["reason"].startswith("loss became nan") or "inf" in trial.user_attrs["reason"]
        assert trial.user_attrs["result"]["stopped"] == "nan"
    assert all(t.state == TrialState.COMPLETE for t in sane), [(t.state, t.user_attrs.get("reason")) for t in sane]
    assert len(finished(study)) == 4

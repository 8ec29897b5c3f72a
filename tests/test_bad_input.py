"""Bad input: every mistake gives one ``Error:`` line on stderr, exit code 2, no traceback, and leaves the
study database as it was (no study, trial or attribute added or changed, no new database file).

Most cases name an existing study (``--study existing``) in an existing database, so that a half-done command
would show up as a changed study.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import assert_user_error

TINY_SPACE = ("params:\n  n_hidden: 1\n  n_units: 16\n  batch_size: 64\n  patience: 2\n"
              "  learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}\n")


def write_inputs(folder: Path) -> None:
    """The files the cases below name: spaces and CSV datasets, good and broken."""
    (folder / "tiny.yaml").write_text(TINY_SPACE)
    (folder / "other.yaml").write_text(TINY_SPACE.replace("n_units: 16", "n_units: 32"))
    (folder / "malformed.yaml").write_text("params:\n  n_hidden: {low: 1, high: 2\n")
    (folder / "unknown_key.yaml").write_text("params:\n  n_hidden: 1\n  bogus_key: 3\n")
    (folder / "wrong_type.yaml").write_text("params:\n  n_units: {low: one, high: 10}\n")
    (folder / "low_high.yaml").write_text("params:\n  n_units: {low: 100, high: 10}\n")
    (folder / "log_zero.yaml").write_text("params:\n  learning_rate: {low: 0.0, high: 0.1, log: true}\n")
    (folder / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01params")
    (folder / "no_target.csv").write_text("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    (folder / "empty.csv").write_text("")
    (folder / "header_only.csv").write_text("a,b,y\n")
    # Two identifiers (a row number and a text with one value a row) and nothing else: no feature is left.
    (folder / "text.csv").write_text("a,id,y\n" + "".join(f"{i},row-{i:05d},{i % 2}\n" for i in range(1100)))
    (folder / "dates.csv").write_text("x,d,y\n" + "".join(f"{i % 7},2020-01-{i % 28 + 1:02d},{i % 2}\n"
                                                         for i in range(60)))
    # Class 'c' has two rows: too few to be in the training, validation and test parts alike.
    (folder / "small_class.csv").write_text("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(40))
                                            + "1,c\n2,c\n")
    # An integer target with many distinct values (ages, counts): classes or a quantity? The command asks.
    (folder / "counts.csv").write_text("x,n\n" + "".join(f"{i % 13},{(i * 37) % 400}\n" for i in range(300)))
    (folder / "missing_target.csv").write_text("x,y\n1,2.5\n2,\n3,4.5\n4,1.5\n")
    (folder / "constant_target.csv").write_text("x,y\n" + "".join(f"{i},7.25\n" for i in range(40)))
    (folder / "text_target.csv").write_text("x,y\n" + "".join(f"{i},{'ab'[i % 2]}\n" for i in range(40)))
    (folder / "price.csv").write_text("x,z,y\n" + "".join(f"{i},{i % 5},{i * 1.5 + 0.25}\n" for i in range(60)))
    (folder / "folder.csv").mkdir(exist_ok=True)
    (folder / "unreadable.csv").write_text("a,y\n1,0\n2,1\n")
    os.chmod(folder / "unreadable.csv", 0)


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database holding study 'existing' (iris, tiny.yaml) with one finished trial."""
    from autodnn.tuning.options import SearchOptions
    from autodnn.tuning.run import create_or_resume, prepare

    folder = tmp_path_factory.mktemp("existing")
    write_inputs(folder)
    url = f"sqlite:///{folder / 'existing.db'}"
    options = SearchOptions(dataset="iris", space=str(folder / "tiny.yaml"), study="existing", storage=url,
                            n_trials=1, max_epochs=1, baselines=False)
    study = create_or_resume(options, *prepare(options))
    study.add_trial(optuna.trial.create_trial(
        params={"learning_rate": 0.01},
        distributions={"learning_rate": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)},
        value=0.9, user_attrs={"config": {"learning_rate": 0.01}}))
    return url


@pytest.fixture
def inputs(workdir: Path) -> Path:
    write_inputs(workdir)
    return workdir


def snapshot(url: str) -> dict[str, Any]:
    """Everything a half-done command could change in a study database."""
    storage = optuna.storages.RDBStorage(url)
    state = {}
    for name in optuna.get_all_study_names(storage):
        study_id = storage.get_study_id_from_name(name)
        trials = storage.get_all_trials(study_id)
        state[name] = (storage.get_study_user_attrs(study_id), storage.get_study_system_attrs(study_id),
                       [(t.number, t.state, t.params, t.user_attrs, t.system_attrs) for t in trials])
    storage.engine.dispose()
    return state


SEARCH = ("search", "--study", "existing", "--no-final", "--no-baselines", "--max-epochs", "1")

# (id, arguments, fragments of the error line); EXISTING stands for the existing study's storage URL.
EXISTING = "<existing>"
CASES = [
    ("unknown-dataset", (*SEARCH, "--dataset", "digitz", "--storage", EXISTING), ["unknown dataset 'digitz'",
                                                                                  "Did you mean 'digits'"]),
    ("missing-file", (*SEARCH, "--dataset", "csv:missing.csv", "--target", "y", "--storage", EXISTING),
     ["csv:missing.csv", "no such file"]),
    ("file-is-a-folder", (*SEARCH, "--dataset", "csv:folder.csv", "--target", "y", "--storage", EXISTING),
     ["is a folder, not a file"]),
    ("csv-without-target", (*SEARCH, "--dataset", "csv:no_target.csv", "--target", "label", "--storage", EXISTING),
     ["no column 'label'", "Columns are: a, b, y"]),
    ("csv-every-column-dropped", (*SEARCH, "--dataset", "csv:text.csv", "--target", "y", "--storage", EXISTING),
     ["no feature column is left", "'a': an identifier", "'id': an identifier"]),
    ("csv-date-column", (*SEARCH, "--dataset", "csv:dates.csv", "--target", "y", "--storage", EXISTING),
     ["column 'd' holds dates or times", "--drop d"]),
    ("drop-unknown-column", (*SEARCH, "--dataset", "csv:no_target.csv", "--target", "y", "--drop", "zz",
                             "--storage", EXISTING), ["--drop names no column 'zz'", "columns are: a, b, y"]),
    ("drop-the-target", (*SEARCH, "--dataset", "csv:no_target.csv", "--target", "y", "--drop", "y",
                         "--storage", EXISTING), ["--drop names the target column 'y'"]),
    ("conv-space-on-a-table", (*SEARCH, "--dataset", "iris", "--space", "conv", "--storage", EXISTING),
     ["--space conv searches convolutional nets, which need images", "--space default"]),
    ("drop-for-builtin", (*SEARCH, "--dataset", "iris", "--drop", "a", "--storage", EXISTING),
     ["--drop a only applies to csv: and parquet: tables"]),
    ("csv-class-too-small", (*SEARCH, "--dataset", "csv:small_class.csv", "--target", "y", "--storage", EXISTING),
     ["class 'c' has 2 examples", "at least 3 needed", "add examples of it, or drop or merge that class"]),
    ("integer-target-looks-like-a-quantity", (*SEARCH, "--dataset", "csv:counts.csv", "--target", "n",
                                              "--storage", EXISTING),
     ["target column 'n' holds", "distinct whole numbers in 300 rows", "--task regression or --task classification"]),
    ("target-with-missing-values", (*SEARCH, "--dataset", "csv:missing_target.csv", "--target", "y", "--storage",
                                    EXISTING), ["1 of 4 rows have no value in target column 'y'"]),
    ("constant-regression-target", (*SEARCH, "--dataset", "csv:constant_target.csv", "--target", "y", "--storage",
                                    EXISTING), ["holds the same value (7.25) in every row", "nothing to predict"]),
    ("regression-on-text-labels", (*SEARCH, "--dataset", "csv:text_target.csv", "--target", "y", "--task",
                                   "regression", "--storage", EXISTING),
     ["holds text or booleans", "cannot be regressed", "--task classification"]),
    ("roc-auc-on-a-regression", (*SEARCH, "--dataset", "csv:price.csv", "--target", "y", "--metric", "roc_auc",
                                 "--storage", EXISTING), ["--metric roc_auc measures a classification",
                                                          "this target is a regression", "rmse, mae, r2"]),
    ("class-weights-on-a-regression", (*SEARCH, "--dataset", "diabetes", "--class-weight", "balanced",
                                       "--storage", EXISTING), ["--class-weight balanced weighs classes"]),
    ("builtin-regression-as-classes", (*SEARCH, "--dataset", "diabetes", "--task", "classification",
                                       "--storage", EXISTING), ["diabetes is a regression dataset"]),
    ("other-metric-on-resume", (*SEARCH, "--dataset", "iris", "--space", "tiny.yaml", "--metric", "f1_macro",
                                "--storage", EXISTING), ["searches with --metric accuracy, not f1_macro"]),
    ("csv-empty", (*SEARCH, "--dataset", "csv:empty.csv", "--target", "y", "--storage", EXISTING), ["is empty"]),
    ("csv-header-only", (*SEARCH, "--dataset", "csv:header_only.csv", "--target", "y", "--storage", EXISTING),
     ["has a header but no rows"]),
    ("target-for-builtin", (*SEARCH, "--dataset", "iris", "--target", "y", "--storage", EXISTING),
     ["--target y only applies to csv: and parquet: datasets"]),
    ("malformed-yaml", (*SEARCH, "--space", "malformed.yaml", "--storage", EXISTING), ["malformed YAML at line 3"]),
    ("unknown-key", (*SEARCH, "--space", "unknown_key.yaml", "--storage", EXISTING),
     ["params.bogus_key", "is not a hyperparameter"]),
    ("wrong-type", (*SEARCH, "--space", "wrong_type.yaml", "--storage", EXISTING),
     ["params.n_units.low", "'one' is a string"]),
    ("low-above-high", (*SEARCH, "--space", "low_high.yaml", "--storage", EXISTING),
     ["params.n_units: low (100) must be <= high (10)"]),
    ("log-from-zero", (*SEARCH, "--space", "log_zero.yaml", "--storage", EXISTING), ["params.learning_rate", "log"]),
    ("space-not-found", (*SEARCH, "--space", "nope", "--storage", EXISTING), ["search space 'nope' not found"]),
    ("space-not-utf8", (*SEARCH, "--space", "binary.yaml", "--storage", EXISTING), ["cannot read the search space"]),
    ("storage-not-a-url", (*SEARCH, "--dataset", "iris", "--storage", "studies/x.db"), ["is not a database URL"]),
    ("storage-unknown-kind", (*SEARCH, "--dataset", "iris", "--storage", "foo://host/db"),
     ["unknown database kind 'foo'"]),
    ("storage-driver-missing", (*SEARCH, "--dataset", "iris", "--storage", "postgresql+psycopg://u@127.0.0.1/x"),
     ["driver", "is not installed", "autodnn[postgres]"]),
    ("postgres-unreachable", (*SEARCH, "--dataset", "iris", "--storage", "postgresql://u:secret@127.0.0.1:1/x"),
     ["cannot open storage postgresql://u:***@127.0.0.1:1/x", "Connection refused"]),
    ("mysql-unreachable", (*SEARCH, "--dataset", "iris", "--storage", "mysql+pymysql://u:secret@127.0.0.1:1/x"),
     ["cannot open storage mysql+pymysql://u:***@127.0.0.1:1/x", "Connection refused"]),
    ("sqlite-folder-missing", (*SEARCH, "--dataset", "iris", "--storage", "sqlite:///nowhere/x.db"),
     ["folder nowhere does not exist"]),
    ("other-dataset", (*SEARCH, "--dataset", "wine", "--space", "tiny.yaml", "--storage", EXISTING),
     ["was made for dataset iris", "not wine", "--force"]),
    ("other-valid-fraction", (*SEARCH, "--dataset", "iris", "--space", "tiny.yaml", "--valid-fraction", "0.1",
                              "--storage", EXISTING),
     ["holds out 0.25 of the training part for validation, not 0.1", "resume with --valid-fraction 0.25"]),
    ("valid-fraction-not-a-number", (*SEARCH, "--valid-fraction", "a tenth", "--storage", EXISTING),
     ["'a tenth' is neither auto nor a number"]),
    ("other-space", (*SEARCH, "--dataset", "iris", "--space", "other.yaml", "--storage", EXISTING),
     ["was made with search space tiny", "not other", "--force"]),
    ("zero-trials", (*SEARCH, "--n-trials", "0", "--storage", EXISTING), ["--n-trials must be >= 1, but got 0"]),
    ("negative-trials", (*SEARCH, "--n-trials", "-3", "--storage", EXISTING), ["--n-trials must be >= 1, but got -3"]),
    ("zero-epochs", (*SEARCH, "--max-epochs", "0", "--storage", EXISTING), ["--max-epochs must be >= 1"]),
    ("negative-timeout", (*SEARCH, "--timeout", "-5", "--storage", EXISTING), ["--timeout must be > 0"]),
    ("zero-workers", (*SEARCH, "--workers", "0", "--storage", EXISTING), ["--workers must be >= 1, but got 0"]),
    ("zero-epoch-budget", (*SEARCH, "--epoch-budget", "0", "--storage", EXISTING),
     ["--epoch-budget must be >= 1 epochs, but got 0"]),
    ("unknown-strategy", (*SEARCH, "--engine", "keras-tuner", "--strategy", "grid", "--storage", EXISTING),
     ["invalid choice: 'grid'"]),
    ("other-engine", (*SEARCH, "--dataset", "iris", "--space", "tiny.yaml", "--engine", "keras-tuner",
                      "--storage", EXISTING), ["was searched with engine optuna", "not keras-tuner (hyperband)",
                                               "--force"]),
    ("other-precision", (*SEARCH, "--dataset", "iris", "--space", "tiny.yaml", "--precision", "mixed_bfloat16",
                         "--storage", EXISTING), ["trains in float32, not mixed_bfloat16", "--precision float32"]),
    ("unknown-precision", (*SEARCH, "--precision", "float16", "--storage", EXISTING), ["invalid choice: 'float16'"]),
    ("keras-tuner-workers", (*SEARCH, "--engine", "keras-tuner", "--workers", "3", "--storage", EXISTING),
     ["--engine keras-tuner runs in one process"]),
    ("missing-gpu", (*SEARCH, "--dataset", "iris", "--space", "tiny.yaml", "--gpus", "0,7", "--storage", EXISTING),
     ["--gpus 0,7: no GPU", "7", "on this machine"]),
    ("gpus-not-indices", (*SEARCH, "--gpus", "first", "--storage", EXISTING), ["is not a list of GPU indices"]),
    ("trials-per-gpu-alone", (*SEARCH, "--trials-per-gpu", "2", "--storage", EXISTING), ["--trials-per-gpu needs --gpus"]),
    ("workers-on-memory", (*SEARCH, "--dataset", "iris", "--space", "tiny.yaml", "--workers", "2", "--storage",
                           "sqlite:///:memory:"), ["lives in one process's memory"]),
    ("worker-unknown-study", ("worker", "--study", "ghost", "--storage", EXISTING),
     ["no study named 'ghost'", "studies there: existing"]),
    ("worker-bad-backend", ("worker", "--study", "existing", "--backend", "theano"), ["invalid choice: 'theano'"]),
    ("show-unknown-study", ("show", "ghost", "--storage", EXISTING), ["no study named 'ghost'"]),
    ("dashboard-bad-port", ("dashboard", "existing", "--storage", EXISTING, "--port", "70000"),
     ["--port must be in 1..65535"]),
    ("unknown-flag", (*SEARCH, "--n-trails", "3"), ["unrecognized arguments: --n-trails"]),
]


@pytest.mark.parametrize(("args", "fragments"), [pytest.param(a, f, id=i) for i, a, f in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(run_cli, inputs: Path, existing: str, args: tuple,
                                                          fragments: list[str]) -> None:
    before = snapshot(existing)
    result = run_cli(*(existing if a == EXISTING else a for a in args))
    assert_user_error(result, *fragments)
    assert "secret" not in result.err + result.out
    assert snapshot(existing) == before
    assert not (inputs / "studies").exists() or not list((inputs / "studies").iterdir())


def test_an_unreadable_file_is_a_bad_input(run_cli, inputs: Path, existing: str) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their permissions")
    before = snapshot(existing)
    result = run_cli(*SEARCH, "--dataset", "csv:unreadable.csv", "--target", "y", "--storage", existing)
    assert_user_error(result, "unreadable.csv", "permission denied")
    assert snapshot(existing) == before


def test_invalid_heartbeat_settings_are_a_bad_input(run_cli, inputs: Path, existing: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTODNN_GRACE_PERIOD", "soon")
    before = snapshot(existing)
    assert_user_error(run_cli(*SEARCH, "--dataset", "iris", "--space", "tiny.yaml", "--storage", existing),
                      "AUTODNN_GRACE_PERIOD must be a whole number of seconds")
    assert snapshot(existing) == before


def test_a_worker_refuses_a_study_not_made_by_autodnn(run_cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    optuna.create_study(study_name="plain", storage=url)
    before = snapshot(url)
    assert_user_error(run_cli("worker", "--study", "plain", "--storage", url),
                      "was not made by 'autodnn search'")
    assert snapshot(url) == before


def test_an_unwritable_report_path_is_a_bad_input(run_cli, existing: str, tmp_path: Path) -> None:
    pytest.importorskip("autodnn.report", reason="autodnn.report is not there yet")
    before = snapshot(existing)
    result = run_cli("report", "existing", "--storage", existing, "-o", str(tmp_path / "missing" / "dir" / "r.html"))
    assert_user_error(result, "r.html")
    assert snapshot(existing) == before and not (tmp_path / "missing").exists()


def test_force_continues_a_study_made_for_another_dataset(run_cli, inputs: Path, tmp_path: Path) -> None:
    from autodnn.tuning.options import SearchOptions
    from autodnn.tuning.run import create_or_resume, prepare

    url = f"sqlite:///{tmp_path / 'forced.db'}"
    options = SearchOptions(dataset="iris", space="tiny.yaml", study="f", storage=url, n_trials=1, baselines=False)
    study = create_or_resume(options, *prepare(options))
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=0.5))
    refused = run_cli(*SEARCH[:1], "--study", "f", "--dataset", "wine", "--space", "tiny.yaml", "--storage", url,
                      "--n-trials", "1", "--no-final", "--no-baselines")
    assert_user_error(refused, "was made for dataset iris")
    forced = run_cli(*SEARCH[:1], "--study", "f", "--dataset", "wine", "--space", "tiny.yaml", "--storage", url,
                     "--n-trials", "1", "--no-final", "--no-baselines", "--force")
    assert forced.code == 0, forced.err
    attrs = optuna.load_study(study_name="f", storage=url).user_attrs
    assert attrs["dataset"]["name"] == "wine" and attrs["settings"]["dataset_spec"] == "wine"


@pytest.mark.parametrize(("text", "seconds"), [("900", 900.0), ("90s", 90.0), ("30m", 1800.0), ("2h", 7200.0),
                                               ("1h30m", 5400.0), ("1.5h", 5400.0)])
def test_a_timeout_is_read_as_seconds_or_hours_minutes_and_seconds(text: str, seconds: float) -> None:
    from autodnn.cli._parser import duration

    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["3x", "", "m", "1h-5m"])
def test_a_timeout_that_is_no_duration_is_one_clear_error(run_cli, text: str) -> None:
    result = run_cli("search", "--timeout", text)
    assert_user_error(result, "--timeout", "is not a duration", "30m")

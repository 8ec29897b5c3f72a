"""``--tensorboard DIR``: per-trial event files with the epoch scalars and the HParams plugin's data, read back."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from conftest import REPO, assert_user_error
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata
from tensorboard.util import tensor_util

SEARCH = ("search", "--dataset", "digits", "--max-epochs", "3", "--no-final")
SCALARS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def read_run(folder: Path) -> EventAccumulator:
    """Every event of the files directly in ``folder`` (TensorBoard's own reader; nothing sampled away)."""
    events = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    return events


def scalars(events: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    """Steps and values of a scalar written with ``tf.summary.scalar``."""
    found = events.Tensors(tag)
    return [e.step for e in found], [float(tensor_util.make_ndarray(e.tensor_proto)) for e in found]


def session_hparams(events: EventAccumulator) -> tuple[str, dict]:
    """The run's name in the HParams view and its hyperparameters, decoded from the plugin's content."""
    content = events.SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
    info = metadata.parse_session_start_info_plugin_data(content)
    return info.group_name, {name: getattr(value, value.WhichOneof("kind")) for name, value in info.hparams.items()}


def experiment(root: Path):
    events = read_run(root)
    content = events.SummaryMetadata(metadata.EXPERIMENT_TAG).plugin_data.content
    return metadata.parse_experiment_plugin_data(content)


def assert_epochs_logged(events: EventAccumulator, trial: optuna.trial.FrozenTrial) -> None:
    """One value per epoch the trial trained, equal (in float32) to the history stored in the study."""
    history = trial.user_attrs["history"]
    epochs = len(history["val_loss"])
    assert epochs >= 1
    for tag in SCALARS:
        steps, values = scalars(events, tag)
        assert steps == list(range(epochs)), (tag, steps)
        assert values == pytest.approx(history[tag], rel=1e-6), tag


def test_a_search_logs_each_trial_and_the_experiment(run_cli, sqlite_url, tmp_path: Path) -> None:
    logs = tmp_path / "tb"
    result = run_cli(*SEARCH, "--space", "quick", "--n-trials", "2", "--no-baselines", "--storage", sqlite_url,
                     "--study", "tb", "--tensorboard", logs)
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="tb", storage=sqlite_url)
    assert study.user_attrs["settings"]["tensorboard"] == str(logs)
    assert sorted(p.name for p in logs.iterdir() if p.is_dir()) == ["trial-0000", "trial-0001"]
    for trial in study.trials:
        folder = logs / f"trial-{trial.number:04d}"
        events = read_run(folder)
        assert_epochs_logged(events, trial)
        name, hparams = session_hparams(events)
        assert name == folder.name
        assert hparams == trial.params
        assert "momentum" not in events.Tags()["tensors"], "the quick space has no 1cycle"

    found = experiment(logs)
    space = study.user_attrs["space"]["params"]
    searched = {name for name, spec in space.items() if "value" not in spec}
    assert {info.name for info in found.hparam_infos} == searched
    assert found.metric_infos[0].name.tag == "val_accuracy"
    domains = {info.name: info for info in found.hparam_infos}
    assert (domains["n_hidden"].domain_interval.min_value, domains["n_hidden"].domain_interval.max_value) == (1, 3)
    assert sorted(domains["activation"].domain_discrete.values[i].string_value for i in range(3)) == [
        "elu", "relu", "swish"]


def test_baselines_log_into_named_folders_with_their_configuration(run_cli, sqlite_url, tmp_path: Path) -> None:
    space = tmp_path / "small.yaml"
    # A fixed shape keeps the book's baselines small; `clipnorm` mixes null and numbers, logged as strings.
    space.write_text("params:\n  n_hidden: 2\n  n_units: 32\n  learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n"
                     "  clipnorm: {choices: [null, 1.0]}\n")
    logs = tmp_path / "tb"
    result = run_cli(*SEARCH, "--space", space, "--max-epochs", "2", "--n-trials", "1", "--storage", sqlite_url,
                     "--study", "tbb", "--tensorboard", logs)
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="tbb", storage=sqlite_url)
    names = ["trial-0000", "trial-0001-book-2e", "trial-0002-book-3e", "trial-0003-book-selu"]  # a warm start first
    assert sorted(p.name for p in logs.iterdir() if p.is_dir()) == names
    for trial, name in zip(study.trials, names, strict=True):
        events = read_run(logs / name)
        assert_epochs_logged(events, trial)
        group, hparams = session_hparams(events)
        assert group == name
        if trial.user_attrs.get("baseline"):
            config = trial.user_attrs["config"]
            assert hparams == {"learning_rate": config["learning_rate"], "clipnorm": str(config["clipnorm"])}
        else:
            params = trial.params
            assert hparams == {"learning_rate": params["learning_rate"], "clipnorm": str(params["clipnorm"])}
    domains = {info.name: info for info in experiment(logs).hparam_infos}
    assert sorted(v.string_value for v in domains["clipnorm"].domain_discrete.values) == ["1.0", "None"]


def test_a_worker_writes_where_the_study_says_from_its_own_working_directory(
        run_cli, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{workdir / 'w.db'}"
    first = run_cli(*SEARCH, "--space", "quick", "--n-trials", "1", "--no-baselines", "--storage", url, "--study", "w",
                    "--tensorboard", "runs")
    assert first.code == 0, first.err
    study = optuna.load_study(study_name="w", storage=url)
    assert study.user_attrs["settings"]["tensorboard"] == "runs", "recorded as given, relative"
    study.set_user_attr("settings", {**study.user_attrs["settings"], "n_trials": 2})
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    joined = run_cli("worker", "--study", "w", "--storage", url, "--quiet")
    assert joined.code == 0, joined.err
    assert [p.name for p in (workdir / "runs").iterdir() if p.is_dir()] == ["trial-0000"]
    assert [p.name for p in (elsewhere / "runs").iterdir() if p.is_dir()] == ["trial-0001"]
    assert experiment(elsewhere / "runs").metric_infos[0].name.tag == "val_accuracy"
    second = optuna.load_study(study_name="w", storage=url).trials[1]
    assert_epochs_logged(read_run(elsewhere / "runs" / "trial-0001"), second)

    (elsewhere / "a-file").write_text("not a folder")
    study.set_user_attr("settings", {**study.user_attrs["settings"], "n_trials": 3, "tensorboard": "a-file/runs"})
    assert_user_error(run_cli("worker", "--study", "w", "--storage", url), "--tensorboard", "a-file")
    assert len(optuna.load_study(study_name="w", storage=url).trials) == 2


@pytest.mark.parametrize(("optimizer", "tag"), [("momentum", "momentum"), ("adam", "beta_1")])
def test_1cycle_logs_the_momentum_it_cycles(tmp_path: Path, optimizer: str, tag: str) -> None:
    from test_trainer import blobs

    from autodnn.config import TrialConfig
    from autodnn.optim import OneCycleMomentum
    from autodnn.training import loops
    from autodnn.training.trainer import train

    config = TrialConfig(n_hidden=1, n_units=8, batch_size=32, learning_rate=1e-2, optimizer=optimizer,
                         schedule="1cycle", momentum_max=0.95, momentum_min=0.85, patience=5)
    dataset = blobs(200, 50, 50)
    result = train(config, dataset, max_epochs=2, seed=0, tensorboard_dir=tmp_path / "run",
                   hparams={"optimizer": optimizer})
    events = read_run(tmp_path / "run")
    steps, values = scalars(events, tag)
    spe = loops.steps_per_epoch(len(dataset.x_train), config.batch_size)
    cycle = OneCycleMomentum(0.95, 0.85, total_steps=spe * 2, last_fraction=config.onecycle_last_fraction)
    assert steps == [0, 1]
    assert values == pytest.approx([float(cycle(spe * (epoch + 1))) for epoch in steps], rel=1e-6)
    assert values[0] < 0.95, "mid-cycle, the momentum is below its maximum"
    assert scalars(events, "learning_rate")[1] == pytest.approx(result.history["learning_rate"], rel=1e-6)
    assert session_hparams(events)[1] == {"optimizer": optimizer}


def test_a_folder_that_cannot_be_made_is_one_line_and_writes_nothing(run_cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    url = f"sqlite:///{tmp_path / 'never.db'}"
    result = run_cli(*SEARCH, "--space", "quick", "--n-trials", "1", "--storage", url, "--tensorboard", blocker / "tb")
    assert_user_error(result, "--tensorboard", "cannot be created", "is a file")
    assert_user_error(run_cli(*SEARCH, "--storage", url, "--tensorboard", blocker), "is a file, not a folder")
    assert_user_error(run_cli(*SEARCH, "--storage", url, "--tensorboard", tmp_path / "tb", "--engine", "keras-tuner"),
                      "--tensorboard", "keras-tuner")
    assert not (tmp_path / "never.db").exists()
    assert not (tmp_path / "tb").exists()


def test_without_tensorboard_installed_the_option_is_one_line(run_cli, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    find = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else find(name, *a))
    url = f"sqlite:///{tmp_path / 'never.db'}"
    result = run_cli(*SEARCH, "--storage", url, "--tensorboard", tmp_path / "tb")
    assert_user_error(result, "--tensorboard needs TensorFlow's tensorboard package: pip install tensorboard")
    assert not (tmp_path / "never.db").exists()


def test_training_without_logs_loads_no_tensorboard() -> None:
    code = "import sys, json, autodnn.training.trainer, autodnn.objective; print(json.dumps('tensorboard' in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) is False

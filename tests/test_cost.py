"""The cost model: predicted epoch seconds from a configuration's shape, calibrated by the study's trials, and
a search that starts no trial the time left cannot pay for."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from autodnn.config import TrialConfig
from autodnn.study import cost
from autodnn.study.trial_record import MEASURED, PREDICTED, steady_epoch_seconds


def test_multiply_adds_count_the_weights_of_the_dense_layers() -> None:
    config = TrialConfig(n_hidden=2, n_units=100, first_layer_factor=2.0)
    assert config.hidden_units == [200, 100]
    assert cost.multiply_adds(config, 64, 10) == 64 * 200 + 200 * 100 + 100 * 10


def test_a_convnet_counts_the_multiply_adds_of_its_convolutions_at_each_resolution() -> None:
    config = TrialConfig(family="conv", conv_filters=16, conv_groups=2, conv_blocks=1, stem_kernel=3, kernel_size=3,
                         n_hidden=1, n_units=32, conv_head="gap")
    stem = 32 * 32 * 9 * 3 * 16
    group_1 = 32 * 32 * 9 * 16 * 32  # pooled to 16 x 16 after it
    group_2 = 16 * 16 * 9 * 32 * 64  # pooled to 8 x 8
    head = 64 * 32 + 32 * 10
    assert cost.conv_multiply_adds(config, (32, 32, 3), 10) == (stem + group_1 + group_2 + head, 3 + 2)
    assert cost.multiply_adds(config, 3072, 10, (32, 32, 3)) == stem + group_1 + group_2 + head
    strided = config.replace(conv_block="residual", downsample="stride", conv_head="flatten")
    # A residual block's two convolutions and its projection, its first at the stride: 32 -> 16 -> 8.
    residual = (16 * 16 * (9 * 16 * 32 + 9 * 32 * 32 + 16 * 32) + 8 * 8 * (9 * 32 * 64 + 9 * 64 * 64 + 32 * 64))
    assert cost.conv_multiply_adds(strided, (32, 32, 3), 10) == (stem + residual + 8 * 8 * 64 * 32 + 32 * 10, 1 + 6 + 2)


def test_convnets_and_dense_nets_are_calibrated_apart() -> None:
    study = optuna.create_study(direction="maximize")
    dense = TrialConfig(n_hidden=2, n_units=100, batch_size=64)
    conv = TrialConfig(family="conv", conv_filters=16, conv_groups=2, batch_size=64)
    for config, seconds in ((dense, 1.0), (conv, 50.0)):
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"config": config.to_dict(),
                                                                         MEASURED: seconds}))
    shape = (32, 32, 3)
    for config, seconds in ((dense, 1.0), (conv, 50.0)):
        rates = cost.calibrate(study.trials, 3072, 10, 45_000, shape, config.family)
        assert cost.predict_epoch_seconds(config, 3072, 10, 45_000, rates, shape) == pytest.approx(seconds)
    fresh = optuna.create_study(direction="maximize")
    assert cost.calibrate(fresh.trials, 3072, 10, 45_000, shape, "conv")[0] == cost.conv_prior()


@pytest.mark.parametrize(("backend", "book_cnn_epoch"), [("tensorflow", (900, 1100)), ("jax", (1700, 2100))])
def test_a_convnets_prior_follows_the_backend_it_trains_on(monkeypatch: pytest.MonkeyPatch, backend: str,
                                                           book_cnn_epoch: tuple[float, float]) -> None:
    from autodnn.defaults import BOOK_CNN

    # Before a study has measured a convnet, TensorFlow's oneDNN convolutions are priced at what the conv space's
    # designed start costs on 2 CPU cores (the book's CNN then at about 1,000 s a CIFAR-10 epoch, long for so wide
    # a net), not at JAX's slower rate.
    monkeypatch.setenv("KERAS_BACKEND", backend)
    rates = cost.calibrate([], 3072, 10, 45_000, (32, 32, 3), "conv")
    epoch = cost.predict_epoch_seconds(BOOK_CNN.config, 3072, 10, 45_000, rates, (32, 32, 3))
    assert book_cnn_epoch[0] < epoch < book_cnn_epoch[1]


def test_the_prediction_follows_the_rates_the_study_measured() -> None:
    study = optuna.create_study(direction="maximize")
    small = TrialConfig(n_hidden=1, n_units=50, batch_size=100)
    assert cost.calibrate(study.trials, 64, 10, 1000) == (cost.PRIOR_SECONDS_PER_MAC, cost.PRIOR_SECONDS_PER_STEP)
    # A trial of `small` whose epochs took 0.5 s makes every multiply-add that much dearer.
    measured = 0.5
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"config": small.to_dict(),
                                                                     MEASURED: measured}))
    rates = cost.calibrate(study.trials, 64, 10, 1000)
    assert cost.predict_epoch_seconds(small, 64, 10, 1000, rates) == pytest.approx(measured)
    large = small.replace(n_units=500)
    ratio = cost.multiply_adds(large, 64, 10) / cost.multiply_adds(small, 64, 10)
    step_part = rates[1] * cost.layer_steps(small, 1000)
    assert cost.predict_epoch_seconds(large, 64, 10, 1000, rates) == pytest.approx(
        (measured - step_part) * ratio + step_part)


def test_with_enough_trials_both_rates_are_fitted_so_deep_small_batch_nets_cost_what_they_measured() -> None:
    per_mac, per_step = 3e-11, 5e-5
    shapes = [(3, 1024, 256), (20, 100, 32), (12, 300, 16), (2, 256, 128)]
    configs = [TrialConfig(n_hidden=depth, n_units=width, batch_size=batch) for depth, width, batch in shapes]
    study = optuna.create_study(direction="maximize")
    for config in configs:  # epochs measured exactly as the two-rate model says
        seconds = cost.predict_epoch_seconds(config, 3072, 10, 45_000, (per_mac, per_step))
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"config": config.to_dict(),
                                                                         MEASURED: seconds}))
    assert cost.calibrate(study.trials, 3072, 10, 45_000) == (pytest.approx(per_mac), pytest.approx(per_step))


def test_steady_epoch_seconds_leave_out_the_compiling_first_epoch() -> None:
    assert steady_epoch_seconds([3.0, 0.2, 0.4, 0.3]) == pytest.approx(0.3)
    assert steady_epoch_seconds([1.5]) is None, "a single epoch also compiled: not a steady one"
    assert steady_epoch_seconds([]) is None


def test_every_trial_records_its_predicted_and_measured_epoch_seconds_for_show(run_cli, sqlite_url: str) -> None:
    search = ("search", "--dataset", "digits", "--space", "quick", "--max-epochs", "3", "--no-baselines",
              "--no-final", "--n-trials", "3", "--storage", sqlite_url, "--study", "c")
    assert run_cli(*search).code == 0
    for trial in optuna.load_study(study_name="c", storage=sqlite_url).trials:
        assert trial.user_attrs[PREDICTED] > 0
        steady = steady_epoch_seconds(trial.user_attrs["epoch_times"])
        assert trial.user_attrs[MEASURED] == (None if steady is None else pytest.approx(steady))
    shown = run_cli("show", "c", "--storage", sqlite_url)
    assert shown.code == 0 and "predicted_s" in shown.out and "epoch_s" in shown.out


def test_a_search_whose_time_cannot_pay_for_a_first_epoch_starts_no_training(tmp_path: Path) -> None:
    import autodnn

    url = f"sqlite:///{tmp_path / 'n.db'}"
    start = time.monotonic()
    study = autodnn.search(dataset="digits", space="quick", study="n", storage=url, n_trials=20, max_epochs=50,
                           timeout=cost.FIXED_SECONDS / 2, baselines=False)
    assert time.monotonic() - start < 60
    trials = study.get_trials(deepcopy=False)
    assert 1 <= len(trials) <= 3, "the search stops drawing once the time left pays for no configuration"
    # On a loaded machine the deadline can pass before the first trial is asked for; then nothing is refused
    # because nothing was started, and the queued warm starts stay queued.
    for trial in (t for t in trials if t.state != TrialState.WAITING):
        assert trial.state == TrialState.PRUNED
        assert trial.user_attrs["reason"].startswith("not started: its first epoch would take about ")
        assert "history" not in trial.user_attrs
    # Warm starts still queued when the time ran out stay queued, untrained.
    for trial in trials:
        if trial.state == TrialState.WAITING:
            assert "warm_start" in trial.user_attrs and "history" not in trial.user_attrs

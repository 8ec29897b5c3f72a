"""Population training: each member trains as it would alone, and members do not leak into each other."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from autodnn.config import TrialConfig
from autodnn.training.population import population_key, train_population
from autodnn.training.trainer import train
from tests.test_programs import BASE, PAIRS
from tests.test_trainer import StopAt, blobs

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="populations train on JAX")

EPOCHS = 4


@pytest.fixture(scope="module")
def dataset():
    return blobs(576, 150, 150)


def assert_same_run(member, alone, rtol=2e-4):
    assert member.epochs == alone.epochs and member.stopped == alone.stopped
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"):
        np.testing.assert_allclose(member.history[name], alone.history[name], rtol=rtol, atol=1e-6, err_msg=name)
    assert member.val_loss == pytest.approx(alone.val_loss, rel=rtol)
    assert member.best_epoch == alone.best_epoch


@pytest.mark.parametrize(("first", "change"), PAIRS)
def test_each_member_trains_as_it_would_alone(dataset, first, change):
    config = BASE.replace(**first)
    configs = [config, config.replace(**change), config]
    seeds = [0, 1, 2]
    members = train_population(configs, dataset, max_epochs=EPOCHS, seeds=seeds, evaluate_test=True)
    for member, c, seed in zip(members, configs, seeds):
        alone = train(c, dataset, max_epochs=EPOCHS, seed=seed, evaluate_test=True)
        assert_same_run(member, alone)
        assert member.test_accuracy == pytest.approx(alone.test_accuracy, abs=1 / 150 + 1e-9)
    # Seeds 0 and 2 of one configuration are different runs, not copies of one.
    assert not np.allclose(members[0].history["loss"], members[2].history["loss"])


def test_a_diverging_member_leaves_the_others_unchanged(dataset):
    good = BASE.replace(optimizer="sgd", learning_rate=0.05)
    bad = good.replace(learning_rate=1e30)
    members = train_population([good, bad, good], dataset, max_epochs=EPOCHS, seeds=[0, 0, 1])
    assert members[1].stopped == "nan" and members[1].epochs < EPOCHS
    for member, seed in ((members[0], 0), (members[2], 1)):
        assert_same_run(member, train(good, dataset, max_epochs=EPOCHS, seed=seed))


def test_a_pruned_member_stops_and_the_others_go_on(dataset):
    config = BASE.replace(learning_rate=3e-3)
    stop = StopAt(0)
    members = train_population([config] * 3, dataset, max_epochs=EPOCHS, seeds=[0, 1, 2],
                               reporters=[None, stop, None])
    assert members[1].stopped == "pruned" and members[1].epochs == 1 and len(stop.reports) == 1
    assert "epoch_seconds" not in stop.reports[0][1]
    assert members[0].epochs == members[2].epochs == EPOCHS
    assert_same_run(members[2], train(config, dataset, max_epochs=EPOCHS, seed=2))
    assert_same_run(members[1], train(config, dataset, max_epochs=EPOCHS, seed=1, reporter=StopAt(0)))


def test_members_share_the_wall_time(dataset):
    start = time.perf_counter()
    members = train_population([BASE] * 4, dataset, max_epochs=EPOCHS, seeds=[0, 1, 2, 3])
    wall = time.perf_counter() - start
    shares = [sum(m.epoch_times) for m in members]
    assert max(shares) == pytest.approx(min(shares), rel=1e-6)
    assert sum(shares) <= wall


def test_members_must_share_a_program(dataset):
    other = BASE.replace(n_units=BASE.n_units + 1)
    assert population_key(BASE, dataset, max_epochs=EPOCHS) != population_key(other, dataset, max_epochs=EPOCHS)
    with pytest.raises(ValueError, match="share one program"):
        train_population([BASE, other], dataset, max_epochs=EPOCHS, seeds=[0, 1])
    with pytest.raises(ValueError, match="one seed"):
        train_population([BASE, BASE], dataset, max_epochs=EPOCHS, seeds=[0])


def test_a_population_of_one_is_a_plain_training(dataset):
    config = TrialConfig(n_hidden=1, n_units=8)
    (member,) = train_population([config], dataset, max_epochs=2, seeds=[5])
    assert_same_run(member, train(config, dataset, max_epochs=2, seed=5), rtol=1e-7)


def test_other_backends_train_the_members_one_at_a_time_and_say_so_once(dataset, monkeypatch, caplog):
    from autodnn.training import population

    monkeypatch.setattr(population, "_backend", lambda: "torch")
    monkeypatch.setattr(population, "_SAID", set())
    configs = [BASE, BASE.replace(learning_rate=3e-3)]
    with caplog.at_level("WARNING", logger="autodnn.training.population"):
        first = train_population(configs, dataset, max_epochs=2, seeds=[0, 1])
        train_population(configs, dataset, max_epochs=2, seeds=[0, 1])
    said = [r.getMessage() for r in caplog.records if "one at a time" in r.getMessage()]
    assert said == ["population training needs the JAX backend; on torch the trials train one at a time."]
    for member, config, seed in zip(first, configs, [0, 1]):
        assert_same_run(member, train(config, dataset, max_epochs=2, seed=seed), rtol=1e-7)

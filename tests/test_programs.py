"""One compiled program per architecture: float hyperparameters are state, and reusing the program changes nothing."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from autodnn.config import TrialConfig
from autodnn.training import jax_loop
from autodnn.training.programs import HELD_FIELDS, ProgramCache, program_key
from autodnn.training.trainer import train
from tests.test_trainer import blobs

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the program cache is the JAX loop's")

SHAPE = {"n_features": 12, "n_classes": 3, "steps": 18, "batch": 32, "epochs": 4, "precision": "float32"}
BASE = TrialConfig(n_hidden=2, n_units=16, batch_size=32)

# Each pair: a configuration and one that differs from it only in fields the program holds as state.
# Together they cover every optimizer and schedule of the space, both kinds of clipping, weight decay,
# dropout, alpha dropout and 1cycle's momentum cycling.
PAIRS = [
    ({"optimizer": "sgd", "schedule": "constant"}, {"learning_rate": 0.05}),
    ({"optimizer": "momentum", "schedule": "exponential", "decay_epochs": 2.0, "clipnorm": 1.0},
     {"momentum": 0.5, "decay_epochs": 5.0, "clipnorm": 0.3, "learning_rate": 0.02}),
    ({"optimizer": "nesterov", "schedule": "1cycle", "dropout": 0.2},
     {"momentum_max": 0.99, "momentum_min": 0.6, "dropout": 0.4, "learning_rate": 0.05}),
    ({"optimizer": "adagrad", "schedule": "piecewise", "piecewise_epochs": (1, 2), "clipvalue": 1.0},
     {"piecewise_factors": (1.0, 0.3, 0.01), "clipvalue": 0.05, "learning_rate": 0.05}),
    ({"optimizer": "rmsprop", "schedule": "power", "rho": 0.9}, {"rho": 0.99, "power_c": 2.0, "learning_rate": 3e-3}),
    ({"optimizer": "adam", "schedule": "cosine", "weight_decay": 1e-3}, {"beta_1": 0.5, "beta_2": 0.9, "weight_decay": 0.1}),
    ({"optimizer": "adamax", "schedule": "performance", "plateau_patience": 1}, {"beta_1": 0.8, "learning_rate": 0.02}),
    ({"optimizer": "nadam", "schedule": "1cycle", "normalization": "batch_norm_before"},
     {"momentum_max": 0.9, "momentum_min": 0.5, "learning_rate": 0.02, "onecycle_div": 3.0}),
    ({"optimizer": "adamw", "schedule": "constant", "activation": "selu", "initializer": "lecun", "alpha_dropout": 0.1,
          "weight_decay": 1e-4}, {"alpha_dropout": 0.2, "weight_decay": 0.05, "learning_rate": 3e-3}),
]


@pytest.fixture(scope="module")
def dataset():
    return blobs(576, 150, 150)


def key(config: TrialConfig, **shape) -> tuple:
    return program_key(config, **{**SHAPE, **shape})


@pytest.mark.parametrize(("first", "change"), PAIRS)
def test_held_fields_do_not_change_the_key(first, change):
    config = BASE.replace(**first)
    assert set(change) <= HELD_FIELDS
    assert key(config) == key(config.replace(**change))


@pytest.mark.parametrize(
    "change",
    [{"n_units": 17}, {"optimizer": "nadam"}, {"schedule": "cosine"}, {"dropout": 0.1}, {"clipnorm": 1.0},
     {"activation": "elu"}, {"normalization": "batch_norm_after"}, {"l2": 1e-4}, {"max_norm": 2.0},
     {"batch_size": 64}],
)
def test_structure_changes_the_key(change):
    assert key(BASE) != key(BASE.replace(**change))


def test_the_key_knows_the_data_shape_and_the_plan():
    config = BASE.replace(schedule="cosine")
    assert key(config) != key(config, epochs=5)  # the schedule's table is longer
    assert key(BASE) == key(BASE, epochs=5)  # a constant rate has no table
    assert key(BASE) != key(BASE, n_features=13)
    assert key(BASE) != key(BASE, precision="mixed_bfloat16")
    # Images come as flat rows that the network unflattens: as many pixels in another shape is another program.
    assert key(BASE, n_features=3072, image_shape=(32, 32, 3)) != key(BASE, n_features=3072, image_shape=(64, 16, 3))
    assert key(BASE, n_features=3072, image_shape=(32, 32, 3)) != key(BASE, n_features=3072)


def test_a_run_keys_its_program_by_the_epochs_it_trains(dataset):
    from autodnn.training.trainer import prepare

    def run_key(config: TrialConfig) -> tuple:
        return prepare(config, dataset, max_epochs=10).program_key

    cosine = BASE.replace(schedule="cosine")
    assert run_key(cosine.replace(epochs=3)) != run_key(cosine)  # a table of 3 epochs, not of 10
    assert run_key(cosine.replace(epochs=30)) == run_key(cosine)  # cut to the budget: the same 10
    assert run_key(BASE.replace(epochs=3)) == run_key(BASE)  # a constant rate: the loop alone stops sooner


@pytest.mark.parametrize(("first", "change"), PAIRS)
def test_a_reused_program_trains_exactly_as_a_fresh_one(dataset, first, change):
    config = BASE.replace(**first)
    other = config.replace(**change)
    jax_loop.PROGRAMS.clear()
    train(config, dataset, max_epochs=4, seed=0)
    traces = jax_loop.TRACES[0]
    reused = train(other, dataset, max_epochs=4, seed=1)
    assert jax_loop.TRACES[0] == traces, "the second configuration traced its own epoch"
    jax_loop.PROGRAMS.clear()
    fresh = train(other, dataset, max_epochs=4, seed=1)
    assert jax_loop.TRACES[0] == traces + 1
    for name in ("loss", "val_loss", "val_accuracy", "learning_rate"):
        np.testing.assert_allclose(reused.history[name], fresh.history[name], rtol=1e-5, atol=1e-7, err_msg=name)
    assert reused.val_loss == pytest.approx(fresh.val_loss, rel=1e-5)
    # The held values are really used: the first configuration's values would give another curve.
    baked = train(config, dataset, max_epochs=4, seed=1)
    assert not np.allclose(baked.history["loss"], fresh.history["loss"], rtol=1e-4)


def test_another_architecture_compiles_its_own_program(dataset):
    jax_loop.PROGRAMS.clear()
    train(BASE, dataset, max_epochs=2, seed=0)
    traces = jax_loop.TRACES[0]
    train(BASE.replace(n_units=24), dataset, max_epochs=2, seed=0)
    assert jax_loop.TRACES[0] == traces + 1
    assert len(jax_loop.PROGRAMS) == 2


def test_the_cache_keeps_the_most_recently_used():
    cache: ProgramCache[str, int] = ProgramCache(size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    assert (cache.hits, cache.misses, len(cache)) == (3, 1, 2)


def test_the_compiled_sweep_measures_what_train_on_batch_measures(dataset):

    from autodnn.network.model import build_model
    from autodnn.optim import build_optimizer
    from autodnn.training.losses import LOSS
    from autodnn.training.lr_finder import LRFinder

    config = BASE.replace(optimizer="nadam", normalization="batch_norm_before", dropout=0.2)
    results = []
    for compiled in (False, True):
        model = build_model(config, 12, 3, seed=0)
        model.compile(optimizer=build_optimizer(config, 1e-3, steps_per_epoch=18, epochs=1)[0], loss=LOSS)
        before = [w.copy() for w in model.get_weights()]
        steps = jax_loop.JaxSweep(model, jax_loop.device_data(dataset), 32, None, chunk=16) if compiled else None
        results.append(LRFinder(iterations=120, seed=3).find(model, dataset.x_train, dataset.y_train,
                                                             batch_size=32, steps=steps))
        assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    per_batch, compiled = results
    assert compiled.iterations == per_batch.iterations and compiled.diverged == per_batch.diverged
    np.testing.assert_allclose(compiled.losses, per_batch.losses, rtol=1e-4)
    assert compiled.suggestion == pytest.approx(per_batch.suggestion)


def test_a_repeated_architecture_sweeps_and_trains_without_compiling(dataset):
    config = BASE.replace(lr_finder=True, schedule="1cycle", optimizer="momentum")
    jax_loop.PROGRAMS.clear()
    train(config, dataset, max_epochs=2, seed=0)
    traces = jax_loop.TRACES[0]
    result = train(config.replace(momentum_max=0.9, dropout=0.0), dataset, max_epochs=2, seed=1)
    assert result.lr_finder is not None
    assert jax_loop.TRACES[0] == traces


def test_the_same_architecture_on_fewer_training_rows_sweeps_and_trains_with_programs_of_its_own(dataset):
    # As cross-validation's folds do: the first training leaves its 1cycle optimizer on the model the sweep's program
    # was built for; a new number of rows, kept under the same key, retraced that program with it and failed.
    import dataclasses

    config = BASE.replace(lr_finder=True, schedule="1cycle", optimizer="momentum")
    jax_loop.PROGRAMS.clear()
    train(config, dataset, max_epochs=2, seed=0)
    fewer = dataclasses.replace(dataset, x_train=dataset.x_train[:500], y_train=dataset.y_train[:500])
    result = train(config, fewer, max_epochs=2, seed=0)
    assert result.lr_finder is not None and np.isfinite(result.val_loss)

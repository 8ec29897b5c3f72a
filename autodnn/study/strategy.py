"""How a study searches: samplers, pruners and the rungs at which they decide, and their names in words."""

from __future__ import annotations

import zlib
from typing import Any

import optuna

ENGINES = ("optuna", "keras-tuner")
STRATEGIES = ("hyperband", "bayesian", "random")
SAMPLERS = ("tpe-local", "tpe", "random")
#: Samplers whose model learns from the designed start (it is enqueued only for them).
TPE_SAMPLERS = ("tpe-local", "tpe")
PRUNERS = ("median", "hyperband", "halving", "none")


def make_sampler(seed: int | None, kind: str = "tpe") -> optuna.samplers.BaseSampler:
    """The sampler of ``--sampler``, seeded.

    ``tpe``: TPE over the whole (conditional) space at once; constant liar keeps parallel workers apart. It is
    Optuna's TPE with its bookkeeping made cheaper for large studies (:mod:`autodnn.study._tpe`).
    ``tpe-local``: the same TPE, and a third of the trials moves around the best configuration so far
    (:mod:`autodnn.study._local`). ``random``: independent uniform draws (random search).
    """
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    from autodnn.study._tpe import TPESampler

    tpe = TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=10)
    if kind == "tpe-local":
        from autodnn.study._local import LocalMoves

        return LocalMoves(tpe, seed=seed)
    return tpe


def resumed_seed(seed: int, n_trials: int) -> int:
    """The sampler's seed for a search that resumes a study already holding ``n_trials`` trials.

    A sampler seeded as in the first run would draw that run's configurations again (its random start-up
    trials come first, in the same order); a seed derived from the seed and the study's size continues with
    new draws, and stays repeatable: the same study resumed twice draws the same. A new study keeps ``seed``.
    """
    if n_trials == 0:
        return seed
    return zlib.crc32(f"{seed}:resumed-at:{n_trials}".encode())


#: Reduction factor of the ``hyperband`` and ``halving`` pruners; their rungs are at steps that are its powers.
HALVING_FACTOR = 3


def make_pruner(kind: str = "hyperband", max_epochs: int = 50) -> optuna.pruners.BasePruner:
    """The pruner of ``--pruner``.

    Steps are epochs, 1-based (:data:`FIRST_STEP`). ``median``: stops a trial whose epoch falls below the
    median of earlier trials at that epoch, once five trials finished, never in a trial's first two epochs.
    ``hyperband``: Optuna's Hyperband over epochs 1 to ``max_epochs`` with reduction factor 3 (successive
    halving in several brackets; the most aggressive one's rungs after epochs 1, 3, 9, 27). ``halving``: one
    bracket of asynchronous successive halving, rungs after epochs 1, 3 and 9, keeping the best third at each.
    ``none``: never prunes.
    """
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs,
                                              reduction_factor=HALVING_FACTOR)
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=HALVING_FACTOR)
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=FIRST_STEP + 2)


def may_prune_at(pruner: optuna.pruners.BasePruner, step: int) -> bool:
    """Whether asking ``pruner`` about a trial's ``step`` can stop it.

    Successive halving and Hyperband (as :func:`make_pruner` makes them) decide only at their rungs, the steps
    that are powers of :data:`HALVING_FACTOR`; asking at other steps costs a read of the trial from the
    storage and answers no. Other pruners may decide at any step.
    """
    if not isinstance(pruner, (optuna.pruners.HyperbandPruner, optuna.pruners.SuccessiveHalvingPruner)):
        return True
    while step > 1 and step % HALVING_FACTOR == 0:
        step //= HALVING_FACTOR
    return step == 1


def describe_engine(engine: str, strategy: str | None) -> str:
    """``keras-tuner (hyperband)``, or the engine alone when it has no strategy."""
    return f"{engine} ({strategy})" if strategy else engine


#: The step at which a study made now reports its first epoch: Hyperband's first rung (step 1) then falls
#: after epoch 1.
FIRST_STEP = 1


def first_step_of(settings: dict[str, Any]) -> int:
    """The step of a study's first epoch: 1, or 0 for studies made before steps were 1-based."""
    return int(settings.get("first_step", 0))


def precision_of(settings: dict[str, Any]) -> str:
    """The ``--precision`` a study trains in (studies from before the option trained in float32)."""
    return settings.get("precision") or "float32"


def pruner_of(settings: dict[str, Any]) -> str:
    """The ``--pruner`` a study searched with (studies from before the option used the median pruner)."""
    return settings.get("pruner") or "median"


def engine_label(settings: dict[str, Any]) -> str | None:
    """How a study searched, in words: ``keras-tuner (hyperband)``, ``optuna (tpe, hyperband pruner)``."""
    engine = settings.get("engine")
    if engine == "keras-tuner":
        return describe_engine(engine, settings.get("strategy") or "hyperband")
    if engine is None:
        return None
    parts = [settings.get("sampler") or "tpe", f"{pruner_of(settings)} pruner"]
    if settings.get("lr_finder"):
        parts.append("LR finder in every trial")
    return f"{engine} ({', '.join(parts)})"


#: What each ``--pruner`` did to a trial it stopped, in words for the report.
PRUNING_RULES = {
    "median": "once they fell below the median of earlier trials at the same epoch",
    "hyperband": "at a Hyperband rung (after epochs 1, 3, 9, 27, ... in the most aggressive bracket), for not "
                 "being in the best third of their bracket's trials at that epoch",
    "halving": "at a successive-halving rung (after epochs 1, 3, 9, 27, ...), for not being in the best third of "
               "the trials at that epoch",
    "none": "for a NaN loss (the search did not prune)",
}


def pruning_rule(settings: dict[str, Any]) -> str:
    """Why the study's pruned trials stopped, for the report."""
    if settings.get("engine") == "keras-tuner":
        return "when KerasTuner's Hyperband did not promote them to the next round"
    return PRUNING_RULES.get(pruner_of(settings), PRUNING_RULES["median"])

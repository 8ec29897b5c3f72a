"""The trial record: one writer of a training's outcome, the same keys whoever trained the trial."""

from __future__ import annotations

import pytest

from autodnn.config import TrialConfig
from autodnn.study import trial_record as record
from autodnn.training.trainer import TrialResult


def _result(stopped: str = "early_stopping", reason: str = "", **extra: object) -> TrialResult:
    return TrialResult(val_accuracy=0.9, val_loss=0.3, train_accuracy=0.95, train_loss=0.2, epochs=3, best_epoch=2,
                       stopped=stopped, reason=reason, history={"val_accuracy": [0.8, 0.9, 0.85]},
                       epoch_times=[2.0, 0.5, 0.7], **extra)


def test_a_completed_training_writes_its_result_history_and_costs_and_no_test_figure() -> None:
    attrs: dict[str, object] = {}
    stopped = record.write_training(attrs.__setitem__, TrialConfig(n_units=64), seed=7, predicted=0.4,
                                    result=_result(test_accuracy=0.88, test_loss=0.4))
    assert stopped is None
    assert attrs[record.CONFIG] == TrialConfig(n_units=64).to_dict() and attrs[record.SEED] == 7
    assert attrs[record.PREDICTED] == 0.4
    assert attrs[record.MEASURED] == pytest.approx(0.6), "the median epoch after the compiling first one"
    assert attrs[record.EPOCH_TIMES] == [2.0, 0.5, 0.7]
    assert attrs[record.HISTORY]["val_accuracy"] == [0.8, 0.9, 0.85]
    assert attrs[record.RESULT]["val_accuracy"] == 0.9
    assert not set(attrs[record.RESULT]) & set(record.TEST_METRICS), "the search reads no test figure"
    assert record.REASON not in attrs and record.TRACEBACK not in attrs


def test_a_pruned_training_returns_and_writes_its_reason() -> None:
    attrs: dict[str, object] = {}
    reason = "pruned at epoch 1: below the pruner's threshold"
    assert record.write_training(attrs.__setitem__, TrialConfig(), seed=0, result=_result("pruned", reason)) == reason
    assert attrs[record.REASON] == reason and record.RESULT in attrs


def test_a_failed_training_writes_its_reason_and_traceback() -> None:
    attrs: dict[str, object] = {}
    try:
        raise MemoryError("out of memory\nsecond line")
    except MemoryError as exc:
        reason = record.write_training(attrs.__setitem__, TrialConfig(), seed=3, predicted=1.5, error=exc)
    assert reason == "MemoryError: out of memory"
    assert attrs[record.REASON] == reason and "MemoryError" in attrs[record.TRACEBACK]
    assert attrs[record.PREDICTED] == 1.5 and record.RESULT not in attrs and record.MEASURED not in attrs


def test_one_epoch_gives_no_steady_rate() -> None:
    assert record.steady_epoch_seconds([1.5]) is None
    assert record.steady_epoch_seconds([3.0, 0.2, 0.4, 0.3]) == pytest.approx(0.3)

"""Studies as stored: where they live, what their trials hold, and the rules of searching them.

The modules are floors of their own, lowest first, and import only downward (``tests/test_imports.py`` holds
it); nothing here imports a floor above the package (the objective, workers, engines, evaluation, tuning):

1. :mod:`~autodnn.study.urls` (URLs, drivers, redaction), :mod:`~autodnn.study.deadline` (when the search's
   time is up);
2. :mod:`~autodnn.study.locks` (the study and schema locks), :mod:`~autodnn.study.trial_record` (every user
   attribute of a trial, and the one writer of a training's outcome), :mod:`~autodnn.study.strategy`
   (samplers, pruners, their rungs and names in words);
3. :mod:`~autodnn.study.storage` (opening a storage, heartbeats, ``load_study``), :mod:`~autodnn.study.options`
   (the search's options as the study stores them), :mod:`~autodnn.study.cost` (the cost model);
4. :mod:`~autodnn.study.artifacts` (files kept in the study's database: the best model's bytes),
   :mod:`~autodnn.study.dashboard`;
5. :mod:`~autodnn.study.records` (counts, baselines, summaries, tables, the best trial).

This package's ``__init__`` imports none of them, so importing a low floor never loads a high one.
"""

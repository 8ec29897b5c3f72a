"""Studies: where they live, how they search, what they hold, and the search that fills them.

The modules are layered, lowest first, and import only downward (``tests/test_imports.py`` holds it):

1. storage: :mod:`~autodnn.study.urls` (URLs, drivers, redaction), :mod:`~autodnn.study.locks` (the study and
   schema locks), :mod:`~autodnn.study.storage` (opening a storage, heartbeats, ``load_study``),
   :mod:`~autodnn.study.artifacts` (files kept in the study's database: the best model's bytes);
2. strategy: :mod:`~autodnn.study.strategy` (samplers, pruners, their rungs and names in words);
3. trial records: :mod:`~autodnn.study.records` (counts, baselines, summaries, tables, the best trial);
   :mod:`~autodnn.study.settings` (``SearchOptions`` and what a study records of them);
4. :mod:`autodnn.objective`, then :mod:`autodnn.workers` and :mod:`autodnn.engines`, outside this package;
5. :mod:`~autodnn.study.search` (prepare, create or resume, baselines, ``search()``), at the top, and
   :mod:`~autodnn.study.dashboard`.

This package's ``__init__`` imports none of them, so importing a low layer never loads a high one.
"""

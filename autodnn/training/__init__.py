"""Training one configuration: :func:`autodnn.training.trainer.train` and everything behind it.

- :mod:`~autodnn.training.trainer`: the public entry (``train``, ``prepare``, ``finish``, ``TrialResult``).
- :mod:`~autodnn.training.loops`: chooses the backend's loop (epochs, populations, the LR finder's sweep,
  evaluation); :mod:`~autodnn.training.jax_loop` is JAX's.
- :mod:`~autodnn.training.programs`: compiled programs kept per architecture; :mod:`~autodnn.training.population`:
  members of one program trained together.
- :mod:`~autodnn.training.lr_finder`, :mod:`~autodnn.training.restore` (which epoch a run keeps),
  :mod:`~autodnn.training.session` (seeds, a fresh Keras session), :mod:`~autodnn.training.tensorboard`.
- :mod:`~autodnn.training.crossval`: a few configurations compared by cross-validation on small data.

Keras 3 only, never Optuna: the search talks to it through a reporter (report an epoch, ask whether to stop).
"""

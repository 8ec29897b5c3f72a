"""The network: :mod:`~autodnn.network.model` builds a configuration's Keras model from
:mod:`~autodnn.network.layers`' blocks (the optimizers and schedules are :mod:`autodnn.optim`)."""

"""KerasTuner's ``HyperResNet`` on images, as its users run it: ``tuner.search``, then the best model it kept.

``benchmarks/search_quality.py --methods kt-hyperresnet`` runs it against ``autodnn search --space conv`` at an
equal wall time. The hypermodel is KerasTuner's own (``keras_tuner.applications.HyperResNet``: ResNet v1, v2 or
ResNeXt with 4 or 8 blocks in its third stage and 6, 23 or 36 in its fourth, average or max pooling, Adam,
RMSprop or SGD at 0.1, 0.01 or 0.001), untouched. The tuner is KerasTuner's Hyperband (factor 3), which gives a
first look at a configuration in one or two epochs: KerasTuner's guide pairs ``HyperResNet`` with random
search, whose trials of ``max_epochs`` would not end one in an hour on 2 CPU cores. Every trial stops early
after :data:`competitors.PATIENCE` epochs without a better ``val_loss`` and is scored by its best epoch's
``val_accuracy``, as KerasTuner does. The images are autodnn's arrays (the same split, scaled alike) in their
shape, the labels one-hot (``HyperResNet`` compiles ``categorical_crossentropy``).

The search ends at a deadline the way Ctrl-C ends it (:func:`competitors.search_until`): the trial in flight is
lost.
The winner is the model KerasTuner kept from its best trial (``tuner.get_best_models()[0]``, the weights of that
trial's best epoch), tested once: what a user of ``tuner.search`` holds at the end of the hour.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import keras
import keras_tuner
from competitors import outcome, search_until


class TracedResNet(keras_tuner.applications.HyperResNet):
    """``HyperResNet`` that notes when each trial ended and the best validation accuracy so far.

    Attributes:
        trace: ``(seconds since start, best val_accuracy so far)`` after each trial that finished training.
        start: ``time.monotonic()`` at the start of the search; set it before ``tuner.search``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trace: list[tuple[float, float]] = []
        self.start = time.monotonic()

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        history = super().fit(hp, model, *args, **kwargs)
        best = max(history.history["val_accuracy"])
        self.trace.append((time.monotonic() - self.start, max(best, self.trace[-1][1]) if self.trace else best))
        return history


def images(x: Any, shape: tuple[int, ...]) -> Any:
    """autodnn's flat rows of pixels in the images' shape."""
    return x.reshape(len(x), *shape)


def run_hyperresnet(dataset: Any, *, budget: float, max_epochs: int, seed: int) -> dict[str, Any]:
    """Searches ``HyperResNet`` with KerasTuner's Hyperband for ``budget`` seconds and tests the best model kept.

    Args:
        dataset: An ``autodnn`` Dataset of images (``image_shape`` set).
        budget: Wall seconds from the start of ``tuner.search``.
        max_epochs: Hyperband's ``max_epochs``: the most a trial trains.
        seed: Seeds the oracle and Keras.

    Returns:
        The search's outcome (:func:`competitors.outcome`) with ``test_accuracy`` of the kept winner (None where
        no trial finished).
    """
    if dataset.image_shape is None:
        raise SystemExit("kt-hyperresnet searches images: choose an image dataset (cifar10, mnist, ...)")
    keras.utils.set_random_seed(seed)
    shape, n_classes = tuple(dataset.image_shape), len(dataset.class_names)
    hot = {part: keras.utils.to_categorical(getattr(dataset, f"y_{part}"), n_classes)
           for part in ("train", "valid", "test")}
    hypermodel = TracedResNet(input_shape=shape, classes=n_classes)
    with tempfile.TemporaryDirectory() as directory:
        tuner = keras_tuner.Hyperband(hypermodel, objective="val_accuracy", max_epochs=max_epochs, factor=3,
                                      hyperband_iterations=100_000, seed=seed, directory=directory,
                                      project_name="hyperresnet", overwrite=True)
        hypermodel.start = time.monotonic()
        seconds, best, finished = search_until(
            tuner, hypermodel.start + budget, images(dataset.x_train, shape), hot["train"],
            validation_data=(images(dataset.x_valid, shape), hot["valid"]), epochs=max_epochs)
        test = None
        if best:
            model = tuner.get_best_models(1)[0]
            test = float(model.evaluate(images(dataset.x_test, shape), hot["test"], verbose=0)[1])
    params = dict(best[0].hyperparameters.values) if best else None
    return {**outcome(params, best[0].score if best else None, finished, seconds, hypermodel.trace),
            "test_accuracy": test}

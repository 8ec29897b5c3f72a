"""Image augmentation inside the compiled training step: random flips and shifts, from backend-neutral ops.

Keras' preprocessing layers (``RandomFlip``, ``RandomTranslation``) are built for input pipelines: inside a
JAX model they make Keras refuse ``jit_compile``, and an epoch of CIFAR-10 then runs op by op. The layer here
does the same two augmentations the book describes for images (chapter 14: flips and shifts, training only)
with ``keras.ops`` and ``keras.random`` alone, so the step stays one compiled program on every backend: a flip
is a select between the image and its mirror, a shift is a zero padding and a crop, written as two one-hot
matrix products (one over rows, one over columns) so that every image of the batch gets its own offset
without a gather.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

__all__ = ["FlipShift"]


@keras.saving.register_keras_serializable(package="autodnn")
class FlipShift(keras.layers.Layer):
    """Flips each training image left to right with probability 1/2 and shifts it by up to ``shift`` of its
    height and width; at inference it returns its input.

    Inputs are ``(batch, height, width, channels)``. A shifted image's uncovered border is zero, the
    standardized inputs' mean.

    Args:
        flip: Whether to flip.
        shift: Largest shift, as a share of the height and of the width (0 leaves images in place).
        seed: Seed of the random draws.
    """

    def __init__(self, flip: bool = True, shift: float = 0.0, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flip = bool(flip)
        self.shift = float(shift)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images: Any, training: bool = False) -> Any:
        if not training:
            return images
        batch = ops.shape(images)[0]
        if self.flip:
            heads = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) < 0.5
            images = ops.where(heads, ops.flip(images, axis=2), images)
        height, width = images.shape[1], images.shape[2]
        dy, dx = round(self.shift * height), round(self.shift * width)
        if dy == 0 and dx == 0:
            return images
        padded = ops.pad(images, [[0, 0], [dy, dy], [dx, dx], [0, 0]])
        rows = self._picks(batch, height, dy)
        columns = self._picks(batch, width, dx)
        shifted = ops.einsum("bip,bpwc->biwc", rows, padded)
        return ops.einsum("bjq,biqc->bijc", columns, shifted)

    def _picks(self, batch: Any, size: int, margin: int) -> Any:
        """One-hot ``(batch, size, size + 2 margin)``: output row ``i`` of image ``b`` is padded row ``i + o_b``,
        ``o_b`` uniform in ``[0, 2 margin]``."""
        offset = keras.random.randint((batch, 1), 0, 2 * margin + 1, seed=self.seed_generator)
        wanted = offset + ops.expand_dims(ops.arange(size), 0)
        return ops.cast(ops.one_hot(wanted, size + 2 * margin), self.compute_dtype)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "flip": self.flip, "shift": self.shift, "seed": self.seed}

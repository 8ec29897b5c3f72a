"""Does one optimizer update over all variables flattened together speed up the batch-32 step on a CPU?

The exercise-8 net (20 x 100 Swish, 3072 -> 10, 500,210 parameters) is written in plain JAX and trained for an
epoch of batch-32 steps in one ``lax.scan``, as autodnn's trainer does. Four ways of holding the parameters and
Adam's moments are timed, each several times in turn in one process, so that they share the machine's noise:

- ``sgd``: plain gradient steps, no optimizer state: the forward and backward passes and nothing more;
- ``adam per variable``: Adam's update variable by variable, as Keras' optimizers do it (42 updates a step);
- ``adam concatenated``: gradients and parameters concatenated into one vector for a single update, then
  split back into variables every step;
- ``adam flat parameters``: the parameters live in one flat vector, and the forward pass slices its variables
  out of it, so the gradient arrives flat too.

    python benchmarks/optimizer_layout.py              # batch 32, 3 rounds
    python benchmarks/optimizer_layout.py --batch 128 --json out.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZES = [32 * 32 * 3] + [100] * 20 + [10]
SAMPLES = 45_000
LEARNING_RATE, BETA_1, BETA_2, EPSILON = 5e-5, 0.9, 0.999, 1e-7
VARIANTS = ("sgd", "adam per variable", "adam concatenated", "adam flat parameters")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32, help="rows per step (default 32)")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs of each variant (default 3)")
    parser.add_argument("--json", default=str(REPO / "benchmarks" / "out" / "optimizer_layout.json"))
    args = parser.parse_args(argv)
    if args.batch < 1 or args.rounds < 1:
        parser.error("--batch and --rounds must be >= 1")

    net = Net(np.random.default_rng(0))
    x = jnp.asarray(np.random.default_rng(1).random((SAMPLES, SIZES[0]), dtype=np.float32))
    y = jnp.asarray(np.random.default_rng(2).integers(0, SIZES[-1], SAMPLES).astype(np.int32))
    steps = SAMPLES // args.batch
    order = jnp.asarray(np.random.default_rng(3).permutation(SAMPLES)[: steps * args.batch].astype(np.int32))
    epochs = {name: (epoch_function(net, name, x, y, args.batch), net.initial_state(name)) for name in VARIANTS}
    for function, state in epochs.values():
        jax.block_until_ready(function(state, order))  # compiles
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, (function, state) in epochs.items():
            start = time.perf_counter()
            jax.block_until_ready(function(state, order))
            times[name].append(time.perf_counter() - start)

    rows = [{"variant": name, "samples_per_second": steps * args.batch / statistics.median(times[name]),
             "epoch_s": statistics.median(times[name]), "epoch_s_all": times[name]} for name in VARIANTS]
    per_variable = rows[1]["samples_per_second"]
    print(f"\nExercise-8 net in plain JAX, batch {args.batch}, {steps:,} steps per epoch, "
          f"{os.cpu_count()} cores, jax {jax.__version__}; median of {args.rounds} epochs each\n")
    print(f"{'variant':<24}{'samples/s':>11}{'vs per variable':>17}{'epoch s':>9}")
    for row in rows:
        row["vs_per_variable"] = row["samples_per_second"] / per_variable
        print(f"{row['variant']:<24}{row['samples_per_second']:>11,.0f}{row['vs_per_variable']:>16.2f}x"
              f"{row['epoch_s']:>9.2f}")
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                                "batch": args.batch, "rounds": args.rounds, "cores": os.cpu_count(),
                                "jax": jax.__version__, "rows": rows}, indent=2) + "\n")
    print(f"\nJSON: {path}")
    return 0


class Net:
    """The exercise-8 net's He-initialized parameters, and their layout as one flat vector."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.params = []
        for n_in, n_out in itertools.pairwise(SIZES):
            kernel = rng.standard_normal((n_in, n_out), dtype=np.float32) * np.sqrt(2 / n_in)
            self.params += [jnp.asarray(kernel), jnp.zeros(n_out, jnp.float32)]
        self.shapes = [p.shape for p in self.params]
        self.offsets = np.cumsum([0] + [int(np.prod(s)) for s in self.shapes])

    def unflatten(self, flat: Any) -> list[Any]:
        return [flat[a:b].reshape(shape) for a, b, shape in zip(self.offsets[:-1], self.offsets[1:], self.shapes)]

    def initial_state(self, variant: str) -> Any:
        zeros = jnp.zeros(int(self.offsets[-1]), jnp.float32)
        if variant == "sgd":
            return (self.params,)
        if variant == "adam per variable":
            moments = [jnp.zeros_like(p) for p in self.params]
            return self.params, moments, list(moments), jnp.float32(0)
        if variant == "adam concatenated":
            return self.params, zeros, zeros, jnp.float32(0)
        return flatten(self.params), zeros, zeros, jnp.float32(0)


def flatten(values: list[Any]) -> Any:
    return jnp.concatenate([v.ravel() for v in values])


def loss(params: list[Any], x: Any, y: Any) -> Any:
    hidden = x
    for kernel, bias in zip(params[0:-2:2], params[1:-2:2]):
        hidden = jax.nn.swish(hidden @ kernel + bias)
    logits = hidden @ params[-2] + params[-1]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))


def adam(weights: Any, gradient: Any, m: Any, v: Any, t: Any) -> tuple[Any, Any, Any]:
    m = BETA_1 * m + (1 - BETA_1) * gradient
    v = BETA_2 * v + (1 - BETA_2) * gradient * gradient
    step = LEARNING_RATE * (m / (1 - BETA_1**t)) / (jnp.sqrt(v / (1 - BETA_2**t)) + EPSILON)
    return weights - step, m, v


def epoch_function(net: Net, variant: str, x: Any, y: Any, batch: int) -> Any:
    """``(state, order) -> state``: one epoch of ``variant``'s steps, compiled."""

    def step(state: Any, rows: Any) -> Any:
        xb, yb = x[rows], y[rows]
        if variant == "sgd":
            (params,) = state
            grads = jax.grad(loss)(params, xb, yb)
            return ([p - LEARNING_RATE * g for p, g in zip(params, grads)],), None
        params, m, v, t = state
        t = t + 1
        if variant == "adam per variable":
            grads = jax.grad(loss)(params, xb, yb)
            updated = [adam(*parts, t) for parts in zip(params, grads, m, v)]
            return tuple(list(column) for column in zip(*updated)) + (t,), None
        if variant == "adam concatenated":
            grads = jax.grad(loss)(params, xb, yb)
            flat, m, v = adam(flatten(params), flatten(grads), m, v, t)
            return (net.unflatten(flat), m, v, t), None
        grad = jax.grad(lambda flat: loss(net.unflatten(flat), xb, yb))(params)
        flat, m, v = adam(params, grad, m, v, t)
        return (flat, m, v, t), None

    def epoch(state: Any, order: Any) -> Any:
        return jax.lax.scan(step, state, order.reshape(-1, batch))[0]

    return jax.jit(epoch)


if __name__ == "__main__":
    sys.exit(main())

"""What a warm start reaches when trained alone, and what changing one of its values does.

Trains a warm start of :mod:`autodnn.tuning.warm_start` (by default ``wide-bn-adamw``) through the project's own
trainer with one seed, then each variant given with ``--vary`` (a JSON object of configuration fields laid
over it), and prints validation accuracy, epochs trained, the epoch kept and the wall time: variants are chosen
on validation. ``--test`` adds the test accuracy, for a final table once the choice is made, never to make it. The
configurations are taken as written, not projected onto a space; ``restore_best`` is ``val_accuracy`` unless a
variant says otherwise, as the search spaces' ``auto`` gives on CIFAR-10's 5,000 validation rows.

Usage::

    python benchmarks/warm_starts.py --dataset cifar10 --data-dir ../shared/data --max-epochs 50 \\
        --vary '{}' --vary '{"epochs": null}' --vary '{"dropout": 0.4}' --json benchmarks/out/warm_starts.json

CIFAR-10 is read from ``--data-dir`` (``../shared/data`` holds it); without it the command says so and
exits 2.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from autodnn.backend import select_backend
from autodnn.config import TrialConfig
from autodnn.errors import AutodnnError
from autodnn.tuning.warm_start import WARM_STARTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--start", default="wide-bn-adamw", choices=[s.name for s in WARM_STARTS])
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vary", action="append", default=None, metavar="JSON",
                        help="configuration fields laid over the warm start; repeat for more rows ('{}': as is)")
    parser.add_argument("--test", action="store_true",
                        help="also test each variant: for a final table, after the choice was made on validation")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--backend", default="auto", help="as the CLI's --backend (auto: by the start's family)")
    args = parser.parse_args(argv)
    start = next(s for s in WARM_STARTS if s.name == args.start)
    try:
        # Before Keras is imported: the backend the CLI's --backend picks for the start's family.
        select_backend(args.backend, family=start.values.get("family", "dense"))
        from autodnn import load_dataset
        from autodnn.training.trainer import train

        variants = [json.loads(text) for text in (args.vary or ["{}"])]
        dataset = load_dataset(args.dataset, data_dir=args.data_dir, seed=0)
        configs = [TrialConfig.from_dict({**start.values, "restore_best": "val_accuracy", **v}) for v in variants]
    except (ValueError, AutodnnError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import keras

    print(f"{args.start} on {args.dataset}, --max-epochs {args.max_epochs}, seed {args.seed}, "
          f"{keras.backend.backend()}, {platform.processor() or platform.machine()}")
    tested = f" {'test acc':>8}" if args.test else ""
    print(f"{'variant':<44} {'val acc':>8}{tested} {'epochs':>6} {'kept':>5} {'seconds':>8}")
    rows = []
    for variant, config in zip(variants, configs):
        began = time.perf_counter()
        result = train(config, dataset, max_epochs=args.max_epochs, seed=args.seed, evaluate_test=args.test)
        seconds = time.perf_counter() - began
        label = json.dumps(variant) if variant else "(as is)"
        test = f" {result.test_accuracy:>8.2%}" if args.test else ""
        print(f"{label:<44} {result.val_accuracy:>8.2%}{test} {result.epochs:>6} {result.best_epoch:>5} "
              f"{seconds:>8.0f}", flush=True)
        rows.append({"variant": variant, "val_accuracy": result.val_accuracy, "epochs": result.epochs,
                     "best_epoch": result.best_epoch, "seconds": seconds, "val_curve": result.history["val_accuracy"],
                     **({"test_accuracy": result.test_accuracy} if args.test else {})})
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"start": args.start, "dataset": args.dataset, "max_epochs": args.max_epochs,
                                         "seed": args.seed, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

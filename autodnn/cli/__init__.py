"""The ``autodnn`` command line: argument parsing and user-facing errors; every command calls the package."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from autodnn.cli._commands import COMMANDS
from autodnn.cli._parser import build_parser
from autodnn.errors import AutodnnError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line and returns its exit code (0 ok, 1 failure, 2 usage error, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        _quiet_libraries(debug)
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except AutodnnError as exc:
        if debug:
            raise
        print(f"Error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    finally:
        _close_storages()


def _close_storages() -> None:
    """Every command ends with its storages closed and SQLite's WAL checkpointed (only where one was opened)."""
    storage = sys.modules.get("autodnn.study.storage")
    if storage is not None:
        storage.close_storages()


def _quiet_libraries(debug: bool) -> None:
    """Trials report their own outcome in one line; Optuna's per-trial logging (with tracebacks) only on --debug."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.INFO if debug else optuna.logging.ERROR)


def _one_line(text: str) -> str:
    return " ".join(text.split())

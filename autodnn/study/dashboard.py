"""optuna-dashboard on a study's storage."""

from __future__ import annotations

from collections.abc import Callable

from autodnn.errors import UsageError
from autodnn.study.storage import load_study, open_storage
from autodnn.study.urls import storage_url


def serve_dashboard(
    name: str,
    storage: str | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serves optuna-dashboard on the storage of study ``name`` until interrupted.

    Args:
        name: The study to open; the dashboard lists every study of its storage.
        storage: Storage URL; defaults to ``sqlite:///studies/<name>.db``.
        host: Address to listen on (127.0.0.1: this machine only).
        port: Port to listen on.
        on_ready: Called with the study's dashboard address before serving.

    Raises:
        UsageError: optuna-dashboard is not installed, the study does not exist, or the port is taken.
    """
    if not 0 < port < 65536:
        raise UsageError(f"--port must be in 1..65535, but got {port}")
    try:
        import optuna_dashboard
    except ImportError:
        raise UsageError("optuna-dashboard is not installed: pip install 'autodnn[dashboard]'") from None
    load_study(name, storage)
    backend = open_storage(storage_url(name, storage), create=False)
    # Bind first: a taken port is the user's to fix, and Optuna's server would only print a traceback.
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None
    if on_ready is not None:
        on_ready(f"http://{host}:{port}/dashboard/studies/{backend.get_study_id_from_name(name)}")
    optuna_dashboard.run_server(backend, host=host, port=port)

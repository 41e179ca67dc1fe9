"""`texnet serve`: a local web app to sample, stylize, train and compare without typing commands.

Built on Starlette (a small, well-kept ASGI toolkit: routing, uploads, static files, thread
pools for heavy work) served by uvicorn, bound to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import threading
import webbrowser
from pathlib import Path

from .app import create_app

__all__ = ["create_app", "default_data_folder", "serve"]


def default_data_folder() -> Path:
    """$XDG_DATA_HOME/texnet/serve, else ~/.local/share/texnet/serve."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "texnet" / "serve"


def serve(data: Path, models: list[Path], port: int = 8765, open_browser: bool = True) -> None:
    """Run the app on 127.0.0.1:`port` until Ctrl-C (port 0: any free port)."""
    import uvicorn

    app = create_app(data, models)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    if open_browser:
        def open_when_up() -> None:
            while not server.started:
                threading.Event().wait(0.1)
            port_used = server.servers[0].sockets[0].getsockname()[1]
            webbrowser.open(f"http://127.0.0.1:{port_used}/")

        threading.Thread(target=open_when_up, daemon=True).start()
    server.run()

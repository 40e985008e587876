"""Serve a throwaway MongoDB-wire server (mongoeco) for the tests.

Run with the Python 3.13 venv that has mongoeco (it needs >= 3.13, the project runs 3.11):

    .venv-mongo/bin/python tests/mongo_server.py --port P [--data-dir D]

Prints exactly one line, ``READY <uri>``, once clients can connect, then serves until
SIGTERM/SIGINT. With ``--data-dir`` the data lives in a SQLite file there (survives a
restart); without it, in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import Any


async def _serve(port: int, data_dir: str | None) -> None:
    try:
        import bson  # noqa: F401  # mongoeco's wire codec; without it every client is dropped
        from mongoeco.wire import AsyncMongoEcoProxyServer
    except ImportError as exc:
        sys.exit(f"mongo_server: {exc}; this venv needs: pip install 'mongoeco[wire]'")

    kwargs: dict[str, Any] = {"host": "127.0.0.1", "port": port}
    if data_dir:
        from mongoeco.engines import SQLiteEngine

        Path(data_dir).mkdir(parents=True, exist_ok=True)
        kwargs["engine"] = SQLiteEngine(str(Path(data_dir) / "mongoeco.sqlite"))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    async with AsyncMongoEcoProxyServer(**kwargs) as srv:
        # The parent waits for this line: print it only once the socket is listening.
        print(f"READY {srv.address.uri}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.data_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m mai_image_nb.offline --port 8765`: serve the simulator until Ctrl-C.

Binds only the host given (127.0.0.1 by default); never prints the key.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading

from mai_image_nb._serving import port_number, stop_on_signals

from .faults import Chaos
from .server import WILDCARD_HOSTS, OfflineServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mai_image_nb.offline",
        description="Serve the MAI-Image 2.5 offline simulator (no account, nothing leaves "
        "this machine).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, default=8765, help="port (default 8765; 0 picks one)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each answer")
    parser.add_argument("--seed", type=int, default=None, help="make the run's images repeatable")
    parser.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    parser.add_argument("--b64", action="store_true", help="answer b64_json instead of URLs")
    parser.add_argument("--chaos", type=float, default=None, metavar="RATE",
                        help="answer this share of requests (0-1) with random faults")  # fmt: skip
    parser.add_argument("--scale", type=float, default=1.0, help="image size factor (default 1)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser


def main(argv: list[str] | None = None, *, ready: threading.Event | None = None) -> int:
    """Run the server in the foreground until Ctrl-C or SIGTERM; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(message)s")
    try:
        chaos = Chaos(rate=args.chaos, seed=args.seed) if args.chaos is not None else None
        server = OfflineServer(
            args.host,
            args.port,
            args.latency,
            api_key=args.api_key,
            response_format="b64_json" if args.b64 else "url",
            seed=args.seed,
            image_scale=args.scale,
            chaos=chaos,
        )
        server.start()
    except (ValueError, OSError) as exc:
        print(f"cannot start the simulator: {exc}", file=sys.stderr)
        return 2
    stop = stop_on_signals()
    with server:
        key_hint = " AIMLAPI_KEY=<the key you chose>" if args.api_key else ""
        where = " (with this machine's address for the host)" if args.host in WILDCARD_HOSTS else ""
        print(
            f"MAI-Image offline simulator on {server.url} - point the client at it with "
            f"AIMLAPI_BASE_URL={server.url}{key_hint}{where} (Ctrl-C to stop)",
            flush=True,
        )
        if ready is not None:
            ready.set()
        with contextlib.suppress(KeyboardInterrupt):  # when not run in the main thread
            stop.wait()
    print("simulator stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m mai_image_nb.classroom --folder ./class --students names.txt`: serve a class.

The teacher's key comes from `AIMLAPI_KEY` or `--api-key-file`, never from the command
line (which other users of the machine can read). The first line on stdout is the URL,
printed once `tokens.csv` is complete; SIGINT and SIGTERM stop the gateway cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import threading
from pathlib import Path

from mai_image_nb._serving import port_number, stop_on_signals
from mai_image_nb.errors import MaiImageError

from .files import TOKENS_FILE
from .room import OFFLINE, Classroom

GIL_SWITCH_S = 0.0005


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mai_image_nb.classroom",
        description="Serve MAI-Image 2.5 to a class: one key (yours), a token and a budget "
        "per student. The key is read from AIMLAPI_KEY or --api-key-file.",
    )
    parser.add_argument(
        "--folder",
        required=True,
        type=Path,
        help="the class folder: ledger, tokens.csv, admin-token, url, gallery",
    )
    parser.add_argument(
        "--students",
        type=Path,
        default=None,
        help="a text file with one name per line; new names get a token",
    )
    parser.add_argument(
        "--budget-usd",
        type=float,
        default=2.0,
        help="each new student's budget in dollars (default 2.00)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--upstream", default=None, help="the API's URL (default the provider's)")
    where.add_argument("--offline", action="store_true", help="use the bundled simulator")
    parser.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        help="read the teacher's key from this file instead of AIMLAPI_KEY",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=port_number, default=8766, help="port (default 8766; 0 picks)"
    )
    parser.add_argument(
        "--max-inflight", type=int, default=16, help="requests sent upstream at once (default 16)"
    )
    parser.add_argument(
        "--per-student",
        type=int,
        default=2,
        help="one student's requests in flight at once (default 2)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return parser  # fmt: skip


def _names(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def main(argv: list[str] | None = None, *, ready: threading.Event | None = None) -> int:
    """Serve until SIGINT or SIGTERM; returns the exit status."""
    args = _parser().parse_args(argv)
    # This process only serves the class: hand the GIL round more often, so a request marked
    # sent in the ledger is written to the service within a fraction of a millisecond.
    sys.setswitchinterval(GIL_SWITCH_S)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        stream=sys.stderr,
    )
    try:
        key = None
        if args.api_key_file is not None:
            key = args.api_key_file.read_text(encoding="utf-8").strip()
        room = Classroom(
            args.folder, upstream=OFFLINE if args.offline else args.upstream, api_key=key,
            budget_usd=args.budget_usd, max_inflight=args.max_inflight,
            per_student=args.per_student, host=args.host, port=args.port,
        )  # fmt: skip
        room.start(students=_names(args.students) if args.students else None)
    except (MaiImageError, OSError, ValueError) as exc:
        print(f"cannot start the classroom gateway: {exc}", file=sys.stderr)
        return 2
    stop = stop_on_signals()
    with room:
        print(room.url, flush=True)  # the first line: tokens.csv is complete by now
        print(
            f"{len(room.status())} student(s); their tokens to hand out are in "
            f"{args.folder / TOKENS_FILE} (Ctrl-C to stop)",
            file=sys.stderr,
            flush=True,
        )
        if ready is not None:
            ready.set()
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    print("classroom gateway stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

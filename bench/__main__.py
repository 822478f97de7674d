"""Run every benchmark and print one table: `python -m bench [--quick] [--only NAME ...]`.

Each figure is a ratio against a floor or a peer measured side by side in the same
run, with min and median. Results also go to bench/results/latest.md (gitignored).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Row, print_table

MODULES = [
    "bench_client",
    "bench_grid",
    "bench_studio",
    "bench_history",
    "reliability",
    "bench_soak",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    parser.add_argument("--only", nargs="*", choices=MODULES, help="run only these modules")
    args = parser.parse_args(argv)
    os.environ.setdefault("MAI_IMAGE_HOME", tempfile.mkdtemp(prefix="mai-bench-"))
    rows: list[Row] = []
    for name in args.only or MODULES:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"[{name}] not present, skipped", file=sys.stderr)
                continue
            raise
        started = time.perf_counter()
        print(f"[{name}] running…", file=sys.stderr, flush=True)
        rows += module.run(quick=args.quick)
        print(f"[{name}] {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    text = print_table(rows)
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(text + "\n", encoding="utf-8")
    return 0 if all(row.ok is not False for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

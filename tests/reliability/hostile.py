"""Hostile images and answers, and a probe process that meets them as a client.

    python -m tests.reliability.hostile URL CALLS   (the probe: see `probe`)

The builders make the bytes; `client_cases()` pairs each with the simulator fault that serves
it. The probe runs in its own process so its memory figures hold the client's allocations
only (the simulator, in the test's process, holds the 80 MiB answers it sends).
"""

from __future__ import annotations

import base64
import io
import json
import struct
import sys
import time
import tracemalloc
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

import mai_image_nb as mai
from mai_image_nb.offline import Fault
from mai_image_nb.offline.faults import bomb_png

MIB = 1024 * 1024
SIGNATURE = b"\x89PNG\r\n\x1a\n"
BOMB_TEXT_BYTES = 100 * MIB  # what the text bombs inflate to (about 100 KiB compressed)
BIG_BODY_BYTES = 60 * MIB
EPS_TEXT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto showpage\n"
EPS_BINARY = (
    b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIII", 30, len(EPS_TEXT), 0, 0, 0, 0) + b"\xff\xff"
)


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(out, format="PNG")
    return out.getvalue()


def tiff_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(out, format="TIFF")
    return out.getvalue()


@cache
def zlib_bomb(size: int = BOMB_TEXT_BYTES) -> bytes:
    """`size` spaces inside a JSON string, compressed (about 1000:1)."""
    packer = zlib.compressobj(9)
    parts = [packer.compress(b'{"prompt": "x", "pad": "')]
    block = b" " * MIB
    parts += [packer.compress(block) for _ in range(size // MIB)]
    return b"".join(parts) + packer.compress(b'"}') + packer.flush()


def text_bomb_png() -> bytes:
    """A valid 8x8 PNG whose parameters chunk (iTXt) and a comment (zTXt) inflate to 100 MiB."""
    png = small_png()
    ihdr_end = len(SIGNATURE) + 25
    bombs = chunk(b"zTXt", b"Comment\x00\x00" + zlib_bomb()) + chunk(
        b"iTXt", b"mai_image_nb\x00\x01\x00\x00\x00" + zlib_bomb()
    )
    return png[:ihdr_end] + bombs + png[ihdr_end:]


def big_png_file(path: Path, size: int = BIG_BODY_BYTES) -> Path:
    """A sparse file of `size` bytes: a PNG header, one huge IDAT, our chunk after the pixels."""
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 8000, 8000, 8, 2, 0, 0, 0))
    ours = b'mai_image_nb\x00\x00\x00\x00\x00{"prompt": "x"}'
    with path.open("wb") as file:
        file.write(SIGNATURE + ihdr + struct.pack(">I", size) + b"IDAT")
        file.truncate(size)
        file.seek(0, 2)
        file.write(b"\x00" * 4 + chunk(b"iTXt", ours) + chunk(b"IEND", b""))
    return path


def b64_answer(data: bytes) -> bytes:
    """A 2xx answer carrying `data` as the image's base64, with a reported usage."""
    head = b'{"created": 1, "data": [{"b64_json": "'
    tail = b'"}], "meta": {"usage": {"credits_used": 1, "usd_spent": 0.0627}}}'
    return head + base64.b64encode(data) + tail


@dataclass(frozen=True)
class ClientCase:
    name: str
    fault: Fault
    expect: str  # the error class a client must end in


def client_cases() -> list[ClientCase]:
    """Every hostile answer a client must refuse, as simulator faults (served in this order)."""
    return [
        ClientCase("png-20000x20000", Fault.bomb(20_000, 20_000), "ResponseError"),
        ClientCase("png-10000x10000", Fault.bomb(10_000, 10_000), "ResponseError"),
        ClientCase("url-body-60MiB", Fault.oversized(BIG_BODY_BYTES), "ResponseError"),
        ClientCase(
            "b64-body-60MiB",
            Fault.body(b64_answer(SIGNATURE + bytes(BIG_BODY_BYTES))),
            "ResponseError",
        ),
        ClientCase("png-text-bombs", Fault.body(b64_answer(text_bomb_png())), "ResponseError"),
        ClientCase("eps", Fault.body(b64_answer(EPS_TEXT)), "ResponseError"),
        ClientCase("eps-binary", Fault.body(b64_answer(EPS_BINARY)), "ResponseError"),
        ClientCase("tiff", Fault.body(b64_answer(tiff_bytes())), "ResponseError"),
    ]


READ_PARAMS_CASE_NAMES = (
    "png-20000x20000", "png-10000x10000", "file-60MiB", "png-text-bombs", "eps", "eps-binary",
    "tiff",
)  # fmt: skip


def read_params_cases(folder: Path) -> dict[str, bytes | Path]:
    """Every hostile file `read_params` must refuse (by name); big ones as files on disk."""
    return {
        "png-20000x20000": bomb_png(20_000, 20_000),
        "png-10000x10000": bomb_png(10_000, 10_000),
        "file-60MiB": big_png_file(folder / "big.png"),
        "png-text-bombs": text_bomb_png(),
        "eps": EPS_TEXT,
        "eps-binary": EPS_BINARY,
        "tiff": tiff_bytes(),
    }


# -- the probe process ---------------------------------------------------------------------------


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak_rss() -> bool:
    """Linux: make VmHWM start again from the current RSS (writes "5" to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
    except OSError:
        return False
    return True


def probe(url: str, calls: int) -> list[dict[str, Any]]:
    """Make `calls` generate() calls (no retries, no cache) and measure each one."""
    results = []
    with mai.Client(
        api_key="sk-probe", base_url=url, offline=False, history=False, timeout=60, max_retries=0
    ) as client:
        for index in range(calls):
            rss_reset = _reset_peak_rss()
            rss_before = _rss_kib("VmRSS")
            tracemalloc.start()
            started = time.perf_counter()
            try:
                gen = client.generate(f"probe {index}", cache=False)
                outcome, message = type(gen).__name__, ""
            except mai.MaiImageError as exc:
                outcome, message = type(exc).__name__, str(exc)
            seconds = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            results.append(
                {
                    "outcome": outcome,
                    "message": message[:200],
                    "seconds": seconds,
                    "traced_peak_bytes": peak,
                    "rss_peak_growth_kib": _rss_kib("VmHWM") - rss_before if rss_reset else None,
                }
            )
    return results


def main(argv: list[str]) -> int:
    print(json.dumps(probe(argv[1], int(argv[2]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Text on the contact sheet: Pillow's bundled font, measured; labels wrapped to fit.

A label is wrapped at spaces; a cut (a word wider than a line, or text beyond the last
line) is always marked with an ellipsis, never made silently. Pillow only.
"""

from __future__ import annotations

from functools import cache

from PIL import Image, ImageDraw, ImageFont

__all__ = ["Font", "font", "text_width", "wrap_text"]

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@cache
def font(size: int) -> Font:
    return ImageFont.load_default(size=size)


_MEASURE = ImageDraw.Draw(Image.new("L", (1, 1)))


def text_width(text: str, size: int) -> float:
    return _MEASURE.textlength(text, font=font(size))


def _ellipsize(text: str, size: int, max_width: float) -> str:
    """`text` cut (at a word boundary when one fits) with an ellipsis, to fit `max_width`."""
    if text_width(text, size) <= max_width:
        return text
    words = text.split(" ")
    while len(words) > 1:
        words.pop()
        candidate = " ".join(words).rstrip(" ,;:-") + "…"
        if text_width(candidate, size) <= max_width:
            return candidate
    low, high = 0, len(text)  # one long word: cut inside it, marked by the ellipsis
    while low < high:
        mid = (low + high + 1) // 2
        if text_width(text[:mid] + "…", size) <= max_width:
            low = mid
        else:
            high = mid - 1
    return text[:low] + "…"


def wrap_text(text: str, size: int, max_width: float, max_lines: int) -> list[str]:
    """`text` wrapped at spaces into at most `max_lines` lines no wider than `max_width` px.

    A word longer than a line is cut with an ellipsis; text that does not fit in
    `max_lines` ends in an ellipsis on the last line. Never cuts silently.
    """
    words = " ".join("".join(c if c.isprintable() else " " for c in text).split()).split(" ")
    lines: list[str] = []
    current = ""
    for index, word in enumerate(words):
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size) <= max_width:
            current = candidate
            continue
        last_line = len(lines) == max_lines - 1
        if last_line:  # the rest must end here, cut with an ellipsis
            rest = " ".join([current, *words[index:]] if current else words[index:])
            lines.append(_ellipsize(rest, size, max_width))
            return lines
        if current:
            lines.append(current)
            current = ""
        if text_width(word, size) <= max_width:
            current = word
        elif len(lines) == max_lines - 1:
            lines.append(_ellipsize(" ".join(words[index:]), size, max_width))
            return lines
        else:
            lines.append(_ellipsize(word, size, max_width))  # a word wider than a line
    if current or not lines:
        lines.append(current)
    return lines

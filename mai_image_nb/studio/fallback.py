"""What a notebook shows where a Studio was, when no kernel draws it.

A displayed Studio makes two outputs: the widget view, then a note (text/plain and text/html:
what the Studio is, and to run the cell). A front end that cannot draw a widget (nbconvert
HTML, GitHub, an untrusted notebook) picks the note's text and shows it once: the widget
output's text is empty. A trusted notebook reopened in JupyterLab or Notebook 7
would print "Error displaying widget: model not found" for the widget output, or draw a dead
copy from the widget state saved in the notebook (nbclient saves it); the note's own CSS
hides that output (the one just before the note) while this Studio is not live on the page,
and hides the note (its whole output) as soon as this Studio is drawn with a kernel behind
it. The rules key on a class naming this Studio's model (`studio_class`), so one live panel
never hides the note of another, and on the output-area classes that JupyterLab, Notebook 7
and Voila share (`jp-OutputArea-child`, `jp-OutputArea-output`).
Sanitizers (GitHub, untrusted Lab) drop `<style>` with its text, leaving the note.
Only the core's pure helpers are imported.
"""

from __future__ import annotations

import re

from mai_image_nb import display

__all__ = ["FALLBACK_TEXT", "WIDGET_VIEW", "fallback_html", "studio_class"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# ipywidgets' class on a view drawn from state saved in the notebook, with no kernel behind it
DISCONNECTED = "jupyter-widgets-disconnected"
FALLBACK_TEXT = (
    "MAI-Image Studio (an interactive panel: Generate, Compare, History). "
    "Run this cell to use it; it needs a running kernel."
)
# The note waits this long before it shows: a live Studio is usually drawn by then, and
# hides the note before it was ever seen.
WAIT_S = 1.0


def studio_class(model_id: str) -> str:
    """`mai-studio-<id>`: the class naming one Studio on the page (letters, digits, dashes)."""
    return "mai-studio-" + re.sub(r"[^A-Za-z0-9-]", "", model_id)


def fallback_html(model_id: str) -> str:
    """The note shown where the Studio of `model_id` stood, with the CSS described above."""
    live = studio_class(model_id)
    note = f"mai-fallback-{live.removeprefix('mai-studio-')}"
    child, output = ".jp-OutputArea-child", ".jp-OutputArea-output"
    own_output = f"{child}:has(> {output} > .{note})"
    drawn = f".{live}:not(.{DISCONNECTED})"
    # (one :has() each: a :has() inside another is invalid, and drops the whole rule)
    style = (
        f"body:has({drawn}) .{note}, body:has({drawn}) {own_output} {{ display: none; }}"
        f"body:not(:has({drawn})) {child}:has(+ {child} > {output} > .{note}) {{ display: none; }}"
        f".{note} {{ animation: mai-fallback-wait {WAIT_S:g}s; }}"
        "@keyframes mai-fallback-wait { from, to { visibility: hidden; } }"
    )
    return (
        f'<div class="mai-studio-fallback {note} mai-text tex2jax_ignore mathjax_ignore" '
        'style="border:1px solid #ccc;border-radius:6px;padding:8px 12px;'
        'font-family:sans-serif;font-size:13px">'
        f"<style>{style}</style>"
        "<b>MAI-Image Studio</b> stood here: an interactive panel to generate, compare and "
        "browse images. It needs a running kernel: <b>run this cell</b> to open it. Images "
        "made with it are in the history folder and can be shown with "
        f"<code>{display.escape('History()')}</code>.</div>"
    )

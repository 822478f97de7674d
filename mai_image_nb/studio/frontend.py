"""The panel's only browser-side code: Ctrl+Enter, and bringing a box into view when it opens.

ipywidgets sends the kernel no key events and cannot scroll the page, so two fixed scripts
run in the browser from the `onerror` handler of an `<img>` that cannot load (`data:,`): the
one way to run code from an HTML widget in JupyterLab, Notebook 7 and Voila alike, with no
front-end extension. The scripts hold no user text (they are constants, escaped once for
the attribute) and no `$` (MathJax). What they do reaches the kernel as an ordinary button
click. Only ipywidgets is imported.
"""

from __future__ import annotations

import html

import ipywidgets as w

__all__ = [
    "KEYS_HTML",
    "PROMPT_CLASS",
    "REVEAL_CLASS",
    "SCOPE_CLASS",
    "SUBMIT_CLASS",
    "KeyListener",
    "mark_submit",
    "reveal_html",
]

SCOPE_CLASS = "mai-submit-scope"  # a tab: its prompt and its Generate/Run button
PROMPT_CLASS = "mai-prompt"  # a text area where Ctrl+Enter presses the scope's button
SUBMIT_CLASS = "mai-submit"  # that button
REVEAL_CLASS = "mai-reveal"  # a box scrolled into view when it opens (the lightbox)

# One capture-phase keydown listener on this panel's own root (`.mai-studio`): ipywidgets'
# text area stops the event's propagation, so a listener of the bubbling phase never sees it.
# Installed once per root, however often the widget is drawn; it reaches no other panel.
_KEYS_JS = """(function (img) {
  var tries = 0;
  function install() {
    var root = img.closest('.mai-studio');
    if (!root) { if (++tries < 100) setTimeout(install, 50); return; }
    if (root.maiCtrlEnter) return;
    root.maiCtrlEnter = true;
    root.setAttribute('data-mai-ctrl-enter', 'on');
    root.addEventListener('keydown', function (event) {
      if (event.key !== 'Enter' || !(event.ctrlKey || event.metaKey)) return;
      if (event.shiftKey || event.altKey || event.isComposing) return;
      var target = event.target;
      if (!target || target.tagName !== 'TEXTAREA' || !target.closest('.PROMPT')) return;
      var scope = target.closest('.SCOPE');
      if (!scope || scope.closest('.mai-studio') !== root) return;
      event.preventDefault();
      event.stopPropagation();
      var button = scope.querySelector('button.SUBMIT');
      if (button && !button.disabled && !event.repeat) button.click();
    }, true);
  }
  install();
})(this)"""
_KEYS_JS = (
    _KEYS_JS.replace(".PROMPT", f".{PROMPT_CLASS}")
    .replace(".SCOPE", f".{SCOPE_CLASS}")
    .replace(".SUBMIT", f".{SUBMIT_CLASS}")
)

# Once the box is drawn: if its top is outside the visible part of the page (or of the
# notebook's scrolling panel), scroll it to the top; once Close has hidden it, scroll back to
# the button that opened it.
_REVEAL_JS = """(function (img) {
  var frames = 0;
  var origin = document.activeElement;
  function scroller(el) {
    for (var p = el.parentElement; p; p = p.parentElement) {
      var style = getComputedStyle(p);
      if (/(auto|scroll)/.test(style.overflowY) && p.scrollHeight > p.clientHeight) return p;
    }
    return null;
  }
  function reveal() {
    var box = img.closest('.REVEAL');
    if (!box || box.getClientRects().length === 0) {
      if (++frames < 120) requestAnimationFrame(reveal);
      return;
    }
    var outer = scroller(box);
    var top = outer ? Math.max(0, outer.getBoundingClientRect().top) : 0;
    var bottom = Math.min(window.innerHeight,
      outer ? outer.getBoundingClientRect().bottom : window.innerHeight);
    var y = box.getBoundingClientRect().top;
    if (y < top || y > bottom - 80) box.scrollIntoView({block: 'start'});
    box.maiOrigin = origin && origin !== document.body ? origin : null;
    if (!box.maiCloseBack) {
      box.maiCloseBack = true;
      box.addEventListener('click', function (event) {
        var back = box.maiOrigin, waited = 0;
        if (!event.target.closest('.mai-reveal-close') || !back) return;
        (function when_closed() {  // the kernel hides the box: then the page has its height
          if (box.getClientRects().length > 0 && ++waited < 300) {
            requestAnimationFrame(when_closed);
          } else if (back.isConnected) {
            back.scrollIntoView({block: 'nearest'});
          }
        })();
      });
    }
  }
  requestAnimationFrame(reveal);
})(this)""".replace(".REVEAL", f".{REVEAL_CLASS}")


def _script_html(script: str, marker: str) -> str:
    """An `<img>` that cannot load, whose error handler runs `script` (escaped)."""
    return (
        f'<img class="{marker}" src="data:," alt="" hidden '
        f'onerror="{html.escape(script, quote=True)}">'
    )


def reveal_html(nonce: int) -> str:
    """HTML that scrolls its `.mai-reveal` box into view when drawn; a new `nonce` draws again."""
    return f'<span data-shown="{int(nonce)}">{_script_html(_REVEAL_JS, "mai-reveal-script")}</span>'


KEYS_HTML = _script_html(_KEYS_JS, "mai-keys-script")  # the KeyListener's value, always


class KeyListener(w.HTML):  # type: ignore[misc]
    """An invisible widget whose drawing installs the panel's Ctrl+Enter (Cmd+Enter) listener.

    Put one inside the `.mai-studio` root; mark each tab with `SCOPE_CLASS`, its prompt text
    area with `PROMPT_CLASS` and its Generate/Run button with `SUBMIT_CLASS`.
    """

    def __init__(self) -> None:
        super().__init__(KEYS_HTML)
        self.layout.display = "none"


def mark_submit(scope: w.Widget, prompt: w.Textarea, button: w.Button) -> None:
    """Ctrl+Enter in `prompt` presses `button` (both inside `scope`, a tab of the panel)."""
    scope.add_class(SCOPE_CLASS)
    prompt.add_class(PROMPT_CLASS)
    button.add_class(SUBMIT_CLASS)

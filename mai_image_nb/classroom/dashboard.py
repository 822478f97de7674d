"""`Dashboard`: the teacher's panel over a running gateway (ipywidgets; the one place here).

It speaks to the gateway over HTTP with the admin token, like any other client, so it works
from another kernel too. A background thread refreshes it every few seconds and stops when
the panel is closed. Every name and prompt is escaped; the only token ever shown is the one
just made for a new student. Dollar amounts go through `display.no_math`: a static export
typesets the whole page, and its MathJax must not read two prices as a formula.
"""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any
from urllib.parse import quote

import ipywidgets as w
import requests

from mai_image_nb import display

__all__ = ["REFRESH_S", "Dashboard"]

log = logging.getLogger("mai_image_nb.classroom")

REFRESH_S = 3.0
HTTP_TIMEOUT_S = 10.0
GALLERY_SIZE = 12
PREVIEW_PX = 128  # shown at this width; the gateway's previews are at most 256 px
JOIN_S = HTTP_TIMEOUT_S + 5.0

_STYLE = """<style>
.mai-class table { border-collapse: collapse; font-size: 12px; }
.mai-class td, .mai-class th { padding: 2px 8px; text-align: left; }
.mai-class .bar { width: 120px; height: 10px; background: #eee; border-radius: 5px; }
.mai-class .bar > div { height: 10px; border-radius: 5px; background: #3b7dd8; }
.mai-class .bar.full > div { background: #c0392b; }
.mai-class figure { display: inline-block; margin: 4px; width: 128px; vertical-align: top; }
.mai-class figcaption { font-size: 11px; overflow-wrap: anywhere; }
</style>"""


class Dashboard(w.VBox):  # type: ignore[misc]
    """A table of students, the class's latest images, and add-budget / revoke / add actions."""

    def __init__(self, url: str, admin_token: str, *, refresh_s: float = REFRESH_S) -> None:
        self._base = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {admin_token}"}
        self._session = requests.Session()
        self._session.trust_env = False  # the admin token goes to the gateway, never a proxy
        self._http_lock = threading.Lock()
        self._previews: dict[str, str] = {}
        self._stop = threading.Event()
        self.refresh_s = refresh_s
        self.state_line = w.HTML()
        self.table = w.HTML()
        self.gallery = w.HTML()
        self.status_line = w.HTML()
        self.student_picker = w.Dropdown(description="Student", options=[])
        self.amount_box = w.BoundedFloatText(value=1.0, min=0.0, max=1000.0, step=0.5,
                                             description="Add $")  # fmt: skip
        self.add_budget_button = w.Button(description="Add budget")
        self.revoke_button = w.Button(description="Revoke", button_style="danger")
        self.name_box = w.Text(placeholder="new student's name")
        self.add_student_button = w.Button(description="Add student")
        self.add_budget_button.on_click(lambda _: self._act(self._add_budget))
        self.revoke_button.on_click(lambda _: self._act(self._revoke))
        self.add_student_button.on_click(lambda _: self._act(self._add_student))
        actions = w.HBox([self.student_picker, self.amount_box, self.add_budget_button,
                          self.revoke_button])  # fmt: skip
        adding = w.HBox([self.name_box, self.add_student_button])
        super().__init__([w.HTML(_STYLE), self.state_line, self.table, actions, adding,
                          self.status_line, self.gallery])  # fmt: skip
        self.add_class("mai-class")
        self.refresh()
        self.thread = threading.Thread(target=self._run, name="classroom-dashboard", daemon=True)
        self.thread.start()

    # -- refreshing ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_s):
            self.refresh()

    def refresh(self) -> None:
        """Read the class and its gallery now (the thread does this every `refresh_s`)."""
        try:
            state = self._get_json("/classroom/state")
            students = self._get_json("/classroom/students")
            latest = self._get_json(f"/classroom/gallery?limit={GALLERY_SIZE}")
            figures = [self._figure(item) for item in latest]
        except (requests.RequestException, ValueError) as exc:
            if not self._stop.is_set():
                self._say(f"cannot reach the gateway: {type(exc).__name__}", error=True)
            return
        if self._stop.is_set():
            return
        self.state_line.value = display.no_math(_state_html(state))
        self.table.value = display.no_math(_table_html(students))
        names = [s["name"] for s in students]
        if list(self.student_picker.options) != names:
            chosen = self.student_picker.value
            self.student_picker.options = names
            if chosen in names:
                self.student_picker.value = chosen
        self.gallery.value = display.no_math("".join(figures) or "<i>No images yet.</i>")

    def _figure(self, item: dict[str, Any]) -> str:
        preview = str(item.get("preview", ""))
        src = self._previews.get(preview)
        if src is None:
            data = self._get(preview).content
            src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
            self._previews[preview] = src
        caption = (
            f"<b>{display.escape(item.get('name', ''))}</b>: "
            f"{display.escape(display.short_prompt(str(item.get('prompt', ''))))}"
        )
        return (f'<figure><img src="{src}" width="{PREVIEW_PX}" alt="">'
                f"<figcaption>{caption}</figcaption></figure>")  # fmt: skip

    # -- actions ------------------------------------------------------------------------------

    def _act(self, action: Any) -> None:
        try:
            action()
        except requests.RequestException as exc:
            self._say(f"the gateway refused: {_reason(exc)}", error=True)
            return
        self.refresh()

    def _add_budget(self) -> None:
        name = self.student_picker.value
        if not name:
            return self._say("choose a student first", error=True)
        current = next((s for s in self._get_json("/classroom/students") if s["name"] == name),
                       None)  # fmt: skip
        if current is None:
            return self._say("that student is no longer in the class", error=True)
        budget = round(current["budget_usd"] + float(self.amount_box.value), 6)
        self._post(f"/classroom/students/{quote(name, safe='')}/budget", {"budget_usd": budget})
        self._say(f"{display.escape(name)} now has a budget of ${budget:.2f}")
        return None

    def _revoke(self) -> None:
        name = self.student_picker.value
        if not name:
            return self._say("choose a student first", error=True)
        self._post(f"/classroom/students/{quote(name, safe='')}/revoke", {})
        self._say(f"{display.escape(name)}'s token is revoked")
        return None

    def _add_student(self) -> None:
        name = self.name_box.value.strip()
        if not name:
            return self._say("type a name first", error=True)
        made = self._post("/classroom/students", {"name": name})
        self.name_box.value = ""
        self._say(f"added {display.escape(made['name'])}: their token is "
                  f"<code>{display.escape(made['token'])}</code> (also in tokens.csv)")  # fmt: skip
        return None

    def _say(self, html: str, *, error: bool = False) -> None:
        colour = "#c0392b" if error else "inherit"
        self.status_line.value = display.no_math(f'<span style="color:{colour}">{html}</span>')

    # -- HTTP ---------------------------------------------------------------------------------

    def _get(self, path: str) -> requests.Response:
        with self._http_lock:
            response = self._session.get(self._base + path, headers=self._headers,
                                         timeout=HTTP_TIMEOUT_S)  # fmt: skip
        response.raise_for_status()
        return response

    def _get_json(self, path: str) -> Any:
        return self._get(path).json()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        with self._http_lock:
            response = self._session.post(self._base + path, json=body, headers=self._headers,
                                          timeout=HTTP_TIMEOUT_S)  # fmt: skip
        if response.status_code >= 400:
            raise requests.HTTPError(_message(response), response=response)
        return response.json()

    def close(self) -> None:
        """Stop the refresh thread (joined) and close the panel and its connections."""
        self._stop.set()
        if self.thread is not threading.current_thread():
            self.thread.join(JOIN_S)
        with self._http_lock:
            self._session.close()
        super().close()


def _message(response: requests.Response) -> str:
    try:
        return str(response.json().get("message") or response.reason)
    except ValueError:
        return f"HTTP {response.status_code}"


def _reason(exc: requests.RequestException) -> str:
    return display.escape(str(exc) if isinstance(exc, requests.HTTPError) else type(exc).__name__)


def _state_html(state: dict[str, Any]) -> str:
    """Requests upstream and waiting; in red, what the teacher must act on (the disk, the
    key)."""
    line = (f"{int(state['upstream'])} upstream · {int(state['waiting'])} waiting · "
            f"{int(state['disk_free_mb']):,} MB free on the class folder's disk")  # fmt: skip
    problems = []
    if not state.get("ledger_ok", True):
        problems.append("the ledger cannot be written: requests are refused until space is freed")
    if state.get("gallery_paused"):
        problems.append("the disk is nearly full: new images are not kept in the gallery")
    refused = state.get("upstream_refused")
    if isinstance(refused, dict):
        problems.append(display.escape(
            f"the image service refuses the class's key since {refused.get('since')} "
            f"(HTTP {refused.get('status')}: {refused.get('message')}): check the key and its "
            "credits; students' requests fail until it is accepted"))  # fmt: skip
    warn = "".join(f'<br><b style="color:#c0392b">{p}</b>' for p in problems)
    return f"<span>{line}</span>{warn}"


def _table_html(students: list[dict[str, Any]]) -> str:
    rows = []
    for s in students:
        budget, spent = float(s["budget_usd"]), float(s["spent_usd"])
        share = 100.0 if budget <= 0 else min(100.0, 100.0 * spent / budget)
        full = " full" if share >= 99.9 else ""
        state = " (revoked)" if s.get("revoked") else ""
        rows.append(
            f"<tr><td>{display.escape(s['name'])}{state}</td><td>{int(s['images'])}</td>"
            f'<td><div class="bar{full}"><div style="width:{share:.0f}%"></div></div></td>'
            f"<td>${spent:.2f} of ${budget:.2f}</td><td>{int(s['errors'])}</td>"
            f"<td>{display.escape(s.get('last_seen') or '—')}</td></tr>"
        )
    head = ("<tr><th>Student</th><th>Images</th><th>Spend</th><th></th><th>Errors</th>"
            "<th>Last seen</th></tr>")  # fmt: skip
    return f"<table>{head}{''.join(rows)}</table>"

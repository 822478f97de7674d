"""The teacher's Dashboard in a real browser: the class, its picture and its prices as written.

A notebook made here starts a gateway over the simulator, lets one student make an image and
shows the Dashboard; JupyterLab, Notebook 7 and Voila draw it in headless Chromium. (These
front ends do not typeset an HTML widget; a static export's MathJax would, which is why the
values hold no "$" at all: tests/classroom/test_dashboard.py checks that.)
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS, JupyterServer, artifact_name
from tests.e2e.test_browser import (
    FRONT_ENDS,
    LOAD_TIMEOUT_MS,
    MATHJAX_IN_OUTPUTS_JS,
    open_new_notebook,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CELLS = [
    "import tempfile\n"
    "import mai_image_nb as mai\n"
    "from mai_image_nb.classroom import Classroom, Dashboard\n"
    'room = Classroom(tempfile.mkdtemp(prefix="class-"), upstream="offline", budget_usd=0.15)\n'
    "room.start()\n"
    'tokens = room.add_students(["ada", "alan"])',
    'with mai.Client(api_key=tokens["ada"], base_url=room.url, history=False) as ada:\n'
    '    ada.generate("a lighthouse in a storm", temperature=0)',
    "board = Dashboard(room.url, room.admin_token)\nboard",
]


@pytest.mark.parametrize(("address", "run_cells"), FRONT_ENDS)
def test_the_dashboard_draws_the_class_with_prices_as_written(
    jupyter_server: JupyterServer,
    page: Any,
    request: pytest.FixtureRequest,
    address: str,
    run_cells: bool,
) -> None:
    path = f"teacher-{request.node.callspec.id}/dashboard.ipynb"
    try:
        open_new_notebook(jupyter_server, page, path, CELLS, address, run_cells=run_cells)
        board = page.locator(".mai-class")
        board.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
        row = board.locator("tr", has_text="ada")
        row.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
        page.wait_for_function(  # the class gallery has ada's picture
            "() => [...document.querySelectorAll('.mai-class figure img')].some("
            "(img) => img.complete && img.naturalWidth > 0)",
            timeout=LOAD_TIMEOUT_MS,
        )
        assert "$0.06 of $0.15" in row.inner_text()  # the dollars as written, not a formula
        assert "waiting" in board.inner_text()
        assert page.evaluate(MATHJAX_IN_OUTPUTS_JS) == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        board.screenshot(path=str(ARTIFACTS / f"{artifact_name(request.node.nodeid)}-board.png"))
    finally:
        jupyter_server.shutdown_kernels()

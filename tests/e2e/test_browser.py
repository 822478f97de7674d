"""The quickstart in real browsers: JupyterLab, Notebook 7 and Voila drive the Studio.

Each test opens its own copy of notebooks/01-quickstart.ipynb (so no two share a kernel), runs
it, types a prompt, sets the temperature to 0, clicks Generate, and reads the preview's pixels
back through a canvas. At temperature 0 the simulator's picture depends on the prompt and the
ratio only, so the test renders the expected picture in-process and compares block colours,
and checks that a different prompt's picture would not have matched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from mai_image_nb.offline import render_image
from mai_image_nb.params import IMAGE_SIZES
from tests.e2e.conftest import (
    ARTIFACTS,
    NOTEBOOKS,
    VIEWPORT,
    JupyterServer,
    artifact_name,
    kernel_env,
    running_jupyter,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

QUICKSTART = "01-quickstart.ipynb"
LOAD_TIMEOUT_MS = 60_000
IMAGE_TIMEOUT_MS = 30_000
BLOCKS = 8  # the picture is compared as an 8×8 grid of mean colours
MAX_BLOCK_DIFF = 10.0  # largest |difference| of one channel of one block mean (JPEG, scaling)
MIN_CONTROL_DIFF = 40.0  # another prompt's picture must differ at least this much somewhere
CONTROL_PROMPT = "a white house in a grey city street"

# JavaScript run in the page -----------------------------------------------------------------------

# True once the visible tab of the Studio shows `count` loaded images (a blob: src is there even
# before any bytes arrive, so "loaded" means complete with a natural width).
LOADED_IMAGES_JS = """
([count]) => {
  const root = document.querySelector('.mai-studio');
  if (!root) return false;
  const shown = [...root.querySelectorAll('img')].filter(
    (img) => img.checkVisibility() && img.complete && img.naturalWidth > 0);
  return shown.length >= count;
}
"""

# The page's kernel is started, connected and idle. The execution indicator alone is not enough:
# it reads "idle" for a moment before the kernel exists, while the toolbar says "No Kernel".
KERNEL_READY_JS = """
() => {
  const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
  const name = document.querySelector('.jp-Toolbar-kernelName');
  return !!status && status.getAttribute('data-status') === 'idle' && !!name
    && name.textContent.trim() !== '' && !/no kernel/i.test(name.textContent);
}
"""

# The image's pixels as BLOCKS×BLOCKS mean colours, read back through a canvas.
BLOCK_MEANS_JS = """
(img, n) => {
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const means = [];
  for (let by = 0; by < n; by++) {
    for (let bx = 0; bx < n; bx++) {
      const x0 = Math.floor(bx * canvas.width / n), x1 = Math.floor((bx + 1) * canvas.width / n);
      const y0 = Math.floor(by * canvas.height / n), y1 = Math.floor((by + 1) * canvas.height / n);
      let r = 0, g = 0, b = 0, k = 0;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const i = (y * canvas.width + x) * 4;
          r += data[i]; g += data[i + 1]; b += data[i + 2]; k++;
        }
      }
      means.push([r / k, g / k, b / k]);
    }
  }
  return {width: canvas.width, height: canvas.height, means: means};
}
"""


# Expected pictures --------------------------------------------------------------------------------


def block_means(image: Image.Image, n: int = BLOCKS) -> list[list[float]]:
    """The same BLOCKS×BLOCKS mean colours as BLOCK_MEANS_JS, computed with Pillow."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    means = []
    for by in range(n):
        for bx in range(n):
            box = (bx * width // n, by * height // n, (bx + 1) * width // n, (by + 1) * height // n)
            means.append(ImageStat.Stat(rgb.crop(box)).mean[:3])
    return means


def expected_means(prompt: str, aspect_ratio: str, size: tuple[int, int]) -> list[list[float]]:
    """The simulator's temperature-0 picture for `prompt`, scaled to the size shown."""
    full = render_image(prompt, aspect_ratio, 0.0, variation=0)
    return block_means(full.resize(size, Image.Resampling.LANCZOS))


def largest_diff(a: list[list[float]], b: list[list[float]]) -> float:
    return max(
        abs(x - y)
        for block_a, block_b in zip(a, b, strict=True)
        for x, y in zip(block_a, block_b, strict=True)
    )


def assert_shows(shown: dict[str, Any], prompt: str, aspect_ratio: str) -> None:
    """The read-back `shown` is the simulator's picture of `prompt` at temperature 0."""
    size = (shown["width"], shown["height"])
    full_w, full_h = IMAGE_SIZES[aspect_ratio]
    assert abs(size[0] / size[1] - full_w / full_h) < 0.05, f"shown at {size}, not {aspect_ratio}"
    assert max(size) <= 512, f"the widget holds a {size} image, not a ≤512 px preview"
    expected = expected_means(prompt, aspect_ratio, size)
    control = expected_means(CONTROL_PROMPT, aspect_ratio, size)
    diff, control_diff = (
        largest_diff(shown["means"], expected),
        largest_diff(shown["means"], control),
    )
    if diff > MAX_BLOCK_DIFF:  # keep the expected picture beside the screenshots
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        render_image(prompt, aspect_ratio, 0.0, variation=0).resize(size).save(
            ARTIFACTS / f"expected-{aspect_ratio.replace(':', 'x')}-{'-'.join(prompt.split())}.png"
        )
    assert diff <= MAX_BLOCK_DIFF, f"the preview differs from the expected picture by {diff:.1f}"
    assert control_diff >= MIN_CONTROL_DIFF, (
        f"the check cannot tell prompts apart (control differs by only {control_diff:.1f})"
    )


# Driving the pages --------------------------------------------------------------------------------


def run_all_cells(page: Any) -> None:
    """Lab and Notebook 7: wait for a connected, idle kernel, then Run ▸ Run All Cells.

    The menu, not a keyboard shortcut (shortcuts right after load are lost now and then).
    """
    page.wait_for_function(KERNEL_READY_JS, timeout=LOAD_TIMEOUT_MS)
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    first_prompt = page.locator(".jp-CodeCell .jp-InputArea-prompt").first
    page.wait_for_function(
        "(el) => /\\[\\d+\\]/.test(el.textContent)",
        arg=first_prompt.element_handle(),
        timeout=LOAD_TIMEOUT_MS,
    )


def open_new_notebook(
    jupyter: JupyterServer,
    page: Any,
    path: str,
    cells: list[str],
    address: str,
    *,
    run_cells: bool,
) -> None:
    """Write a notebook of these code cells at `path` under the root, open it, run it."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    (jupyter.root / path).parent.mkdir(parents=True)
    nbformat.write(nb, jupyter.root / path)
    page.goto(jupyter.address(address.format(path)))
    if run_cells:
        run_all_cells(page)


def open_quickstart(
    jupyter: JupyterServer, page: Any, folder: str, address: str, *, run_cells: bool = True
) -> Any:
    """Open a fresh copy of the quickstart, run it, and return the Studio's locator.

    `address` is the page with `{}` for the notebook's path (`"notebooks/{}"`); Voila runs
    every cell itself, so it comes with `run_cells=False`.
    """
    path = jupyter.notebook_copy(QUICKSTART, folder)
    page.goto(jupyter.address(address.format(path)))
    if run_cells:
        run_all_cells(page)
    studio = page.locator(".mai-studio")
    studio.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    return studio


def generate_at_zero(page: Any, studio: Any, prompt: str) -> dict[str, Any]:
    """In the Generate tab: prompt, temperature 0, Ctrl+Enter; the preview's block colours.

    The key is pressed in the prompt, as a user would: the panel's listener presses Generate.
    """
    studio.get_by_role("tab", name="Generate").click()
    prompt_box = studio.locator("textarea:visible").first
    prompt_box.fill(prompt)
    readout = studio.locator(".widget-slider .widget-readout:visible").first
    readout.fill("0")
    readout.press("Enter")
    page.wait_for_function("(el) => parseFloat(el.textContent) === 0", arg=readout.element_handle())
    prompt_box.press("Control+Enter")
    page.wait_for_function(LOADED_IMAGES_JS, arg=[1], timeout=IMAGE_TIMEOUT_MS)
    preview = studio.locator("img:visible").first
    preview.scroll_into_view_if_needed()
    return preview.evaluate(BLOCK_MEANS_JS, BLOCKS)  # type: ignore[no-any-return]


def save_studio_shot(studio: Any, request: pytest.FixtureRequest) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    studio.screenshot(path=str(ARTIFACTS / f"{artifact_name(request.node.nodeid)}-studio.png"))


@pytest.fixture
def jupyter(jupyter_server: JupyterServer) -> Iterator[JupyterServer]:
    """The session's Jupyter server; kernels this test started are stopped after it."""
    yield jupyter_server
    jupyter_server.shutdown_kernels()


# The tests ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "run_cells", "prompt"),
    [
        pytest.param(
            "lab/tree/{}?reset", True, "a red lighthouse by the sea at night", id="jupyterlab"
        ),
        pytest.param("notebooks/{}", True, "a yellow cat in a snowy forest", id="notebook7"),
        pytest.param(
            "voila/render/{}", False, "a purple castle in the desert at sunset", id="voila"
        ),
    ],
)
def test_generate_shows_the_simulators_image(
    jupyter: JupyterServer,
    page: Any,
    request: pytest.FixtureRequest,
    address: str,
    run_cells: bool,
    prompt: str,
) -> None:
    folder = f"generate-{request.node.callspec.id}"
    studio = open_quickstart(jupyter, page, folder, address, run_cells=run_cells)
    shown = generate_at_zero(page, studio, prompt)
    save_studio_shot(studio, request)
    assert_shows(shown, prompt, "1:1")


FRONT_ENDS = [
    pytest.param("lab/tree/{}?reset", True, id="jupyterlab"),
    pytest.param("notebooks/{}", True, id="notebook7"),
    pytest.param("voila/render/{}", False, id="voila"),
]
NARROW = {"width": 1024, "height": 768}

# Elements inside the Studio (text areas excepted) that scroll: overflow auto/scroll with more
# content than fits, described for the failure message.
SCROLLBARS_JS = """
() => {
  const root = document.querySelector('.mai-studio');
  const bad = [];
  for (const el of [root, ...root.querySelectorAll('*')]) {
    if (el.tagName === 'TEXTAREA' || !el.checkVisibility()) continue;
    const cs = getComputedStyle(el);
    const y = /(auto|scroll)/.test(cs.overflowY) && el.scrollHeight > el.clientHeight + 1;
    const x = /(auto|scroll)/.test(cs.overflowX) && el.scrollWidth > el.clientWidth + 1;
    if (x || y) bad.push(`${el.tagName}.${[...el.classList].join('.')} ` +
      `${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight}`);
  }
  return bad;
}
"""

# Elements inside the Studio that stick out of their parent's box by more than a pixel
# (a widget's margin beside width 100%, a thumbnail taller than its box).
OVERFLOW_JS = """
() => {
  const root = document.querySelector('.mai-studio');
  const bad = [];
  for (const el of root.querySelectorAll('*')) {
    const parent = el.parentElement;
    if (!el.checkVisibility() || !parent || parent === root.parentElement) continue;
    const cs = getComputedStyle(el);
    if (cs.position === 'absolute' || cs.position === 'fixed') continue;
    if (cs.animationName !== 'none') continue;  // a spinning spinner's box is its diagonal
    const r = el.getBoundingClientRect(), p = parent.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const out = Math.max(p.left - r.left, r.right - p.right, p.top - r.top, r.bottom - p.bottom);
    if (out > 1) bad.push(`${el.tagName}.${[...el.classList].join('.')} by ${out.toFixed(0)}px`);
  }
  return bad;
}
"""

# Buttons and tab titles whose label does not fit (cut with an ellipsis).
TRUNCATED_JS = """
() => [...document.querySelectorAll(
    '.mai-studio button, .mai-studio .lm-TabBar-tabLabel, .mai-studio .widget-label')]
  .filter((el) => el.checkVisibility() && el.scrollWidth > el.clientWidth + 1)
  .map((el) => el.textContent.trim())
"""

# MathJax's own elements inside any output area (or the Studio): there must be none.
MATHJAX_IN_OUTPUTS_JS = """
() => [...document.querySelectorAll(
  '.mai-studio mjx-container, .mai-studio .MathJax, .jp-OutputArea-output mjx-container, '
  + '.jp-OutputArea-output .MathJax, .jp-OutputArea-output .MathJax_Preview')].map(
  (el) => (el.closest('.jp-OutputArea-output') || el.parentElement).innerText.slice(0, 200))
"""


def assert_no_scrollbars(page: Any, where: str) -> None:
    """No element of the panel scrolls (text areas aside), and none sticks out of its box."""
    bad = page.evaluate(SCROLLBARS_JS)
    assert not bad, f"scrollbars inside the Studio ({where}): {bad}"
    truncated = page.evaluate(TRUNCATED_JS)
    assert not truncated, f"labels cut short ({where}): {truncated}"
    sticking_out = page.evaluate(OVERFLOW_JS)
    assert not sticking_out, f"elements outside their box ({where}): {sticking_out[:12]}"


def shot(studio: Any, request: pytest.FixtureRequest, step: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = f"{artifact_name(request.node.nodeid)}-{step}.png"
    studio.screenshot(path=str(ARTIFACTS / name))


def visible_in_viewport(locator: Any, page: Any) -> bool:
    box = locator.bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + min(box["height"], 80) <= height


def download_png(page: Any, studio: Any, tmp_dir: Any) -> dict[str, Any]:
    """Click Download, then the link it offers; the parameters read back from the saved file."""
    from mai_image_nb import read_params

    # (an icon's glyph is part of a button's accessible name: match the text instead)
    studio.locator("button:visible", has_text="Download").first.click()
    link = studio.locator("a.mai-download-link:visible").first
    link.wait_for(state="visible")
    with page.expect_download() as started:
        link.click()
    download = started.value
    target = tmp_dir / download.suggested_filename
    download.save_as(str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return read_params(target)


@pytest.mark.parametrize(("address", "run_cells"), FRONT_ENDS)
def test_the_whole_studio_in_a_browser(
    jupyter: JupyterServer,
    page: Any,
    request: pytest.FixtureRequest,
    tmp_path: Any,
    address: str,
    run_cells: bool,
) -> None:
    """Generate, download, compare 2×2, open a cell, side by side; no scrollbars, no MathJax,
    every text at a contrast of 4.5:1 or more (the light theme)."""
    front_end = request.node.callspec.id
    colour = {"jupyterlab": "green", "notebook7": "orange", "voila": "purple"}[front_end]

    def step(target: Any, name: str) -> None:
        shot(target, request, name)
        record = ARTIFACTS / f"{artifact_name(request.node.nodeid)}-{name}-contrast.json"
        low = low_contrast(page, record)[1]
        assert not low, f"text under {MIN_CONTRAST}:1 at {name}: {low[:8]}"

    whole_studio_flow(
        jupyter, page, tmp_path, address, run_cells=run_cells, colour=colour,
        folder=f"whole-{front_end}",  # the kernels share one history: each its own prompts
        step=step,
    )  # fmt: skip


def whole_studio_flow(
    jupyter: JupyterServer,
    page: Any,
    tmp_path: Any,
    address: str,
    *,
    run_cells: bool,
    colour: str,
    folder: str,
    step: Callable[[Any, str], None],
) -> None:
    """The flow of the test above; `step(studio, name)` runs after each step (a screenshot)."""
    studio = open_quickstart(jupyter, page, folder, address, run_cells=run_cells)
    studio.scroll_into_view_if_needed()
    step(studio, "0-open")
    note = page.locator(".mai-studio-fallback")  # the note for saved notebooks: there, unseen
    note.wait_for(state="attached")
    assert note.count() == 1 and not note.is_visible() and studio.count() == 1

    # Generate, then download the full PNG with its parameters
    prompt = f"a {colour} lighthouse on a rocky coast at sunset"
    studio.get_by_role("tab", name="Generate").click()
    studio.locator("textarea:visible").first.fill(prompt)
    studio.locator(".mai-ratio:visible button", has_text="9:16").click()  # tall: the hard case
    studio.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function(LOADED_IMAGES_JS, arg=[1], timeout=IMAGE_TIMEOUT_MS)
    assert_no_scrollbars(page, "generate")
    params = download_png(page, studio, tmp_path)
    assert params["prompt"] == prompt and params["aspect_ratio"] == "9:16"
    step(studio, "1-generate")

    # Copy as code: the Copy button puts the call on the clipboard
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    studio.locator(".jupyter-widget-Collapse-header:visible, .p-Collapse-header:visible",
                   has_text="Copy as code").first.click()  # fmt: skip
    studio.locator("button.mai-copy:visible").click()
    studio.locator("button.mai-copy:visible", has_text="Copied").wait_for(state="visible")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied.startswith("client.generate(") and prompt in copied

    # The lightbox: the full-resolution image over the page, then closed
    studio.locator("button:visible", has_text="Full size").first.click()
    box = studio.locator(".mai-lightbox:visible")
    box.wait_for(state="visible")
    full = box.locator("img.mai-lightbox-image")
    page.wait_for_function(
        "(img) => img.complete && img.naturalHeight === 1376", arg=full.element_handle()
    )
    top = box.bounding_box()["y"]
    assert 0 <= top < page.viewport_size["height"], f"the lightbox opens out of view ({top})"
    step(page, "1b-lightbox")
    box.locator("button", has_text="Close").click()
    box.wait_for(state="hidden")

    # Compare 2×2: 1:1 and 16:9 at temperatures 0 and 2
    studio.get_by_role("tab", name="Compare").click()
    compare_prompts = studio.locator("textarea:visible").first
    compare_prompts.fill(f"a {colour} boat on a calm sea at dawn")
    studio.locator(".mai-ratio:visible button", has_text="9:16").click()  # on by default: off
    temperatures = (
        studio.locator(".widget-vbox:visible", has=page.get_by_text("Temperatures (0 to 2)"))
        .last.locator("input")
        .first
    )
    temperatures.fill("0, 2")
    temperatures.press("Enter")
    estimate = studio.locator(".mai-status:visible", has_text="4 cells")
    estimate.wait_for(state="visible")
    assert "costs $0.25" in estimate.inner_text() and "left" in estimate.inner_text()
    compare_prompts.press("Control+Enter")  # presses Run, as its tooltip says
    page.wait_for_function(
        "() => [...document.querySelectorAll('.mai-studio .mai-card img')].filter("
        "(i) => i.checkVisibility() && i.complete && i.naturalWidth > 0).length >= 4",
        timeout=IMAGE_TIMEOUT_MS,
    )
    done = studio.locator(".mai-status-ok:visible", has_text="Done")
    done.wait_for(state="visible")
    assert "$" in done.inner_text() and "paid" in done.inner_text()  # dollars stay text
    assert page.evaluate(MATHJAX_IN_OUTPUTS_JS) == []
    assert_no_scrollbars(page, "compare")
    step(studio, "2-compare")

    # Open a cell large
    studio.get_by_role("button", name="Open", exact=True).first.click()
    large = studio.locator(".mai-large:visible")
    large.wait_for(state="visible")
    assert large.get_by_role("button", name="Use these settings").is_visible()
    assert_no_scrollbars(page, "open cell")
    step(studio, "3-open-cell")

    # History: select two, side by side
    studio.get_by_role("tab", name="History").click()
    boxes = studio.locator(".widget-checkbox:visible input")
    boxes.first.wait_for(state="visible")
    boxes.nth(0).check()
    boxes.nth(1).check()
    studio.get_by_role("button", name="Side by side").click()
    row = studio.locator(".mai-side-row:visible")
    row.wait_for(state="visible")
    cards = row.locator(".mai-card")
    assert cards.count() == 2
    tops = [cards.nth(i).bounding_box()["y"] for i in range(2)]
    heights = [cards.nth(i).bounding_box()["height"] for i in range(2)]
    assert abs(tops[0] - tops[1]) < 1 and abs(heights[0] - heights[1]) < 1  # one equal row
    assert_no_scrollbars(page, "side by side")
    assert page.evaluate(MATHJAX_IN_OUTPUTS_JS) == []
    step(studio, "4-side-by-side")

    # At 1024 px: a new grid and a new image land in view of their buttons; no scrollbars
    page.set_viewport_size(NARROW)
    studio.get_by_role("tab", name="Compare").click()
    temperatures.fill("0.5, 1.5")
    temperatures.press("Enter")
    run = studio.get_by_role("button", name="Run", exact=True)
    run.scroll_into_view_if_needed()
    run.click()
    studio.get_by_text("temperature 1.5", exact=True).wait_for(state="visible")  # the new grid
    page.wait_for_function(
        "() => [...document.querySelectorAll('.mai-studio .mai-card img')].filter("
        "(i) => i.checkVisibility() && i.complete && i.naturalWidth > 0).length >= 4",
        timeout=IMAGE_TIMEOUT_MS,
    )
    first_cell = studio.locator(".mai-card img:visible").first
    assert visible_in_viewport(first_cell, page), "the grid is below the fold at 1024 px"
    assert_no_scrollbars(page, "compare at 1024 px")
    step(studio, "5-compare-1024")
    studio.get_by_role("tab", name="Generate").click()
    button = studio.get_by_role("button", name="Generate", exact=True)
    button.scroll_into_view_if_needed()
    button.click()
    studio.locator(".mai-status-ok:visible", has_text="history").wait_for(state="visible")
    preview = studio.locator("img.mai-preview:visible").first
    assert visible_in_viewport(preview, page), "the preview is below the fold at 1024 px"
    assert_no_scrollbars(page, "generate at 1024 px")
    step(studio, "6-generate-1024")

    # The lightbox from the last tile of the History gallery, scrolled far down
    studio.get_by_role("tab", name="History").click()
    last = studio.locator(".mai-card:visible").last
    last.scroll_into_view_if_needed()
    last.evaluate("(el) => el.scrollIntoView({block: 'end'})")
    gallery_top = studio.locator(".mai-card:visible").first.bounding_box()["y"]
    assert gallery_top < 0, f"the gallery's top is in view ({gallery_top}): nothing to prove"
    full_size = last.locator("button[title='Full size']")
    full_size.click()
    box = studio.locator(".mai-lightbox:visible")
    box.wait_for(state="visible")
    page.wait_for_function(
        "(img) => img.complete && img.naturalWidth > 0",
        arg=box.locator("img.mai-lightbox-image").element_handle(),
    )
    page.wait_for_function(  # the page settles (a scroll, if any, is done)
        "(el) => { const y = el.getBoundingClientRect().top; const same = el.maiY === y; "
        "el.maiY = y; return same; }",
        arg=box.element_handle(),
        polling=100,
    )
    top = box.bounding_box()["y"]
    assert 0 <= top < page.viewport_size["height"] - 80, f"the lightbox opens out of view ({top})"
    step(page, "7-lightbox")
    box.locator("button", has_text="Close").click()
    box.wait_for(state="hidden")
    page.wait_for_function(  # Close brings the tile it came from back into view
        "(el) => { const r = el.getBoundingClientRect(); return r.top >= 0 "
        "&& r.bottom <= window.innerHeight; }",
        arg=full_size.element_handle(),
    )


# A saved notebook reopened ------------------------------------------------------------------------


def executed_quickstart(jupyter: JupyterServer, folder: str, *, widget_state: bool) -> str:
    """Run the quickstart with nbclient, save it under `folder` of the root and trust it.

    Its path relative to the root. nbclient saves the widget state in the notebook; without
    it (`widget_state=False`, as Lab saves by default) Lab finds no model for the widget
    output. `jupyter trust` runs with the server's own data dir.
    """
    import nbformat
    from nbclient import NotebookClient

    target = jupyter.root / folder / QUICKSTART
    target.parent.mkdir(parents=True)
    nb = nbformat.read(NOTEBOOKS / QUICKSTART, as_version=4)
    client = NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(target.parent)}}
    )
    client.execute(env=kernel_env(jupyter.mai_image_home))
    if not widget_state:
        nb.metadata.pop("widgets", None)
    nbformat.write(nb, target)
    jupyter_command = Path(sys.executable).with_name("jupyter")
    subprocess.run(
        [str(jupyter_command), "trust", str(target)],
        env=jupyter.env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return f"{folder}/{QUICKSTART}"


# What stands where the Studio was, without its model: Lab's error, or a copy drawn from the
# saved widget state with no kernel behind it.
DEAD_STUDIO = ".mai-studio.jupyter-widgets-disconnected"
WIDGET_ERROR = "Error displaying widget"


@pytest.mark.parametrize(
    ("address", "widget_state"),
    [
        pytest.param("lab/tree/{}?reset", False, id="jupyterlab"),
        pytest.param("lab/tree/{}?reset", True, id="jupyterlab-widget-state"),
        pytest.param("notebooks/{}", False, id="notebook7"),
    ],
)
def test_a_saved_notebook_reopens_to_a_note_then_runs_live(
    jupyter: JupyterServer,
    page: Any,
    request: pytest.FixtureRequest,
    address: str,
    widget_state: bool,
) -> None:
    """Executed, saved and trusted: reopened, the Studio's cell reads as a note, not an error."""
    path = executed_quickstart(
        jupyter, f"reopened-{request.node.callspec.id}", widget_state=widget_state
    )
    assert jupyter.api(f"api/contents/{path}")["content"] is not None  # the server reads it
    page.goto(jupyter.address(address.format(path)))
    cell = page.locator(".jp-CodeCell", has_text="mai.Studio(client)")
    note = cell.locator(".mai-studio-fallback")
    note.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    assert "run this cell" in note.inner_text() and note.count() == 1
    # The widget output has settled (Lab's error, or a dead copy), and it is not shown.
    dead = cell.locator(DEAD_STUDIO) if widget_state else cell.get_by_text(WIDGET_ERROR)
    dead.wait_for(state="attached", timeout=LOAD_TIMEOUT_MS)
    page.wait_for_function(KERNEL_READY_JS, timeout=LOAD_TIMEOUT_MS)
    assert not dead.is_visible(), "the Studio's cell shows a widget error or a dead panel"
    assert note.is_visible()
    shot(cell, request, "1-reopened")

    run_all_cells(page)
    studio = cell.locator(".mai-studio:not(.jupyter-widgets-disconnected)")
    studio.wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    new_note = cell.locator(".mai-studio-fallback")
    new_note.wait_for(state="attached")  # the new run's note: there, and hidden whole
    assert not new_note.is_visible()
    hidden_outputs = page.evaluate(
        "(cell) => [...cell.querySelectorAll('.jp-OutputArea-child')].filter("
        "(el) => !el.checkVisibility()).length",
        cell.element_handle(),
    )
    assert hidden_outputs == 1, "the note's output should be hidden whole, and nothing else"
    generate_at_zero(page, studio, "a blue kite over a green hill")
    shot(cell, request, "2-live")


# The dark theme ---------------------------------------------------------------------------------

MIN_CONTRAST = 4.5  # WCAG 2 AA for text

# Every visible text inside the Studio (an element's own text, or an input's value), with its
# colour blended over its effective background: the first opaque background among it and its
# ancestors, layers with alpha blended on top, the page's canvas (white) at the bottom.
# Disabled controls are left out, as WCAG leaves them out.
CONTRAST_JS = """
() => {
  const parse = (c) => {  // rgb(), rgba(), or color(srgb r g b / a) as color-mix() gives
    const m = c.match(/rgba?\\(([^)]+)\\)/), n = c.match(/color\\(srgb ([^)]+)\\)/);
    if (!m && !n) throw new Error('a colour this check cannot read: ' + c);
    const p = (m || n)[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    const k = m ? 1 : 255;
    return [p[0] * k, p[1] * k, p[2] * k, p.length > 3 ? p[3] : 1];
  };
  const over = (top, below) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + below[i] * (1 - a)).concat([1]);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
    }
    let colour = [255, 255, 255, 1];
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const opacity = (el) => {
    let o = 1;
    for (let e = el; e; e = e.parentElement) o *= parseFloat(getComputedStyle(e).opacity);
    return o;
  };
  const lum = (c) => {
    const ch = c.slice(0, 3).map((v) => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  const root = document.querySelector('.mai-studio');
  const found = [];
  for (const el of [root, ...root.querySelectorAll('*')]) {
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    if (el.closest(':disabled, [disabled]')) continue;
    const field = ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName);
    const own = field ? (el.value || '') : [...el.childNodes].filter(
      (n) => n.nodeType === 3).map((n) => n.textContent).join('');
    if (!own.trim() || (field && el.type === 'checkbox')) continue;
    const bg = background(el);
    const fg = parse(getComputedStyle(el).color);
    fg[3] *= opacity(el);
    const shown = over(fg, bg);
    const [a, b] = [lum(shown), lum(bg)].sort((x, y) => y - x);
    found.push({
      text: own.trim().slice(0, 40),
      where: el.tagName + '.' + [...el.classList].slice(0, 4).join('.'),
      ratio: Math.round(((a + 0.05) / (b + 0.05)) * 100) / 100,
      colour: getComputedStyle(el).color, background: 'rgb(' + bg.slice(0, 3).join(',') + ')',
    });
  }
  return found;
}
"""


def low_contrast(page: Any, record: Path) -> tuple[int, list[dict[str, Any]]]:
    """(how many texts were measured, those under MIN_CONTRAST); all of them, lowest first,
    into `record` (JSON) to be looked at."""
    texts = sorted(page.evaluate(CONTRAST_JS), key=lambda t: t["ratio"])
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(texts, indent=1, ensure_ascii=False))
    return len(texts), [t for t in texts if t["ratio"] < MIN_CONTRAST]


@pytest.fixture(scope="module")
def dark_jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A Lab of its own; its user settings (its own JUPYTERLAB_SETTINGS_DIR) pick the dark theme."""
    dark = {"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}
    with running_jupyter(tmp_path_factory.mktemp("jupyter-dark"), lab_settings=dark) as server:
        yield server


def test_the_whole_studio_in_the_dark_theme_reads_well(
    dark_jupyter: JupyterServer, page: Any, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    """The whole flow in JupyterLab Dark; at every step each text has a contrast ≥ 4.5."""
    measured: dict[str, int] = {}

    def step(target: Any, name: str) -> None:
        shot(target, request, name)
        if name == "0-open":  # the settings override took: Lab is dark
            theme = page.evaluate("() => [document.body.dataset.jpThemeName, "
                                  "document.body.dataset.jpThemeLight]")  # fmt: skip
            assert theme == ["JupyterLab Dark", "false"], theme
        record = ARTIFACTS / f"{artifact_name(request.node.nodeid)}-{name}-contrast.json"
        count, low = low_contrast(page, record)
        measured[name] = count
        assert not low, f"text under {MIN_CONTRAST}:1 in the dark theme at {name}: {low[:8]}"

    try:
        whole_studio_flow(
            dark_jupyter, page, tmp_path, "lab/tree/{}?reset", run_cells=True, colour="teal",
            folder="whole-dark", step=step,
        )  # fmt: skip
        # The messages' colours too: an error under a field, a budget running out
        page.set_viewport_size(VIEWPORT)
        studio = page.locator(".mai-studio")
        studio.get_by_role("tab", name="Generate").click()
        studio.locator("textarea:visible").first.fill("")
        studio.get_by_role("button", name="Generate", exact=True).click()
        studio.locator(".mai-status-error:visible", has_text="prompt").wait_for()
        step(studio, "8-error")
        budget = studio.locator(".mai-header input")
        budget.fill("0.01")  # less than spent: nothing left
        budget.press("Enter")
        studio.locator(".mai-spend.mai-warn").wait_for()
        studio.locator("textarea:visible").first.fill("a new teal kite over a dune")
        studio.locator(".mai-status-warn:visible", has_text="Over the budget").wait_for()
        step(studio, "9-over-budget")
    finally:
        dark_jupyter.shutdown_kernels()
    assert min(measured.values()) > 20, measured  # the check saw the panel's texts


# Two Studios in one page ------------------------------------------------------------------------

TWO_STUDIOS_CELLS = [
    "import mai_image_nb as mai\nclient = mai.Client(budget_usd=1.0)",
    "first = mai.Studio(client)\nfirst",
    "second = mai.Studio(client)\nsecond",
    "first  # the first panel once more: a second view of the same widgets",
]


def preview_shown(view: Any) -> bool:
    return bool(
        view.evaluate(
            "(root) => [...root.querySelectorAll('img.mai-preview')].some("
            "(img) => img.checkVisibility() && img.complete && img.naturalWidth > 0)"
        )
    )


@pytest.mark.parametrize(("address", "run_cells"), [FRONT_ENDS[0], FRONT_ENDS[2]])
def test_ctrl_enter_presses_only_its_own_panel(
    jupyter: JupyterServer,
    page: Any,
    request: pytest.FixtureRequest,
    address: str,
    run_cells: bool,
) -> None:
    """Two Studios and a second view of the first: Ctrl+Enter acts in its own panel, once."""
    path = f"two-{request.node.callspec.id}/two-studios.ipynb"
    open_new_notebook(jupyter, page, path, TWO_STUDIOS_CELLS, address, run_cells=run_cells)
    views = page.locator(".mai-studio")
    views.nth(2).wait_for(state="visible", timeout=LOAD_TIMEOUT_MS)
    assert views.count() == 3
    for i in range(3):  # each root has its listener (installed once: a flag on the root)
        page.wait_for_function(
            "(el) => el.getAttribute('data-mai-ctrl-enter') === 'on'",
            arg=views.nth(i).element_handle(),
        )
    assert not any(n.is_visible() for n in page.locator(".mai-studio-fallback").all())

    second, first_again = views.nth(1), views.nth(2)
    colour = {"jupyterlab": "grey", "voila": "white"}[request.node.callspec.id]  # one history
    second.locator("textarea:visible").first.fill(f"a {colour} heron in tall reeds")
    second.locator("textarea:visible").first.press("Control+Enter")
    second.locator(".mai-status-ok:visible", has_text="Done").wait_for(timeout=IMAGE_TIMEOUT_MS)
    page.wait_for_function(
        "(root) => [...root.querySelectorAll('img.mai-preview')].some("
        "(img) => img.checkVisibility() && img.complete && img.naturalWidth > 0)",
        arg=second.element_handle(),
    )
    assert not preview_shown(views.nth(0)) and not preview_shown(first_again)

    first_again.locator("textarea:visible").first.fill(f"a {colour} tram on a hill")
    first_again.locator("textarea:visible").first.press("Control+Enter")
    for view in (views.nth(0), first_again):  # one panel, drawn twice: both show it
        view.locator(".mai-status-ok:visible", has_text="Done").wait_for(timeout=IMAGE_TIMEOUT_MS)
    spent = [views.nth(i).locator(".mai-spend").first.inner_text() for i in range(3)]
    assert all(text.startswith("spent $0.1254") for text in spent), spent  # two images, no more
    shot(page, request, "two-studios")

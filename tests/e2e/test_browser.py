"""The quickstart in real browsers: JupyterLab, Notebook 7 and Voila drive the Studio.

Each test opens its own copy of notebooks/01-quickstart.ipynb (so no two share a kernel), runs
it, types a prompt, sets the temperature to 0, clicks Generate, and reads the preview's pixels
back through a canvas. At temperature 0 the simulator's picture depends on the prompt and the
ratio only, so the test renders the expected picture in-process and compares block colours,
and checks that a different prompt's picture would not have matched.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image, ImageStat

from mai_image_nb.offline import render_image
from mai_image_nb.params import IMAGE_SIZES
from tests.e2e.conftest import ARTIFACTS, JupyterServer, artifact_name

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
    """In the Generate tab: prompt, temperature 0, Generate; the preview's block colours."""
    studio.get_by_role("tab", name="Generate").click()
    studio.locator("textarea:visible").first.fill(prompt)
    readout = studio.locator(".widget-slider .widget-readout:visible").first
    readout.fill("0")
    readout.press("Enter")
    page.wait_for_function("(el) => parseFloat(el.textContent) === 0", arg=readout.element_handle())
    studio.get_by_role("button", name="Generate", exact=True).click()
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


def test_jupyterlab_compare_fills_a_two_by_two_grid(
    jupyter: JupyterServer, page: Any, request: pytest.FixtureRequest
) -> None:
    prompt = "a green boat on a calm sea at dawn"
    studio = open_quickstart(jupyter, page, "lab-compare", "lab/tree/{}?reset")
    studio.get_by_role("tab", name="Compare").click()
    studio.locator("textarea:visible").first.fill(prompt)
    ratios = studio.locator("select[multiple]:visible").first
    labels = ratios.locator("option").all_inner_texts()
    wanted = [label for label in labels if label.split()[0] in ("1:1", "16:9")]
    assert len(wanted) == 2, f"aspect-ratio choices: {labels}"
    ratios.select_option(label=wanted)
    temperatures = (
        studio.locator(".widget-vbox:visible", has=page.get_by_text("Temperatures", exact=True))
        .last.locator("input")
        .first
    )
    temperatures.fill("0, 2")
    studio.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function(LOADED_IMAGES_JS, arg=[4], timeout=IMAGE_TIMEOUT_MS)
    tiles = studio.locator("img:visible")
    assert tiles.count() == 4
    save_studio_shot(studio, request)
    # Row order: 1:1 at t 0, 1:1 at t 2, 16:9 at t 0, 16:9 at t 2. The t 0 tiles are known.
    shown = [tiles.nth(i).evaluate(BLOCK_MEANS_JS, BLOCKS) for i in range(4)]
    for tile, ratio in zip(shown, ("1:1", "1:1", "16:9", "16:9"), strict=True):
        w, h = tile["width"], tile["height"]
        assert abs(w / h - (16 / 9 if ratio == "16:9" else 1.0)) < 0.05, f"{ratio} tile is {w}×{h}"
    assert_shows(shown[0], prompt, "1:1")
    assert_shows(shown[2], prompt, "16:9")

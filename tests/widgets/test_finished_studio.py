"""The finished Studio (issue 11): busy state, downloads, open cells, lightbox, batches, filters,
prompt variants, MathJax-safe HTML, the static fallback and fresh feedback."""

from __future__ import annotations

import base64
import io
import threading
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb.offline import OfflineServer
from mai_image_nb.studio import Studio
from mai_image_nb.studio.fallback import FALLBACK_TEXT, fallback_html, studio_class
from mai_image_nb.studio.widgets import Html, file_name_for, walk

from .helpers import DEADLINE_S, visible, wait_idle, wait_until


def _data_of(url: str) -> bytes:
    head, _, body = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head[:40]
    return base64.b64decode(body)


def _upload(name: str, data: bytes) -> dict[str, object]:
    """One file as ipywidgets' FileUpload holds it after the user chose it."""
    return {
        "name": name,
        "type": "image/png",
        "size": len(data),
        "content": memoryview(data),
        "last_modified": datetime.now(timezone.utc),
    }


def _compare(studio: Studio, prompts: str, ratios: tuple[str, ...], temps: str, repeats: int = 1):
    tab = studio.compare
    tab.prompt_box.value = prompts
    tab.ratio_toggles.value = ratios
    tab.temperatures_box.value = temps
    tab.repeats_box.value = repeats
    return tab


# -- busy state (issue 9) ---------------------------------------------------------------------


def test_a_click_as_soon_as_generate_is_enabled_again_is_never_ignored(
    studio: Studio, server: OfflineServer
) -> None:
    """Each time the button turns enabled, a click from another thread (the front end's) must
    start the next job: the runner is never still busy behind an enabled button."""
    tab = studio.generate
    tab.prompt_box.value = "a quick succession of lighthouses"
    results: list[bool] = []
    clickers: list[threading.Thread] = []
    rounds = 5

    def on_enabled(change: dict[str, object]) -> None:
        if change["new"] is False and len(clickers) < rounds - 1:

            def click() -> None:
                results.append(tab.start_generate(new_sample=True))

            clicker = threading.Thread(target=click, name="test-clicker")
            clickers.append(clicker)
            clicker.start()

    tab.generate_button.observe(on_enabled, names="disabled")
    assert tab.start_generate()
    wait_until(lambda: len(results) == rounds - 1, "every quick click to be answered")
    for clicker in clickers:
        clicker.join(DEADLINE_S)
        assert not clicker.is_alive()
    wait_idle(studio)
    assert results == [True] * (rounds - 1), results
    assert server.post_count == rounds
    assert not tab.busy and not tab.generate_button.disabled


# -- Generate: cost, sample, batch, cancel, download, copy, lightbox, upload -----------------


def test_cost_shows_before_generate_and_over_budget_disables_it(
    server: OfflineServer, make_studio, tmp_path: Path
) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "h", budget_usd=0.1) as client:
        studio = make_studio(client)
        tab = studio.generate
        tab.prompt_box.value = "a lighthouse at dusk"
        assert visible(tab.cost_line.value) == "costs $0.0627 · $0.10 left"
        tab.count_box.value = 2
        assert "costs $0.13" in visible(tab.cost_line.value)
        assert "Over the budget" in visible(tab.cost_line.value) and tab.generate_button.disabled
        tab.count_box.value = 1
        assert not tab.generate_button.disabled
        tab.generate_button.click()
        wait_idle(studio)
        assert visible(tab.cost_line.value).startswith("free: already in the history")
        studio.close()


def test_sample_is_visible_typeable_and_new_variation_moves_it(
    studio: Studio, server: OfflineServer
) -> None:
    tab = studio.generate
    tab.prompt_box.value = "a paper boat"
    tab.sample_box.value = 5
    tab.generate_button.click()
    wait_idle(studio)
    assert tab.generation is not None and tab.generation.sample == 5
    tab.variation_button.click()
    wait_idle(studio)
    assert tab.generation.sample == 6 and tab.sample_box.value == 6
    tab.sample_box.value = 5  # back to the first: from the history, no request
    tab.generate_button.click()
    wait_idle(studio)
    assert tab.generation.sample == 5 and tab.generation.cached
    assert server.post_count == 2


def test_a_batch_makes_n_samples_in_one_click_and_caches_them(
    studio: Studio, server: OfflineServer
) -> None:
    tab = studio.generate
    tab.prompt_box.value = "a kite over a meadow"
    tab.count_box.value = 3
    tab.generate_button.click()
    wait_idle(studio)
    assert server.post_count == 3
    assert [g.sample for g in tab.batch] == [0, 1, 2]
    assert len(tab.strip.children) == 3 and "3 images" in visible(tab.status_line.value)
    tab.strip.children[2].children[1].click()  # show the third one
    assert tab.generation is not None and tab.generation.sample == 2
    tab.generate_button.click()
    wait_idle(studio)
    assert server.post_count == 3 and all(g.cached for g in tab.batch)


def test_cancel_on_generate_stops_the_rest_of_a_batch(
    studio: Studio, server: OfflineServer
) -> None:
    server.set_latency(0.3)
    tab = studio.generate
    tab.prompt_box.value = "a slow parade"
    tab.count_box.value = 4
    tab.generate_button.click()
    assert tab.busy and not tab.cancel_button.disabled and tab.generate_button.disabled
    wait_until(lambda: server.post_count >= 1, "the first request")
    tab.cancel_button.click()
    wait_idle(studio)
    assert 1 <= server.post_count < 4
    assert tab.cancel_button.disabled and not tab.generate_button.disabled
    assert tab.generate_button.description == "Generate"


def test_download_offers_the_full_png_with_its_parameters(studio: Studio) -> None:
    tab = studio.generate
    tab.prompt_box.value = "a lighthouse at dusk, warm light"
    tab.temperature_slider.value = 0.4
    tab.generate_button.click()
    wait_idle(studio)
    assert tab.link.value == ""  # nothing heavy in the widget until asked
    tab.download_button.click()
    assert tab.link.file_name == "a-lighthouse-at-dusk-warm-light.png"
    data = _data_of(tab.link.data_url)
    params = mai.read_params(data)
    assert params["prompt"] == "a lighthouse at dusk, warm light"
    assert params["temperature"] == pytest.approx(0.4)
    assert 'download="a-lighthouse-at-dusk-warm-light.png"' in tab.link.value


def test_copy_button_carries_the_code_escaped(studio: Studio) -> None:
    tab = studio.generate
    tab.prompt_box.value = 'a "quoted" <b>cat</b>'
    tab.generate_button.click()
    wait_idle(studio)
    assert tab.copy_code.value.startswith("client.generate(")
    assert "navigator.clipboard.writeText" in tab.copy_button.value
    assert "<b>cat" not in tab.copy_button.value and "&lt;b&gt;cat" in tab.copy_button.value


def test_full_size_opens_the_lightbox_at_full_resolution(studio: Studio) -> None:
    tab = studio.generate
    tab.prompt_box.value = "a tall tower"
    tab.ratio_picker.value = "9:16"
    tab.generate_button.click()
    wait_idle(studio)
    tab.full_button.click()
    box = studio.lightbox
    assert box.showing and box.layout.display != "none"
    from PIL import Image

    with Image.open(io.BytesIO(box.image_view.value)) as shown:
        assert tab.generation is not None
        assert shown.size == (tab.generation.width, tab.generation.height)
    box.close_button.click()
    assert not box.showing and box.image_view.value == b""  # the big bytes do not stay


def test_a_png_made_by_the_toolkit_fills_the_form(
    studio: Studio, client: mai.Client, tmp_path: Path
) -> None:
    gen = client.generate("a fox in snow", aspect_ratio="3:2", temperature=0.35, sample=3)
    png = gen.save(tmp_path / "fox.png").read_bytes()
    tab = studio.generate
    tab.upload.value = (_upload("fox.png", png),)
    assert tab.prompt_box.value == "a fox in snow" and tab.ratio_picker.value == "3:2"
    assert tab.temperature_slider.value == pytest.approx(0.35) and tab.sample_box.value == 3
    assert tab.upload.value == ()  # not kept in the widget
    assert "Settings from fox.png" in visible(tab.status_line.value)
    tab.upload.value = (_upload("x.png", b"abc"),)
    assert "has no settings from this toolkit" in visible(tab.status_line.value)


# -- Compare: prompt variants, open a cell, zip, stale feedback ------------------------------


def test_two_prompts_fill_two_blocks_and_repeats_show_their_variation(
    studio: Studio, server: OfflineServer
) -> None:
    tab = _compare(studio, "a red fox in the snow\n\na blue whale at sea\n", ("1:1",), "0, 1.5", 2)
    assert "8 cells · costs $0.50" in visible(tab.estimate_line.value)
    tab.run_button.click()
    wait_idle(studio)
    assert server.post_count == 8
    titles = [c for c in tab.grid.children if "mai-block-title" in c._dom_classes]
    assert [visible(t.value) for t in titles] == ["a red fox in the snow", "a blue whale at sea"]
    assert tab.cell("1:1", 0.0, 1, prompt="a blue whale at sea").state == "done"
    variations = [g.variation for g in tab.groups]
    assert len(variations) == 4 and all(v is not None for v in variations)
    by_temp = {g.views[0].key[2]: g.variation for g in tab.groups}
    assert by_temp[0.0] == 0.0 and by_temp[1.5] > 0.0  # what the lesson shows
    assert "variation" in visible(tab.groups[1].variation_line.value)
    assert len(studio.history.visible()) == 8  # the gallery redrew once the grid ended
    assert tab.comparison is not None and tab.comparison.prompts == (
        "a red fox in the snow", "a blue whale at sea"
    )  # fmt: skip


def test_a_grid_cell_opens_large_with_use_save_and_download(
    studio: Studio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tab = _compare(studio, "a green boat on a calm sea", ("1:1", "16:9"), "0.3, 1.2")
    tab.run_button.click()
    wait_idle(studio)
    cell = tab.cell("16:9", 1.2)
    cell.open_button.click()
    assert tab.large.showing and tab.large.generation is cell.generation
    tab.large.download_button.click()
    assert mai.read_params(_data_of(tab.large.link.data_url))["aspect_ratio"] == "16:9"
    tab.large.save_button.click()
    assert (tmp_path / "a-green-boat-on-a-calm-sea.png").exists()
    tab.large.use_button.click()
    assert studio.tabs.selected_index == 0
    assert studio.generate.ratio_picker.value == "16:9"
    assert studio.generate.temperature_slider.value == pytest.approx(1.2)
    # a new grid closes the old large view and starts a fresh bar and status
    studio.tabs.selected_index = 1
    tab.temperatures_box.value = "0.7"
    tab.run_button.click()
    assert not tab.large.showing and tab.progress.bar_style == "" and "Done" not in (
        tab.status_line.value
    )  # fmt: skip
    wait_idle(studio)


def test_download_all_gives_a_zip_of_every_png_and_the_sheet(studio: Studio) -> None:
    tab = _compare(studio, "a kite", ("1:1", "4:3"), "0.5, 1.5")
    tab.run_button.click()
    wait_idle(studio)
    tab.download_grid_button.click()
    wait_idle(studio)
    assert tab.grid_link.file_name == "a-kite-grid.zip"
    with zipfile.ZipFile(io.BytesIO(_data_of(tab.grid_link.data_url))) as archive:
        names = archive.namelist()
        assert len(names) == 5 and "a-kite-grid.png" in names
        for name in names:
            if name != "a-kite-grid.png":  # the sheet carries the grid's record, not one call's
                assert mai.read_params(archive.read(name))["prompt"] == "a kite"


def test_the_estimate_does_not_move_mid_run(studio: Studio, server: OfflineServer) -> None:
    server.set_latency(0.2)
    tab = _compare(studio, "a calm lake", ("1:1", "16:9", "9:16"), "0.2, 1.8")
    before = tab.estimate_line.value
    tab.run_button.click()
    wait_until(lambda: tab.views_in(["done"]), "a first cell")
    assert tab.estimate_line.value == before  # not "2 new, 4 cached" half-way
    wait_idle(studio)
    assert "(6 from the history, free)" in visible(tab.estimate_line.value)


# -- History: filters, download, one view at a time -------------------------------------------


def test_history_filters_by_ratio_and_temperature(studio: Studio, client: mai.Client) -> None:
    client.generate("a red fox", aspect_ratio="16:9", temperature=0.2)
    client.generate("a red fox", aspect_ratio="1:1", temperature=1.5)
    client.generate("a grey fox", aspect_ratio="16:9", temperature=1.8)
    wait_idle(studio)
    tab = studio.history
    tab.ratio_filter.value = "16:9"
    wait_idle(studio)
    assert {g.temperature for g in tab.visible()} == {0.2, 1.8}
    tab.temperature_filter.value = (1.0, 2.0)
    wait_idle(studio)
    assert [g.prompt for g in tab.visible()] == ["a grey fox"]
    assert "1 image match the settings chosen" in visible(tab.count_line.value)
    tab.ratio_filter.value = ""
    tab.filter_box.value = "red"
    wait_idle(studio)
    assert [(g.prompt, g.temperature) for g in tab.visible()] == [("a red fox", 1.5)]


def test_history_downloads_the_selected_as_a_zip_and_keeps_one_view_open(
    studio: Studio, client: mai.Client
) -> None:
    for prompt in ("one apple", "two pears", "three plums"):
        client.generate(prompt)
    wait_idle(studio)
    tab = studio.history
    tab.tiles[0].view_button.click()
    assert tab.detail_view.showing
    tab.tiles[0].select_box.value = True
    tab.tiles[2].select_box.value = True
    assert tab.export_button.description == "Export 2 selected"
    assert tab.export_button.layout.width == "auto"  # never truncated
    tab.side_by_side_button.click()
    assert tab.side_by_side.showing and not tab.detail_view.showing  # the old view closed
    tab.download_button.click()
    wait_idle(studio)
    with zipfile.ZipFile(io.BytesIO(_data_of(tab.download_link.data_url))) as archive:
        assert sorted(mai.read_params(archive.read(n))["prompt"] for n in archive.namelist()) == [
            "one apple", "three plums"
        ]  # fmt: skip
    tab.tiles[1].view_button.click()
    assert tab.detail_view.showing and not tab.side_by_side.showing


# -- every HTML MathJax-safe; the static fallback; file names -------------------------------


def test_every_html_widget_is_mathjax_safe(studio: Studio, client: mai.Client) -> None:
    tab = _compare(studio, "a lighthouse", ("1:1",), "0.5, 1.0")
    tab.run_button.click()
    wait_idle(studio)
    studio.generate.prompt_box.value = "a $5 hat and a $10 coat"
    studio.generate.generate_button.click()
    wait_idle(studio)
    values = [x.value for x in walk(studio) if isinstance(x, Html) and x.value]
    assert len(values) > 10
    for value in values:
        assert "$" not in value, value[:200]
        assert value.startswith('<div class="mai-text tex2jax_ignore mathjax_ignore">')
    assert "&#36;5 hat" in studio.generate.details.value


def _nested_has(css: str) -> bool:
    """True if a `:has(` opens inside another (browsers then drop the whole rule)."""
    depths: list[int] = []  # the paren depth at which each open :has( started
    depth = 0
    for i, char in enumerate(css):
        if char == "(":
            if css[max(0, i - 4) : i] == ":has":
                if depths:
                    return True
                depths.append(depth)
            depth += 1
        elif char == ")":
            depth -= 1
            if depths and depths[-1] == depth:
                depths.pop()
    return False


def test_the_nested_has_check_can_fail() -> None:
    assert _nested_has("a:has(+ b:has(> c)) {}") and not _nested_has("a:has(+ b > c) d:has(e) {}")


def test_the_studio_has_a_static_fallback_for_saved_notebooks(studio: Studio) -> None:
    """The note (shown as its own output after the widget's) names this Studio's model."""
    bundle = studio._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "text/html" not in bundle  # the note is its own output: shown once, not twice
    assert "Run this cell" in str(bundle["text/plain"]) and bundle["text/plain"] == FALLBACK_TEXT
    html = fallback_html(studio.model_id)
    assert "run this cell" in html.lower() and "mathjax_ignore" in html and "$" not in html
    live = studio_class(studio.model_id)
    assert live in studio._dom_classes and f"body:has(.{live}:not(" in html
    assert html.count("<style>") == 1 and not _nested_has(html)
    other = Studio(studio.client)  # another panel: its own class, its own note
    try:
        assert studio_class(other.model_id) != live and live not in fallback_html(other.model_id)
    finally:
        other.close()


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("a lighthouse at dusk", "a-lighthouse-at-dusk.png"),
        (
            "an extraordinarily detailed watercolour of lighthouses",
            "an-extraordinarily-detailed-watercolour.png",
        ),
        ("x" * 60, "x" * 40 + ".png"),
        ("!!!", "image.png"),
    ],
)
def test_file_names_are_cut_at_word_boundaries(prompt: str, name: str) -> None:
    assert file_name_for(prompt) == name


def test_the_header_redraws_from_one_method_with_extra_pieces(studio: Studio) -> None:
    """Others (the classroom's budget left) add a piece to the header line; refresh shows it."""
    studio.header.extras.append(lambda: '<span class="mai-class-budget">class: $3.00 left</span>')
    studio.header.refresh()
    assert "class: $3.00 left" in visible(studio.header.value)
    assert "$" not in studio.header.value  # MathJax-safe like the rest

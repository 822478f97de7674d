"""The Generate tab: the preview appears, the history grows, bad input sends nothing."""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb.offline import OfflineServer
from mai_image_nb.params import ASPECT_RATIOS
from mai_image_nb.studio import Studio

from .helpers import jpeg_size, one_line, visible, wait_idle, wait_until


def _shown(studio: Studio) -> mai.Generation:
    """The generation the Generate tab shows (read afresh each time)."""
    gen = studio.generate.generation
    assert gen is not None
    return gen


def test_generate_shows_a_preview_and_the_history_grows(
    studio: Studio, client: mai.Client, server: OfflineServer
) -> None:
    tab = studio.generate
    tab.prompt_box.value = "a lighthouse at dusk"
    tab.ratio_picker.value = "16:9"
    tab.temperature_slider.value = 0.7
    tab.generate_button.click()
    wait_idle(studio)

    assert server.post_count == 1
    assert client.history is not None and len(client.history) == 1
    assert tab.generation is not None and tab.generation.aspect_ratio == "16:9"
    width, height = jpeg_size(tab.image_view.value)
    assert max(width, height) <= 512 and width > height
    assert "mai-status-ok" in tab.status_line.value
    assert "a lighthouse at dusk" in tab.details.value and "16:9" in tab.details.value
    assert "$0.0627" in visible(tab.details.value)
    assert tab.filename_box.value == "a-lighthouse-at-dusk.png"
    assert not tab.generate_button.disabled and not tab.save_button.disabled
    # the header follows the spend
    assert "$0.0627" in visible(studio.header.value)


def test_preview_of_a_full_size_image_is_a_small_jpeg(make_studio, tmp_path: Path) -> None:
    with (
        OfflineServer(seed=1) as full_size,
        mai.Client(base_url=full_size.url, history=tmp_path / "full") as big_client,
    ):
        studio = make_studio(big_client)
        studio.generate.prompt_box.value = "a red fox in fresh snow"
        studio.generate.generate_button.click()
        wait_idle(studio)
        gen = studio.generate.generation
        assert gen is not None and (gen.width, gen.height) == (1024, 1024)
        assert jpeg_size(studio.generate.image_view.value) == (512, 512)
        assert len(studio.generate.image_view.value) < 120_000  # not the 1 MB PNG
        studio.close()


def test_ratio_picker_offers_all_seven_ratios_with_their_shape(studio: Studio) -> None:
    picker = studio.generate.ratio_picker
    assert [value for _label, value in picker.options] == list(ASPECT_RATIOS)
    labels = {value: label for label, value in picker.options}
    assert labels["16:9"] != "16:9" and labels["16:9"].startswith("16:9")
    slider = studio.generate.temperature_slider
    assert (slider.min, slider.max, slider.step) == (0.0, 2.0, 0.05)


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 4001, id="4001-chars"),
        pytest.param("   ", id="only-spaces"),
    ],
)
def test_a_bad_prompt_shows_one_line_naming_the_field_and_sends_nothing(
    studio: Studio, client: mai.Client, server: OfflineServer, prompt: str
) -> None:
    tab = studio.generate
    tab.prompt_box.value = prompt
    tab.generate_button.click()
    wait_idle(studio)
    note = tab.inputs.notes["prompt"].value
    expected = "characters; keep it to 4000" if prompt.strip() else "Type a prompt first."
    assert "mai-status-error" in note and expected in visible(note)
    assert one_line(note) and len(note) < 600
    assert "prompt" not in visible(tab.status_line.value)  # said once, under the field
    assert server.post_count == 0
    assert client.history is not None and len(client.history) == 0
    assert not tab.busy and not tab.generate_button.disabled


@pytest.mark.parametrize("text", ["abc", "0", "-3", "1.5", "12 tokens"])
def test_a_bad_token_limit_shows_an_error_and_sends_nothing(
    studio: Studio, server: OfflineServer, text: str
) -> None:
    tab = studio.generate
    tab.prompt_box.value = "a cat"
    tab.max_tokens_box.value = text
    note = tab.inputs.notes["max_tokens"]
    # the box validates as you type, under its own field...
    assert visible(note.value) == "⚠ max_tokens: a whole number of 1 or more, or leave it empty."
    tab.generate_button.click()
    wait_idle(studio)
    # ...Generate refuses it, and the message is there once
    assert "max_tokens" in note.value and "max_tokens" not in tab.status_line.value
    assert server.post_count == 0
    tab.max_tokens_box.value = "64"
    assert note.value == ""  # gone as soon as it is fixed


def test_token_limits_are_sent_only_when_given(studio: Studio, server: OfflineServer) -> None:
    tab = studio.generate
    tab.prompt_box.value = "a cat"
    tab.max_tokens_box.value = " 64 "
    tab.generate_button.click()
    wait_idle(studio)
    tab.max_tokens_box.value = ""
    tab.max_completion_tokens_box.value = "32"
    tab.generate_button.click()
    wait_idle(studio)
    first, second = [r.json for r in server.requests if r.method == "POST"]
    assert first["max_tokens"] == 64 and "max_completion_tokens" not in first
    assert second["max_completion_tokens"] == 32 and "max_tokens" not in second


def test_copy_as_code_is_the_exact_call(studio: Studio, client: mai.Client) -> None:
    prompt = 'He said "it\'s" — a\nnew line, \\ and {braces}'
    tab = studio.generate
    tab.prompt_box.value = prompt
    tab.ratio_picker.value = "3:4"
    tab.temperature_slider.value = 0.35
    tab.max_completion_tokens_box.value = "100"
    tab.generate_button.click()
    wait_idle(studio)
    code = tab.copy_code.value
    assert code.startswith("client.generate(")
    call = ast.parse(code, mode="eval").body
    assert isinstance(call, ast.Call)
    args = [ast.literal_eval(a) for a in call.args]
    kwargs = {str(k.arg): ast.literal_eval(k.value) for k in call.keywords}
    assert args == [prompt]
    assert kwargs == {"aspect_ratio": "3:4", "temperature": 0.35, "max_completion_tokens": 100}
    # running it gives the same image, from the history
    again = client.generate(*args, **kwargs)
    assert again.cached and tab.generation is not None and again.id == tab.generation.id


def test_status_line_ticks_while_the_call_runs_then_stops(
    studio: Studio, server: OfflineServer
) -> None:
    server.set_latency(0.7)
    tab = studio.generate
    tab.prompt_box.value = "a slow sunrise"
    tab.generate_button.click()
    assert tab.busy and tab.generate_button.disabled
    tab.generate_button.click()  # a second click while busy does nothing
    wait_until(lambda: "Generating… 0." in tab.status_line.value, "the elapsed time to tick")
    assert "mai-spinner" in tab.status_line.value
    wait_idle(studio)
    assert server.post_count == 1
    assert "Done in" in tab.status_line.value
    assert not any(t.name == "mai-studio-tick" for t in threading.enumerate())


def test_save_writes_a_png_with_the_parameters(
    studio: Studio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tab = studio.generate
    tab.prompt_box.value = "A Lighthouse, at dusk!"
    tab.generate_button.click()
    wait_idle(studio)
    assert tab.filename_box.value == "a-lighthouse-at-dusk.png"
    tab.save_button.click()
    wait_idle(studio)
    saved = tmp_path / "a-lighthouse-at-dusk.png"
    assert saved.exists(), tab.status_line.value
    assert mai.read_params(saved)["prompt"] == "A Lighthouse, at dusk!"
    assert "Saved to" in tab.status_line.value
    tab.filename_box.value = "  "
    tab.save_button.click()
    assert "file name" in tab.status_line.value


def test_new_variation_asks_for_the_next_sample(
    studio: Studio, client: mai.Client, server: OfflineServer
) -> None:
    tab = studio.generate
    tab.prompt_box.value = "a harbour at night"
    tab.generate_button.click()
    wait_idle(studio)
    first = tab.generation
    tab.generate_button.click()  # same settings: the stored image, no request
    wait_idle(studio)
    assert server.post_count == 1 and _shown(studio).cached
    assert "no charge" in tab.status_line.value
    tab.variation_button.click()
    wait_idle(studio)
    assert server.post_count == 2
    assert _shown(studio).sample == 1
    assert first is not None and _shown(studio).id != first.id
    assert "sample=1" in tab.copy_code.value

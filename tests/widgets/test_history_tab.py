"""The History tab: filter, pages, the large view and its settings, side by side, delete, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb.offline import OfflineServer
from mai_image_nb.studio import Studio

from .helpers import jpeg_size, visible, wait_idle


def _make(client: mai.Client, prompts: list[str], **kwargs) -> list[mai.Generation]:
    return [client.generate(prompt, **kwargs) for prompt in prompts]


def test_gallery_shows_new_generations_newest_first_without_reopening(
    studio: Studio, client: mai.Client
) -> None:
    tab = studio.history
    wait_idle(studio)
    assert tab.visible() == [] and "0 images" in tab.count_line.value
    made = _make(client, ["a cat on a roof", "a dog in a park", "a bird at dawn"])
    wait_idle(studio)  # the client told the panel; nobody pressed refresh
    assert [g.id for g in tab.visible()] == [g.id for g in reversed(made)]
    tile = tab.tiles[0]
    assert max(jpeg_size(tile.image_view.value)) <= 256
    assert "a bird at dawn" in tile.caption.value and "1:1" in tile.caption.value
    assert "t 1.00" in tile.caption.value and "$0.0627" in visible(tile.caption.value)
    assert "3 images" in tab.count_line.value


def test_filter_matches_words_of_the_prompt(studio: Studio, client: mai.Client) -> None:
    _make(client, ["a red fox", "a lighthouse at dusk", "a fox in the snow", "blue sea"])
    wait_idle(studio)
    tab = studio.history
    tab.filter_box.value = "fox"
    wait_idle(studio)
    assert sorted(g.prompt for g in tab.visible()) == ["a fox in the snow", "a red fox"]
    assert "2 images" in tab.count_line.value and "fox" in tab.count_line.value
    tab.filter_box.value = "lighthouse dusk"
    wait_idle(studio)
    assert [g.prompt for g in tab.visible()] == ["a lighthouse at dusk"]
    tab.filter_box.value = "nothing-like-this"
    wait_idle(studio)
    assert tab.visible() == [] and "0 images" in tab.count_line.value
    tab.filter_box.value = ""
    wait_idle(studio)
    assert len(tab.visible()) == 4


def test_pages_of_twelve_newest_first(client: mai.Client, make_studio) -> None:
    made = _make(client, [f"scene number {i}" for i in range(30)])
    studio = make_studio(client, page_size=12)
    tab = studio.history
    wait_idle(studio)
    newest_first = [g.id for g in reversed(made)]
    assert [g.id for g in tab.visible()] == newest_first[:12]
    assert "Page 1 of 3" in tab.page_label.value and tab.prev_button.disabled
    tab.next_button.click()
    wait_idle(studio)
    assert [g.id for g in tab.visible()] == newest_first[12:24]
    tab.next_button.click()
    wait_idle(studio)
    assert [g.id for g in tab.visible()] == newest_first[24:]
    assert "Page 3 of 3" in tab.page_label.value and tab.next_button.disabled
    hidden = [t for t in tab.tiles if t.layout.display == "none"]
    assert len(hidden) == 6
    tab.prev_button.click()
    wait_idle(studio)
    assert [g.id for g in tab.visible()] == newest_first[12:24]
    # a filter starts again at page 1
    tab.filter_box.value = "scene"
    wait_idle(studio)
    assert "Page 1 of 3" in tab.page_label.value


def test_use_these_settings_fills_the_generate_tab(
    studio: Studio, client: mai.Client, server: OfflineServer
) -> None:
    client.generate("a harbour at night", aspect_ratio="9:16", temperature=0.4)
    chosen = client.generate(
        "a castle at sunset", aspect_ratio="3:2", temperature=1.35, max_tokens=77, sample=2
    )
    wait_idle(studio)
    tab = studio.history
    studio.tabs.selected_index = 2
    tab.tiles[0].view_button.click()
    assert tab.opened is not None and tab.opened.id == chosen.id
    assert tab.detail_view.layout.display != "none"
    width, height = jpeg_size(tab.detail_image.value)
    assert max(width, height) <= 512 and width > height
    assert "a castle at sunset" in tab.detail_info.value and "3:2" in tab.detail_info.value
    tab.use_button.click()

    gen_tab = studio.generate
    assert studio.tabs.selected_index == 0
    assert gen_tab.prompt_box.value == "a castle at sunset"
    assert gen_tab.ratio_picker.value == "3:2"
    assert gen_tab.temperature_slider.value == pytest.approx(1.35)
    assert gen_tab.max_tokens_box.value == "77" and gen_tab.max_completion_tokens_box.value == ""
    sent = server.post_count
    gen_tab.generate_button.click()  # the very same image (sample 2 included), from the history
    wait_idle(studio)
    assert server.post_count == sent
    assert gen_tab.generation is not None and gen_tab.generation.id == chosen.id
    tab.close_detail_button.click()
    assert tab.detail_view.layout.display == "none"


def test_side_by_side_shows_the_selected(studio: Studio, client: mai.Client) -> None:
    made = _make(client, ["a red kite", "a blue kite", "a green kite", "a gold kite"])
    wait_idle(studio)
    tab = studio.history
    assert tab.side_by_side_button.disabled
    tab.tiles[0].select_box.value = True
    assert tab.side_by_side_button.disabled and "1 selected" in tab.selection_line.value
    tab.tiles[2].select_box.value = True
    tab.tiles[3].select_box.value = True
    assert "mai-selected" in tab.tiles[2]._dom_classes
    assert not tab.side_by_side_button.disabled
    tab.side_by_side_button.click()
    items = tab.side_by_side.row.children
    assert len(items) == 3 and tab.side_by_side.layout.display != "none"
    captions = [item.children[1].value for item in items]
    assert ["gold" in captions[0], "blue" in captions[1], "red" in captions[2]] == [True] * 3
    for item in items:
        assert jpeg_size(item.children[0].value)
        assert item.layout.flex == "1 1 0"  # one row of equal cards
    # the settings that differ (the prompt) are bold; those that agree are not
    assert "<b>prompt: a gold kite</b>" in captions[0]
    assert "<b>temperature" not in captions[0] and "temperature: 1.00" in captions[0]
    assert made[0].id in tab.selected
    tab.clear_selection_button.click()
    assert not tab.selected and not any(t.select_box.value for t in tab.tiles)


def test_delete_asks_first(studio: Studio, client: mai.Client) -> None:
    made = _make(client, ["one apple", "two pears", "three plums"])
    wait_idle(studio)
    tab = studio.history
    store = client.history
    assert store is not None
    assert tab.delete_button.disabled  # nothing chosen yet
    tab.tiles[0].select_box.value = True
    tab.tiles[1].select_box.value = True
    tab.delete_button.click()
    assert tab.confirm_row.asking and "these 2 images" in tab.confirm_line.value
    assert len(store) == 3  # asked, not done
    tab.confirm_no_button.click()
    assert not tab.confirm_row.asking and len(store) == 3
    assert "Nothing was deleted" in tab.status_line.value

    tab.delete_button.click()
    tab.confirm_yes_button.click()
    wait_idle(studio)
    assert len(store) == 1 and made[0].id in store
    assert [g.id for g in tab.visible()] == [made[0].id]
    assert not tab.selected and "Deleted 2 images" in tab.status_line.value
    image_files = list((store.path / "images").iterdir())
    assert len(image_files) == 1

    # the opened one, when nothing is ticked
    tab.tiles[0].view_button.click()
    assert not tab.delete_button.disabled
    tab.delete_button.click()
    assert "this image" in tab.confirm_line.value
    tab.confirm_yes_button.click()
    wait_idle(studio)
    assert len(store) == 0 and tab.visible() == [] and tab.opened is None


def test_export_writes_files(
    studio: Studio, client: mai.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _make(client, ["a red fox", "a grey wolf", "a brown bear"])
    wait_idle(studio)
    tab = studio.history
    assert tab.export_button.description == "Export all"
    tab.export_folder_box.value = "all"
    tab.export_button.click()
    wait_idle(studio)
    pngs = sorted(p.name for p in (tmp_path / "all").glob("*.png"))
    assert len(pngs) == 3 and (tmp_path / "all" / "index.csv").exists()
    assert len(json.loads((tmp_path / "all" / "index.json").read_text())) == 3
    assert "Exported 3 images" in tab.status_line.value

    tab.tiles[1].select_box.value = True
    assert tab.export_button.description == "Export 1 selected"
    tab.export_folder_box.value = "some"
    tab.export_button.click()
    wait_idle(studio)
    records = json.loads((tmp_path / "some" / "index.json").read_text())
    assert [r["prompt"] for r in records] == ["a grey wolf"]

    tab.export_folder_box.value = ""
    tab.export_button.click()
    assert "Type a folder name" in tab.status_line.value


def test_without_a_history_the_tab_says_so(server: OfflineServer, make_studio) -> None:
    with mai.Client(base_url=server.url, history=False) as client:
        studio = make_studio(client)
        tab = studio.history
        assert "history=False" in tab.off_message.value
        assert tab.off_message.layout.display != "none"
        studio.generate.prompt_box.value = "a cat"
        studio.generate.generate_button.click()
        wait_idle(studio)
        assert studio.generate.generation is not None
        assert jpeg_size(studio.generate.image_view.value)
        studio.compare.prompt_box.value = "a cat"
        studio.compare.run_button.click()
        wait_idle(studio)
        assert [v.state for v in studio.compare.cell_views] == ["done"] * 9
        studio.close()

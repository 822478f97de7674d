"""The Compare tab: the grid fills in cell by cell, Cancel keeps what finished, Retry works."""

from __future__ import annotations

import pytest

import mai_image_nb as mai
from mai_image_nb.offline import Fault, OfflineServer
from mai_image_nb.studio import Studio

from .helpers import jpeg_size, one_line, visible, wait_idle, wait_until


def _form(studio: Studio, prompt: str, ratios: tuple[str, ...], temps: str, repeats: int = 1):
    tab = studio.compare
    tab.prompt_box.value = prompt
    tab.ratio_toggles.value = ratios
    tab.temperatures_box.value = temps
    tab.repeats_box.value = repeats
    return tab


@pytest.mark.parametrize(
    ("ratios", "temps"),
    [
        pytest.param(("1:1", "16:9"), "0.2, 1.8", id="2x2"),
        pytest.param(("1:1", "16:9", "9:16"), "0.2, 1.0, 1.8", id="3x3"),
    ],
)
def test_every_cell_fills_in(
    studio: Studio,
    client: mai.Client,
    server: OfflineServer,
    ratios: tuple[str, ...],
    temps: str,
) -> None:
    server.set_latency(0.25)
    tab = _form(studio, "a red fox in fresh snow", ratios, temps)
    cells = len(ratios) * len(temps.split(","))
    assert f"{cells} cells · costs $" in visible(tab.estimate_line.value)
    tab.run_button.click()
    assert tab.busy and tab.run_button.disabled and not tab.cancel_button.disabled
    # cell by cell: one finishes while others still wait
    wait_until(lambda: tab.views_in(["done"]), "a first cell")
    if cells > client.max_workers:
        assert tab.views_in(["waiting"])
    wait_idle(studio)

    assert [v.state for v in tab.cell_views] == ["done"] * cells
    assert tab.progress.value == tab.progress.max == cells
    for view in tab.cell_views:
        assert max(jpeg_size(view.image_view.value)) <= 512
        assert view.key[1] in view.caption.value
    assert server.post_count == cells
    assert client.history is not None and len(client.history) == cells
    assert "Done" in tab.status_line.value
    assert f"{cells} cells ({cells} from the history, free) · costs $0.00" in visible(
        tab.estimate_line.value
    )
    assert not tab.save_grid_button.disabled and tab.retry_button.disabled
    assert tab.cell("1:1", 0.2).generation is not None


def test_cancel_stops_sending_and_keeps_finished_cells(
    studio: Studio, client: mai.Client, server: OfflineServer
) -> None:
    server.set_latency(0.3)
    tab = _form(studio, "a castle in the fog", ("1:1", "16:9", "9:16"), "0.2, 1.0, 1.8", 2)
    tab.run_button.click()
    wait_until(lambda: tab.views_in(["done"]), "the first cell")
    tab.cancel_button.click()
    assert "Cancelling" in tab.status_line.value
    wait_idle(studio)

    done, cancelled = tab.views_in(["done"]), tab.views_in(["cancelled"])
    assert done and cancelled and len(done) + len(cancelled) == 18
    for view in cancelled:
        assert "cancelled" in view.caption.value and view.generation is None
    for view in done:  # finished cells keep their image
        assert jpeg_size(view.image_view.value)
    assert server.post_count == len(done) < 18
    assert client.history is not None and len(client.history) == len(done)
    assert "Cancelled" in tab.status_line.value
    assert not tab.busy and not tab.run_button.disabled and not tab.retry_button.disabled

    # Retry failed runs only the cancelled cells
    server.set_latency(0.0)
    tab.retry_button.click()
    wait_idle(studio)
    assert [v.state for v in tab.cell_views] == ["done"] * 18
    assert server.post_count == 18


def test_retry_failed_reruns_only_the_failed_cells(
    studio: Studio, server: OfflineServer, client: mai.Client
) -> None:
    server.script(Fault.status(400), Fault.status(400))  # never retried
    tab = _form(studio, "a boat on a lake", ("1:1", "4:3"), "0.5, 1.5")
    tab.run_button.click()
    wait_idle(studio)

    failed = tab.views_in(["failed"])
    assert len(failed) == 2 and len(tab.views_in(["done"])) == 2
    for view in failed:
        assert "HTTP 400" in view.caption.value and "mai-failed" in view._dom_classes
    assert "2 failed" in tab.status_line.value
    assert not tab.retry_button.disabled

    tab.retry_button.click()
    wait_idle(studio)
    assert [v.state for v in tab.cell_views] == ["done"] * 4
    assert server.post_count == 6
    assert tab.comparison is not None and not tab.comparison.failed
    assert tab.retry_button.disabled


def test_each_message_is_under_its_field_in_words_for_people_and_nothing_is_sent(
    studio: Studio, server: OfflineServer
) -> None:
    tab = _form(studio, "a cat", ("1:1",), "0.2, hot")
    notes = tab.inputs.notes
    assert "“hot” is not a number" in visible(notes["temperatures"].value)
    assert visible(tab.estimate_line.value) == ""  # no estimate for an invalid form
    tab.run_button.click()
    # once, under its field: the status line does not repeat it
    assert "hot" not in visible(tab.status_line.value) and one_line(notes["temperatures"].value)
    tab.temperatures_box.value = "0.5, 2.5"
    assert "2.5 is out of range" in visible(notes["temperatures"].value)
    tab.temperatures_box.value = "0.5, 0.5"
    assert "0.5 is there twice" in visible(notes["temperatures"].value)
    tab.temperatures_box.value = "0,5"  # a decimal comma
    assert notes["temperatures"].value == ""  # the error goes as soon as the input is fixed
    assert "1 cell · costs" in visible(tab.estimate_line.value)
    tab.ratio_toggles.value = ()
    assert visible(notes["ratios"].value) == "⚠ Pick at least one aspect ratio."
    tab.run_button.click()
    tab.ratio_toggles.value = ("1:1",)
    assert notes["ratios"].value == ""
    tab.prompt_box.value = ""
    tab.run_button.click()
    assert visible(notes["prompt"].value) == "⚠ Type a prompt first."
    tab.prompt_box.value = "a cat\na dog\na cat"
    tab.run_button.click()
    assert "there twice" in visible(notes["prompt"].value)
    tab.prompt_box.value = "a cat"
    assert notes["prompt"].value == ""
    for note in notes.values():
        assert "must be" not in note.value and "(got" not in note.value
    wait_idle(studio)
    assert server.post_count == 0
    assert tab.cell_views == []  # nothing drawn for a refused run


def test_decimal_commas_and_separators() -> None:
    from mai_image_nb.studio.messages import parse_temperatures

    assert parse_temperatures("0,5") == (0.5,)
    assert parse_temperatures("0,5; 1,5") == (0.5, 1.5)
    assert parse_temperatures("0.2, 1.0, 1.8") == (0.2, 1.0, 1.8)
    assert parse_temperatures("0.2,1.0 2") == (0.2, 1.0, 2.0)
    with pytest.raises(mai.ValidationError) as caught:
        parse_temperatures("")
    assert caught.value.field == "temperatures"


def test_run_is_disabled_with_the_reason_over_the_budget_and_draws_nothing(
    server: OfflineServer, make_studio, tmp_path
) -> None:
    with mai.Client(base_url=server.url, history=tmp_path / "b", budget_usd=0.2) as client:
        studio = make_studio(client)
        tab = _form(studio, "a lighthouse", ("1:1", "16:9"), "0.2, 1.8")
        line = visible(tab.estimate_line.value)
        assert "4 cells · costs $0.25 · $0.20 left" in line, line
        assert "Over the budget" in line and tab.run_button.disabled
        assert "&#36;" in tab.estimate_line.value and "$" not in tab.estimate_line.value
        tab.ratio_toggles.value = ("1:1",)
        assert "Over the budget" not in visible(tab.estimate_line.value)
        assert not tab.run_button.disabled
        tab.ratio_toggles.value = ("1:1", "16:9")
        assert tab.start_run() is False  # even a programmatic click is refused
        assert "budget" in visible(tab.status_line.value)
        assert tab.cell_views == [] and tab.grid.children == ()
        # raising the budget from the header enables Run at once
        studio.header.budget_box.value = "1,00"
        assert client.budget_usd == 1.0
        assert not tab.run_button.disabled and "$1.00 left" in visible(tab.estimate_line.value)
        studio.header.budget_box.value = "-3"
        assert client.budget_usd == 1.0
        assert "dollar amount" in visible(studio.header.budget_note.value)
        studio.header.budget_box.value = ""
        assert client.budget_usd is None and studio.header.budget_note.value == ""
        assert "no budget set" in visible(studio.header.value)
        wait_idle(studio)
        assert server.post_count == 0
        studio.close()


def test_save_grid_writes_the_contact_sheet(
    studio: Studio, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tab = _form(studio, "a kite over a meadow", ("1:1", "3:2"), "0.2, 1.0")
    tab.run_button.click()
    wait_idle(studio)
    assert tab.grid_name_box.value == "a-kite-over-a-meadow-grid.png"
    tab.save_grid_button.click()
    wait_idle(studio)
    assert (tmp_path / "a-kite-over-a-meadow-grid.png").stat().st_size > 0
    assert "Saved to" in tab.status_line.value

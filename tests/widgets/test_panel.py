"""The panel as a whole: layout, hostile text, recovery, two panels, the key, closing, jobs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import ipywidgets as w
import pytest
from ipywidgets.widgets.widget import _instances

import mai_image_nb as mai
from mai_image_nb.offline import Fault, OfflineServer
from mai_image_nb.studio import Studio
from mai_image_nb.studio.jobs import JobRunner
from mai_image_nb.studio.widgets import walk
from tests.conftest import CANARY_KEY

from .helpers import jpeg_size, one_line, visible, wait_idle, wait_until

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


def _html_values(studio: Studio) -> list[str]:
    """Every text that is rendered as HTML (or shown as a label) anywhere in the panel."""
    return [
        widget.value for widget in walk(studio) if isinstance(widget, (w.HTML, w.HTMLMath, w.Label))
    ]


def _state_bytes(value: object) -> bytes:
    """A widget state value as the bytes a notebook would store (binary buffers as they are)."""
    if isinstance(value, (bytes, memoryview)):
        return bytes(value)
    return json.dumps(value).encode()


def _assert_escaped(studio: Studio) -> None:
    for value in _html_values(studio):
        lowered = value.lower()
        assert "<script" not in lowered, value
        assert "<img src=x" not in lowered, value


def test_layout_root_class_tabs_and_header(studio: Studio, client: mai.Client) -> None:
    assert isinstance(studio, w.VBox) and "mai-studio" in studio._dom_classes
    assert studio.tabs.titles == ("Generate", "Compare", "History")
    assert isinstance(studio.generate.prompt_box, w.Textarea)
    assert studio.generate.generate_button.description == "Generate"
    host = client.base_url.split("//", 1)[1]
    assert host in studio.header.value and "no budget" in studio.header.value
    assert "<style>" in studio.style_sheet.value and ".mai-studio" in studio.style_sheet.value


def test_studio_without_a_client_runs_the_simulator_and_closes_it(make_studio) -> None:
    studio = make_studio()
    assert studio.client.mode == "offline"
    assert "offline simulator" in studio.header.value
    studio.generate.prompt_box.value = "a teal lighthouse"
    studio.generate.generate_button.click()
    wait_idle(studio)
    assert max(jpeg_size(studio.generate.image_view.value)) == 512
    studio.close()
    with pytest.raises(mai.MaiImageError, match="closed"):
        studio.client.generate("a teal lighthouse", cache=False)


def test_hostile_prompt_is_escaped_everywhere(
    studio: Studio, client: mai.Client, server: OfflineServer
) -> None:
    gen_tab, cmp_tab, hist = studio.generate, studio.compare, studio.history
    gen_tab.prompt_box.value = HOSTILE
    gen_tab.generate_button.click()
    wait_idle(studio)
    assert gen_tab.generation is not None and gen_tab.generation.prompt == HOSTILE
    assert "&lt;script&gt;" in gen_tab.details.value

    cmp_tab.prompt_box.value = HOSTILE
    cmp_tab.ratio_toggles.value = ("1:1", "9:16")
    cmp_tab.temperatures_box.value = "0.5"
    server.script(Fault.body(json.dumps({"message": HOSTILE}).encode(), status=400))
    cmp_tab.run_button.click()
    wait_idle(studio)
    assert len(cmp_tab.views_in(["failed"])) == 1  # the server's hostile message, escaped
    assert "&lt;script&gt;" in cmp_tab.views_in(["failed"])[0].caption.value

    hist.filter_box.value = "img src alert"
    wait_idle(studio)
    assert len(hist.visible()) == 2 and "&lt;script&gt;" in hist.tiles[0].caption.value
    hist.tiles[0].view_button.click()
    hist.tiles[0].select_box.value = True
    hist.tiles[1].select_box.value = True
    hist.side_by_side_button.click()
    hist.filter_box.value = HOSTILE
    wait_idle(studio)

    gen_tab.prompt_box.value = HOSTILE * 80  # too long: the error repeats part of it
    gen_tab.generate_button.click()
    note = gen_tab.inputs.notes["prompt"].value
    assert "characters; keep it to 4000" in note and one_line(note)
    gen_tab.max_tokens_box.value = HOSTILE
    cmp_tab.temperatures_box.value = HOSTILE
    assert "&lt;" in cmp_tab.inputs.notes["temperatures"].value  # the typed text, escaped
    _assert_escaped(studio)


def test_recovers_after_a_server_that_answers_only_500(
    studio: Studio, client: mai.Client, server: OfflineServer
) -> None:
    server.script(*[Fault.status(500)] * 4)  # the first try and all three retries
    tab = studio.generate
    tab.prompt_box.value = "a storm over the sea"
    tab.generate_button.click()
    wait_idle(studio)
    status = tab.status_line.value
    assert "mai-status-error" in status and "500" in status and one_line(status)
    assert "Traceback" not in status
    assert server.post_count == 4
    assert not studio.busy and not tab.generate_button.disabled
    assert tab.generation is None and tab.image_view.layout.display == "none"

    tab.generate_button.click()  # the service is back
    wait_idle(studio)
    assert "mai-status-ok" in tab.status_line.value and tab.generation is not None
    assert jpeg_size(tab.image_view.value)


def test_two_studios_on_one_client_stay_consistent(
    client: mai.Client, make_studio, server: OfflineServer
) -> None:
    first, second = make_studio(client), make_studio(client)
    wait_idle(first)
    wait_idle(second)
    second.tabs.selected_index = 2
    first.generate.prompt_box.value = "a lighthouse on a cliff"
    first.generate.generate_button.click()
    wait_idle(first)
    wait_idle(second)  # no refresh pressed: the client told both
    made = first.generate.generation
    assert made is not None and [g.id for g in second.history.visible()] == [made.id]
    assert "$0.0627" in visible(second.header.value)
    # and the other way round, from a grid
    second.compare.prompt_box.value = "a fox"
    second.compare.ratio_toggles.value = ("1:1",)
    second.compare.temperatures_box.value = "0.2, 1.0"
    second.compare.run_button.click()
    wait_idle(second)
    wait_idle(first)
    assert len(first.history.visible()) == 3 and "$0.1881" in visible(first.header.value)
    first.close()  # one closing leaves the other working
    client.generate("one more")
    wait_idle(second)
    assert len(second.history.visible()) == 4


def test_the_key_is_in_no_widget(client: mai.Client, make_studio, server: OfflineServer) -> None:
    before = set(_instances)
    studio = make_studio(client)
    studio.generate.prompt_box.value = "a cat"
    studio.generate.generate_button.click()
    wait_idle(studio)
    server.script(Fault.status(401))
    studio.generate.prompt_box.value = "a dog"
    studio.generate.generate_button.click()
    wait_idle(studio)
    studio.compare.prompt_box.value = "a bird"
    studio.compare.run_button.click()
    wait_idle(studio)
    studio.history.tiles[0].view_button.click()

    owned = {id(x) for x in walk(studio)}
    new = [x for key, x in list(_instances.items()) if key not in before]
    assert new and all(id(x) in owned for x in new)  # nothing the walk below could miss
    key = CANARY_KEY.encode()
    for widget in [*walk(studio), *new]:
        for name, value in widget.get_state().items():
            assert key not in _state_bytes(value), f"{type(widget).__name__}.{name}"
    assert CANARY_KEY not in repr(studio)


def test_close_unsubscribes_ends_threads_and_closes_every_widget(
    client: mai.Client, make_studio, server: OfflineServer
) -> None:
    server.set_latency(0.3)
    studio = make_studio(client)
    studio.compare.prompt_box.value = "a slow grid"
    studio.compare.run_button.click()
    wait_until(lambda: studio.compare.views_in(["done"]), "a first cell")
    widgets = list(walk(studio))
    model_ids = [widget.model_id for widget in widgets]
    studio.close()  # mid-run: cancels, waits for what is on the wire, closes
    assert not studio.busy
    assert all(widget.comm is None for widget in widgets)
    assert not any(model_id in _instances for model_id in model_ids)
    assert not any(t.name.startswith("mai-studio") for t in threading.enumerate())
    assert client._listeners == []
    client.generate("after close")  # the client is the caller's, and still works
    studio.close()  # twice is fine


def test_job_runner_never_stays_busy() -> None:
    events: list[tuple[str, object]] = []
    runner = JobRunner(
        name="test",
        on_busy=lambda busy: events.append(("busy", busy)),
        on_error=lambda text: events.append(("error", text)),
    )

    def explode(_cancel: threading.Event) -> None:
        raise KeyError("boom\nsecond line")

    assert runner.start(explode, lambda _r: None)
    assert runner.wait_idle(5) and not runner.busy
    assert events[0] == ("busy", True) and events[-1] == ("busy", False)
    [(_, text)] = [e for e in events if e[0] == "error"]
    assert isinstance(text, str) and "\n" not in text and "KeyError" in text

    gate = threading.Event()
    assert runner.start(lambda cancel: gate.wait(5), lambda _r: events.append(("shown", 1)))
    assert not runner.start(lambda cancel: None, lambda _r: None)  # one job at a time
    gate.set()
    assert runner.wait_idle(5) and ("shown", 1) in events

    def failing_show(_r: object) -> None:
        raise RuntimeError("display broke")

    assert runner.start(lambda cancel: 1, failing_show)
    assert runner.wait_idle(5) and not runner.busy
    assert any(e[0] == "error" and "display broke" in str(e[1]) for e in events)
    runner.close()
    assert not runner.start(lambda cancel: None, lambda _r: None)


def test_saved_widget_state_stays_small(make_studio, tmp_path: Path) -> None:
    """Ten images through the panel: the state a notebook would save stays far below 1 MB."""
    with (
        OfflineServer(seed=3) as full_size,
        mai.Client(base_url=full_size.url, history=tmp_path / "full") as big,
    ):
        studio = make_studio(big)
        for i in range(4):
            studio.generate.prompt_box.value = f"a lighthouse number {i}"
            studio.generate.generate_button.click()
            wait_idle(studio)
        studio.compare.prompt_box.value = "a fox"
        studio.compare.ratio_toggles.value = ("1:1", "16:9")
        studio.compare.temperatures_box.value = "0.2, 1.0, 1.8"
        studio.compare.run_button.click()
        wait_idle(studio)
        studio.history.tiles[0].view_button.click()
        total = 0
        for widget in walk(studio):
            for value in widget.get_state().values():
                total += len(_state_bytes(value))
        assert total < 600_000, total
        studio.close()


def test_a_broken_history_gives_error_lines_not_tracebacks(
    studio: Studio, client: mai.Client
) -> None:
    client.generate("a cat")
    wait_idle(studio)
    assert client.history is not None
    client.history.close()  # e.g. the folder went away under a running kernel
    hist = studio.history
    hist.export_button.click()  # the click handler itself fails: caught, one line
    assert "mai-status-error" in hist.status_line.value and one_line(hist.status_line.value)
    hist.tiles[0].view_button.click()
    assert "closed" in hist.status_line.value
    studio.generate.prompt_box.value = "a dog"
    studio.generate.variation_button.disabled = False
    studio.generate.variation_button.click()
    assert "closed" in studio.generate.status_line.value
    studio.generate.generate_button.click()
    wait_idle(studio)
    assert "closed" in studio.generate.status_line.value and not studio.busy
    studio.compare.prompt_box.value = "a bird"
    assert "closed" in studio.compare.estimate_line.value

"""The cache (re-running costs nothing), the budget (concurrency cannot break it), the modes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb.offline import OfflineServer
from tests.conftest import CANARY_KEY


def test_rerunning_the_same_calls_sends_nothing(server: OfflineServer, tmp_path: Path) -> None:
    calls = [
        {"prompt": "a cat", "temperature": 1.3},
        {"prompt": "a dog", "aspect_ratio": "16:9"},
        {"prompt": "a cat", "temperature": 1.3, "sample": 1},
    ]
    with mai.Client(base_url=server.url, history=tmp_path / "h") as c:
        first = [c.generate(**call) for call in calls]  # type: ignore[arg-type]
    assert server.post_count == 3
    with mai.Client(base_url=server.url, history=tmp_path / "h") as c:  # a new kernel
        again = [c.generate(**call) for call in calls]  # type: ignore[arg-type]
        assert c.spent_usd == 0
    assert server.post_count == 3
    assert all(g.cached for g in again)
    assert [g.id for g in again] == [g.id for g in first]
    assert [g.data for g in again] == [g.data for g in first]
    assert first[0].id != first[2].id  # sample=1 is another variation


def test_cache_false_sends_and_the_newest_answers_later(
    client: mai.Client, server: OfflineServer
) -> None:
    old = client.generate("a cat", temperature=2)
    new = client.generate("a cat", temperature=2, cache=False)
    assert server.post_count == 2
    assert client.generate("a cat", temperature=2).id == new.id != old.id


def test_offline_and_api_caches_never_answer_each_other(
    server: OfflineServer, tmp_path: Path
) -> None:
    home = tmp_path / "shared-history"
    with mai.Client(offline=True, history=home) as offline:
        made_offline = offline.generate("a cat", temperature=0)
    with mai.Client(api_key=CANARY_KEY, base_url=server.url, history=home) as api:
        made_by_api = api.generate("a cat", temperature=0)
        assert not made_by_api.cached
        assert server.post_count == 1
        assert made_by_api.service != made_offline.service
    with mai.Client(offline=True, history=home) as offline:
        again = offline.generate("a cat", temperature=0)
        assert again.cached and again.id == made_offline.id


def test_memory_cache_without_history(server: OfflineServer, clean_env: Path) -> None:
    with mai.Client(base_url=server.url, history=False) as c:
        first = c.generate("a cat")
        again = c.generate("a cat")
        assert c.history is None
    assert again.cached and again.id == first.id
    assert server.post_count == 1
    assert not clean_env.exists()  # nothing written to disk


def test_default_client_is_offline_and_works(clean_env: Path) -> None:
    with mai.Client() as c:
        assert c.mode == "offline"
        assert "offline" in repr(c)
        generation = c.generate("a lighthouse at dusk", aspect_ratio="16:9", temperature=0.7)
        assert (generation.width, generation.height) == (1376, 774)
        assert generation.usage is not None
    assert (clean_env / "history.sqlite3").exists()


def test_a_custom_base_url_without_a_key_is_used_as_is(server: OfflineServer) -> None:
    """A class simulator (python -m mai_image_nb.offline) needs no key."""
    with mai.Client(base_url=server.url, history=False) as c:
        assert c.mode == "api"
        c.generate("a cat")
    assert server.post_count == 1
    assert "authorization" not in server.requests[0].headers


def test_env_key_and_base_url(monkeypatch: pytest.MonkeyPatch, server: OfflineServer) -> None:
    monkeypatch.setenv("AIMLAPI_KEY", CANARY_KEY)
    monkeypatch.setenv("AIMLAPI_BASE_URL", server.url + "/v1/")
    with mai.Client(history=False) as c:
        assert c.mode == "api"
        assert c.base_url == server.url
        c.generate("a cat")
    assert server.requests[0].headers["authorization"] == f"Bearer {CANARY_KEY}"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"timeout": 0}, "timeout", id="timeout"),
        pytest.param({"max_retries": -1}, "max_retries", id="retries"),
        pytest.param({"max_workers": 0}, "max_workers", id="workers"),
        pytest.param({"budget_usd": -1}, "budget_usd", id="budget"),
        pytest.param({"model": "x"}, "model", id="model"),
        pytest.param({"base_url": "ftp://x"}, "base_url", id="url"),
        pytest.param({"base_url": "https://u:sk-secret@h.example"}, "base_url", id="userinfo"),
    ],
)
def test_bad_settings(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(mai.ValidationError) as info:
        mai.Client(offline=True, history=False, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert "sk-secret" not in str(info.value)


# -- budget ----------------------------------------------------------------------------


def test_budget_refuses_before_sending(server: OfflineServer) -> None:
    with mai.Client(base_url=server.url, history=False, budget_usd=0.13) as c:
        c.generate("one")
        c.generate("two")
        with pytest.raises(errors.BudgetExceededError) as info:
            c.generate("three")
        assert c.generate("one").cached  # the cache is free, even at the cap
    message = str(info.value)
    assert "0.13" in message and "0.1254" in message and "0.0627" in message
    assert server.post_count == 2


@pytest.mark.parametrize("k", [0, 1, 3])
def test_sixteen_threads_cannot_pass_the_budget(server: OfflineServer, k: int) -> None:
    server.set_latency(0.05)
    budget = 0.0627 * k + 0.0001
    outcomes: list[object] = []
    lock = threading.Lock()
    with mai.Client(base_url=server.url, history=False, budget_usd=budget) as c:
        barrier = threading.Barrier(16)

        def call(i: int) -> None:
            barrier.wait()
            try:
                result: object = c.generate(f"prompt {i}")
            except errors.MaiImageError as exc:
                result = exc
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads), "a caller thread did not end"
        assert c.spent_usd <= budget
    assert server.post_count <= k
    assert sum(isinstance(o, mai.Generation) for o in outcomes) == server.post_count
    assert all(isinstance(o, (mai.Generation, errors.BudgetExceededError)) for o in outcomes)


def test_check_budget_asks_without_reserving(server: OfflineServer) -> None:
    with mai.Client(base_url=server.url, history=False, budget_usd=0.13) as c:
        c.check_budget(2)  # two images at 0.0627 fit in 0.13
        with pytest.raises(errors.BudgetExceededError):
            c.check_budget(3)
        c.check_budget(2)  # asking reserved nothing
        with pytest.raises(errors.ValidationError, match="n="):
            c.check_budget(-1)
    assert server.post_count == 0


def test_budget_can_change_on_a_live_client(server: OfflineServer) -> None:
    with mai.Client(base_url=server.url, history=False, budget_usd=0.07) as c:
        c.generate("one")
        with pytest.raises(errors.BudgetExceededError):
            c.generate("two")
        c.budget_usd = 0.2
        assert c.budget_usd == pytest.approx(0.2)
        c.generate("two")
        c.budget_usd = None
        c.check_budget(1000)
        for bad in (-1, "1", True, float("nan")):
            with pytest.raises(errors.ValidationError, match="budget_usd"):
                c.budget_usd = bad  # type: ignore[assignment]
        assert c.budget_usd is None  # a refused value leaves the cap as it was
    assert server.post_count == 2


def test_on_generation_sees_each_new_image_until_unsubscribed(server: OfflineServer) -> None:
    seen: list[str] = []
    with mai.Client(base_url=server.url, history=False) as c:

        def broken(_gen: mai.Generation) -> None:
            raise RuntimeError("a listener that fails")

        c.on_generation(broken)  # logged, never costs the image
        unsubscribe = c.on_generation(lambda g: seen.append(g.prompt))
        first = c.generate("one")
        c.generate("one")  # cached: nothing new was stored
        unsubscribe()
        c.generate("two")
    assert seen == [first.prompt]
    assert server.post_count == 2


def test_generate_with_a_set_cancel_sends_nothing(server: OfflineServer) -> None:
    cancel = threading.Event()
    cancel.set()
    with mai.Client(base_url=server.url, history=False) as c:
        with pytest.raises(errors.CancelledError):
            c.generate("a cat", cancel=cancel)
        c.generate("a cat")
        assert c.generate("a cat", cancel=cancel).cached  # a cached answer costs no request
    assert server.post_count == 1


def test_estimate_uses_the_last_observed_cost(tmp_path: Path) -> None:
    with OfflineServer(usd_per_image=0.04, image_scale=0.125) as srv:
        with mai.Client(base_url=srv.url, history=tmp_path / "h") as c:
            assert c.estimate() == pytest.approx(0.0627)  # nothing seen yet
            c.generate("a cat")
            assert c.estimate(2) == pytest.approx(0.08)
        with mai.Client(base_url=srv.url, history=tmp_path / "h") as c:
            assert c.estimate() == pytest.approx(0.04)  # from the history

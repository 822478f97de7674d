"""The gateway over real loopback HTTP with the simulator as upstream: tokens, budgets, bodies,
fairness, the shared back-off gate, admin endpoints."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb.classroom import Classroom
from mai_image_nb.errors import ServerBudgetError
from mai_image_nb.offline import Fault, OfflineServer
from tests.waits import wait_until

from .conftest import PRICE, TEACHER_KEY, admin_post, get, post, upstream_prompts


def _client(room: Classroom, token: str) -> mai.Client:
    return mai.Client(api_key=token, base_url=room.url, history=False, timeout=30.0,
                      max_retries=0)  # fmt: skip


def test_unknown_and_revoked_tokens_are_refused_before_upstream(
    room: Classroom, upstream: OfflineServer
) -> None:
    tokens = room.add_students(["ada"])
    for token in (None, "not-a-token", tokens["ada"] + "x", TEACHER_KEY):
        answer = post(room.url, token, {"prompt": "a fox"})
        assert answer.status_code == 401, token
        assert answer.json()["error"]["data"]["kind"] == "err_unauthorized"
    room.revoke("ada")
    answer = post(room.url, tokens["ada"], {"prompt": "a fox"})
    assert answer.status_code == 401
    assert "revoked" in answer.json()["message"]
    with _client(room, tokens["ada"]) as client, pytest.raises(mai.AuthenticationError):
        client.generate("a fox")
    assert upstream.post_count == 0


def test_budget_survives_restarts_and_new_clients(upstream: OfflineServer, folder: Path) -> None:
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY,
                   budget_usd=3 * PRICE) as room:  # fmt: skip
        token = room.add_students(["ada"])["ada"]
        with _client(room, token) as client:
            client.generate("one")
            client.generate("two")
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY,
                   budget_usd=3 * PRICE) as room:  # fmt: skip
        assert room.add_students(["ada"]) == {}  # the same token, kept
        with _client(room, token) as client:
            client.generate("three")
            with pytest.raises(mai.BudgetExceededError) as caught:
                client.generate("four")
        err = caught.value
        assert isinstance(err, ServerBudgetError)
        assert err.status_code == 402
        assert err.kind == "class_budget_exhausted"
        assert "$0.19" in err.message and "0.1881" in err.message
        (row,) = room.status()
        assert row["images"] == 3
        assert row["spent_usd"] == pytest.approx(3 * PRICE)
    assert upstream.post_count == 3


def test_sixteen_concurrent_requests_under_a_budget_for_three(
    upstream: OfflineServer, folder: Path
) -> None:
    upstream.set_latency(0.2)
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY, budget_usd=3 * PRICE,
                   per_student=16) as room:  # fmt: skip
        token = room.add_students(["ada"])["ada"]
        start = threading.Barrier(16)
        codes: list[int] = []

        def one(i: int) -> None:
            start.wait(10)
            codes.append(post(room.url, token, {"prompt": f"cat {i}"}).status_code)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
        assert sorted(codes) == [200] * 3 + [402] * 13
        assert upstream.post_count == 3
        assert room.gateway.queue.peak_inflight <= 3
        assert room.status()[0]["spent_usd"] == pytest.approx(3 * PRICE)


def test_round_robin_one_students_ten_do_not_delay_anothers_one(
    upstream: OfflineServer, folder: Path
) -> None:
    upstream.set_latency(0.1)
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY, max_inflight=1,
                   per_student=1) as room:  # fmt: skip
        tokens = room.add_students(["ada", "bob"])
        threads = [
            threading.Thread(target=post, args=(room.url, tokens["ada"], {"prompt": f"ada {i}"}))
            for i in range(10)
        ]
        for t in threads:
            t.start()
        wait_until(lambda: room.gateway.queue.counts() == (1, 9), "ada's 9 waiting", 10)
        bob = threading.Thread(target=post, args=(room.url, tokens["bob"], {"prompt": "bob 0"}))
        bob.start()
        for t in [*threads, bob]:
            t.join(30)
            assert not t.is_alive()
        assert room.gateway.queue.peak_inflight == 1
    order = upstream_prompts(upstream)
    assert len(order) == 11
    # ada's first was upstream, her second granted as bob arrived at the latest: bob is next.
    assert order.index("bob 0") <= 2, order


def test_one_429_pauses_every_upstream_send(upstream: OfflineServer, folder: Path) -> None:
    upstream.script(Fault.status(429, retry_after="1"))
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY, max_inflight=1) as room:
        tokens = room.add_students([f"s{i}" for i in range(4)])
        codes: list[int] = []
        threads = [
            threading.Thread(
                target=lambda n=name, t=tok: codes.append(
                    post(room.url, t, {"prompt": n}).status_code
                )
            )
            for name, tok in tokens.items()
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
    assert codes == [200] * 4
    times = [r.time for r in upstream.requests]
    assert len(times) == 5  # the refused one was sent again, once, by the gateway
    assert all(t - times[0] >= 0.95 for t in times[1:]), [round(t - times[0], 3) for t in times]


def test_oversized_and_invalid_bodies_never_reach_upstream(
    room: Classroom, upstream: OfflineServer
) -> None:
    token = room.add_students(["ada"])["ada"]
    big = post(room.url, token, raw=b'{"prompt": "' + b"x" * 70_000 + b'"}')
    assert big.status_code == 413
    assert big.json()["error"]["data"]["kind"] == "err_payload_too_large"
    for body in ({"prompt": ""}, {"prompt": "x", "aspect_ratio": "5:4"},
                 {"prompt": "x", "temperature": 3}, {"aspect_ratio": "1:1"}, [1, 2],
                 {"prompt": "x", "model": "other/model"}):  # fmt: skip
        answer = post(room.url, token, body)
        assert answer.status_code == 400, body
        assert answer.json()["error"]["data"]["kind"] == "err_validation"
    assert post(room.url, token, raw=b"{not json").status_code == 400
    assert post(room.url, token, raw=b'{"prompt": NaN}').status_code == 400
    assert upstream.post_count == 0
    assert room.status()[0]["spent_usd"] == 0


def test_admin_endpoints_refuse_student_tokens(room: Classroom) -> None:
    token = room.add_students(["ada"])["ada"]
    for who, code in ((token, 403), (None, 401), ("nonsense", 401)):
        assert get(room.url, "/classroom/students", who).status_code == code
        assert get(room.url, "/classroom/state", who).status_code == code
        assert admin_post(room.url, "/classroom/students", who, {"name": "eve"}).status_code == code
        assert admin_post(room.url, "/classroom/students/ada/budget", who,
                          {"budget_usd": 9}).status_code == code  # fmt: skip
        assert admin_post(room.url, "/classroom/students/ada/revoke", who, {}).status_code == code
    assert [s["name"] for s in room.status()] == ["ada"]
    assert room.status()[0]["budget_usd"] == 1.0
    admin = room.admin_token
    made = admin_post(room.url, "/classroom/students", admin, {"name": "eve", "budget_usd": 0.5})
    assert made.status_code == 201
    eve = made.json()["token"]
    me = get(room.url, "/classroom/me", eve).json()
    assert me["name"] == "eve" and me["budget_usd"] == 0.5 and "token" not in me
    assert admin_post(room.url, "/classroom/students", admin, {"name": "eve"}).status_code == 400
    assert admin_post(room.url, "/classroom/students/ada/budget", admin,
                      {"budget_usd": 3}).json()["budget_usd"] == 3  # fmt: skip
    assert admin_post(room.url, "/classroom/students/eve/revoke", admin, {}).status_code == 200
    assert get(room.url, "/classroom/me", eve).status_code == 401
    listed = get(room.url, "/classroom/students", admin).json()
    assert {s["name"]: s["budget_usd"] for s in listed} == {"ada": 3.0, "eve": 0.5}
    assert token not in str(listed) and eve not in str(listed)


def test_me_is_only_ones_own(room: Classroom, upstream: OfflineServer) -> None:
    tokens = room.add_students(["ada", "bob"])
    assert post(room.url, tokens["ada"], {"prompt": "a fox"}).status_code == 200
    ada = get(room.url, "/classroom/me", tokens["ada"]).json()
    bob = get(room.url, "/classroom/me", tokens["bob"]).json()
    assert (ada["name"], ada["images"], ada["spent_usd"]) == ("ada", 1, PRICE)
    assert (bob["name"], bob["images"], bob["spent_usd"]) == ("bob", 0, 0)
    assert ada["left_usd"] == pytest.approx(1.0 - PRICE)


def test_upstream_faults_pass_through_and_charge_nothing(
    room: Classroom, upstream: OfflineServer
) -> None:
    token = room.add_students(["ada"])["ada"]
    upstream.script(Fault.status(503), Fault.status(500))
    assert post(room.url, token, {"prompt": "a"}).status_code == 503
    assert post(room.url, token, {"prompt": "b"}).status_code == 500
    (row,) = room.status()
    assert row["spent_usd"] == 0 and row["errors"] == 2 and row["reserved_usd"] == 0
    room.gateway.upstream.timeout_s = 0.3
    upstream.set_latency(2.0)
    started = time.monotonic()
    assert post(room.url, token, {"prompt": "slow"}).status_code == 504
    assert time.monotonic() - started < 2.0
    upstream.set_latency(0)
    assert room.status()[0]["spent_usd"] == 0


def test_jupyterhub_service_prefix_is_understood(
    upstream: OfflineServer, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/services/mai-classroom/")
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY) as room:
        token = room.add_students(["ada"])["ada"]
        with mai.Client(api_key=token, base_url=room.url + "/services/mai-classroom",
                        history=False) as client:  # fmt: skip
            client.generate("a fox")
            assert client.get_service_json("/classroom/me")["images"] == 1
        assert post(room.url, token, {"prompt": "also at the root"}).status_code == 200


def test_close_finishes_what_is_upstream_and_refuses_what_waits(
    upstream: OfflineServer, folder: Path
) -> None:
    upstream.set_latency(0.5)
    room = Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY, max_inflight=1).start()
    try:
        tokens = room.add_students(["ada", "bob", "cy"])
        codes: dict[str, int] = {}
        threads = [
            threading.Thread(
                target=lambda n=n, t=t: codes.__setitem__(
                    n, post(room.url, t, {"prompt": n}).status_code
                )
            )
            for n, t in tokens.items()
        ]
        for t in threads:
            t.start()
        wait_until(lambda: room.gateway.queue.counts() == (1, 2), "one upstream, two waiting", 10)
        wait_until(lambda: upstream.post_count == 1, "the first at the upstream", 10)
        room.close()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
    finally:
        room.close()
    assert sorted(codes.values()) == [200, 503, 503]
    assert upstream.post_count == 1
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY) as again:
        rows = again.status()
        assert again.gateway.ledger.recovered == 0  # nothing was left open
    assert sum(r["spent_usd"] for r in rows) == PRICE
    assert all(r["reserved_usd"] == 0 for r in rows)


def test_one_gateway_per_folder_and_a_taken_port_fails_cleanly(
    upstream: OfflineServer, folder: Path, tmp_path: Path
) -> None:
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY) as first:
        token = first.add_students(["ada"])["ada"]
        upstream.set_latency(0.3)
        sender = threading.Thread(target=post, args=(first.url, token, {"prompt": "a fox"}))
        sender.start()
        wait_until(lambda: upstream.post_count == 1, "a request upstream", 10)
        second = Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY)
        with pytest.raises(mai.MaiImageError, match="in use by another gateway"):
            second.start()  # it must not settle the first one's open request as crashed
        sender.join(10)
        assert not sender.is_alive()
        assert first.status()[0]["images"] == 1
        port = int(first.url.rsplit(":", 1)[1])
        elsewhere = Classroom(tmp_path / "other", upstream=upstream.url, api_key=TEACHER_KEY,
                              port=port)  # fmt: skip
        with pytest.raises(OSError, match="in use"):  # EADDRINUSE: Address already in use
            elsewhere.start()
        assert [t.name for t in threading.enumerate()].count("classroom-gallery") == 1
    with Classroom(folder, upstream=upstream.url, api_key=TEACHER_KEY) as again:
        assert again.gateway.ledger.recovered == 0


def test_gallery_keeps_images_and_previews_are_at_most_256_px(folder: Path) -> None:
    import io

    from PIL import Image

    with OfflineServer(image_scale=0.5, seed=1, response_format="b64_json") as big, Classroom(
        folder, upstream=big.url, api_key=TEACHER_KEY
    ) as room:  # fmt: skip
        token = room.add_students(["ada"])["ada"]
        assert post(room.url, token, {"prompt": "a wide sea", "aspect_ratio": "16:9"}).ok
        room.gateway.gallery.wait_idle()
        room.gateway.ledger.flush()  # the answer's row is settled without waiting for the disk
        (item,) = get(room.url, "/classroom/gallery", room.admin_token).json()
        assert (item["name"], item["prompt"]) == ("ada", "a wide sea")
        preview = get(room.url, item["preview"], room.admin_token)
        assert get(room.url, item["preview"], token).status_code == 403
    kept = list((folder / "gallery").iterdir())
    assert len(kept) == 1
    with Image.open(kept[0]) as image:
        assert image.size == (688, 387)  # the image as the service sent it
    with Image.open(io.BytesIO(preview.content)) as image:
        assert max(image.size) == 256


def test_a_fault_of_the_gateways_own_answers_500_and_settles_at_the_estimate(
    room: Classroom, upstream: OfflineServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = room.add_students(["ada"])["ada"]
    real_post = room.gateway.upstream.post

    def broken_after_sending(body, *, before_send=None):
        real_post(body, before_send=before_send)
        raise RuntimeError("a bug after the request left")

    monkeypatch.setattr(room.gateway.upstream, "post", broken_after_sending)
    answer = post(room.url, token, {"prompt": "a fox"})
    assert answer.status_code == 500 and "bug" not in answer.text
    (row,) = room.status()
    assert (row["spent_usd"], row["reserved_usd"], row["errors"]) == (PRICE, 0, 1)
    monkeypatch.undo()
    assert post(room.url, token, {"prompt": "still serving"}).status_code == 200

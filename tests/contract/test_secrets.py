"""One canary key through every path: it appears only in the Authorization header to base_url."""

from __future__ import annotations

import logging
import pickle
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb.offline import Fault, OfflineServer
from tests.conftest import CANARY_KEY, FastClock


@pytest.fixture
def cdn() -> Iterator[OfflineServer]:
    with OfflineServer(image_scale=0.125) as srv:
        yield srv
        assert not srv.errors


@pytest.fixture
def api(cdn: OfflineServer) -> Iterator[OfflineServer]:
    """The API requires the canary key and publishes its images on `cdn`."""
    with OfflineServer(api_key=CANARY_KEY, image_scale=0.125, image_server=cdn) as srv:
        yield srv
        assert not srv.errors


def _client(url: str, home: Path, *, key: str = CANARY_KEY, **options: object) -> mai.Client:
    c = mai.Client(api_key=key, base_url=url, offline=False, history=home, **options)  # type: ignore[arg-type]
    c._use_clock(FastClock())
    return c


def _success(url: str, home: Path) -> object:
    with _client(url, home) as c:
        return c.generate("a canary in a coal mine", cache=False)


def _unauthorized(url: str, home: Path) -> object:
    with OfflineServer(api_key="some-other-key") as strict, _client(strict.url, home) as c:
        return c.generate("a canary")


def _server_errors(url: str, home: Path) -> object:
    with OfflineServer() as srv, _client(srv.url, home) as c:
        srv.script(*[Fault.status(503)] * 4)
        return c.generate("a canary")


def _timeout(url: str, home: Path) -> object:
    with OfflineServer() as srv, _client(srv.url, home, timeout=0.1, max_retries=1) as c:
        srv.script(Fault.slow(1.0), Fault.slow(1.0))
        return c.generate("a canary")


def _refused(url: str, home: Path) -> object:
    with OfflineServer() as srv:
        dead = srv.url
    with _client(dead, home, max_retries=1) as c:
        return c.generate("a canary")


def _bad_json(url: str, home: Path) -> object:
    with OfflineServer() as srv, _client(srv.url, home) as c:
        srv.script(Fault.truncated_json())
        return c.generate("a canary")


def _budget(url: str, home: Path) -> object:
    with _client(url, home, budget_usd=0.01) as c:
        return c.generate("a canary")


PATHS: dict[str, Callable[[str, Path], object]] = {
    "success": _success,
    "401": _unauthorized,
    "5xx-after-retries": _server_errors,
    "timeout": _timeout,
    "connection-refused": _refused,
    "bad-json": _bad_json,
    "budget": _budget,
}


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.mark.parametrize("path", PATHS)
def test_canary_key_never_leaks(
    path: str,
    api: OfflineServer,
    cdn: OfflineServer,
    tmp_path: Path,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    home = tmp_path / "history"
    texts: list[str] = []
    try:
        result = PATHS[path](api.url, home)
    except errors.MaiImageError as exc:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        texts.append(repr(pickle.loads(pickle.dumps(exc)).__dict__))
        texts.append(repr(exc.__dict__))
        assert path != "success"
    else:
        assert path == "success"
        assert isinstance(result, mai.Generation)
        texts += [repr(result), result._repr_html_(), str(result.to_dict())]
        saved = result.save(tmp_path / "saved.png")
        assert CANARY_KEY.encode() not in saved.read_bytes()
    for record in debug_logs.records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    texts.append(debug_logs.text)
    assert not [t for t in texts if CANARY_KEY in t]
    if home.exists():
        with mai.History(home) as history:
            exported = history.export(tmp_path / "export")
            assert CANARY_KEY not in str(history.to_records())
        assert CANARY_KEY.encode() not in _all_bytes(exported)
        assert CANARY_KEY.encode() not in _all_bytes(home)
    # The key reached the API, and only in the Authorization header ...
    for request in api.requests:
        assert CANARY_KEY.encode() not in request.body
        for name, value in request.headers.items():
            if CANARY_KEY in value:
                assert name == "authorization"
                assert request.path.startswith("/v1/images/generations")
    # ... and never the image CDN.
    for request in cdn.requests:
        assert "authorization" not in request.headers
        assert CANARY_KEY not in str(request.headers)
    if path == "success":
        assert any(r.method == "GET" for r in cdn.requests)


def test_client_repr_and_vars_hide_the_key(server: OfflineServer) -> None:
    with mai.Client(api_key=CANARY_KEY, base_url=server.url) as c:
        assert CANARY_KEY not in repr(c)
        assert CANARY_KEY not in repr(vars(c))
        assert CANARY_KEY not in str(c)


def test_offline_mode_never_sends_a_key(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with mai.Client(api_key=CANARY_KEY, offline=True, history=False) as c:
        c.generate("a canary", temperature=0)
        assert c.mode == "offline"
        assert c._server is not None
        assert all("authorization" not in r.headers for r in c._server.requests)


def test_no_key_with_offline_false_is_an_authentication_error() -> None:
    with pytest.raises(errors.AuthenticationError) as info:
        mai.Client(offline=False, history=False)
    assert info.value.status_code is None
    assert "AIMLAPI_KEY" in str(info.value)


def test_logging_handler_is_quiet_by_default(server: OfflineServer) -> None:
    assert any(
        isinstance(h, logging.NullHandler) for h in logging.getLogger("mai_image_nb").handlers
    )

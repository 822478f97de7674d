"""Each error is built once, whole: its message, `args` and `str()` agree, attempts included.

Failures come from the simulator (or a closed port) over loopback; the errors are checked
as a user sees them: `str()`, `args`, and a pickle round trip.
"""

from __future__ import annotations

import pickle

import pytest

import mai_image_nb as mai
from mai_image_nb import errors
from mai_image_nb.offline import Fault, OfflineServer
from tests.conftest import FastClock


def assert_whole(err: errors.MaiImageError) -> None:
    assert err.args == (err.message,)
    assert err.message in str(err)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err) and again.message == err.message


def test_connection_error_names_the_attempts_from_the_start() -> None:
    with OfflineServer() as srv:
        url = srv.url
    with mai.Client(base_url=url, history=False, max_retries=2) as c:
        c._use_clock(FastClock())
        with pytest.raises(errors.APIConnectionError) as info:
            c.generate("a cat")
    err = info.value
    assert type(err) is errors.APIConnectionError
    assert "after 3 attempts" in err.message
    assert err.__context__ is None or not isinstance(err.__context__, errors.MaiImageError)
    assert_whole(err)


def test_timeout_error_is_built_once(server: OfflineServer) -> None:
    with mai.Client(base_url=server.url, history=False, timeout=0.2, max_retries=0) as c:
        server.script(Fault.slow(2.0))
        with pytest.raises(errors.APITimeoutError) as info:
            c.generate("a cat")
    assert "after 1 attempt:" in info.value.message
    assert_whole(info.value)


def test_a_too_long_retry_after_is_said_in_the_message(
    client: mai.Client, server: OfflineServer
) -> None:
    server.script(Fault.status(429, retry_after="600"))
    with pytest.raises(errors.RateLimitError) as info:
        client.generate("a cat", cache=False)
    err = info.value
    assert "asked to wait 600 s" in err.message
    assert err.status_code == 429
    assert_whole(err)
    assert server.post_count == 1


def test_last_status_error_after_retries(client: mai.Client, server: OfflineServer) -> None:
    server.script(*[Fault.status(503)] * 4)
    with pytest.raises(errors.APIStatusError) as info:
        client.generate("a cat", cache=False)
    assert info.value.status_code == 503
    assert_whole(info.value)
    assert server.post_count == 4


def test_download_failure_names_the_attempts(client: mai.Client, server: OfflineServer) -> None:
    server.script(Fault.dead_url())
    with pytest.raises(errors.ResponseError) as info:
        client.generate("a cat", cache=False)
    assert "could not be fetched" in info.value.message
    assert "attempt" in info.value.message
    assert_whole(info.value)


@pytest.mark.parametrize(
    "fault", [Fault.empty_data(), Fault.null_image(), Fault.bad_base64(), Fault.truncated_json()]
)
def test_unusable_answers_raise_one_plain_response_error(
    client: mai.Client, server: OfflineServer, fault: Fault
) -> None:
    server.script(fault)
    with pytest.raises(errors.ResponseError) as info:
        client.generate("a cat", cache=False)
    assert type(info.value) is errors.ResponseError  # no private subclass carrying a cost
    assert set(vars(info.value)) == {"message"}
    assert_whole(info.value)

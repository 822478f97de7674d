"""settings.py: where the key, the server, the mode and the history come from."""

from __future__ import annotations

from pathlib import Path

import pytest

from mai_image_nb.errors import AuthenticationError, ValidationError
from mai_image_nb.history import History
from mai_image_nb.settings import (
    DEFAULT_BASE_URL,
    normalise_base_url,
    open_history,
    resolve_connection,
)

KEY = "sk-settings-test-0000"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("https://api.aimlapi.com", "https://api.aimlapi.com", id="plain"),
        pytest.param("https://api.aimlapi.com/", "https://api.aimlapi.com", id="slash"),
        pytest.param("https://api.aimlapi.com/v1", "https://api.aimlapi.com", id="v1"),
        pytest.param("https://api.aimlapi.com/v1/", "https://api.aimlapi.com", id="v1-slash"),
        pytest.param(" http://127.0.0.1:8765 ", "http://127.0.0.1:8765", id="spaces-port"),
        pytest.param("http://gw.example/class/v1", "http://gw.example/class", id="path-prefix"),
        pytest.param("http://[::1]:8765", "http://[::1]:8765", id="ipv6"),
    ],
)
def test_base_urls_are_normalised(given: str, expected: str) -> None:
    assert normalise_base_url(given) == expected


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ftp://api.aimlapi.com", id="scheme"),
        pytest.param("api.aimlapi.com", id="no-scheme"),
        pytest.param("https://", id="no-host"),
        pytest.param("", id="empty"),
    ],
)
def test_urls_that_are_not_http_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="base_url"):
        normalise_base_url(url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://user:hunter2@api.aimlapi.com", id="user-password"),
        pytest.param("https://hunter2@api.aimlapi.com", id="user-only"),
        pytest.param("https://:hunter2@api.aimlapi.com", id="password-only"),
    ],
)
def test_credentials_in_the_url_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValidationError, match="api_key") as info:
        normalise_base_url(url)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in repr(info.value.args)


def test_no_key_anywhere_means_the_simulator(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_connection(None, None, None) == (None, DEFAULT_BASE_URL, True)
    monkeypatch.setenv("AIMLAPI_KEY", "")  # set but empty is no key
    assert resolve_connection(None, None, None) == (None, DEFAULT_BASE_URL, True)


def test_the_environment_gives_key_and_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMLAPI_KEY", KEY)
    monkeypatch.setenv("AIMLAPI_BASE_URL", "http://gw.example/v1")
    assert resolve_connection(None, None, None) == (KEY, "http://gw.example", False)


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMLAPI_KEY", "sk-from-env")
    monkeypatch.setenv("AIMLAPI_BASE_URL", "http://env.example")
    got = resolve_connection(KEY, "http://arg.example/", None)
    assert got == (KEY, "http://arg.example", False)


def test_a_custom_server_without_a_key_is_used_as_is() -> None:
    assert resolve_connection(None, "http://127.0.0.1:8765", None) == (
        None,
        "http://127.0.0.1:8765",
        False,
    )
    assert resolve_connection(None, "http://127.0.0.1:8765", False)[2] is False


def test_offline_true_wins_even_with_a_key() -> None:
    assert resolve_connection(KEY, None, True) == (KEY, DEFAULT_BASE_URL, True)


def test_offline_false_without_a_key_for_the_real_api_is_refused() -> None:
    with pytest.raises(AuthenticationError, match="AIMLAPI_KEY"):
        resolve_connection(None, None, False)


def test_a_bad_url_in_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIMLAPI_BASE_URL", "gopher://x")
    with pytest.raises(ValidationError, match="base_url"):
        resolve_connection(None, None, None)


def test_open_history(tmp_path: Path, clean_env: Path) -> None:
    assert open_history(False) is None
    own = History(tmp_path / "own")
    try:
        assert open_history(own) is own
    finally:
        own.close()
    for given in (tmp_path / "by-path", str(tmp_path / "by-text")):
        history = open_history(given)
        assert isinstance(history, History)
        history.close()
        assert Path(given).is_dir()
    for default in (None, True):
        history = open_history(default)
        assert isinstance(history, History)
        history.close()
    assert clean_env.is_dir()  # the default folder comes from MAI_IMAGE_HOME

"""`ddpg-tui serve`'s access rules, without a browser: who may bind where, and which requests get in."""

from __future__ import annotations

import base64
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ddpg_tui.cli.serve_access import (
    COOKIE,
    TOKEN_ENV,
    access_middleware,
    check_bind,
    is_loopback_host,
    read_token,
)
from ddpg_tui.request import UsageError

aiohttp = pytest.importorskip("aiohttp", reason="needs textual-serve's aiohttp: pip install 'ddpg-tui[serve]'")
from aiohttp import web  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token-123"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts_are_loopback(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2", "no-such-host.invalid"])
def test_other_hosts_are_not(host: str) -> None:
    assert not is_loopback_host(host)


def test_binding_off_loopback_without_a_token_is_refused() -> None:
    with pytest.raises(UsageError, match=r"--host 0\.0\.0\.0 is not a loopback address"):
        check_bind("0.0.0.0", None)


def test_binding_off_loopback_with_a_token_or_on_loopback_without_one_is_allowed() -> None:
    check_bind("0.0.0.0", TOKEN)
    check_bind("127.0.0.1", None)


def test_the_token_comes_from_a_file_the_environment_or_argv(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    assert read_token(None, path, {}) == TOKEN
    assert read_token(None, None, {TOKEN_ENV: TOKEN}) == TOKEN
    assert read_token(TOKEN, None, {}) == TOKEN
    assert read_token(None, None, {}) is None


def test_two_sources_of_a_token_short_tokens_and_missing_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--token and \$DDPG_TUI_TOKEN both give a token"):
        read_token(TOKEN, None, {TOKEN_ENV: TOKEN})
    with pytest.raises(UsageError, match="at least 8 printable characters"):
        read_token("short", None, {})
    with pytest.raises(UsageError, match="cannot read it"):
        read_token(None, tmp_path / "nowhere", {})


async def guarded_client(token: str | None) -> TestClient:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="the app page")

    app = web.Application(middlewares=[access_middleware(token)])
    app.router.add_get("/", ok)
    app.router.add_get("/ws", ok)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    return client


async def test_without_the_token_every_request_gets_401_and_a_login_prompt() -> None:
    client = await guarded_client(TOKEN)
    try:
        for path, headers in [("/", {}), ("/ws", {}), ("/?token=wrong-token-9", {}),
                              ("/", {"Authorization": "Bearer wrong-token-9"}),
                              ("/", {"Cookie": f"{COOKIE}=forged"})]:
            client.session.cookie_jar.clear()
            response = await client.get(path, headers=headers, allow_redirects=False)
            assert response.status == 401, (path, headers)
            assert response.headers["WWW-Authenticate"].startswith("Basic")
    finally:
        await client.close()


async def test_the_token_as_a_password_a_bearer_or_once_in_the_address_lets_a_browser_in() -> None:
    client = await guarded_client(TOKEN)
    try:
        basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
        for headers in [{"Authorization": f"Basic {basic}"}, {"Authorization": f"Bearer {TOKEN}"}]:
            client.session.cookie_jar.clear()  # each form on its own, not through the last one's cookie
            response = await client.get("/", headers=headers)
            assert response.status == 200 and await response.text() == "the app page"
        client.session.cookie_jar.clear()
        response = await client.get(f"/?token={TOKEN}", allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == "/"  # the token leaves the address
        cookie = response.cookies[COOKIE]
        assert TOKEN not in cookie.value and cookie["httponly"]
        client.session.cookie_jar.clear()
        response = await client.get("/", headers={"Cookie": f"{COOKIE}={cookie.value}"})
        assert response.status == 200
    finally:
        await client.close()


async def test_on_loopback_a_foreign_host_name_or_a_foreign_pages_websocket_is_refused() -> None:
    client = await guarded_client(None)
    try:
        assert (await client.get("/")).status == 200
        assert (await client.get("/", headers={"Host": "evil.example:8000"})).status == 403  # DNS rebinding
        port = client.port
        own = {"Origin": f"http://127.0.0.1:{port}", "Host": f"127.0.0.1:{port}"}
        assert (await client.get("/ws", headers=own)).status == 200
        foreign = {"Origin": "http://evil.example", "Host": f"127.0.0.1:{port}"}
        assert (await client.get("/ws", headers=foreign)).status == 403
    finally:
        await client.close()


async def test_the_page_points_its_websocket_at_the_address_the_browser_used() -> None:
    pytest.importorskip("textual_serve", reason="needs textual-serve: pip install 'ddpg-tui[serve]'")
    from ddpg_tui.cli.commands.serve import make_server

    server = make_server("true", "127.0.0.1", 8000, None)
    client = TestClient(TestServer(await server._make_app(), host="127.0.0.1"))
    await client.start_server()
    try:
        # As through 'ssh -L 9000:127.0.0.1:8000': the browser asked for localhost:9000.
        page = await (await client.get("/", headers={"Host": "localhost:9000"})).text()
        assert 'data-session-websocket-url="ws://localhost:9000/ws"' in page
    finally:
        await client.close()


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    pytest.importorskip("textual_serve", reason="needs textual-serve: pip install 'ddpg-tui[serve]'")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "ddpg_tui", "serve", "--port", str(port)], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"ddpg-tui: error: cannot listen on 127.0.0.1:{port}: the port is in use; ")
    assert result.stderr.count("\n") == 1, result.stderr


def test_the_token_is_kept_from_the_tabs_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from ddpg_tui.cli.serve_access import hide_token_from_tabs

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    hide_token_from_tabs()
    assert TOKEN_ENV not in os.environ


def test_the_access_log_does_not_show_a_token_given_in_the_address() -> None:
    from ddpg_tui.cli.serve_access import RedactToken

    record = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1,
                               f'127.0.0.1 "GET /?token={TOKEN}&fontsize=16 HTTP/1.1" 303', None, None)
    assert RedactToken().filter(record)
    assert TOKEN not in record.getMessage()
    assert '"GET /?token=…&fontsize=16 HTTP/1.1" 303' in record.getMessage()


def test_serve_without_textual_serve_names_the_extra(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from ddpg_tui.cli.main import main

    monkeypatch.setitem(sys.modules, "textual_serve", None)  # what an install without the extra looks like
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert main(["serve"]) == 2
    assert capsys.readouterr().err == "ddpg-tui: error: serving needs textual-serve: pip install 'ddpg-tui[serve]'\n"

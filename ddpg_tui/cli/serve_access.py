"""Who may reach `ddpg-tui serve`: textual-serve itself lets anyone in who can reach the port.

Three rules, each checked here and nowhere else:
- Binding to an address that is not loopback needs a credential (`check_bind`).
- With a credential, every request must carry it (`access_middleware`): a cookie that the
  first authenticated request sets, `?token=…` once in the address, `Authorization: Bearer …`,
  or the password of HTTP Basic auth (any user name), which is what a browser asks for
  after a 401. Anything else gets 401.
- Without one (loopback only), the Host header must name a loopback host, so that a web page
  cannot reach the server through DNS rebinding; and everywhere, the websocket (which drives
  the app: keys, env ids) must come from the server's own page (its Origin is the Host).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import socket
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from ddpg_tui.request import UsageError

TOKEN_ENV = "DDPG_TUI_TOKEN"
COOKIE = "ddpg_tui_serve"
REALM = 'Basic realm="ddpg-tui serve", charset="UTF-8"'
MIN_TOKEN_LENGTH = 8


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1, or a name (localhost) all of whose addresses are loopback."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if host == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def read_token(token: str | None, token_file: Path | None, environ: Mapping[str, str]) -> str | None:
    """The credential from --token, --token-file or $DDPG_TUI_TOKEN (at most one of them), or None."""
    given = [name for name, value in (("--token", token), ("--token-file", token_file),
                                      (f"${TOKEN_ENV}", environ.get(TOKEN_ENV))) if value]
    if len(given) > 1:
        raise UsageError(f"{' and '.join(given)} both give a token; give one")
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeError) as error:
            raise UsageError(f"--token-file {token_file}: cannot read it ({error.strerror or error})") from None
        source = f"--token-file {token_file}"
    elif token:
        source = "--token"
    else:
        token = environ.get(TOKEN_ENV)
        source = f"${TOKEN_ENV}"
    if token is None:
        return None
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() or not c.isprintable() for c in token):
        raise UsageError(f"{source}: the token must be at least {MIN_TOKEN_LENGTH} printable characters "
                         "without spaces")
    return token


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a credential."""
    if token is None and not is_loopback_host(host):
        raise UsageError(f"--host {host} is not a loopback address, and textual-serve has no login of its "
                         f"own: give a token (${TOKEN_ENV}, --token-file), or serve on 127.0.0.1 and "
                         "reach it with 'ssh -L'")


def _cookie_value(token: str) -> str:
    # The cookie holds a digest, not the token: a cookie jar or a proxy log never sees the token.
    return hmac.new(token.encode(), b"ddpg-tui serve cookie", hashlib.sha256).hexdigest()


def _basic_password(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
    except (binascii.Error, UnicodeError):
        return None


def presented_token_ok(token: str, headers: Mapping[str, str], cookies: Mapping[str, str],
                       query: Mapping[str, str]) -> bool:
    """Whether a request carries the credential, in any of the accepted forms."""
    same = hmac.compare_digest
    if same(cookies.get(COOKIE, ""), _cookie_value(token)):
        return True
    authorization = headers.get("Authorization", "")
    if authorization.lower().startswith("bearer ") and same(authorization[7:].strip().encode(), token.encode()):
        return True
    password = _basic_password(authorization)
    if password is not None and same(password.encode(), token.encode()):
        return True
    return same(query.get("token", "").encode(), token.encode())


def origin_matches_host(origin: str | None, host: str) -> bool:
    """A browser's websocket carries the page's Origin: it must be this server's own page."""
    if origin is None:  # not a browser (a script on this machine): the token or loopback rule decides
        return True
    return urlsplit(origin).netloc.lower() == host.lower()


def host_header_is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return is_loopback_host(name)


Handler = Callable[..., Awaitable[object]]


def access_middleware(token: str | None) -> Callable[..., Awaitable[object]]:
    """The aiohttp middleware that puts the rules above in front of every route of textual-serve."""
    from aiohttp import web

    @web.middleware
    async def check_access(request: web.Request, handler: Handler) -> object:
        host = request.headers.get("Host", "")
        if token is None and not host_header_is_loopback(host):
            raise web.HTTPForbidden(text="this server answers only to a loopback host name (127.0.0.1, "
                                    "localhost)\n")
        if request.path == "/ws" and not origin_matches_host(request.headers.get("Origin"), host):
            raise web.HTTPForbidden(text="the websocket must come from this server's own page\n")
        if token is None:
            return await handler(request)
        if not presented_token_ok(token, request.headers, request.cookies, request.query):
            raise web.HTTPUnauthorized(headers={"WWW-Authenticate": REALM},
                                       text="a token is needed: the password of the login box (any user "
                                       "name), or ?token=... once in the address\n")
        if "token" in request.query and request.method == "GET" and request.path == "/":
            # Take the token out of the address bar (and the history) at once; the cookie carries on.
            response: web.StreamResponse = web.Response(status=303, headers={"Location": "/"})
        else:
            response = await handler(request)
        if request.cookies.get(COOKIE) != _cookie_value(token) and not response.prepared:
            response.set_cookie(COOKIE, _cookie_value(token), httponly=True, samesite="Strict")
        return response

    return check_access


class RedactToken(logging.Filter):
    """aiohttp's access log writes each request line to the server's console: `?token=…` must not show."""

    PATTERN = re.compile(r"([?&]token=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = self.PATTERN.sub(r"\1…", message), None
        return True


def hide_token_from_tabs() -> None:
    """Each tab's app process gets the server's environment (and so do its children): the token is
    not theirs to see."""
    os.environ.pop(TOKEN_ENV, None)

"""The review web server: standard library only (``http.server.ThreadingHTTPServer``).

Routes (``KEY`` is ``str(id)``; JSON in and out)::

    GET  /                      the page (index.html with the session token in a <meta>)
    GET  /static/app.js|app.css the page's script and style (a fixed list, never a path lookup)
    GET  /api/state             classes, progress, first undecided position, log problems
    GET  /api/queue             the suspects in score order with their latest decisions
    GET  /api/example?id=KEY    one example: text, labels, metrics, decision, neighbours
    GET  /api/map               a sample of the map for the mini map's background
    GET  /api/proposal?pid=P    a class proposal and its members' ids and current labels
    POST /api/decide            {"id": KEY, "action": "accept|relabel|keep|drop", "label": name,
                                 "proposal": P (optional: the decision comes from proposal P)}
    POST /api/preview           {"selection": SEL, "action": ..., "label": ...} -> the count
    POST /api/bulk              the same plus "expect": the confirmed count -> one batch
    POST /api/class             {"name": N, "proposal": P or null, "accept_all": bool}
    POST /api/merge             {"a": A, "b": B, "into": A or B, "proposal": P or null}
    POST /api/undo              {"action": GROUP}
    POST /api/export            write RUN/review/corrected.<ext> and its change log

``SEL`` is a selection (:meth:`datacarto.review.session.ReviewSession.select`): a proposal,
a filter, a lasso on the map or a list of ids.

Security (a dataset is untrusted input, and a browser visits other sites meanwhile):

* the server binds 127.0.0.1 unless told otherwise, and for a loopback bind answers only
  requests whose ``Host`` is a loopback name (defeats DNS rebinding);
* every POST needs the per-session token (``X-Datacarto-Token``, compared in constant time)
  and a JSON body, so no other site can make a browser change anything;
* responses carry a strict Content-Security-Policy (scripts and styles only from this server,
  no inline script), ``nosniff`` and ``no-store``; the page sets dataset text through
  ``textContent`` only;
* no request parameter ever becomes a file path; unknown ids and malformed requests get a
  4xx JSON error, and unexpected failures a bare 500 (the traceback stays in the terminal).
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import json
import re
import secrets
import socket
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import DatacartoError, InputError
from .session import ReviewSession, UnknownId

__all__ = ["ReviewServer", "is_loopback", "make_server"]

MAX_BODY = 64 * 1024
TOKEN_HEADER = "X-Datacarto-Token"
_STATIC = {"/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/static/tools.js": ("tools.js", "text/javascript; charset=utf-8"),
           "/static/app.css": ("app.css", "text/css; charset=utf-8")}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1).

    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, False, True)
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HTTPError(Exception):
    """An error answer: status and a one-line message for the JSON body."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _static(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class ReviewServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that holds the review session, its token and its page."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, session: ReviewSession, host: str = "127.0.0.1", port: int = 0, *,
                 verbose: bool = False) -> None:
        self.session = session
        self.token = secrets.token_urlsafe(32)
        self.verbose = verbose
        self.loopback = is_loopback(host)
        self.export_lock = threading.Lock()
        self.assets = {path: _static(name) for path, (name, _) in _STATIC.items()}
        page = _static("index.html").decode("utf-8")
        parts = {"TITLE": html.escape(session.title), "TOKEN": html.escape(self.token)}
        # one pass over the template only, so a title can never inject another placeholder
        self.page = re.sub(r"\{\{([A-Z]+)\}\}", lambda m: parts[m.group(1)], page).encode("utf-8")
        if ":" in host.strip("[]"):
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), ReviewHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        if ":" in str(shown):
            shown = f"[{shown}]"
        return f"http://{shown}:{port}/"

    def allowed_host(self, header: str | None) -> bool:
        """For a loopback bind, the Host header must name a loopback host (any port is ours)."""
        if not self.loopback:
            return True
        if not header:
            return False
        name = header.rsplit(":", 1)[0] if not header.endswith("]") else header
        return name.lower() in _LOOPBACK_NAMES or is_loopback(name)


#: Idle timeout of a review connection, in seconds.
IDLE_TIMEOUT_S = 60


class ReviewHandler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "datacarto-review"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    #: seconds a connection may stay silent (stalled or idle keep-alive) before it is closed,
    #: so that stalled sockets do not hold a thread forever
    timeout = IDLE_TIMEOUT_S

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if self.server.verbose:
            super().log_message(format, *args)

    def _headers(self, status: int, ctype: str, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Frame-Options", "DENY")
        self.end_headers()

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self._headers(status, ctype, len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        body = json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8")

    def _dispatch(self, routes: dict[str, Any]) -> None:
        try:
            if not self.server.allowed_host(self.headers.get("Host")):
                raise HTTPError(HTTPStatus.FORBIDDEN, "unexpected Host header; open the URL the "
                                "server printed")
            parts = urlsplit(self.path)
            handler = routes.get(parts.path)
            if handler is None:
                if parts.path in ROUTES_GET or parts.path in ROUTES_POST:
                    raise HTTPError(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed here")
                raise HTTPError(HTTPStatus.NOT_FOUND, "no such page")
            handler(self, parse_qs(parts.query, keep_blank_values=True))
        except HTTPError as err:
            self._error(err.status, err.message)
        except UnknownId as err:
            self._error(HTTPStatus.NOT_FOUND, str(err))
        except DatacartoError as err:
            self._error(HTTPStatus.BAD_REQUEST, str(err))
        except (BrokenPipeError, ConnectionResetError):  # the browser went away
            self.close_connection = True
        except Exception as err:  # noqa: BLE001 - never show a traceback to the client
            print(f"datacarto review: internal error on {self.command} {self.path[:100]}: "
                  f"{err.__class__.__name__}: {err}", file=sys.stderr)
            if self.server.verbose:
                traceback.print_exc()
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; see the server's terminal")

    def _error(self, status: int, message: str) -> None:
        # a request body we did not read would be parsed as the next request: close instead
        self.close_connection = True
        self._json({"error": message}, status)

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        self._dispatch(ROUTES_GET)

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch(ROUTES_GET)

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(ROUTES_POST)

    def _not_allowed(self) -> None:
        self._dispatch({})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed  # noqa: N815

    # ------------------------------------------------------------------ requests
    def _check_token(self) -> None:
        given = self.headers.get(TOKEN_HEADER, "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.server.token.encode()):
            raise HTTPError(HTTPStatus.FORBIDDEN, "missing or wrong session token; reload the page")

    def _body(self) -> dict[str, Any]:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise HTTPError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send JSON (Content-Type: application/json)")
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            raise HTTPError(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        try:
            length = int(raw_length)
        except ValueError:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "Content-Length is not a number") from None
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(length).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
        return body

    def get_page(self, query: dict[str, list[str]]) -> None:
        self._send(200, self.server.page, "text/html; charset=utf-8")

    def get_static(self, query: dict[str, list[str]]) -> None:
        path = urlsplit(self.path).path
        self._send(200, self.server.assets[path], _STATIC[path][1])

    def get_state(self, query: dict[str, list[str]]) -> None:
        self._json(self.server.session.state())

    def get_queue(self, query: dict[str, list[str]]) -> None:
        self._json(self.server.session.queue_items())

    def get_example(self, query: dict[str, list[str]]) -> None:
        values = query.get("id")
        if not values or len(values) != 1:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "give exactly one ?id=")
        self._json(self.server.session.example(values[0]))

    def get_map(self, query: dict[str, list[str]]) -> None:
        self._json(self.server.session.map_points())

    def get_proposal(self, query: dict[str, list[str]]) -> None:
        values = query.get("pid")
        if not values or len(values) != 1:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "give exactly one ?pid=")
        self._json(self.server.session.members(values[0]))

    def _post(self, allowed: set[str], strings: tuple[str, ...] = ()) -> dict[str, Any]:
        """Token, JSON body, only ``allowed`` fields, and ``strings`` fields strings or null."""
        self._check_token()
        body = self._body()
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise HTTPError(HTTPStatus.BAD_REQUEST, f"unexpected field {unknown[0][:40]!r}")
        for name in strings:
            if not (body.get(name) is None or isinstance(body.get(name), str)):
                raise HTTPError(HTTPStatus.BAD_REQUEST, f"{name!r} must be a string or null")
        return body

    def post_decide(self, query: dict[str, list[str]]) -> None:
        body = self._post({"id", "action", "label", "proposal"}, ("label", "proposal"))
        key, action, label = body.get("id"), body.get("action"), body.get("label")
        if not isinstance(key, str) or not isinstance(action, str):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "expected {\"id\": string, \"action\": string, "
                            "\"label\": string or null}")
        session = self.server.session
        source = None if body.get("proposal") is None else session.proposal_source(body["proposal"], label)
        self._json(session.decide(key, action, label, source=source))

    def post_preview(self, query: dict[str, list[str]]) -> None:
        body = self._post({"selection", "action", "label"}, ("action", "label"))
        self._json(self.server.session.preview(body.get("selection"), body.get("action", ""),
                                               body.get("label")))

    def post_bulk(self, query: dict[str, list[str]]) -> None:
        body = self._post({"selection", "action", "label", "expect"}, ("action", "label"))
        expect = body.get("expect")
        if isinstance(expect, bool) or not isinstance(expect, int):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "'expect' must be the confirmed count (an integer)")
        self._json(self.server.session.bulk(body.get("selection"), body.get("action", ""),
                                            body.get("label"), expect=expect))

    def post_class(self, query: dict[str, list[str]]) -> None:
        body = self._post({"name", "proposal", "accept_all"}, ("name", "proposal"))
        self._json(self.server.session.create_class(body.get("name") or "", proposal=body.get("proposal"),
                                                    accept_all=body.get("accept_all") is True))

    def post_merge(self, query: dict[str, list[str]]) -> None:
        body = self._post({"a", "b", "into", "proposal"}, ("a", "b", "into", "proposal"))
        if not all(isinstance(body.get(k), str) for k in ("a", "b", "into")):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "a merge needs 'a', 'b' and 'into', class names")
        self._json(self.server.session.merge(body["a"], body["b"], body["into"],
                                             proposal=body.get("proposal")))

    def post_undo(self, query: dict[str, list[str]]) -> None:
        body = self._post({"action"}, ("action",))
        if not body.get("action"):
            raise HTTPError(HTTPStatus.BAD_REQUEST, "'action' must name the bulk action to undo")
        self._json(self.server.session.undo(body["action"]))

    def post_export(self, query: dict[str, list[str]]) -> None:
        self._check_token()
        self._body()
        session = self.server.session
        if not session.can_export():
            raise InputError("no data file with a label column: start the review with --data "
                             "(and --label-column).")
        with self.server.export_lock:
            result = session.export()
        self._json({"path": str(result.path), "changes": str(result.changes), "rows": result.rows,
                    "relabelled": result.relabelled, "dropped": result.dropped, "kept": result.kept,
                    "summary": result.summary()})


ROUTES_GET = {"/": ReviewHandler.get_page, "/index.html": ReviewHandler.get_page,
              "/static/app.js": ReviewHandler.get_static, "/static/app.css": ReviewHandler.get_static,
              "/api/state": ReviewHandler.get_state, "/api/queue": ReviewHandler.get_queue,
              "/api/example": ReviewHandler.get_example, "/api/map": ReviewHandler.get_map,
              "/api/proposal": ReviewHandler.get_proposal, "/static/tools.js": ReviewHandler.get_static}
ROUTES_POST = {"/api/decide": ReviewHandler.post_decide, "/api/export": ReviewHandler.post_export,
               "/api/preview": ReviewHandler.post_preview, "/api/bulk": ReviewHandler.post_bulk,
               "/api/class": ReviewHandler.post_class, "/api/merge": ReviewHandler.post_merge,
               "/api/undo": ReviewHandler.post_undo}


def make_server(session: ReviewSession, host: str = "127.0.0.1", port: int = 0, *,
                verbose: bool = False) -> ReviewServer:
    """Bind a review server (not yet serving); call ``serve_forever()`` on it, e.g. in a thread."""
    return ReviewServer(session, host, port, verbose=verbose)

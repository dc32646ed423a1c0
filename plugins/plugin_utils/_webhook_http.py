# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the broker webhook's HTTP/1.1 listener (asyncio, stdlib only).

Why not aiohttp: the listener takes one small JSON POST per login and must be strict about what it accepts; the
stdlib keeps a decision environment free of another web framework and every limit visible here. One request per
connection (``Connection: close``). Everything wrong with a request is answered with a 4xx before the body is
trusted, and only an authenticated, well-formed request reaches ``handler``:

- the head (request line + headers) is at most ``MAX_HEAD`` bytes and must arrive within ``read_timeout``;
- ``Content-Length`` is required (411), at most ``max_body`` (413, the body is not read), the body must arrive
  within ``read_timeout`` (408);
- only ``POST <path>`` (404/405), ``Content-Type: application/json`` (415);
- authentication (401) before the JSON is parsed (400).
``GET /healthz`` answers 200 without authentication and tells nothing but that the listener runs.
"""

from __future__ import annotations

import asyncio
import json
import logging

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._session_events import parse_request

MAX_HEAD = 16384
REASONS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 411: "Length Required", 413: "Payload Too Large",
           415: "Unsupported Media Type", 422: "Unprocessable Entity", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}

log = logging.getLogger("shadowdesk.webhook")


class _Reject(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class WebhookListener(object):
    """``handler(request) -> (status, body_dict)`` is awaited for each accepted request, where ``request`` is
    ``parse_request``'s dict plus ``peer``."""

    def __init__(self, handler, auth, host="127.0.0.1", port=5000, path="/session", ssl_context=None,
                 max_body=8192, read_timeout=10.0):
        self.handler = handler
        self.auth = auth
        self.host = host
        self.port = port
        self.path = path
        self.ssl_context = ssl_context
        self.max_body = int(max_body)
        self.read_timeout = float(read_timeout)
        self._server = None

    async def start(self):
        self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self.ssl_context,
                                                  limit=MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self):
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader, writer):
        peer = writer.get_extra_info("peername")
        try:
            status, body = await self._answer(reader, peer)
        except _Reject as rej:
            status, body = rej.status, {"error": rej.message}
            log.warning("webhook: refused a request from %s: %s %s", peer, status, rej.message)
        except Exception as exc:  # pylint: disable=broad-except
            # The listener must outlive any one request; the broker gets a 500 with the reason, never a hang.
            log.exception("webhook: request from %s failed", peer)
            status, body = 500, {"error": "%s: %s" % (type(exc).__name__, exc)}
        await self._respond(writer, status, body)

    async def _read(self, coro):
        try:
            return await asyncio.wait_for(coro, self.read_timeout)
        except asyncio.TimeoutError:
            raise _Reject(408, "the request did not arrive within %gs" % self.read_timeout) from None
        except (asyncio.LimitOverrunError, ValueError):
            raise _Reject(431, "request head larger than %d bytes" % MAX_HEAD) from None
        except asyncio.IncompleteReadError:
            raise _Reject(400, "the connection closed before the request was complete") from None

    async def _answer(self, reader, peer):
        head = await self._read(reader.readuntil(b"\r\n\r\n"))
        method, target, headers = _parse_head(head)
        path = target.split("?", 1)[0]
        if method == "GET" and path == "/healthz":
            return 200, {"status": "ok"}
        if path != self.path:
            raise _Reject(404, "unknown path; POST to %s" % self.path)
        if method != "POST":
            raise _Reject(405, "only POST is accepted")
        length = headers.get("content-length")
        if length is None or not length.isdigit():
            raise _Reject(411, "a Content-Length header is required")
        if int(length) > self.max_body:
            raise _Reject(413, "body larger than %d bytes" % self.max_body)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise _Reject(400, "chunked bodies are not accepted; send Content-Length")
        if headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
            raise _Reject(415, "Content-Type must be application/json")
        body = await self._read(reader.readexactly(int(length)))
        reason = self.auth.check(headers, body)
        if reason:
            raise _Reject(401, "not authenticated: %s" % reason)
        try:
            request = parse_request(body)
        except InvalidInput as exc:
            raise _Reject(400, str(exc)) from None
        request["peer"] = "%s:%s" % tuple(peer[:2]) if peer else ""
        return await self.handler(request)

    async def _respond(self, writer, status, body):
        payload = json.dumps(body).encode("utf-8")
        head = ("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                "Connection: close\r\n%s\r\n" % (status, REASONS.get(status, ""), len(payload),
                                                 "WWW-Authenticate: Bearer\r\n" if status == 401 else ""))
        try:
            writer.write(head.encode("ascii") + payload)
            await asyncio.wait_for(writer.drain(), self.read_timeout)
        except (OSError, asyncio.TimeoutError):
            pass  # the broker went away; nothing to tell it
        finally:
            writer.close()


def _parse_head(head):
    try:
        text = head.decode("iso-8859-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise _Reject(400, "undecodable request head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Reject(400, "malformed request line")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _Reject(400, "malformed header line")
        key = name.lower()
        if key in headers and key in ("content-length", "authorization", "transfer-encoding"):
            raise _Reject(400, "duplicate %s header" % name)
        headers[key] = value.strip()
    return parts[0], parts[1], headers

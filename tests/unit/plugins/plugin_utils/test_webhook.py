"""The broker webhook listener on a real loopback socket: what is accepted, what is refused before any handler."""

import asyncio
import json
import ssl

import pytest

from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._session_events import (
    EVENT_KEY, parse_request, session_event,
)
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._webhook_auth import WebhookAuth, sign
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._webhook_http import WebhookListener
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

SECRET = "s3cret-s3cret-s3cret"
GOOD = json.dumps({"user": "alice", "action": "connect", "desktop": "desk-alice"}).encode()


async def raw_exchange(port, data, ssl_context=None, pause=None):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_context)
    writer.write(data)
    await writer.drain()
    if pause:
        await asyncio.sleep(pause)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _sep, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def http_post(body, headers, path="/session", method="POST"):
    lines = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1", "Content-Length: %d" % len(body)]
    lines += ["%s: %s" % kv for kv in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run(auth, exchanges, **listener_kw):
    """Start a listener, run ``exchanges(port)`` (a coroutine function), return (its result, handled requests)."""
    handled = []

    async def handler(request):
        handled.append(request)
        return 200, {"ok": True}

    async def main():
        listener = await WebhookListener(handler, auth, port=0, **listener_kw).start()
        try:
            return await exchanges(listener.port)
        finally:
            await listener.close()

    return asyncio.run(main()), handled


JSON = {"Content-Type": "application/json"}
TOKEN = dict(JSON, Authorization="Bearer " + SECRET)


@pytest.mark.parametrize("label, data, status", [
    ("no auth", http_post(GOOD, JSON), 401),
    ("wrong token", http_post(GOOD, dict(JSON, Authorization="Bearer " + "x" * len(SECRET))), 401),
    ("basic auth", http_post(GOOD, dict(JSON, Authorization="Basic YWxpY2U6eA==")), 401),
    ("not json", http_post(b"user=alice", TOKEN), 400),
    ("json list", http_post(b"[1]", TOKEN), 400),
    ("bad action", http_post(b'{"user": "alice", "action": "reboot"}', TOKEN), 400),
    ("template user", http_post(b'{"user": "{{ 7*7 }}", "action": "connect"}', TOKEN), 400),
    ("text body", http_post(GOOD, dict(TOKEN, **{"Content-Type": "text/plain"})), 415),
    ("too big", http_post(b" " * 9000 + GOOD, TOKEN), 413),
    ("no length", b"POST /session HTTP/1.1\r\nContent-Type: application/json\r\n\r\n" + GOOD, 411),
    ("chunked", http_post(GOOD, dict(TOKEN, **{"Transfer-Encoding": "chunked"})), 400),
    ("GET", http_post(b"", TOKEN, method="GET"), 405),
    ("other path", http_post(GOOD, TOKEN, path="/admin"), 404),
    ("garbage", b"\x16\x03\x01 hello\r\n\r\n", 400),
    ("two tokens", http_post(GOOD, dict(TOKEN, authorization="Bearer x")), 400),
    ("huge head", b"POST /session HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n", 431),
])
def test_bad_requests_get_a_4xx_and_never_reach_the_handler(label, data, status):
    (got, body), handled = run(WebhookAuth("token", SECRET), lambda port: raw_exchange(port, data))
    assert (label, got) == (label, status)
    assert body["error"]
    assert handled == []


def test_a_good_token_request_reaches_the_handler_once():
    (got, body), handled = run(WebhookAuth("token", SECRET), lambda port: raw_exchange(port, http_post(GOOD, TOKEN)))
    assert got == 200 and body == {"ok": True}
    assert [(r["user"], r["action"], r["desktop"]) for r in handled] == [("alice", "connect", "desk-alice")]


def test_hmac_signature_of_the_exact_body():
    auth = WebhookAuth("hmac", SECRET)
    good = dict(JSON, **{"X-ShadowDesk-Signature": sign(SECRET, GOOD)})
    tampered = GOOD.replace(b"alice", b"alicf")

    async def exchanges(port):
        return [await raw_exchange(port, http_post(GOOD, good)),
                await raw_exchange(port, http_post(tampered, good)),
                await raw_exchange(port, http_post(GOOD, TOKEN))]

    answers, handled = run(auth, exchanges)
    assert [a[0] for a in answers] == [200, 401, 401]
    assert [r["user"] for r in handled] == ["alice"]


def test_a_body_that_never_comes_times_out_with_408():
    head = http_post(GOOD, TOKEN)[:-len(GOOD)]
    (got, _body), handled = run(WebhookAuth("token", SECRET), lambda port: raw_exchange(port, head),
                                read_timeout=0.3)
    assert got == 408 and handled == []


def test_health_check_needs_no_auth_and_tells_nothing():
    (got, body), handled = run(WebhookAuth("token", SECRET),
                               lambda port: raw_exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n"))
    assert got == 200 and body == {"status": "ok"} and handled == []


def test_tls_listener(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    (got, _body), handled = run(WebhookAuth("token", SECRET),
                                lambda port: raw_exchange(port, http_post(GOOD, TOKEN), ssl_context=client_ctx),
                                ssl_context=server_ctx)
    assert got == 200 and len(handled) == 1


@pytest.mark.parametrize("scheme, secret", [("token", "short"), ("basic", SECRET), ("hmac", "")])
def test_weak_or_unknown_auth_is_refused_at_start(scheme, secret):
    with pytest.raises(ValueError):
        WebhookAuth(scheme, secret)


def test_request_fields_and_event_shape():
    request = parse_request(b'{"user": "CORP\\\\alice", "action": "disconnect", "broker": "guac 1.5", "seat": 3}')
    assert request == {"user": "CORP\\alice", "action": "disconnect", "desktop": None, "broker": "guac 1.5",
                       "extra": {"seat": 3}}
    event = session_event("disconnect", "alice", "d1", "webhook", "2026-01-01T00:00:00Z", broker=None, clients=0)
    assert event == {EVENT_KEY: {"action": "disconnect", "user": "alice", "desktop": "d1", "source": "webhook",
                                 "received_at": "2026-01-01T00:00:00Z", "clients": 0}}
    with pytest.raises(InvalidInput):
        parse_request(b'{"user": "alice", "action": "connect", "desktop": "../../etc"}')

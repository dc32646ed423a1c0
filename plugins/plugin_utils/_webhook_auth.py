# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: how the broker webhook tells a broker from anyone else on the network.

Two schemes, one per listener: a shared bearer token (``Authorization: Bearer <token>``; simple, for brokers that
can only add a header) or an HMAC-SHA256 signature of the exact body (``X-ShadowDesk-Signature: sha256=<hex>``;
the secret never travels). Comparisons are constant-time (``hmac.compare_digest``) so response timing does not
leak how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac

SCHEMES = ("token", "hmac")
SIGNATURE_HEADER = "x-shadowdesk-signature"
SIGNATURE_PREFIX = "sha256="


def sign(secret, body):
    """The signature header value for ``body`` (bytes): what a broker sends."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookAuth(object):
    """``check(headers, body)`` -> None when authenticated, else the reason (never echoing the secret)."""

    def __init__(self, scheme, secret, signature_header=SIGNATURE_HEADER):
        if scheme not in SCHEMES:
            raise ValueError("auth scheme must be one of %s" % ", ".join(SCHEMES))
        if not secret or len(secret) < 16:
            raise ValueError("the webhook secret must be at least 16 characters")
        self.scheme = scheme
        self._secret = secret.encode("utf-8")
        self.signature_header = signature_header.lower()

    def check(self, headers, body):
        """``headers``: lower-case names -> values; ``body``: the raw bytes."""
        if self.scheme == "token":
            value = headers.get("authorization", "")
            kind, _sep, token = value.partition(" ")
            if kind.lower() != "bearer" or not token:
                return "missing 'Authorization: Bearer <token>' header"
            if not hmac.compare_digest(token.strip().encode("utf-8"), self._secret):
                return "wrong token"
            return None
        value = headers.get(self.signature_header, "")
        if not value.startswith(SIGNATURE_PREFIX):
            return "missing '%s: sha256=<hex>' header" % self.signature_header
        expected = SIGNATURE_PREFIX + hmac.new(self._secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(value.strip().lower().encode("ascii", "replace"), expected.encode("ascii")):
            return "signature does not match the body"
        return None

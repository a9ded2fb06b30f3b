"""Reasoning sealed for the client to keep: stateless multi-turn for the Responses API.

A request with `include: ["reasoning.encrypted_content"]` gets each reasoning item's text sealed with the
server's key (AES-256-GCM, so it can be neither read nor altered on the way) in `encrypted_content`. The
client sends the items back in a later request's `input`, with `store: false` if it likes: the server
unseals them and the model's chain of thought is kept across a tool chain (harmony keeps the reasoning of a
turn that called a tool) with nothing stored on the server.

The key comes from a secret the operator gives (`serve --reasoning-key-file`, or `$GPTOSS_HUB_REASONING_KEY`),
so every replica of a server, and a restarted one, can unseal; without one, a random key lives as long as
the process.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["KEY_ENVIRONMENT_VARIABLE", "ReasoningSeal", "UnsealError"]

#: Where a server finds its secret when no key file is given.
KEY_ENVIRONMENT_VARIABLE = "GPTOSS_HUB_REASONING_KEY"
#: The first byte of every sealed text: the format, so a later one can be told apart.
_VERSION = b"\x01"
#: Bound to every sealed text: a ciphertext made for anything else does not unseal as reasoning.
_PURPOSE = b"gptoss-hub sealed reasoning v1"
_NONCE_BYTES = 12


class UnsealError(ValueError):
    """A sealed text that this server cannot open: another server's (or a restarted one's, without a fixed
    key), altered on the way, or not a sealed text at all."""


class ReasoningSeal:
    """Seals and unseals reasoning text with a key derived from `secret` (random when `None`)."""

    def __init__(self, secret: bytes | None = None):
        if secret is None:
            key = AESGCM.generate_key(bit_length=256)
        else:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(secret)
        self._cipher = AESGCM(key)

    @classmethod
    def from_environment(cls) -> ReasoningSeal:
        """The seal of `$GPTOSS_HUB_REASONING_KEY`, or a random one."""
        secret = os.environ.get(KEY_ENVIRONMENT_VARIABLE)
        return cls(secret.encode() if secret else None)

    def seal(self, text: str) -> str:
        """`text` sealed: URL-safe base64 of the format byte, a random nonce and the ciphertext."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher.encrypt(nonce, text.encode("utf-8", "surrogatepass"), _PURPOSE)
        return base64.urlsafe_b64encode(_VERSION + nonce + sealed).decode("ascii")

    def unseal(self, token: str) -> str:
        """The text `token` seals; `UnsealError` when this server cannot open it."""
        try:
            raw = base64.urlsafe_b64decode(token.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise UnsealError("it is not a sealed text (not URL-safe base64)") from exc
        if len(raw) < 1 + _NONCE_BYTES + 16 or raw[:1] != _VERSION:
            raise UnsealError("it is not a sealed text of this server's format")
        nonce, sealed = raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
        try:
            opened = self._cipher.decrypt(nonce, sealed, _PURPOSE)
        except InvalidTag as exc:
            raise UnsealError(
                "it was sealed by another server (or by this one before a restart without a fixed key: "
                "see --reasoning-key-file), or altered"
            ) from exc
        return opened.decode("utf-8", "surrogatepass")

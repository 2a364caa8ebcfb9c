"""Secrets at rest: AES-GCM with keys from settings; several keys for rotation, the first encrypts.

Ciphertext layout: ``v1:<key_id>:`` + nonce (12 bytes) + AES-GCM(ciphertext || tag), with the key id and
an optional context string (e.g. the row's id) as associated data, so a value copied to another row
does not decrypt.
"""

from __future__ import annotations

import base64
import json
import os
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledgerlink.config import SecuritySettings

PREFIX = b"v1:"


class DecryptionError(Exception):
    pass


class SecretBox:
    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        for key_id, key in keys:
            if len(key) != 32:
                raise ValueError(f"encryption key {key_id!r} must be 32 bytes")
        self._keys = dict(keys)
        self._current_id = keys[0][0]

    @classmethod
    def from_settings(cls, settings: SecuritySettings) -> SecretBox:
        return _box(settings.encryption_keys.get_secret_value())

    def encrypt(self, plaintext: bytes, *, context: str = "") -> bytes:
        nonce = os.urandom(12)
        key_id = self._current_id
        sealed = AESGCM(self._keys[key_id]).encrypt(nonce, plaintext, f"{key_id}|{context}".encode())
        return PREFIX + key_id.encode() + b":" + nonce + sealed

    def decrypt(self, token: bytes, *, context: str = "") -> bytes:
        if not token.startswith(PREFIX):
            raise DecryptionError("unknown ciphertext format")
        key_id_raw, sep, rest = token[len(PREFIX) :].partition(b":")
        key_id = key_id_raw.decode(errors="replace")
        if not sep or key_id not in self._keys or len(rest) < 12 + 16:
            raise DecryptionError("unknown key or truncated ciphertext")
        try:
            return AESGCM(self._keys[key_id]).decrypt(rest[:12], rest[12:], f"{key_id}|{context}".encode())
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not authenticate") from exc

    def encrypt_json(self, value: Any, *, context: str = "") -> bytes:
        return self.encrypt(json.dumps(value, separators=(",", ":"), default=str).encode(), context=context)

    def decrypt_json(self, token: bytes, *, context: str = "") -> Any:
        return json.loads(self.decrypt(token, context=context))

    def needs_rotation(self, token: bytes) -> bool:
        return not token.startswith(PREFIX + self._current_id.encode() + b":")


@lru_cache(maxsize=8)
def _box(raw: str) -> SecretBox:
    keys: list[tuple[str, bytes]] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        key_id, sep, b64 = part.partition(":")
        if not sep:
            raise ValueError("encryption keys are 'key_id:base64key', comma separated")
        keys.append((key_id, base64.b64decode(b64)))
    return SecretBox(keys)

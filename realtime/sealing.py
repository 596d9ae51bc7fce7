"""Ballots sealed for the process that owns the room, so that Redis never carries a choice.

With several server processes a member's frames reach the room's owner through Redis, next to
the member's participant id (hub.py, the ``msg`` envelope). A ``cast`` frame in clear there
would tell anyone who reads Redis traffic (``MONITOR``, a captured connection, a replica) how a
named member voted in a secret ballot. So the front seals every ``cast`` to the owner:

* Each process makes an X25519 key pair when it starts and keeps the private key in memory
  only; a restart makes a new one, so a recording of old traffic stays sealed even for
  someone who later gets into a server (forward secrecy per process lifetime).
* It publishes the public key under its process id, with an HMAC made with the site's
  ``SECRET_KEY`` (which Redis never sees), so that whoever can write to Redis cannot slip in
  a key of their own and read the ballots in the middle.
* The front encrypts with HPKE (RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
  ChaCha20-Poly1305; ``cryptography``'s implementation), bound to the meeting and the
  participant, over a plaintext padded to a fixed size: every sealed cast is as long as any
  other, whichever the choice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
#: Every sealed plaintext is padded to this many bytes (a cast is well under it).
PLAINTEXT_BYTES = 96


class SealError(Exception):
    """A key record that does not verify, or a sealed ballot that does not open."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SealError("not base64") from None


def _context(meeting_id: int, participant: str) -> bytes:
    return f"chibo/cast/v1/{meeting_id}/{participant}".encode()


class BallotSealer:
    """This process's key pair, and sealing to other processes' published keys."""

    def __init__(self, site_secret: str) -> None:
        self._private = X25519PrivateKey.generate()
        self._mac_key = hmac.new(site_secret.encode(), b"chibo/ballot-key-directory/v1", hashlib.sha256).digest()

    def _mac(self, process_id: str, public: bytes) -> bytes:
        return hmac.new(self._mac_key, process_id.encode() + b"\0" + public, hashlib.sha256).digest()

    def key_record(self, process_id: str) -> str:
        """What this process publishes: its public key and the HMAC that vouches for it."""
        public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return f"{_b64(public)}.{_b64(self._mac(process_id, public))}"

    def public_key(self, process_id: str, record: str) -> X25519PublicKey:
        """Another process's key, once its record verifies."""
        public_b64, _, mac_b64 = record.partition(".")
        public = _unb64(public_b64)
        if not hmac.compare_digest(_unb64(mac_b64), self._mac(process_id, public)) or len(public) != 32:
            raise SealError("key record does not verify")
        return X25519PublicKey.from_public_bytes(public)

    @staticmethod
    def seal(key: X25519PublicKey, meeting_id: int, participant: str, motion_id: int, choice: str) -> str:
        plain = json.dumps({"motion_id": motion_id, "choice": choice}, separators=(",", ":")).encode()
        if len(plain) > PLAINTEXT_BYTES:
            raise SealError("cast too large to seal")
        padded = plain + b" " * (PLAINTEXT_BYTES - len(plain))
        return _b64(SUITE.encrypt(padded, key, info=_context(meeting_id, participant)))

    def open(self, sealed: str, meeting_id: int, participant: str) -> tuple[int, str]:
        """(motion id, choice) from a sealed cast meant for this process and this participant."""
        try:
            plain = SUITE.decrypt(_unb64(sealed), self._private, info=_context(meeting_id, participant))
            data = json.loads(plain)
            return int(data["motion_id"]), str(data["choice"])
        except (InvalidTag, ValueError, KeyError, TypeError):
            raise SealError("sealed cast does not open") from None

"""WXBizMsgCrypt: WeCom's callback signature check and AES-256-CBC envelope (verify URL, decrypt, encrypt).

Also the hardened XML parsing for the attacker-facing callback bodies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeCom pads to 32 bytes, not to AES's 16
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


class WeComCryptoError(Exception):
    """Base class: the callback is not authentic or not well formed; answer 4xx."""


class SignatureError(WeComCryptoError):
    pass


class DecryptError(WeComCryptoError):
    """Bad base64, truncated ciphertext, bad padding or an impossible inner length."""


class ReceiveIdError(WeComCryptoError):
    """The plaintext names another CorpID: a message for someone else, or a forgery."""


class XMLFormatError(WeComCryptoError):
    pass


class AESKeyError(ValueError):
    """The configured EncodingAESKey is not 43 base64 characters decoding to 32 bytes."""


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode("utf-8")).hexdigest()


def parse_xml(data: str | bytes) -> dict[str, str]:
    """Flat <xml><Tag>value</Tag>...</xml> → {"Tag": "value"}; refuses DTDs (entity expansion bombs)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if _DTD.search(raw):
        raise XMLFormatError("DOCTYPE/ENTITY declarations are not accepted")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as e:
        raise XMLFormatError(f"malformed xml: {e}") from None
    return {child.tag: (child.text or "") for child in root}


def _pad(data: bytes) -> bytes:
    n = BLOCK - len(data) % BLOCK
    return data + bytes([n]) * n


def _unpad(data: bytes) -> bytes:
    if not data:
        raise DecryptError("empty plaintext")
    n = data[-1]
    if not 1 <= n <= BLOCK or n > len(data) or data[-n:] != bytes([n]) * n:
        raise DecryptError("bad padding")
    return data[:-n]


class WXBizMsgCrypt:
    """One app's callback crypto: Token and EncodingAESKey from the admin console, the CorpID as receiveid."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if len(encoding_aes_key) != 43:
            raise AESKeyError("EncodingAESKey must be 43 characters")
        try:
            key = base64.b64decode(encoding_aes_key + "=", validate=True)
        except binascii.Error:
            raise AESKeyError("EncodingAESKey is not base64") from None
        if len(key) != 32:
            raise AESKeyError("EncodingAESKey must decode to 32 bytes")
        self._token = token
        self._key = key
        self._iv = key[:16]
        self._receive_id = receive_id

    def _check_signature(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = signature(self._token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode("ascii"), (msg_signature or "").lower().encode("utf-8")):
            raise SignatureError("msg_signature does not match")

    def encrypt(self, plaintext: str, *, random16: bytes | None = None) -> str:
        msg = plaintext.encode("utf-8")
        rnd = random16 if random16 is not None else os.urandom(16)
        body = rnd + struct.pack(">I", len(msg)) + msg + self._receive_id.encode("utf-8")
        enc = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        return base64.b64encode(enc.update(_pad(body)) + enc.finalize()).decode("ascii")

    def decrypt(self, encrypted: str) -> str:
        try:
            data = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError):
            raise DecryptError("ciphertext is not base64") from None
        if not data or len(data) % 16:
            raise DecryptError("ciphertext is truncated")
        dec = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        body = _unpad(dec.update(data) + dec.finalize())
        if len(body) < 20:
            raise DecryptError("plaintext too short")
        (length,) = struct.unpack(">I", body[16:20])
        if 20 + length > len(body):
            raise DecryptError("inner length exceeds plaintext")
        msg, receive_id = body[20 : 20 + length], body[20 + length :]
        if not hmac.compare_digest(receive_id, self._receive_id.encode("utf-8")):
            raise ReceiveIdError("receiveid does not match our CorpID")
        try:
            return msg.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptError("plaintext is not utf-8") from None

    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """GET callback check: the decrypted echostr is what we must answer with."""
        # Base64 has no spaces; a '+' left unescaped in the query arrives as one.
        echostr = echostr.replace(" ", "+")
        self._check_signature(msg_signature, timestamp, nonce, echostr)
        return self.decrypt(echostr)

    def decrypt_msg(self, msg_signature: str, timestamp: str, nonce: str, post_xml: str | bytes) -> str:
        fields = parse_xml(post_xml)
        encrypted = fields.get("Encrypt")
        if not encrypted:
            raise XMLFormatError("no <Encrypt> element")
        self._check_signature(msg_signature, timestamp, nonce, encrypted)
        return self.decrypt(encrypted)

    def encrypt_msg(self, reply_xml: str, nonce: str, timestamp: str | None = None) -> str:
        ts = timestamp if timestamp is not None else str(int(time.time()))
        encrypted = self.encrypt(reply_xml)
        sig = signature(self._token, ts, nonce, encrypted)
        return (
            f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{sig}]]></MsgSignature>"
            f"<TimeStamp>{escape(ts)}</TimeStamp>"
            f"<Nonce><![CDATA[{nonce.replace(']]>', '')}]]></Nonce></xml>"
        )

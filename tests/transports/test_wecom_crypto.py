"""WXBizMsgCrypt against Tencent's published sample values, plus tampering and round-trip properties."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.transports.wecom.crypto import (
    AESKeyError,
    DecryptError,
    ReceiveIdError,
    SignatureError,
    WXBizMsgCrypt,
    XMLFormatError,
    parse_xml,
    signature,
)

# --- Tencent's official sample values --------------------------------------------------------------
# Set A: the 企业微信 callback sample, Tencent's weworkapi_python repository (github.com/sbzhu/weworkapi_python),
# callback/Sample.py and callback_python3/Sample.py ("使用示例一：验证回调URL" / "使用示例二：对用户回复的消息解密").
A_TOKEN = "hJqcu3uJ9Tn2gXPmxx2w9kkCkCE2EPYo"
A_AES_KEY = "6qkdMrq68nTKduznJYO1A37W2oEgpkMUvkttRToqhUt"
A_CORP_ID = "ww1436e0e65a779aee"
A_VERIFY_SIG = "012bc692d0a58dd4b10f8dfe5c4ac00ae211ebeb"
A_VERIFY_TS = "1476416373"
A_VERIFY_NONCE = "47744683"
A_VERIFY_ECHOSTR = "fsi1xnbH4yQh0+PJxcOdhhK6TDXkjMyhEPA7xB2TGz6b+g7xyAbEkRxN/3cNXW9qdqjnoVzEtpbhnFyq6SVHyA=="
A_REQ_SIG = "0c3914025cb4b4d68103f6bfc8db550f79dcf48e"
A_REQ_TS = "1476422779"
A_REQ_NONCE = "1597212914"
A_REQ_DATA = (
    "<xml><ToUserName><![CDATA[ww1436e0e65a779aee]]></ToUserName>\n<Encrypt><![CDATA["
    "Kl7kjoSf6DMD1zh7rtrHjFaDapSCkaOnwu3bqLc5tAybhhMl9pFeK8NslNPVdMwmBQTNoW4mY7AIjeLvEl3NyeTkAgGzBhzTtRLNshw2AEew"
    "+kkYcD+Fq72Kt00fT0WnN87hGrW8SqGc+NcT3mu87Ha3dz1pSDi6GaUA6A0sqfde0VJPQbZ9U+3JWcoD4Z5jaU0y9GSh010wsHF8KZD24Yh"
    "mZH4ch4Ka7ilEbjbfvhKkNL65HHL0J6EYJIZUC2pFrdkJ7MhmEbU2qARR4iQHE7wy24qy0cRX3Mfp6iELcDNfSsPGjUQVDGxQDCWjayJOpcwo"
    "cugux082f49HKYg84EpHSGXAyh+/oxwaWbvL6aSDPOYuPDGOCI8jmnKiypE+]]></Encrypt>\n"
    "<AgentID><![CDATA[1000002]]></AgentID>\n</xml>"
)

# Set B: the worked example of the 加解密方案说明 page (developer.work.weixin.qq.com/document/path/91144,
# "举例说明"), whose GET request also appears in the comments of the same Sample.py.
B_TOKEN = "QDG6eK"
B_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
B_CORP_ID = "wx5823bf96d3bd56c7"
B_VERIFY_SIG = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
B_VERIFY_TS = "1409659589"
B_VERIFY_NONCE = "263014780"
B_VERIFY_ECHOSTR = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
B_REQ_SIG = "477715d11cdb4164915debcba66cb864d751f3e6"
B_REQ_TS = "1409659813"
B_REQ_NONCE = "1372623149"
B_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/s"
    "YYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZf"
    "JYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LA"
    "VGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28"
    "H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
B_REQ_DATA = (
    f"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[{B_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)


def crypt_a() -> WXBizMsgCrypt:
    return WXBizMsgCrypt(A_TOKEN, A_AES_KEY, A_CORP_ID)


def crypt_b() -> WXBizMsgCrypt:
    return WXBizMsgCrypt(B_TOKEN, B_AES_KEY, B_CORP_ID)


def test_official_sample_a_verify_url() -> None:
    assert (
        crypt_a().verify_url(A_VERIFY_SIG, A_VERIFY_TS, A_VERIFY_NONCE, A_VERIFY_ECHOSTR)
        == "1288432023552776189"
    )


def test_official_sample_a_decrypt_message() -> None:
    fields = parse_xml(crypt_a().decrypt_msg(A_REQ_SIG, A_REQ_TS, A_REQ_NONCE, A_REQ_DATA))
    assert fields == {
        "ToUserName": "ww1436e0e65a779aee",
        "FromUserName": "ChenJiaShun",
        "CreateTime": "1476422779",
        "MsgType": "text",
        "Content": "你好",
        "MsgId": "1456453720",
        "AgentID": "1000002",
    }


def test_official_sample_b_signature_and_decrypt() -> None:
    # The page spells out the signature step: sha1 of the four sorted values.
    assert signature(B_TOKEN, B_REQ_TS, B_REQ_NONCE, B_ENCRYPT) == B_REQ_SIG
    assert (
        crypt_b().verify_url(B_VERIFY_SIG, B_VERIFY_TS, B_VERIFY_NONCE, B_VERIFY_ECHOSTR)
        == "1616140317555161061"
    )
    fields = parse_xml(crypt_b().decrypt_msg(B_REQ_SIG, B_REQ_TS, B_REQ_NONCE, B_REQ_DATA))
    assert fields["FromUserName"] == "mycreate"
    assert fields["Content"] == "hello"
    assert fields["MsgId"] == "4561255354251345929"
    assert fields["AgentID"] == "218"


def test_wrong_corp_id_rejected() -> None:
    other = WXBizMsgCrypt(A_TOKEN, A_AES_KEY, "ww0000000000000000")
    with pytest.raises(ReceiveIdError):
        other.decrypt_msg(A_REQ_SIG, A_REQ_TS, A_REQ_NONCE, A_REQ_DATA)
    # A prefix of the right CorpID is still the wrong one.
    with pytest.raises(ReceiveIdError):
        WXBizMsgCrypt(A_TOKEN, A_AES_KEY, A_CORP_ID[:-1]).decrypt_msg(
            A_REQ_SIG, A_REQ_TS, A_REQ_NONCE, A_REQ_DATA
        )


def test_bad_signature_rejected() -> None:
    with pytest.raises(SignatureError):
        crypt_a().decrypt_msg("0" * 40, A_REQ_TS, A_REQ_NONCE, A_REQ_DATA)
    with pytest.raises(SignatureError):  # right signature, other timestamp
        crypt_a().decrypt_msg(A_REQ_SIG, "1476422780", A_REQ_NONCE, A_REQ_DATA)
    with pytest.raises(SignatureError):
        WXBizMsgCrypt("another-token", A_AES_KEY, A_CORP_ID).verify_url(
            A_VERIFY_SIG, A_VERIFY_TS, A_VERIFY_NONCE, A_VERIFY_ECHOSTR
        )


def _signed_post(c_token: str, encrypted: str, ts: str = "1700000000", nonce: str = "42") -> tuple[str, str]:
    return signature(c_token, ts, nonce, encrypted), f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"


@pytest.mark.parametrize("cut", [1, 7, 16, 32])
def test_truncated_ciphertext_rejected_even_when_signed(cut: int) -> None:
    raw = base64.b64decode(B_ENCRYPT)
    truncated = base64.b64encode(raw[:-cut]).decode()
    sig, post = _signed_post(B_TOKEN, truncated)
    with pytest.raises(DecryptError):
        crypt_b().decrypt_msg(sig, "1700000000", "42", post)


def _raw_encrypt(key43: str, plain: bytes) -> str:
    key = base64.b64decode(key43 + "=")
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def test_bad_padding_and_bad_inner_length_rejected() -> None:
    c = crypt_b()
    body = b"0" * 16 + struct.pack(">I", 5) + b"hello" + B_CORP_ID.encode()
    good_pad = 32 - len(body) % 32
    assert c.decrypt(_raw_encrypt(B_AES_KEY, body + bytes([good_pad]) * good_pad)) == "hello"
    with pytest.raises(DecryptError, match="padding"):
        c.decrypt(_raw_encrypt(B_AES_KEY, body + bytes([good_pad - 1]) + bytes([good_pad]) * (good_pad - 1)))
    with pytest.raises(DecryptError, match="padding"):
        c.decrypt(_raw_encrypt(B_AES_KEY, body[:-1] + b"\x00" * (good_pad + 1)))
    too_long = b"0" * 16 + struct.pack(">I", 10_000) + b"hello" + B_CORP_ID.encode()
    pad = 32 - len(too_long) % 32
    with pytest.raises(DecryptError, match="length"):
        c.decrypt(_raw_encrypt(B_AES_KEY, too_long + bytes([pad]) * pad))
    with pytest.raises(DecryptError):
        c.decrypt("not base64 at all!")


def test_malformed_and_hostile_xml_rejected() -> None:
    with pytest.raises(XMLFormatError):
        crypt_a().decrypt_msg(A_REQ_SIG, A_REQ_TS, A_REQ_NONCE, A_REQ_DATA.replace("</xml>", ""))
    with pytest.raises(XMLFormatError):
        crypt_a().decrypt_msg(A_REQ_SIG, A_REQ_TS, A_REQ_NONCE, "<xml><ToUserName>x</ToUserName></xml>")
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        "<xml><Encrypt>&lol2;</Encrypt></xml>"
    )
    with pytest.raises(XMLFormatError):
        parse_xml(bomb)
    with pytest.raises(XMLFormatError):
        parse_xml('<!doctype x SYSTEM "file:///etc/passwd"><xml/>')


def test_aes_key_validated() -> None:
    with pytest.raises(AESKeyError):
        WXBizMsgCrypt(A_TOKEN, A_AES_KEY[:-1], A_CORP_ID)
    with pytest.raises(AESKeyError):
        WXBizMsgCrypt(A_TOKEN, "!" * 43, A_CORP_ID)


def test_encrypt_layout_matches_spec() -> None:
    """Decrypt our output with raw AES: random16 + big-endian length + msg + CorpID, padded to 32 bytes."""
    c = crypt_a()
    msg = "走访记录 ok"
    encrypted = c.encrypt(msg, random16=b"R" * 16)
    key = base64.b64decode(A_AES_KEY + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(base64.b64decode(encrypted)) + dec.finalize()
    assert len(plain) % 32 == 0
    pad = plain[-1]
    assert plain[-pad:] == bytes([pad]) * pad
    n = len(msg.encode())
    assert plain[:-pad] == b"R" * 16 + n.to_bytes(4, "big") + msg.encode() + A_CORP_ID.encode()


def test_encrypt_msg_round_trip() -> None:
    c = crypt_a()
    reply = "<xml><Content><![CDATA[收到，谢谢]]></Content></xml>"
    out = parse_xml(c.encrypt_msg(reply, "5566", "1700000000"))
    assert out["TimeStamp"] == "1700000000" and out["Nonce"] == "5566"
    assert out["MsgSignature"] == signature(A_TOKEN, "1700000000", "5566", out["Encrypt"])
    post = f"<xml><Encrypt><![CDATA[{out['Encrypt']}]]></Encrypt></xml>"
    assert c.decrypt_msg(out["MsgSignature"], "1700000000", "5566", post) == reply


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)


@settings(max_examples=150, deadline=None)
@given(msg=_text, nonce=st.text(alphabet="0123456789abcdef", min_size=1, max_size=12))
def test_round_trip_arbitrary_unicode(msg: str, nonce: str) -> None:
    c = crypt_b()
    out = parse_xml(c.encrypt_msg(msg, nonce, "1700000000"))
    post = f"<xml><Encrypt>{out['Encrypt']}</Encrypt></xml>"
    assert c.decrypt_msg(out["MsgSignature"], "1700000000", nonce, post) == msg


@settings(max_examples=100, deadline=None)
@given(msg=_text, pos=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_ciphertext_change_fails_the_signature(msg: str, pos: int, flip: int) -> None:
    c = crypt_b()
    encrypted = c.encrypt(msg)
    raw = bytearray(base64.b64decode(encrypted))
    raw[pos % len(raw)] ^= flip
    tampered = base64.b64encode(bytes(raw)).decode()
    sig = signature(B_TOKEN, "1", "2", encrypted)  # signed before tampering
    with pytest.raises(SignatureError):
        c.decrypt_msg(sig, "1", "2", f"<xml><Encrypt>{tampered}</Encrypt></xml>")

#!/usr/bin/env python3
"""Independent reference for the golden envelopes of envelope_test.cpp (docs/PROTOCOL.md §16).

Written from the spec with python3-cryptography (not Crypto++), so the C++ test pins the
byte layout against a second implementation. Run it to print the expected values:
    python3 tests/crypto/golden_envelope.py
"""
import hashlib
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RAW = dict(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)

SENDER_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")  # RFC 8032 TEST 1
RECIPIENT_IDENTITY = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")  # RFC 8032 TEST 2 public
BOB_SECRET = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")  # RFC 7748 6.1
ALICE_SECRET = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")  # ephemeral
REPLAY = bytes(range(16))
SENT_AT = 1764590400000  # 2025-12-01T12:00:00Z


def client_id(identity_public):
    return hashlib.sha256(b"letterbox/v2/client-id\x00" + identity_public).digest()[:16]


def nonce(i, last):
    return struct.pack(">Q", i) + b"\x00\x00\x00" + bytes([1 if last else 0])


def envelope(msg_type, name, body):
    signer = Ed25519PrivateKey.from_private_bytes(SENDER_SEED)
    sender = client_id(signer.public_key().public_bytes(**RAW))
    recipient = client_id(RECIPIENT_IDENTITY)
    bob_public = X25519PrivateKey.from_private_bytes(BOB_SECRET).public_key()
    eph = X25519PrivateKey.from_private_bytes(ALICE_SECRET)
    head = bytes([1, msg_type]) + sender + recipient + eph.public_key().public_bytes(**RAW)
    head += struct.pack("<I", 65536)
    head += signer.sign(b"letterbox/v2/envelope\x00" + head)
    assert len(head) == 134
    shared = eph.exchange(bob_public)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"letterbox/v2/content-key\x00" + head).derive(shared)
    aead = ChaCha20Poly1305(key)
    name = name.encode()
    meta = REPLAY + struct.pack("<QQH", SENT_AT, len(body), len(name)) + name.ljust(255, b"\x00")
    assert len(meta) == 289
    pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    chunks = aead.encrypt(nonce(0, not pieces), meta, None)
    for i, piece in enumerate(pieces, start=1):
        chunks += aead.encrypt(nonce(i, i == len(pieces)), piece, None)
    # End signature over the header and the SHA-512 of every chunk's ciphertext (tags included).
    end = signer.sign(b"letterbox/v2/envelope-end\x00" + head + hashlib.sha512(chunks).digest())
    assert len(end) == 64
    out = head + chunks + end
    assert len(out) == 134 + 305 + len(body) + 16 * len(pieces) + 64
    return out


def file_body():
    return bytes((i * 7 + 3) & 0xFF for i in range(65536 + 3))


if __name__ == "__main__":
    text = envelope(16, "", b"Hello, Bob!")
    print("text size", len(text))
    print("text hex", text.hex())
    print("text end signature", text[-64:].hex())
    f = envelope(17, "report.pdf", file_body())
    print("file size", len(f))
    print("file sha256", hashlib.sha256(f).hexdigest())

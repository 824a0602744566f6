#!/usr/bin/env python3
"""Independent reference for the golden group envelope of group_envelope_test.cpp (§16a).

Written from docs/PROTOCOL.md §16a with python3-cryptography (not Crypto++): prints the SHA-256
of the whole envelope that the C++ test seals with the same fixed inputs.
    python3 tests/crypto/golden_group_envelope.py
"""
import hashlib
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RAW = dict(encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw)


def party(seed):
    identity = bytes((seed * 31 + i * 7 + (seed >> 8)) & 0xFF for i in range(32))
    agreement = bytes((seed * 17 + i * 13 + 1 + (seed >> 8) * 3) & 0xFF for i in range(32))
    ik = Ed25519PrivateKey.from_private_bytes(identity)
    pub = ik.public_key().public_bytes(**RAW)
    cid = hashlib.sha256(b"letterbox/v2/client-id\x00" + pub).digest()[:16]
    ak = X25519PrivateKey.from_private_bytes(agreement).public_key().public_bytes(**RAW)
    return ik, cid, ak


def hkdf(ikm, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(ikm)


def nonce(i, last):
    return struct.pack(">Q", i) + b"\x00\x00\x00" + bytes([1 if last else 0])


alice_key, alice, _ = party(1)
_, bob, bob_ak = party(2)
_, carol, carol_ak = party(3)
group = bytes([0x47] + list(range(1, 16)))
eph = X25519PrivateKey.from_private_bytes(bytes(0xA0 + i for i in range(32)))
content_key = bytes(0x40 + i for i in range(32))
replay = bytes(range(16))
sent_at = 1764590400000
body = b"hi"

members = [(bob, bob_ak), (carol, carol_ak)]
prefix = bytes([1, 18]) + alice + group + eph.public_key().public_bytes(**RAW) + struct.pack("<IH", 65536, len(members))
header = prefix
for mid, ak in members:
    shared = eph.exchange(X25519PublicKey.from_public_bytes(ak))
    wk = hkdf(shared, b"letterbox/v2/group-wrap\x00" + prefix + mid)
    header += mid + ChaCha20Poly1305(wk).encrypt(bytes(12), content_key, None)
header += alice_key.sign(b"letterbox/v2/group-envelope\x00" + header)
key = ChaCha20Poly1305(hkdf(content_key, b"letterbox/v2/group-content-key\x00" + header))
meta = replay + struct.pack("<QQH", sent_at, len(body), 0) + bytes(255)
chunks = key.encrypt(nonce(0, False), meta, None) + key.encrypt(nonce(1, True), body, None)
end = alice_key.sign(b"letterbox/v2/group-envelope-end\x00" + header + hashlib.sha512(chunks).digest())
envelope = header + chunks + end
print(len(envelope), hashlib.sha256(envelope).hexdigest())

// Known answers for the primitives under crypto/identity (Ed25519: RFC 8032 §7.1; SHA-256:
// FIPS 180-2 "abc") and the properties of the labelled wrappers built on them.
#include <cryptopp/sha.h>
#include <cryptopp/xed25519.h>
#include <doctest/doctest.h>

#include "identity.hpp"
#include "kat.hpp"

using namespace letterbox;
using letterbox::test::array_from_hex;
using letterbox::test::from_hex;
using letterbox::test::to_hex;

namespace {

struct rfc8032_case {
  const char* secret;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 §7.1, TEST 1 and TEST 2.
constexpr rfc8032_case rfc8032[] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
};

}  // namespace

TEST_SUITE("crypto identity") {
  TEST_CASE("Ed25519 known answers (RFC 8032 7.1): public key, signature, verification") {
    for (const auto& c : rfc8032) {
      auto secret = array_from_hex<crypto::identity_secret>(c.secret);
      CHECK(to_hex(crypto::public_key_of(secret)) == c.public_key);
      auto message = from_hex(c.message);
      CryptoPP::ed25519Signer signer(secret.data());
      crypto::signature sig{};
      signer.SignMessage(CryptoPP::NullRNG(), message.data(), message.size(), sig.data());
      CHECK(to_hex(sig) == c.signature);
      CryptoPP::ed25519Verifier verifier(from_hex(c.public_key).data());
      CHECK(verifier.VerifyMessage(message.data(), message.size(), sig.data(), sig.size()));
      sig[10] ^= 1;
      CHECK_FALSE(verifier.VerifyMessage(message.data(), message.size(), sig.data(), sig.size()));
    }
  }

  TEST_CASE("SHA-256 known answer (FIPS 180-2, \"abc\")") {
    CryptoPP::SHA256 hash;
    std::array<std::uint8_t, 32> digest{};
    hash.CalculateDigest(digest.data(), reinterpret_cast<const CryptoPP::byte*>("abc"), 3);
    CHECK(to_hex(digest) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  }

  TEST_CASE("client ID: first 16 bytes of SHA-256(label || 0 || key), known answer") {
    auto key = array_from_hex<crypto::identity_key>(rfc8032[0].public_key);
    // python3: hashlib.sha256(b'letterbox/v2/client-id\x00' + key).hexdigest()[:32]
    CHECK(to_hex(crypto::derive_client_id(key)) == "2a74c5d1cb7b0ef00845021046f8ad22");
    auto other = key;
    other[31] ^= 1;
    CHECK(crypto::derive_client_id(other) != crypto::derive_client_id(key));
  }

  TEST_CASE("labelled signature: the signed bytes are label || 0 || parts, exactly") {
    auto secret = array_from_hex<crypto::identity_secret>(rfc8032[1].secret);
    auto key = crypto::public_key_of(secret);
    std::array<std::uint8_t, 3> a{1, 2, 3};
    std::array<std::uint8_t, 2> b{4, 5};
    auto sig = crypto::sign(secret, crypto::labels::auth_proof, {a, b});

    std::string raw = std::string(crypto::labels::auth_proof) + '\0' + "\x01\x02\x03\x04\x05";
    CryptoPP::ed25519Verifier verifier(key.data());
    CHECK(verifier.VerifyMessage(reinterpret_cast<const CryptoPP::byte*>(raw.data()), raw.size(), sig.data(),
                                 sig.size()));
    CHECK(crypto::verify(key, crypto::labels::auth_proof, {a, b}, sig));
    // The same parts split differently are the same bytes (fields are fixed-size in v2).
    std::array<std::uint8_t, 5> ab{1, 2, 3, 4, 5};
    CHECK(crypto::verify(key, crypto::labels::auth_proof, {ab}, sig));
  }

  TEST_CASE("labelled signature: another label, another key, a flipped bit or a bad key fail") {
    auto secret = crypto::generate_identity();
    auto key = crypto::public_key_of(secret);
    std::array<std::uint8_t, 4> msg{9, 8, 7, 6};
    auto sig = crypto::sign(secret, crypto::labels::register_proof, {msg});
    CHECK(crypto::verify(key, crypto::labels::register_proof, {msg}, sig));
    CHECK_FALSE(crypto::verify(key, crypto::labels::auth_proof, {msg}, sig));
    auto other = crypto::public_key_of(crypto::generate_identity());
    CHECK_FALSE(crypto::verify(other, crypto::labels::register_proof, {msg}, sig));
    for (std::size_t bit = 0; bit < sig.size() * 8; bit += 37) {
      auto bad = sig;
      bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
      CHECK_FALSE(crypto::verify(key, crypto::labels::register_proof, {msg}, bad));
    }
    auto changed = msg;
    changed[0] ^= 0x80;
    CHECK_FALSE(crypto::verify(key, crypto::labels::register_proof, {changed}, sig));
    crypto::identity_key garbage{};
    garbage.fill(0xff);
    CHECK_FALSE(crypto::verify(garbage, crypto::labels::register_proof, {msg}, sig));
  }

  TEST_CASE("a malleated signature (S + L) is refused") {
    auto secret = crypto::generate_identity();
    auto key = crypto::public_key_of(secret);
    std::array<std::uint8_t, 1> msg{42};
    auto sig = crypto::sign(secret, crypto::labels::auth_proof, {msg});
    // L = 2^252 + 27742317777372353535851937790883648493, little-endian, added to S = sig[32..64).
    auto l = from_hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    unsigned carry = 0;
    for (std::size_t i = 0; i < 32; ++i) {
      unsigned sum = sig[32 + i] + l[i] + carry;
      sig[32 + i] = static_cast<std::uint8_t>(sum);
      carry = sum >> 8;
    }
    CHECK_FALSE(crypto::verify(key, crypto::labels::auth_proof, {msg}, sig));
    // Crypto++ itself accepts it: the reason verify() checks S < L first.
    std::string raw = std::string(crypto::labels::auth_proof) + '\0' + "\x2a";
    CryptoPP::ed25519Verifier verifier(key.data());
    CHECK(verifier.VerifyMessage(reinterpret_cast<const CryptoPP::byte*>(raw.data()), raw.size(), sig.data(),
                                 sig.size()));
  }

  TEST_CASE("constant-time comparison") {
    std::array<std::uint8_t, 4> a{1, 2, 3, 4}, b{1, 2, 3, 4}, c{1, 2, 3, 5};
    CHECK(crypto::equal_constant_time(a, b));
    CHECK_FALSE(crypto::equal_constant_time(a, c));
    CHECK_FALSE(crypto::equal_constant_time(a, std::span<const std::uint8_t>(b).first(3)));
  }
}

namespace {

// Every encoding of a point of small order (1, 2, 4, 8), canonical or not, with and without
// the sign bit: the 8 torsion points' canonical encodings, then y = p, p + 1 (non-canonical 0
// and 1) and y = 2^255 - 1 - ... values above p. With such a key A, [h]A is a small-order point,
// so R = -[h]A and S = 0 verify (for the identity, R = identity and S = 0 verify any message).
const char* const small_order_keys[] = {
    "0100000000000000000000000000000000000000000000000000000000000000",  // identity
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = -1, order 2
    "0000000000000000000000000000000000000000000000000000000000000000",  // y = 0, order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  // y = 0, order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  // order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  // order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  // order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  // order 8
    "0100000000000000000000000000000000000000000000000000000000000080",  // identity, sign bit
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  // y = -1, sign bit
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = p (non-canonical 0)
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = p + 1 (non-canonical 1)
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};

}  // namespace

TEST_SUITE("crypto identity") {
  TEST_CASE("small-order and non-canonical identity keys are refused (R = identity, S = 0 is universal)") {
    // R = the identity point, S = 0: for A = identity, [S]B - [h]A = identity = R for every
    // message, so Crypto++ 8.7 accepts this one signature for anything (shown below). verify()
    // must refuse every small-order or non-canonically encoded key, whatever the signature.
    crypto::signature universal{};
    universal[0] = 1;
    const auto identity_point = array_from_hex<crypto::identity_key>(small_order_keys[0]);
    for (int m = 0; m < 3; ++m) {
      std::string raw = std::string(crypto::labels::auth_proof) + '\0' + std::to_string(m);
      CryptoPP::ed25519Verifier verifier(identity_point.data());
      CHECK(verifier.VerifyMessage(reinterpret_cast<const CryptoPP::byte*>(raw.data()), raw.size(),
                                   universal.data(), universal.size()));
    }
    for (const char* hex : small_order_keys) {
      CAPTURE(hex);
      const auto key = array_from_hex<crypto::identity_key>(hex);
      CHECK_FALSE(crypto::valid_identity_key(key));
      // R = identity or R = any small-order point, S = 0, over many messages: at least one in 8
      // has 8 | h, which Crypto++ would accept; verify() accepts none.
      for (const char* r_hex : small_order_keys) {
        crypto::signature sig{};
        const auto r = from_hex(r_hex);
        std::copy(r.begin(), r.end(), sig.begin());
        for (std::uint8_t m = 0; m < 16; ++m) {
          std::array<std::uint8_t, 1> msg{m};
          CHECK_FALSE(crypto::verify(key, crypto::labels::auth_proof, {msg}, sig));
        }
      }
    }
    // A canonical y that is not on the curve (y = 2) passes this check and fails in Crypto++.
    crypto::identity_key not_a_point{};
    not_a_point[0] = 2;
    CHECK(crypto::valid_identity_key(not_a_point));
    {
      auto secret = crypto::generate_identity();
      std::array<std::uint8_t, 1> msg{1};
      auto sig = crypto::sign(secret, crypto::labels::auth_proof, {msg});
      CHECK_FALSE(crypto::verify(not_a_point, crypto::labels::auth_proof, {msg}, sig));
      crypto::signature universal{};
      universal[0] = 1;
      CHECK_FALSE(crypto::verify(not_a_point, crypto::labels::auth_proof, {msg}, universal));
    }
    // Honest keys are valid.
    for (int i = 0; i < 32; ++i) CHECK(crypto::valid_identity_key(crypto::public_key_of(crypto::generate_identity())));
    CHECK(crypto::valid_identity_key(array_from_hex<crypto::identity_key>(rfc8032[0].public_key)));
  }
}

// Known answers for every primitive the sealed envelopes use, called the way crypto/ calls
// them: X25519 (RFC 7748 §5.2, §6.1), HKDF-SHA256 (RFC 5869 A.1, A.3), ChaCha20-Poly1305
// (RFC 8439 §2.8.2), SHA-512 (FIPS 180-2 "abc"); and the agreement API on top of X25519.
#include <cryptopp/chachapoly.h>
#include <cryptopp/hkdf.h>
#include <cryptopp/sha.h>
#include <cryptopp/xed25519.h>
#include <doctest/doctest.h>

#include <set>
#include <string>

#include "agreement.hpp"
#include "kat.hpp"

using namespace letterbox;
using letterbox::test::array_from_hex;
using letterbox::test::from_hex;
using letterbox::test::to_hex;

namespace {

constexpr const char* alice_secret = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
constexpr const char* alice_public = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
constexpr const char* bob_secret = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb";
constexpr const char* bob_public = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
constexpr const char* alice_bob_shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

std::string hkdf_sha256(const std::vector<std::uint8_t>& ikm, const std::vector<std::uint8_t>* salt,
                        const std::vector<std::uint8_t>& info, std::size_t length) {
  std::vector<std::uint8_t> okm(length);
  CryptoPP::HKDF<CryptoPP::SHA256> hkdf;
  hkdf.DeriveKey(okm.data(), okm.size(), ikm.data(), ikm.size(), salt ? salt->data() : nullptr,
                 salt ? salt->size() : 0, info.data(), info.size());
  return to_hex(okm);
}

}  // namespace

TEST_SUITE("crypto primitives") {
  TEST_CASE("X25519 known answers (RFC 7748 5.2): both scalar-multiplication vectors") {
    struct kat {
      const char *scalar, *u, *out;
    };
    // The second u has its top bit set: X25519 must ignore it (RFC 7748 §5).
    const kat kats[] = {
        {"a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
         "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
         "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"},
        {"4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
         "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
         "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"},
    };
    for (const auto& k : kats) {
      auto shared = crypto::agree(array_from_hex<crypto::agreement_secret>(k.scalar),
                                  array_from_hex<crypto::agreement_key>(k.u));
      REQUIRE(shared);
      CHECK(to_hex(*shared) == k.out);
    }
  }

  TEST_CASE("X25519 known answers (RFC 7748 6.1): Alice and Bob") {
    auto a = array_from_hex<crypto::agreement_secret>(alice_secret);
    auto b = array_from_hex<crypto::agreement_secret>(bob_secret);
    CHECK(to_hex(crypto::agreement_public_of(a)) == alice_public);
    CHECK(to_hex(crypto::agreement_public_of(b)) == bob_public);
    auto ab = crypto::agree(a, array_from_hex<crypto::agreement_key>(bob_public));
    auto ba = crypto::agree(b, array_from_hex<crypto::agreement_key>(alice_public));
    REQUIRE(ab);
    REQUIRE(ba);
    CHECK(to_hex(*ab) == alice_bob_shared);
    CHECK(to_hex(*ba) == alice_bob_shared);
  }

  TEST_CASE("agree() refuses low-order peer keys: the all-zero shared secret is never returned") {
    auto a = array_from_hex<crypto::agreement_secret>(alice_secret);
    crypto::agreement_key zero{};
    CHECK_FALSE(crypto::agree(a, zero));
    crypto::agreement_key one{};
    one[0] = 1;  // u = 1, a point of order 4
    CHECK_FALSE(crypto::agree(a, one));
    // u = p (= 0 mod p), a non-canonical encoding of zero.
    auto p = array_from_hex<crypto::agreement_key>(
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    CHECK_FALSE(crypto::agree(a, p));
    // Crypto++'s own check alone, without ours, to show the raw primitive's behaviour.
    CryptoPP::x25519 x;
    crypto::shared_secret raw{};
    CHECK_FALSE(x.Agree(raw.data(), a.data(), zero.data(), true));
  }

  TEST_CASE("generate_agreement_secret: clamped, fresh every time, usable both ways") {
    std::set<std::string> seen;
    for (int i = 0; i < 8; ++i) {
      auto s = crypto::generate_agreement_secret();
      CHECK((s[0] & 7) == 0);
      CHECK((s[31] & 0x80) == 0);
      CHECK((s[31] & 0x40) == 0x40);
      seen.insert(to_hex(s));
    }
    CHECK(seen.size() == 8);
    auto x = crypto::generate_agreement_secret();
    auto y = crypto::generate_agreement_secret();
    auto xy = crypto::agree(x, crypto::agreement_public_of(y));
    auto yx = crypto::agree(y, crypto::agreement_public_of(x));
    REQUIRE(xy);
    REQUIRE(yx);
    CHECK(*xy == *yx);
    crypto::wipe(x);
    CHECK(x == crypto::agreement_secret{});
  }

  TEST_CASE("HKDF-SHA256 known answers (RFC 5869 A.1 and A.3)") {
    const auto ikm = from_hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    const auto salt1 = from_hex("000102030405060708090a0b0c");
    const auto info1 = from_hex("f0f1f2f3f4f5f6f7f8f9");
    CHECK(hkdf_sha256(ikm, &salt1, info1, 42) ==
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    // A.3: no salt, no info. The envelope's "salt = none" is a null salt pointer (Crypto++ then
    // uses HashLen zero bytes, RFC 5869 §2.2); an empty salt gives the same answer.
    const std::vector<std::uint8_t> empty;
    const std::string a3 =
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8";
    CHECK(hkdf_sha256(ikm, nullptr, empty, 42) == a3);
    CHECK(hkdf_sha256(ikm, &empty, empty, 42) == a3);
    const std::vector<std::uint8_t> zeros(32, 0);
    CHECK(hkdf_sha256(ikm, &zeros, empty, 42) == a3);
  }

  TEST_CASE("ChaCha20-Poly1305 known answer (RFC 8439 2.8.2): seal, open, refuse a change") {
    const auto key = from_hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
    const auto nonce = from_hex("070000004041424344454647");
    const auto aad = from_hex("50515253c0c1c2c3c4c5c6c7");
    const std::string text =
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the "
        "future, sunscreen would be it.";
    const std::string expected_ct =
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69"
        "da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad67594"
        "5585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116";
    const std::string expected_tag = "1ae10b594f09e26a7e902ecbd0600691";
    std::vector<std::uint8_t> ct(text.size()), tag(16), back(text.size());
    CryptoPP::ChaCha20Poly1305::Encryption enc;
    enc.SetKeyWithIV(key.data(), key.size(), nonce.data(), nonce.size());
    enc.EncryptAndAuthenticate(ct.data(), tag.data(), tag.size(), nonce.data(),
                               static_cast<int>(nonce.size()), aad.data(), aad.size(),
                               reinterpret_cast<const CryptoPP::byte*>(text.data()), text.size());
    CHECK(to_hex(ct) == expected_ct);
    CHECK(to_hex(tag) == expected_tag);
    CryptoPP::ChaCha20Poly1305::Decryption dec;
    dec.SetKeyWithIV(key.data(), key.size(), nonce.data(), nonce.size());
    CHECK(dec.DecryptAndVerify(back.data(), tag.data(), tag.size(), nonce.data(),
                               static_cast<int>(nonce.size()), aad.data(), aad.size(), ct.data(),
                               ct.size()));
    CHECK(std::string(back.begin(), back.end()) == text);
    ct[0] ^= 1;
    CHECK_FALSE(dec.DecryptAndVerify(back.data(), tag.data(), tag.size(), nonce.data(),
                                     static_cast<int>(nonce.size()), aad.data(), aad.size(),
                                     ct.data(), ct.size()));
    ct[0] ^= 1;
    auto other_nonce = nonce;
    other_nonce[11] ^= 1;  // the envelope's last flag lives in this byte
    CHECK_FALSE(dec.DecryptAndVerify(back.data(), tag.data(), tag.size(), other_nonce.data(),
                                     static_cast<int>(other_nonce.size()), aad.data(), aad.size(),
                                     ct.data(), ct.size()));
  }

  TEST_CASE("SHA-512 known answer (FIPS 180-2, \"abc\")") {
    CryptoPP::SHA512 hash;
    std::array<std::uint8_t, 64> digest{};
    hash.CalculateDigest(digest.data(), reinterpret_cast<const CryptoPP::byte*>("abc"), 3);
    CHECK(to_hex(digest) ==
          "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
          "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  }
}

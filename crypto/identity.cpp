#include "identity.hpp"

#include <cryptopp/misc.h>
#include <cryptopp/osrng.h>
#include <cryptopp/sha.h>
#include <cryptopp/xed25519.h>

#include <vector>

namespace letterbox::crypto {
namespace {

std::vector<std::uint8_t> labelled(std::string_view label, std::initializer_list<bytes_view> parts) {
  std::size_t size = label.size() + 1;
  for (auto part : parts) size += part.size();
  std::vector<std::uint8_t> out;
  out.reserve(size);
  out.insert(out.end(), label.begin(), label.end());
  out.push_back(0);
  for (auto part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// RFC 8032 §5.1.7 step 1: S must be below the group order L. Crypto++ 8.7's verifier accepts
// S + L too (a second valid encoding of every signature; tests/crypto shows it), so v2 checks
// it first. Public data: no need for constant time.
bool canonical_s(const signature& sig) {
  static constexpr std::uint8_t order[32] = {  // L, little-endian
      0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
  for (std::size_t i = 32; i-- > 0;) {
    if (sig[32 + i] != order[i]) return sig[32 + i] < order[i];
  }
  return false;  // S == L
}

}  // namespace

client_id derive_client_id(const identity_key& key) {
  CryptoPP::SHA256 hash;
  auto input = labelled(labels::client_id, {bytes_view(key)});
  std::array<std::uint8_t, CryptoPP::SHA256::DIGESTSIZE> digest{};
  hash.CalculateDigest(digest.data(), input.data(), input.size());
  client_id id{};
  std::copy_n(digest.begin(), id.size(), id.begin());
  return id;
}

identity_key public_key_of(const identity_secret& secret) {
  CryptoPP::ed25519Signer signer(secret.data());
  identity_key key{};
  const auto& priv = static_cast<const CryptoPP::ed25519PrivateKey&>(signer.GetPrivateKey());
  std::copy_n(priv.GetPublicKeyBytePtr(), key.size(), key.begin());
  return key;
}

identity_secret generate_identity() {
  CryptoPP::AutoSeededRandomPool rng;
  identity_secret secret{};
  rng.GenerateBlock(secret.data(), secret.size());
  return secret;
}

signature sign(const identity_secret& secret, std::string_view label,
               std::initializer_list<bytes_view> parts) {
  CryptoPP::ed25519Signer signer(secret.data());
  auto message = labelled(label, parts);
  signature sig{};
  // Ed25519 is deterministic (RFC 8032): the RNG argument is never drawn from.
  signer.SignMessage(CryptoPP::NullRNG(), message.data(), message.size(), sig.data());
  return sig;
}

bool verify(const identity_key& key, std::string_view label, std::initializer_list<bytes_view> parts,
            const signature& sig) {
  if (!canonical_s(sig)) return false;
  if (!valid_identity_key(key)) return false;  // Crypto++ 8.7 accepts small-order keys
  try {
    CryptoPP::ed25519Verifier verifier(key.data());
    auto message = labelled(label, parts);
    return verifier.VerifyMessage(message.data(), message.size(), sig.data(), sig.size());
  } catch (const CryptoPP::Exception&) {
    return false;  // a key that is not a curve point
  }
}

bool valid_identity_key(const identity_key& key) noexcept {
  // Canonical: y (the low 255 bits) < p = 2^255 - 19. With the sign bit cleared, y >= p means
  // bytes 1..30 are 0xff, byte 31 is 0x7f and byte 0 >= 0xed.
  bool all_ff = key[31] == 0x7f || key[31] == 0xff;
  for (std::size_t i = 1; i < 31 && all_ff; ++i) all_ff = key[i] == 0xff;
  if (all_ff && key[0] >= 0xed) return false;
  // Small order: the canonical encodings of the 8 torsion points, y of each ignoring the sign
  // bit (y = 1, y = -1, y = 0 and the two y of order-8 points; a y with x = 0 and the sign bit
  // set is not canonical and refused too). Public data: no need for constant time.
  static constexpr std::uint8_t small_order_y[5][32] = {
      {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
      {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
      {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},
      {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
       0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
      {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
       0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
  };
  for (const auto& y : small_order_y) {
    bool same = (key[31] & 0x7f) == y[31];
    for (std::size_t i = 0; i < 31 && same; ++i) same = key[i] == y[i];
    if (same) return false;
  }
  return true;
}

bool equal_constant_time(bytes_view a, bytes_view b) {
  if (a.size() != b.size()) return false;
  return CryptoPP::VerifyBufsEqual(a.data(), b.data(), a.size());
}

}  // namespace letterbox::crypto

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
  try {
    CryptoPP::ed25519Verifier verifier(key.data());
    auto message = labelled(label, parts);
    return verifier.VerifyMessage(message.data(), message.size(), sig.data(), sig.size());
  } catch (const CryptoPP::Exception&) {
    return false;  // a key that is not a curve point
  }
}

bool equal_constant_time(bytes_view a, bytes_view b) {
  if (a.size() != b.size()) return false;
  return CryptoPP::VerifyBufsEqual(a.data(), b.data(), a.size());
}

}  // namespace letterbox::crypto

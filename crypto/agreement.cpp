#include "agreement.hpp"

#include <cryptopp/misc.h>
#include <cryptopp/osrng.h>
#include <cryptopp/xed25519.h>

namespace letterbox::crypto {

agreement_secret generate_agreement_secret() {
  CryptoPP::AutoSeededRandomPool rng;
  CryptoPP::x25519 x;
  agreement_secret secret{};
  x.GeneratePrivateKey(rng, secret.data());  // random, then clamped
  return secret;
}

agreement_key agreement_public_of(const agreement_secret& secret) {
  CryptoPP::x25519 x;
  agreement_key key{};
  // X25519(secret, 9); the scalar is clamped on a copy inside (RFC 7748 §5), the RNG unused.
  x.GeneratePublicKey(CryptoPP::NullRNG(), secret.data(), key.data());
  return key;
}

std::optional<shared_secret> agree(const agreement_secret& secret, const agreement_key& peer) {
  CryptoPP::x25519 x;
  shared_secret shared{};
  // validateOtherPublicKey: Crypto++ refuses the known small-order points (all zeros among
  // them); the all-zero check below is RFC 7748 §6.1's and catches any it would miss.
  bool ok = x.Agree(shared.data(), secret.data(), peer.data(), true);
  std::uint8_t any = 0;
  for (auto b : shared) any |= b;
  if (!ok || any == 0) {
    wipe(shared);
    return std::nullopt;
  }
  return shared;
}

void wipe(std::array<std::uint8_t, 32>& secret) noexcept {
  CryptoPP::SecureWipeBuffer(secret.data(), secret.size());
}

}  // namespace letterbox::crypto

// Protocol v2 agreement keys (docs/PROTOCOL.md §13, §16): X25519 (RFC 7748) over Crypto++.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace letterbox::crypto {

inline constexpr std::size_t agreement_key_size = 32;     // X25519 public key (u-coordinate)
inline constexpr std::size_t agreement_secret_size = 32;  // X25519 scalar
inline constexpr std::size_t shared_secret_size = 32;

using agreement_key = std::array<std::uint8_t, agreement_key_size>;
using agreement_secret = std::array<std::uint8_t, agreement_secret_size>;
using shared_secret = std::array<std::uint8_t, shared_secret_size>;

// A fresh agreement secret from the operating system's RNG (clamped, RFC 7748 §5).
agreement_secret generate_agreement_secret();

// X25519(secret, 9): the public key of a secret. Any 32 bytes are a valid secret (the scalar
// is clamped as RFC 7748 §5 says, so an unclamped secret gives the RFC's answer).
agreement_key agreement_public_of(const agreement_secret& secret);

// X25519(secret, peer). Empty when the result is all zeros (the peer key is a low-order point,
// e.g. 32 zero bytes): such a "shared" secret is known to everyone and is always refused.
std::optional<shared_secret> agree(const agreement_secret& secret, const agreement_key& peer);

// Overwrites a 32-byte secret (agreement_secret, shared_secret and identity_secret are all
// this type) with zeros in a way the compiler does not remove.
void wipe(std::array<std::uint8_t, 32>& secret) noexcept;

}  // namespace letterbox::crypto

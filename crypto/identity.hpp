// Protocol v2 identities (docs/PROTOCOL.md §13): Ed25519 identity keys, signatures with a
// domain-separation label, and the client ID derived from an identity key.
//
// Every v2 signature is over  label || 0x00 || fields : the label names what is signed
// ("letterbox/v2/auth", ...), so a signature made for one purpose never verifies for another.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>

#include "protocol_constants.hpp"

namespace letterbox::crypto {

inline constexpr std::size_t identity_key_size = 32;   // Ed25519 public key
inline constexpr std::size_t identity_secret_size = 32;  // Ed25519 private seed
inline constexpr std::size_t signature_size = 64;      // Ed25519 signature

using identity_key = std::array<std::uint8_t, identity_key_size>;
using identity_secret = std::array<std::uint8_t, identity_secret_size>;
using signature = std::array<std::uint8_t, signature_size>;
using client_id = std::array<std::uint8_t, protocol::client_id_size>;
using bytes_view = std::span<const std::uint8_t>;

// The labels of every v2 signature and derivation, named once.
namespace labels {
inline constexpr std::string_view client_id = "letterbox/v2/client-id";
inline constexpr std::string_view register_proof = "letterbox/v2/register";
inline constexpr std::string_view auth_proof = "letterbox/v2/auth";
inline constexpr std::string_view keys = "letterbox/v2/keys";
inline constexpr std::string_view envelope = "letterbox/v2/envelope";
inline constexpr std::string_view envelope_end = "letterbox/v2/envelope-end";
inline constexpr std::string_view content_key = "letterbox/v2/content-key";
inline constexpr std::string_view safety_number = "letterbox/v2/safety-number";
// Group envelopes (docs/PROTOCOL.md §16a).
inline constexpr std::string_view group_envelope = "letterbox/v2/group-envelope";
inline constexpr std::string_view group_envelope_end = "letterbox/v2/group-envelope-end";
inline constexpr std::string_view group_wrap = "letterbox/v2/group-wrap";
inline constexpr std::string_view group_content_key = "letterbox/v2/group-content-key";
}  // namespace labels

// ID = first 16 bytes of SHA-256(label || 0x00 || identity key). Anyone can check that a key
// returned for an ID belongs to it.
client_id derive_client_id(const identity_key& key);

// The public key of a private seed (RFC 8032 §5.1.5).
identity_key public_key_of(const identity_secret& secret);

// A fresh identity from the operating system's RNG.
identity_secret generate_identity();

// Ed25519 over label || 0x00 || the concatenation of parts.
signature sign(const identity_secret& secret, std::string_view label,
               std::initializer_list<bytes_view> parts);

// True iff key is a canonical encoding (y < p) of a point that is not of small order (order 1,
// 2, 4 or 8). Such keys are refused everywhere: for a small-order key A, R = -[h]A and S = 0
// verify (for the identity point: one signature verifies every message), so anyone could
// authenticate or sign as its ID. Keys from public_key_of() are always valid.
bool valid_identity_key(const identity_key& key) noexcept;

// False for a bad signature, a malformed key, or a signature made with another label.
bool verify(const identity_key& key, std::string_view label, std::initializer_list<bytes_view> parts,
            const signature& sig);

// Constant-time equality of two byte strings of equal length (false when lengths differ).
bool equal_constant_time(bytes_view a, bytes_view b);

}  // namespace letterbox::crypto

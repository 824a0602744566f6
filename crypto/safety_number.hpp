// The safety number of two v2 identities (docs/PROTOCOL.md §16, "Pinning").
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "identity.hpp"

namespace letterbox::crypto {

// The first 60 bytes of SHA-512("letterbox/v2/safety-number" || 0x00 || lower key || higher key)
// (keys ordered bytewise), as 12 groups: each 5 bytes read as a u40 big-endian, mod 100,000.
// Symmetric: safety_number_groups(a, b) == safety_number_groups(b, a).
std::array<std::uint32_t, 12> safety_number_groups(const identity_key& a, const identity_key& b);

// The same, as text: 12 groups of 5 digits (zero-padded) separated by single spaces, 71 chars,
// e.g. "01234 56789 ...".
std::string safety_number(const identity_key& a, const identity_key& b);

}  // namespace letterbox::crypto

// Helpers shared by the two envelope formats (envelope.cpp §16, group_envelope.cpp §16a): the
// little-endian fields, the STREAM nonce and the incremental UTF-8 check. Internal to crypto/:
// not part of either public header.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "identity.hpp"

namespace letterbox::crypto::detail {

inline constexpr std::size_t nonce_size = 12;

inline void put_u16le(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
inline void put_u32le(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline void put_u64le(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
inline std::uint16_t get_u16le(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
inline std::uint32_t get_u32le(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::uint64_t get_u64le(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// STREAM nonce: chunk index as u64 big-endian || 00 00 00 || last flag.
inline std::array<std::uint8_t, nonce_size> chunk_nonce(std::uint64_t index, bool last) {
  std::array<std::uint8_t, nonce_size> nonce{};
  for (int i = 0; i < 8; ++i) nonce[i] = static_cast<std::uint8_t>(index >> (8 * (7 - i)));
  nonce[11] = last ? 1 : 0;
  return nonce;
}

// Incremental UTF-8 check (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF),
// refusing NUL too. Sequences may be split across feed() calls.
class utf8_validator {
 public:
  bool feed(const std::uint8_t* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint8_t b = p[i];
      if (need_ == 0) {
        if (b == 0) return false;
        if (b < 0x80) continue;
        lo_ = 0x80;
        hi_ = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
          need_ = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
          need_ = 2;
          if (b == 0xE0) lo_ = 0xA0;
          if (b == 0xED) hi_ = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
          need_ = 3;
          if (b == 0xF0) lo_ = 0x90;
          if (b == 0xF4) hi_ = 0x8F;
        } else {
          return false;
        }
      } else {
        if (b < lo_ || b > hi_) return false;
        lo_ = 0x80;
        hi_ = 0xBF;
        --need_;
      }
    }
    return true;
  }
  bool complete() const { return need_ == 0; }

 private:
  int need_ = 0;
  std::uint8_t lo_ = 0x80, hi_ = 0xBF;
};

inline bool valid_text(bytes_view bytes) {
  utf8_validator v;
  return v.feed(bytes.data(), bytes.size()) && v.complete();
}

}  // namespace letterbox::crypto::detail

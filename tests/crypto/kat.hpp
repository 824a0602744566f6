// Hex helpers for the known-answer tests.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace letterbox::test {

inline std::vector<std::uint8_t> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    throw std::invalid_argument("bad hex digit");
  };
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    while (i < hex.size() && hex[i] == ' ') ++i;
    if (i + 1 >= hex.size()) break;
    out.push_back(static_cast<std::uint8_t>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  }
  return out;
}

template <typename Array>
Array array_from_hex(std::string_view hex) {
  auto bytes = from_hex(hex);
  if (bytes.size() != Array().size()) throw std::invalid_argument("hex of the wrong length");
  Array out{};
  std::copy(bytes.begin(), bytes.end(), out.begin());
  return out;
}

inline std::string to_hex(const auto& bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

}  // namespace letterbox::test

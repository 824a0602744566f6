#include "safety_number.hpp"

#include <cryptopp/sha.h>

#include <algorithm>
#include <cstdio>

namespace letterbox::crypto {

std::array<std::uint32_t, 12> safety_number_groups(const identity_key& a, const identity_key& b) {
  const bool a_first = std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end()) || a == b;
  const identity_key& lower = a_first ? a : b;
  const identity_key& higher = a_first ? b : a;
  CryptoPP::SHA512 hash;
  hash.Update(reinterpret_cast<const CryptoPP::byte*>(labels::safety_number.data()),
              labels::safety_number.size());
  const CryptoPP::byte zero = 0;
  hash.Update(&zero, 1);
  hash.Update(lower.data(), lower.size());
  hash.Update(higher.data(), higher.size());
  std::array<std::uint8_t, CryptoPP::SHA512::DIGESTSIZE> digest{};
  hash.Final(digest.data());
  std::array<std::uint32_t, 12> groups{};
  for (std::size_t g = 0; g < groups.size(); ++g) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < 5; ++i) v = (v << 8) | digest[g * 5 + i];
    groups[g] = static_cast<std::uint32_t>(v % 100000);
  }
  return groups;
}

std::string safety_number(const identity_key& a, const identity_key& b) {
  std::string out;
  for (auto g : safety_number_groups(a, b)) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%05u", static_cast<unsigned>(g));
    if (!out.empty()) out.push_back(' ');
    out += buf;
  }
  return out;
}

}  // namespace letterbox::crypto

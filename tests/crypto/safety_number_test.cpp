// The safety number (docs/PROTOCOL.md §16, "Pinning"): known answer computed independently
// (Python hashlib, see the comment below), symmetry, and sensitivity to either key.
#include <doctest/doctest.h>

#include <regex>

#include "kat.hpp"
#include "safety_number.hpp"

using namespace letterbox;
using letterbox::test::array_from_hex;

namespace {
// RFC 8032 §7.1 TEST 1 and TEST 2 public keys.
const auto key1 = array_from_hex<crypto::identity_key>(
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
const auto key2 = array_from_hex<crypto::identity_key>(
    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c");
}  // namespace

TEST_SUITE("crypto safety number") {
  TEST_CASE("known answer for the RFC 8032 test keys (leading zeros kept)") {
    // python3: lo, hi = sorted([key1, key2]);
    //   d = hashlib.sha512(b"letterbox/v2/safety-number\0" + lo + hi).digest()[:60]
    //   " ".join("%05d" % (int.from_bytes(d[i:i+5], "big") % 100000) for i in range(0, 60, 5))
    const std::string expected =
        "29345 69461 69204 60118 18166 33056 44799 93283 20052 71091 05081 69977";
    CHECK(crypto::safety_number(key1, key2) == expected);
    auto groups = crypto::safety_number_groups(key1, key2);
    CHECK(groups[0] == 29345);
    CHECK(groups[10] == 5081);
  }

  TEST_CASE("symmetric, 12 groups of 5 digits") {
    CHECK(crypto::safety_number(key1, key2) == crypto::safety_number(key2, key1));
    CHECK(crypto::safety_number_groups(key1, key2) == crypto::safety_number_groups(key2, key1));
    const std::string s = crypto::safety_number(key1, key2);
    CHECK(s.size() == 71);
    CHECK(std::regex_match(s, std::regex("([0-9]{5} ){11}[0-9]{5}")));
    for (auto g : crypto::safety_number_groups(key1, key2)) CHECK(g < 100000);
  }

  TEST_CASE("changes when either key changes, in any byte") {
    const std::string base = crypto::safety_number(key1, key2);
    for (std::size_t i = 0; i < key1.size(); ++i) {
      auto a = key1;
      a[i] ^= 0x01;
      CHECK(crypto::safety_number(a, key2) != base);
      auto b = key2;
      b[i] ^= 0x80;
      CHECK(crypto::safety_number(key1, b) != base);
    }
    // A key paired with itself is a different number too (not "lower first" confusion).
    CHECK(crypto::safety_number(key1, key1) != base);
    CHECK(crypto::safety_number(key1, key1) != crypto::safety_number(key2, key2));
  }
}

// The wire transcript recorder (wire_transcript.hpp): how IDs, runs and long byte ranges are
// rendered, and how two transcripts are compared.
#include "integration_support.hpp"
#include "wire_transcript.hpp"

using namespace letterbox::test;
using namespace letterbox::test::wire;
namespace protocol = letterbox::protocol;

namespace {

protocol::client_id id_of(std::uint8_t first, std::uint8_t rest) {
  protocol::client_id id{};
  id.fill(rest);
  id[0] = first;
  return id;
}

}  // namespace

TEST_SUITE("wire_transcript") {

TEST_CASE("transcript rendering: IDs numbered by first appearance, runs shortened, long ranges hashed") {
  const auto first = id_of(0x11, 0xC1);
  const auto second = id_of(0x22, 0xC2);
  id_table ids;
  CHECK(ids.learn(second) == 1);
  CHECK(ids.learn(first) == 2);
  CHECK(ids.learn(second) == 1);

  protocol::byte_buffer bytes(first.begin(), first.end());
  bytes.insert(bytes.end(), {0, 0, 0, 0, 0, 7, 7, 7});
  bytes.insert(bytes.end(), second.begin(), second.end());
  bytes.insert(bytes.end(), second.begin(), second.begin() + 15);  // 15 bytes of an ID are not an ID
  CHECK(render_bytes(bytes, ids) == "{C2} 00*5 07 07 07 {C1} 22 c2*14");
  CHECK(summarise_bytes({}, ids) == "-");

  // A long range is length + hash, and the hash sees placeholders: two scenarios whose IDs
  // differ but appear in the same places summarise alike; different bytes do not.
  const auto other = id_of(0x33, 0xC3);
  id_table other_ids;
  other_ids.learn(other);
  protocol::byte_buffer long_range(5000, 0x42), long_range_other(5000, 0x42);
  std::copy(second.begin(), second.end(), long_range.begin() + 100);
  std::copy(other.begin(), other.end(), long_range_other.begin() + 100);
  const auto summary = summarise_bytes(long_range, ids);
  CHECK(summary.starts_with("<5000 bytes fnv1a64 "));
  CHECK(summary == summarise_bytes(long_range_other, other_ids));
  long_range_other[4999] = 0x43;
  CHECK(summary != summarise_bytes(long_range_other, other_ids));
}

TEST_CASE("first_difference: comments skipped, the first differing line reported under its scenario") {
  const std::string golden = "# recorded by A\n=== 01 one\nc1 < 1000\n=== 02 two\nc1 < 1001 | 02\nend\n";
  CHECK_FALSE(first_difference(golden, "=== 01 one\nc1 < 1000\n# other comment\n=== 02 two\nc1 < 1001 | 02\nend\n"));

  const auto changed = first_difference(golden, "=== 01 one\nc1 < 1000\n=== 02 two\nc1 < 1001 | 03\nend\n");
  REQUIRE(changed);
  CHECK(changed->scenario == "=== 02 two");
  CHECK(changed->expected_line == 5);
  CHECK(changed->actual_line == 4);
  CHECK(changed->expected == "c1 < 1001 | 02");
  CHECK(changed->actual == "c1 < 1001 | 03");

  const auto shorter = first_difference(golden, "=== 01 one\nc1 < 1000\n");
  REQUIRE(shorter);
  CHECK(shorter->actual == "<end of transcript>");
  CHECK(shorter->expected == "=== 02 two");
}

}  // TEST_SUITE

// Golden wire transcript: the server's protocol v1 behaviour must stay byte for byte what the
// reference server recorded in golden/v1_wire_transcript.txt (docs/PROTOCOL.md is a contract
// that never changes). The corpus (wire_corpus.cpp) runs against the server under test, each
// scenario on a fresh database; its transcript is compared line by line with the golden file.
// On a difference the test names the scenario and the first differing line and writes the
// whole actual transcript to the working directory, for a diff.
//
// Recording a new golden file, only from a server whose wire behaviour is the reference (one
// command line; LETTERBOX_RECORD_NOTE is optional and lands in the file's header):
//   LETTERBOX_SERVER=/path/to/reference/server
//   LETTERBOX_RECORD_TRANSCRIPT=tests/integration/golden/v1_wire_transcript.txt
//   LETTERBOX_RECORD_NOTE="server of commit ..."
//   build/tests/integration/integration_tests --test-suite=wire_transcript
// LETTERBOX_SERVER alone replays against another binary (test_server.hpp).
// The last two cases test the recorder itself (wire_transcript.hpp).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "integration_support.hpp"
#include "wire_corpus.hpp"

#ifndef LETTERBOX_WIRE_GOLDEN_TRANSCRIPT
#error "LETTERBOX_WIRE_GOLDEN_TRANSCRIPT must be defined (path of golden/v1_wire_transcript.txt)"
#endif

using namespace letterbox::test;
using namespace letterbox::test::wire;
namespace protocol = letterbox::protocol;

namespace {

const char* environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

// The comment lines at the top of a recorded golden file (not compared).
std::string golden_header() {
  std::string text =
      "# Letterbox protocol v1 golden wire transcript: every byte the server sent back for the corpus of\n"
      "# tests/integration/wire_corpus.cpp, compared line by line by wire_transcript_test.cpp. Lines\n"
      "# starting with '#' are not compared.\n"
      "# Recorded against: " + default_server_binary().string() + "\n";
  if (const char* note = environment("LETTERBOX_RECORD_NOTE")) text += "# Reference: " + std::string(note) + "\n";
  text +=
      "# Lines: 'cN > what | hdr <22 header bytes> | <payload>' a write on connection N;\n"
      "#        'cN < code | <7 header bytes> | ...' a response, 'cN <   ...' one 1001 entry or 1004 message\n"
      "#        (25-byte message header | content); closes by either side and timeouts are lines too.\n"
      "# Bytes: hex; {Cn} the n-th client ID handed out in the scenario; 'xx*N' N bytes xx;\n"
      "#        '<N bytes fnv1a64 H>' a range too long to show (IDs hashed as their placeholders).\n"
      "# Re-record only against the reference server: see wire_transcript_test.cpp.\n";
  return text;
}

protocol::client_id id_of(std::uint8_t first, std::uint8_t rest) {
  protocol::client_id id{};
  id.fill(rest);
  id[0] = first;
  return id;
}

}  // namespace

TEST_SUITE("wire_transcript") {

TEST_CASE("protocol v1 on the wire: the corpus transcript equals the golden transcript") {
  INFO("server binary: " << default_server_binary().string());
  const std::string actual = record_v1_corpus();

  if (const char* record_path = environment("LETTERBOX_RECORD_TRANSCRIPT")) {
    write_text(record_path, golden_header() + actual);
    MESSAGE("recorded the wire transcript of " << default_server_binary().string() << " to "
                                               << std::string(record_path));
    return;
  }

  const std::filesystem::path golden_path = LETTERBOX_WIRE_GOLDEN_TRANSCRIPT;
  const std::string golden = read_text(golden_path);
  REQUIRE_MESSAGE(!golden.empty(), "golden transcript missing or empty: " << golden_path.string()
                                                                        << " (recording: see wire_transcript_test.cpp)");
  const auto diff = first_difference(golden, actual);
  if (diff) {
    const auto actual_path = std::filesystem::absolute("v1_wire_transcript.actual.txt");
    write_text(actual_path, golden_header() + actual);
    FAIL("the server's wire transcript differs from the golden one\n"
         << describe(*diff) << "\nwhole transcript: diff " << golden_path.string() << " " << actual_path.string());
  }
}

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

// A 256 MiB file message streamed through the server and back, checking every byte while it
// is read and bounding the server's peak memory: contents must be streamed to and from the
// spool, never held whole in memory.
#include <map>

#include "integration_support.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;

namespace {
constexpr std::uint64_t mib = 1024 * 1024;
constexpr std::uint64_t peak_rss_limit = 64 * mib;
using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}
}  // namespace

TEST_SUITE("large_messages") {

TEST_CASE("256 MiB type-4 message: streamed in, pulled back byte-exact, server peak RSS < 64 MiB") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  constexpr std::uint32_t size = 256 * mib;
  constexpr std::uint64_t seed = 0x256;
  LETTERBOX_REPORT("server peak RSS before the upload: " << fixture.server.peak_rss_bytes() / 1024 << " KiB");

  auto connection = fixture.connect();
  connection.set_timeout(30s);  // per operation (1 MiB writes/reads); the whole test is bounded by CTest
  auto start = clock_type::now();
  const auto sent = send_pattern_message(connection, fixture.alice, fixture.bob, 4, size, seed);
  const double upload_seconds = seconds_since(start);
  CHECK(sent.to == fixture.bob);
  const auto peak_after_upload = fixture.server.peak_rss_bytes();
  LETTERBOX_REPORT("uploaded 256 MiB in " << upload_seconds << " s; server peak RSS (VmHWM) " << peak_after_upload / 1024
                                 << " KiB");

  start = clock_type::now();
  connection.send_request(fixture.bob, code_of(protocol::request_code::pull_messages), {});
  const auto header = connection.read_response_header();
  REQUIRE(header.code == code_of(protocol::response_code::messages));
  REQUIRE(header.payload_size == protocol::pulled_message_header_size + size);
  const auto messages = read_streamed_pull_payload(connection, header.payload_size,
                                                   [](std::size_t, const auto&) { return seed; });
  const double download_seconds = seconds_since(start);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].header.from == fixture.alice);
  CHECK(messages[0].header.message_id == sent.message_id);
  CHECK(messages[0].header.type == 4);
  CHECK(messages[0].header.content_size == size);
  INFO("first mismatching byte at offset " << messages[0].first_mismatch);
  CHECK(messages[0].content_matches);

  CHECK(pull(connection, fixture.bob).empty());
  const auto peak = fixture.server.peak_rss_bytes();
  LETTERBOX_REPORT("pulled 256 MiB in " << download_seconds << " s; server peak RSS (VmHWM) over the round trip: "
                               << peak / 1024 << " KiB (" << static_cast<double>(peak) / mib
                               << " MiB), current RSS " << fixture.server.rss_bytes() / 1024 << " KiB");
  CHECK(peak < peak_rss_limit);
}

TEST_CASE("several 24 MiB messages from two senders come back in send order, byte-exact") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  constexpr std::uint32_t size = 24 * mib;
  auto connection = fixture.connect();
  connection.set_timeout(30s);
  const auto carol = register_client(connection, "carol", make_test_key(3));
  std::vector<std::pair<protocol::client_id, std::uint32_t>> order;  // from, message ID
  std::map<std::uint32_t, std::uint64_t> seeds;
  for (std::uint64_t seed = 1; seed <= 4; ++seed) {
    const auto& from = seed % 2 ? fixture.alice : carol;
    const auto sent = send_pattern_message(connection, from, fixture.bob, 4, size + static_cast<std::uint32_t>(seed), seed);
    order.emplace_back(from, sent.message_id);
    seeds[sent.message_id] = seed;
  }
  std::vector<streamed_message> received;
  for (int pulls = 0; pulls < 10 && received.size() < order.size(); ++pulls) {
    connection.send_request(fixture.bob, code_of(protocol::request_code::pull_messages), {});
    const auto header = connection.read_response_header();
    REQUIRE(header.code == code_of(protocol::response_code::messages));
    REQUIRE(header.payload_size > 0);  // messages are waiting: a pull must return at least one
    auto part = read_streamed_pull_payload(connection, header.payload_size,
                                           [&](std::size_t, const protocol::pulled_message_header& h) {
                                             return seeds.count(h.message_id) ? seeds.at(h.message_id) : 0;
                                           });
    received.insert(received.end(), part.begin(), part.end());
  }
  REQUIRE(received.size() == order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    CAPTURE(i);
    CHECK(received[i].header.from == order[i].first);
    CHECK(received[i].header.message_id == order[i].second);
    CHECK(received[i].header.content_size == size + i + 1);
    CHECK(received[i].content_matches);
  }
  CHECK(pull(connection, fixture.bob).empty());
  const auto peak = fixture.server.peak_rss_bytes();
  LETTERBOX_REPORT("4 x 24 MiB round trip: server peak RSS " << peak / 1024 << " KiB");
  CHECK(peak < peak_rss_limit);
}

}  // TEST_SUITE

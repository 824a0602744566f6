// Tests of the harness itself (tests/support): the content pattern must be a function of the
// stream offset only, or streamed checks would compare different things on the two sides.
#include "integration_support.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;

TEST_SUITE("harness") {

TEST_CASE("content_pattern: same bytes whatever the chunking; seeds differ") {
  protocol::byte_buffer whole(10'000);
  content_pattern(7).fill(whole);
  for (std::size_t chunk : {1, 3, 7, 8, 9, 4096}) {
    CAPTURE(chunk);
    content_pattern pattern(7);
    protocol::byte_buffer pieces(whole.size());
    for (std::size_t offset = 0; offset < pieces.size(); offset += chunk)
      pattern.fill(std::span<std::uint8_t>(pieces).subspan(offset, std::min(chunk, pieces.size() - offset)));
    CHECK(pieces == whole);
  }
  protocol::byte_buffer other(whole.size());
  content_pattern(8).fill(other);
  CHECK(other != whole);
}

TEST_CASE("test_server: start, stop with exit status 0, restart in the same directory") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  const auto directory = server.directory();
  CHECK(server.port() != 0);
  CHECK(server.rss_bytes() > 0);
  CHECK(server.peak_rss_bytes() >= server.rss_bytes());
  CHECK(server.stop() == 0);
  CHECK_FALSE(server.running());
  server.restart();
  CHECK(server.running());
  CHECK(server.directory() == directory);
  raw_connection connection(server.port());
  CHECK_NOTHROW(register_client(connection, "after-restart", make_test_key(1)));
}

TEST_CASE("raw_connection: reads are bounded by the timeout") {
  test_server server;
  raw_connection connection(server.port(), 300ms);
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(connection.read_exact(1), operation_timeout);  // the server sends nothing unasked
  CHECK(std::chrono::steady_clock::now() - start < 3s);
  CHECK_FALSE(connection.is_open());
}

}  // TEST_SUITE

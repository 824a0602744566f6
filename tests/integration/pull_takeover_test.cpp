// Nothing hides after a cut pull: a new pull of a mailbox sees every message not yet
// delivered, at once — it ends a pull of that mailbox still in progress on another connection
// (cut but not yet noticed, or a reader that stopped reading). And a broken spool file never
// blocks a mailbox: that message is quarantined, the rest delivered.
#include <algorithm>
#include <map>
#include <thread>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include "integration_support.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;

namespace {

constexpr auto pull_code = code_of(protocol::request_code::pull_messages);

// Sends one small text and two 12 MiB files (more than loopback socket buffers hold) to bob.
std::map<std::uint32_t, std::uint64_t> fill_bobs_mailbox(server_with_clients& fixture) {
  std::map<std::uint32_t, std::uint64_t> seeds;
  auto connection = fixture.connect();
  seeds[send_pattern_message(connection, fixture.alice, fixture.bob, 3, 100, 1).message_id] = 1;
  for (std::uint64_t seed : {2, 3})
    seeds[send_pattern_message(connection, fixture.alice, fixture.bob, 4, 12 * 1024 * 1024, seed).message_id] = seed;
  return seeds;
}

}  // namespace

TEST_SUITE("pull_takeover") {

TEST_CASE("a pull right after a cut pull gets every message, every time (no empty 1004 while messages wait)") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  const auto seeds = fill_bobs_mailbox(fixture);
  for (int round = 0; round < 30; ++round) {
    CAPTURE(round);
    {
      auto cut = fixture.connect();
      cut.send_request(fixture.bob, pull_code, {});
      const auto header = cut.read_response_header();
      REQUIRE(header.code == code_of(protocol::response_code::messages));
      cut.read_exact(64 * 1024);
    }  // closed with most of the response unread; no pause before the next pull
    auto connection = fixture.connect();
    connection.send_request(fixture.bob, pull_code, {});
    const auto header = connection.read_response_header();
    REQUIRE(header.code == code_of(protocol::response_code::messages));
    CHECK(header.payload_size == 3 * protocol::pulled_message_header_size + 100 + 2 * 12 * 1024 * 1024);
    // Read it only partly too, so the mailbox stays full for the next round.
    connection.read_exact(1024);
  }
  auto connection = fixture.connect();
  const auto messages = pull_all_streamed(connection, fixture.bob, seeds);
  REQUIRE(messages.size() == 3);
  for (const auto& m : messages) CHECK(m.content_matches);
}

TEST_CASE("a reader that stops reading does not hide the mailbox: a new pull ends it and gets everything") {
  server_with_clients fixture;  // --timeout 30 s: far longer than this test waits
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  const auto seeds = fill_bobs_mailbox(fixture);
  auto stalled = fixture.connect();
  stalled.send_request(fixture.bob, pull_code, {});
  const auto stalled_header = stalled.read_response_header();
  REQUIRE(stalled_header.code == code_of(protocol::response_code::messages));
  std::this_thread::sleep_for(200ms);  // its writes are stuck in full socket buffers now

  const auto started = std::chrono::steady_clock::now();
  auto connection = fixture.connect();
  const auto messages = pull_all_streamed(connection, fixture.bob, seeds);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(messages.size() == 3);
  for (const auto& m : messages) CHECK(m.content_matches);
  CHECK(took < 10s);
  LETTERBOX_REPORT("new pull served in " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                         << " ms while the earlier reader stalled");
  // The earlier pull's connection was closed by the server.
  stalled.set_timeout(5s);
  CHECK(stalled.wait_for_close(5s) != close_outcome::still_open);
  CHECK(pull(connection, fixture.bob).empty());
}

TEST_CASE("a missing or truncated spool file is quarantined (logged once); the rest of the mailbox is delivered") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  std::map<std::uint32_t, std::uint64_t> seeds;
  std::vector<std::uint32_t> ids;
  {
    auto connection = fixture.connect();
    for (std::uint64_t seed : {1, 2, 3, 4}) {
      const auto id = send_pattern_message(connection, fixture.alice, fixture.bob, 4, 200 * 1024, seed).message_id;
      seeds[id] = seed;
      ids.push_back(id);
    }
  }
  // Break the first message's file (delete) and the third's (truncate), as a careless operator
  // or a disk error would. Which file is whose: the database says (as the sqlite3 shell would).
  std::map<std::uint32_t, std::filesystem::path> file_of;
  {
    SQLite::Database db(fixture.server.db_path().string(), SQLite::OPEN_READONLY);
    SQLite::Statement query(db, "SELECT MessageID, ContentFile FROM messages WHERE ContentFile IS NOT NULL");
    while (query.executeStep())
      file_of[static_cast<std::uint32_t>(query.getColumn(0).getInt64())] =
          fixture.server.spool_directory() / query.getColumn(1).getString();
  }
  REQUIRE(file_of.size() == 4);
  std::filesystem::remove(file_of.at(ids[0]));
  std::filesystem::resize_file(file_of.at(ids[2]), 1000);

  auto connection = fixture.connect();
  for (int attempt = 0; attempt < 3; ++attempt) {  // the mailbox is never blocked, not once
    CAPTURE(attempt);
    const auto messages = pull_all_streamed(connection, fixture.bob, seeds);
    if (attempt == 0) {
      REQUIRE(messages.size() == 2);
      CHECK(messages[0].header.message_id == ids[1]);
      CHECK(messages[1].header.message_id == ids[3]);
      for (const auto& m : messages) CHECK(m.content_matches);
    } else {
      CHECK(messages.empty());
    }
  }
  const auto log = fixture.server.log();
  auto count = [&](const std::string& needle) {
    std::size_t n = 0;
    for (auto at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  };
  CHECK(count("message " + std::to_string(ids[0]) + " quarantined") == 1);
  CHECK(count("message " + std::to_string(ids[2]) + " quarantined") == 1);
  check_server_still_serves(fixture.server);
}

}  // TEST_SUITE

// Abuse and limits (issue 8): a request that drips is cut by its total deadline; a full
// server still serves a new client (closing the connection idle longest); per-address caps on
// connections and registrations; per-mailbox quotas; the free-disk watermark; and the memory
// all pulls in progress hold together. Each limit is a flag; each refusal is a 9000 or a close.
#include <map>
#include <thread>

#include "integration_support.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;

namespace {

constexpr auto send_code = code_of(protocol::request_code::send_message);
constexpr auto pull_code = code_of(protocol::request_code::pull_messages);
constexpr auto list_code = code_of(protocol::request_code::list_clients);

protocol::byte_buffer text_of(std::size_t size, std::uint8_t fill) { return protocol::byte_buffer(size, fill); }

// The server logs a request after answering it: wait (bounded) for the line.
bool log_mentions(const test_server& server, const std::string& needle) {
  for (int i = 0; i < 100; ++i) {
    if (server.log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

}  // namespace

TEST_SUITE("limits") {

TEST_CASE("a request that drips a byte now and then is closed by its total deadline; other clients are served") {
  server_with_clients fixture({"--request-grace", "0.5", "--min-rate", "1000"});  // --timeout stays 30 s
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  constexpr std::uint32_t size = 2000;  // allowed: 0.5 s + (22 + 21 + 2000) B / 1000 B/s ≈ 2.5 s
  auto drip = fixture.connect();
  const auto prefix = protocol::encode_send_message_prefix({fixture.bob, 3, size});
  drip.send_bytes(protocol::encode_request_front(fixture.alice, protocol::client_version, send_code,
                                                 prefix.size() + size, prefix));
  const auto started = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 40 && !closed; ++i) {  // a byte every 200 ms: each step is far below --timeout
    try {
      drip.send_bytes(text_of(1, 'x'));
    } catch (const connection_error&) {
      closed = true;
      break;
    }
    closed = drip.wait_for_close(200ms) == close_outcome::closed;
  }
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(closed);
  CHECK(took < 6s);
  LETTERBOX_REPORT("dripping request closed after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                                                    << " ms");
  auto normal = fixture.connect();
  CHECK(send_message(normal, fixture.alice, fixture.bob, 3, text_of(size, 'y')).to == fixture.bob);
}

TEST_CASE("announcing a huge content buys no time: a drip under it is closed as soon as a small one") {
  server_with_clients fixture({"--request-grace", "0.5", "--min-rate", "1000"});
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  constexpr std::uint32_t announced = 100 * 1024 * 1024;  // spooled; at 1000 B/s it would "allow" 29 h
  auto drip = fixture.connect();
  const auto prefix = protocol::encode_send_message_prefix({fixture.bob, 4, announced});
  drip.send_bytes(protocol::encode_request_front(fixture.alice, protocol::client_version, send_code,
                                                 prefix.size() + announced, prefix));
  const auto started = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 40 && !closed; ++i) {
    try {
      drip.send_bytes(text_of(1, 'x'));
    } catch (const connection_error&) {
      closed = true;
      break;
    }
    closed = drip.wait_for_close(200ms) == close_outcome::closed;
  }
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(closed);
  CHECK(took < 6s);
  LETTERBOX_REPORT("drip under a 100 MiB announcement closed after "
                   << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
}

TEST_CASE("a slow upload that keeps above --min-rate is not cut") {
  server_with_clients fixture({"--request-grace", "0.5", "--min-rate", "1000"});
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  constexpr std::uint32_t size = 100 * 1024;  // spooled, sent at ~20 KB/s over ~5 s
  auto uploader = fixture.connect();
  const auto prefix = protocol::encode_send_message_prefix({fixture.bob, 4, size});
  uploader.send_bytes(protocol::encode_request_front(fixture.alice, protocol::client_version, send_code,
                                                     prefix.size() + size, prefix));
  for (std::uint32_t sent = 0; sent < size; sent += 4096) {
    uploader.send_bytes(text_of(std::min<std::uint32_t>(4096, size - sent), 'u'));
    std::this_thread::sleep_for(200ms);
  }
  CHECK(uploader.read_response().code() == code_of(protocol::response_code::message_sent));
}

TEST_CASE("a full server still serves new clients: it closes the connection idle longest") {
  server_with_clients fixture({"--max-connections", "20"});
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  std::vector<raw_connection> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(fixture.connect());  // they send nothing
  std::this_thread::sleep_for(200ms);
  int served = 0;
  for (int i = 0; i < 5; ++i) {
    try {
      auto client = fixture.connect();
      client.set_timeout(3s);
      const auto reply = client.request(fixture.alice, list_code, {});
      served += reply.code() == code_of(protocol::response_code::client_list);
    } catch (const connection_error&) {
    }
  }
  CHECK(served == 5);
  int closed = 0;  // one for each new client that found the server full
  for (auto& c : idle) closed += c.wait_for_close(100ms) == close_outcome::closed;
  CHECK(closed >= 1);
  CHECK(closed <= 5);
  CHECK(log_mentions(fixture.server, "(--max-connections): closed"));
}

TEST_CASE("connections from one address beyond --max-connections-per-ip are closed at once") {
  server_with_clients fixture({"--max-connections-per-ip", "5"});
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  std::vector<raw_connection> open;
  for (int i = 0; i < 5; ++i) open.push_back(fixture.connect());
  std::this_thread::sleep_for(100ms);
  auto sixth = fixture.connect();
  CHECK(sixth.wait_for_close(2s) == close_outcome::closed);
  check_connection_still_serves(open[0], fixture.alice);
  open.pop_back();
  std::this_thread::sleep_for(200ms);
  auto again = fixture.connect();
  check_connection_still_serves(again, fixture.alice);
}

TEST_CASE("registrations from one address beyond --registration-rate a minute are answered 9000") {
  test_server server({"--registration-rate", "5"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());
  for (int i = 0; i < 5; ++i) CHECK_NOTHROW(register_client(connection, "user" + std::to_string(i)));
  const auto payload = protocol::encode_register_request({"one-too-many", make_test_key(9)});
  check_error_response(connection.request(protocol::client_id{}, code_of(protocol::request_code::register_client), payload));
  CHECK(log_mentions(server, "--registration-rate"));
}

TEST_CASE("a mailbox beyond --max-mailbox-messages or --max-mailbox-bytes refuses sends until it is pulled") {
  server_with_clients fixture({"--max-mailbox-messages", "3", "--max-mailbox-bytes", "1000"});
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  auto send = [&](std::size_t size) {
    const auto prefix = protocol::encode_send_message_prefix({fixture.bob, 3, static_cast<std::uint32_t>(size)});
    auto payload = prefix;
    const auto body = text_of(size, 'q');
    payload.insert(payload.end(), body.begin(), body.end());
    return connection.request(fixture.alice, send_code, payload).code();
  };
  CHECK(send(600) == 1003);
  CHECK(send(500) == error_code_9000);  // 1100 bytes > 1000
  CHECK(send(300) == 1003);
  CHECK(send(10) == 1003);
  CHECK(send(10) == error_code_9000);  // a fourth message
  CHECK(send_message(connection, fixture.alice, fixture.alice, 3, text_of(10, 'a')).to == fixture.alice);  // others go on
  CHECK(pull_all(connection, fixture.bob).size() == 3);
  CHECK(send(900) == 1003);
}

TEST_CASE("below the free-disk watermark sends are answered 9000; everything else works") {
  server_with_clients fixture({"--min-free-disk", "1000000000000000000"});  // 1 EB: never free
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  const auto prefix = protocol::encode_send_message_prefix({fixture.bob, 3, 4});
  auto payload = prefix;
  payload.insert(payload.end(), {1, 2, 3, 4});
  check_error_response(connection.request(fixture.alice, send_code, payload));
  CHECK(log_mentions(fixture.server, "--min-free-disk"));
  check_connection_still_serves(connection, fixture.alice);
  CHECK(pull(connection, fixture.bob).empty());
}

TEST_CASE("pulls in progress together hold at most --max-pull-memory of inline content; all are served") {
  constexpr int mailboxes = 6;
  constexpr std::size_t per_mailbox = 8 * 1024 * 1024;  // 128 inline contents of 64 KiB each
  test_server server({"--max-pull-memory", "2097152"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection setup(server.port());
  const auto sender = register_client(setup, "sender");
  std::vector<protocol::client_id> readers;
  for (int i = 0; i < mailboxes; ++i) readers.push_back(register_client(setup, "reader" + std::to_string(i)));
  const auto content = text_of(64 * 1024, 'm');
  for (const auto& reader : readers)
    for (std::size_t sent = 0; sent < per_mailbox; sent += content.size()) send_message(setup, sender, reader, 3, content);
  std::this_thread::sleep_for(500ms);
  const auto before = server.rss_bytes();
  // Every reader asks and reads nothing: each pull would hold its whole 8 MiB batch in memory.
  std::vector<raw_connection> stalled;
  for (const auto& reader : readers) {
    stalled.push_back(raw_connection(server.port()));
    stalled.back().send_request(reader, pull_code, {});
  }
  std::this_thread::sleep_for(1500ms);
  const auto during = server.rss_bytes();
  LETTERBOX_REPORT("server RSS " << before / 1024 << " KiB before, " << during / 1024 << " KiB with " << mailboxes
                                 << " stalled pulls of " << per_mailbox / (1024 * 1024) << " MiB each");
  CHECK(during < before + 16 * 1024 * 1024);  // without the bound: + 48 MiB
  // Now read them one after the other: each waiting pull goes on once memory is given back.
  std::size_t messages = 0;
  for (std::size_t i = 0; i < stalled.size(); ++i) {
    CAPTURE(i);
    stalled[i].set_timeout(20s);
    auto reply = stalled[i].read_response(per_mailbox + 1024 * 1024);
    REQUIRE(reply.code() == code_of(protocol::response_code::messages));
    messages += parse_pull_payload(reply.payload).size();
    messages += pull_all(stalled[i], readers[i]).size();
  }
  CHECK(messages == mailboxes * (per_mailbox / content.size()));
}

}  // TEST_SUITE

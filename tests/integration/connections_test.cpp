// Connection handling: keep-alive, one request per connection (legacy clients), the --timeout
// rule for stalled and idle connections, and graceful shutdown on SIGTERM.
#include <signal.h>

#include <thread>

#include "integration_support.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;

namespace {
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}
}  // namespace

TEST_SUITE("connections") {

TEST_CASE("keep-alive: 200 requests of every kind on one connection") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());
  const auto alice = register_client(connection, "alice", make_test_key(1));
  const auto bob = register_client(connection, "bob", make_test_key(2));
  std::vector<std::uint32_t> sent_ids;
  for (int round = 0; round < 40; ++round) {
    CAPTURE(round);
    REQUIRE(list_clients(connection, alice).size() == 1);
    REQUIRE(get_public_key(connection, alice, bob).key == make_test_key(2));
    const protocol::byte_buffer content(static_cast<std::size_t>(round) * 37, static_cast<std::uint8_t>(round));
    sent_ids.push_back(send_message(connection, alice, bob, 3, content).message_id);
    if (round % 4 == 3) {
      const auto messages = pull(connection, bob);
      REQUIRE(messages.size() == 4);
      for (std::size_t i = 0; i < messages.size(); ++i) {
        CHECK(messages[i].header.message_id == sent_ids[sent_ids.size() - 4 + i]);
        CHECK(messages[i].content.size() == static_cast<std::size_t>(round - 3 + static_cast<int>(i)) * 37);
      }
    } else {
      REQUIRE(pull(connection, alice).empty());
    }
    check_error_response(connection.request(alice, 250, {}));  // errors keep the connection too
  }
}

TEST_CASE("one request per connection (legacy clients): connect, request, read, close") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  protocol::client_id alice{}, bob{};
  {
    raw_connection connection(server.port());
    alice = register_client(connection, "alice", make_test_key(1));
  }
  {
    raw_connection connection(server.port());
    bob = register_client(connection, "bob", make_test_key(2));
  }
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    {
      raw_connection connection(server.port());
      REQUIRE(list_clients(connection, alice).size() == 1);
    }
    {
      raw_connection connection(server.port());
      send_message(connection, alice, bob, 3, protocol::byte_buffer(16, static_cast<std::uint8_t>(round)));
    }
    {
      raw_connection connection(server.port());
      const auto messages = pull(connection, bob);
      REQUIRE(messages.size() == 1);
      CHECK(messages[0].content == protocol::byte_buffer(16, static_cast<std::uint8_t>(round)));
    }
  }
  // Legacy clients may also just close without reading the response.
  for (int round = 0; round < 10; ++round) {
    raw_connection connection(server.port());
    connection.send_request(alice, code_of(protocol::request_code::list_clients), {});
  }
  check_server_still_serves(server);
}

TEST_CASE("--timeout: a connection stalled inside a request header is closed without a response") {
  test_server server({"--timeout", "1"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());
  connection.send_bytes(protocol::byte_buffer(11, 0));  // half a header, then silence
  const auto start = clock_type::now();
  CHECK(connection.wait_for_close(6s) == close_outcome::closed);  // closed, and no byte came first
  const double waited = seconds_since(start);
  LETTERBOX_REPORT("stalled header closed after " << waited << " s (timeout 1 s)");
  CHECK(waited >= 0.8);
  check_server_still_serves(server);
}

TEST_CASE("--timeout: a connection stalled inside a request payload is closed, nothing registered") {
  test_server server({"--timeout", "1"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());
  const auto payload = protocol::encode_register_request({"stalled", make_test_key(1)});
  connection.send_header({}, code_of(protocol::request_code::register_client),
                         static_cast<std::uint32_t>(payload.size()));
  connection.send_bytes(protocol::bytes_view(payload).first(100));
  const auto start = clock_type::now();
  CHECK(connection.wait_for_close(6s) == close_outcome::closed);
  LETTERBOX_REPORT("stalled payload closed after " << seconds_since(start) << " s (timeout 1 s)");

  raw_connection probe(server.port());
  const auto viewer = register_client(probe, "viewer", make_test_key(2));
  CHECK(list_clients(probe, viewer).empty());  // "stalled" was never registered
}

TEST_CASE("--timeout: an idle keep-alive connection is closed after the timeout") {
  test_server server({"--timeout", "1"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());
  register_client(connection, "alice", make_test_key(1));
  const auto start = clock_type::now();
  CHECK(connection.wait_for_close(6s) == close_outcome::closed);
  LETTERBOX_REPORT("idle connection closed after " << seconds_since(start) << " s (timeout 1 s)");
}

TEST_CASE("--timeout: a connection that stays busy is not closed by the timeout") {
  test_server server({"--timeout", "1"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());
  const auto alice = register_client(connection, "alice", make_test_key(1));
  // 2.5 s of requests spaced well under the timeout: the deadline is per operation.
  for (int i = 0; i < 10; ++i) {
    std::this_thread::sleep_for(250ms);
    REQUIRE(list_clients(connection, alice).empty());
  }
}

TEST_CASE("graceful shutdown: SIGTERM with idle connections open exits 0 promptly") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  std::vector<raw_connection> idle;
  for (int i = 0; i < 5; ++i) idle.emplace_back(server.port());  // connected, never sent a byte
  const auto alice = register_client(idle[0], "alice", make_test_key(1));
  list_clients(idle[1], alice);                                    // between requests (keep-alive)
  idle[2].send_bytes(protocol::byte_buffer(5, 0));                 // inside a header

  const auto start = clock_type::now();
  const int status = server.stop(5s);  // bounded: SIGKILL + failure after 5 s
  LETTERBOX_REPORT("SIGTERM with 5 open connections: exit status " << status << " after " << seconds_since(start) << " s");
  CHECK(status == 0);
  CHECK(seconds_since(start) < 3.0);
  for (auto& connection : idle) CHECK(connection.wait_for_close(2s) == close_outcome::closed);
}

TEST_CASE("graceful shutdown: SIGINT exits 0 too") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());
  register_client(connection, "alice", make_test_key(1));
  server.send_signal(SIGINT);
  CHECK(server.wait_exit(5s) == 0);
}

TEST_CASE("concurrent clients: 8 senders x 40 messages to one mailbox, none lost or duplicated") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  constexpr int senders = 8;
  constexpr int per_sender = 40;
  struct sender_result {
    protocol::client_id id{};
    std::vector<std::uint32_t> message_ids;
    std::string error;
  };
  std::vector<sender_result> results(senders);
  std::vector<std::thread> threads;
  const auto start = clock_type::now();
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      try {  // no doctest assertions off the main thread
        raw_connection connection(fixture.server.port());
        results[s].id = register_client(connection, "sender-" + std::to_string(s), make_test_key(100 + s));
        for (int m = 0; m < per_sender; ++m) {
          const protocol::byte_buffer content(static_cast<std::size_t>(m + 1), static_cast<std::uint8_t>(s));
          if (m % 10 == 9) {  // now and then a fresh connection, like a legacy client
            connection = raw_connection(fixture.server.port());
          }
          results[s].message_ids.push_back(send_message(connection, results[s].id, fixture.bob, 3, content).message_id);
          if (m % 8 == 0) list_clients(connection, results[s].id);
        }
      } catch (const std::exception& error) {
        results[s].error = error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  LETTERBOX_REPORT(senders * per_sender << " concurrent sends in " << seconds_since(start) << " s");
  for (const auto& result : results) {
    CHECK(result.error.empty());
    CHECK(result.message_ids.size() == per_sender);
  }

  raw_connection connection(fixture.server.port());
  const auto received = pull_all(connection, fixture.bob);
  REQUIRE(received.size() == static_cast<std::size_t>(senders * per_sender));
  // Per sender: exactly its messages, in the order they were acknowledged, with their contents.
  for (int s = 0; s < senders; ++s) {
    CAPTURE(s);
    std::vector<std::uint32_t> ids;
    for (const auto& message : received) {
      if (message.header.from != results[s].id) continue;
      ids.push_back(message.header.message_id);
      CHECK(message.content ==
            protocol::byte_buffer(static_cast<std::size_t>(ids.size()), static_cast<std::uint8_t>(s)));
    }
    CHECK(ids == results[s].message_ids);
  }
}

TEST_CASE("pipelining: 20 requests in one write are answered in order") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  raw_connection connection(fixture.server.port());
  protocol::byte_buffer batch;
  std::vector<std::uint16_t> expected;
  auto add = [&](const protocol::client_id& who, protocol::request_code code, const protocol::byte_buffer& payload,
                 protocol::response_code answer) {
    const auto header = protocol::encode_request_header(
        {who, protocol::client_version, code_of(code), static_cast<std::uint32_t>(payload.size())});
    batch.insert(batch.end(), header.begin(), header.end());
    batch.insert(batch.end(), payload.begin(), payload.end());
    expected.push_back(code_of(answer));
  };
  for (int i = 0; i < 4; ++i) {
    auto send = protocol::encode_send_message_prefix({fixture.bob, 3, 8});
    send.resize(send.size() + 8, static_cast<std::uint8_t>(i));
    add(fixture.alice, protocol::request_code::send_message, send, protocol::response_code::message_sent);
    add(fixture.alice, protocol::request_code::list_clients, {}, protocol::response_code::client_list);
    add(fixture.alice, protocol::request_code::get_public_key, protocol::encode_get_public_key_request({fixture.bob}),
        protocol::response_code::public_key);
    // A bad request (small payload, read and discarded) in the middle of the stream.
    add(fixture.alice, protocol::request_code::list_clients, protocol::byte_buffer(5, 0xFF), protocol::response_code::error);
    add(fixture.bob, protocol::request_code::pull_messages, {}, protocol::response_code::messages);
  }
  connection.send_bytes(batch);
  std::size_t delivered = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    CAPTURE(i);
    const auto reply = connection.read_response();
    CHECK(reply.code() == expected[i]);
    if (reply.code() == code_of(protocol::response_code::messages)) {
      const auto messages = parse_pull_payload(reply.payload);
      REQUIRE(messages.size() == 1);  // each pull follows exactly one send
      CHECK(messages[0].content == protocol::byte_buffer(8, static_cast<std::uint8_t>(delivered)));
      ++delivered;
    }
  }
  CHECK(delivered == 4);
}

TEST_CASE("requests arriving one byte at a time are assembled") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  raw_connection connection(fixture.server.port());
  auto dribble = [&](const protocol::client_id& who, protocol::request_code code, const protocol::byte_buffer& payload) {
    const auto header = protocol::encode_request_header(
        {who, protocol::client_version, code_of(code), static_cast<std::uint32_t>(payload.size())});
    protocol::byte_buffer frame(header.begin(), header.end());
    frame.insert(frame.end(), payload.begin(), payload.end());
    for (std::size_t i = 0; i < frame.size(); ++i) {
      connection.send_bytes(protocol::bytes_view(frame).subspan(i, 1));
      if (i % 16 == 0) std::this_thread::sleep_for(1ms);  // separate segments
    }
    return connection.read_response();
  };
  const auto registered = dribble({}, protocol::request_code::register_client,
                                  protocol::encode_register_request({"carol", make_test_key(3)}));
  REQUIRE(registered.code() == code_of(protocol::response_code::registered));
  auto send = protocol::encode_send_message_prefix({fixture.bob, 3, 100});
  send.resize(send.size() + 100, 0x3C);
  CHECK(dribble(fixture.alice, protocol::request_code::send_message, send).code() ==
        code_of(protocol::response_code::message_sent));
  const auto pulled = dribble(fixture.bob, protocol::request_code::pull_messages, {});
  REQUIRE(pulled.code() == code_of(protocol::response_code::messages));
  const auto messages = parse_pull_payload(pulled.payload);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].content == protocol::byte_buffer(100, 0x3C));
}

}  // TEST_SUITE


// Shared pieces of the integration tests: a server with registered clients, assertions for
// the 9000 error answer and for "the server still serves", and doctest glue that prints the
// server log when an assertion fails.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <iostream>
#include <sstream>
#include <string>

#include "protocol_helpers.hpp"
#include "test_server.hpp"

namespace letterbox::test {

using namespace std::chrono_literals;

inline constexpr std::uint16_t error_code_9000 = code_of(protocol::response_code::error);

// Attach the server's log (read lazily, only when an assertion fails) to every assertion in scope.
#define LETTERBOX_ATTACH_SERVER_LOG(server) \
  INFO("server log " << (server).log_path().string() << " (tail):\n" << (server).log(4096))

// Prints a measured figure to stdout (kept in CTest's log). Not doctest's MESSAGE, which would
// also print every INFO in scope, the server log included.
#define LETTERBOX_REPORT(...)                                                                   \
  do {                                                                                         \
    std::ostringstream letterbox_report_text;                                                  \
    letterbox_report_text << __VA_ARGS__;                                                      \
    std::cout << "[measured] " << doctest::getContextOptions()->currentTest->m_name << ": "    \
              << letterbox_report_text.str() << std::endl;                                     \
  } while (false)

// A fresh server with two registered clients, alice and bob.
struct server_with_clients {
  test_server server;
  protocol::client_id alice{};
  protocol::client_id bob{};
  protocol::public_key alice_key = make_test_key(1);
  protocol::public_key bob_key = make_test_key(2);

  explicit server_with_clients(std::vector<std::string> extra_args = {}) : server(std::move(extra_args)) {
    raw_connection connection(server.port());
    alice = register_client(connection, "alice", alice_key);
    bob = register_client(connection, "bob", bob_key);
  }
  raw_connection connect() const { return raw_connection(server.port()); }
};

// An ID no server will have handed out.
inline protocol::client_id unknown_id() {
  protocol::client_id id{};
  id.fill(0xA5);
  return id;
}

// The response must be exactly 9000 with an empty payload (and server version 2).
inline void check_error_response(const response& reply) {
  CHECK(reply.header.version == protocol::server_version);
  CHECK(reply.code() == error_code_9000);
  CHECK(reply.header.payload_size == 0);
}

// The given connection still answers a well-formed request (101 from a registered client).
inline void check_connection_still_serves(raw_connection& connection, const protocol::client_id& registered) {
  const auto reply = connection.request(registered, code_of(protocol::request_code::list_clients), {});
  CHECK(reply.code() == code_of(protocol::response_code::client_list));
}

// A brand-new connection is accepted and served: a fresh registration succeeds.
inline void check_server_still_serves(const test_server& server) {
  static int counter = 0;
  raw_connection connection(server.port());
  const auto name = "still-serving-" + std::to_string(++counter);
  CHECK_NOTHROW(register_client(connection, name, make_test_key(99)));
}

}  // namespace letterbox::test

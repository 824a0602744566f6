// Every error rule of PROTOCOL.md, one test case each: the server answers 9000 with an empty
// payload, keeps the connection open (the rest of each bad request is small, <= 64 KiB, so the
// brief says it is read and discarded), and keeps serving new connections.
#include <algorithm>

#include "integration_support.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;

namespace {

constexpr auto register_code = code_of(protocol::request_code::register_client);
constexpr auto list_code = code_of(protocol::request_code::list_clients);
constexpr auto key_code = code_of(protocol::request_code::get_public_key);
constexpr auto send_code = code_of(protocol::request_code::send_message);
constexpr auto pull_code = code_of(protocol::request_code::pull_messages);

// Sends header + payload on `connection`, expects 9000/empty, then checks that the same
// connection and a new one are still served.
void check_rejected(server_with_clients& fixture, raw_connection& connection, const protocol::client_id& sender,
                    std::uint8_t code, protocol::bytes_view payload) {
  const auto reply = connection.request(sender, code, payload);
  check_error_response(reply);
  check_connection_still_serves(connection, fixture.alice);
  check_server_still_serves(fixture.server);
}

protocol::byte_buffer send_payload(const protocol::client_id& to, std::uint8_t type, std::uint32_t content_size,
                                   std::size_t actual_content_bytes) {
  auto payload = protocol::encode_send_message_prefix({to, type, content_size});
  payload.resize(payload.size() + actual_content_bytes, 0x5A);
  return payload;
}

protocol::byte_buffer register_payload_with_name_field(const std::array<std::uint8_t, protocol::name_field_size>& name) {
  protocol::byte_buffer payload(name.begin(), name.end());
  const auto key = make_test_key(7);
  payload.insert(payload.end(), key.begin(), key.end());
  return payload;
}

void check_mailbox_empty(server_with_clients& fixture, const protocol::client_id& who) {
  auto connection = fixture.connect();
  CHECK(pull(connection, who).empty());
}

}  // namespace

TEST_SUITE("errors") {

TEST_CASE("101 from an unregistered client ID -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, unknown_id(), list_code, {});
  check_rejected(fixture, connection, protocol::client_id{}, list_code, {});  // all-zero ID
}

TEST_CASE("102 from an unregistered client ID -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, unknown_id(), key_code, protocol::encode_get_public_key_request({fixture.bob}));
}

TEST_CASE("103 from an unregistered client ID -> 9000, nothing stored") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, unknown_id(), send_code, send_payload(fixture.bob, 3, 32, 32));
  check_mailbox_empty(fixture, fixture.bob);
}

TEST_CASE("104 from an unregistered client ID -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, unknown_id(), pull_code, {});
}

TEST_CASE("100 with a name that is already registered -> 9000, the first registration is kept") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, {}, register_code, protocol::encode_register_request({"bob", make_test_key(50)}));
  const auto listed = list_clients(connection, fixture.alice);
  CHECK(std::count_if(listed.begin(), listed.end(), [](const auto& e) { return e.name == "bob"; }) == 1);
  CHECK(get_public_key(connection, fixture.alice, fixture.bob).key == fixture.bob_key);
}

TEST_CASE("100 with a name field without NUL -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  std::array<std::uint8_t, protocol::name_field_size> name{};
  name.fill('z');  // 255 text bytes, no terminator
  check_rejected(fixture, connection, {}, register_code, register_payload_with_name_field(name));
  CHECK(list_clients(connection, fixture.alice).size() == 2);  // bob + the still-serving probe
}

TEST_CASE("100 with an empty name -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  const std::array<std::uint8_t, protocol::name_field_size> name{};  // all NUL
  check_rejected(fixture, connection, {}, register_code, register_payload_with_name_field(name));
}

TEST_CASE("100 with a payload size other than 415 -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  const auto good = protocol::encode_register_request({"carol", make_test_key(3)});
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, protocol::name_field_size, good.size() - 1,
                           good.size() + 1, std::size_t{4096}}) {
    CAPTURE(size);
    protocol::byte_buffer payload = good;
    payload.resize(size, 0);
    check_rejected(fixture, connection, {}, register_code, payload);
  }
  // None of them registered "carol".
  const auto listed = list_clients(connection, fixture.alice);
  CHECK(std::none_of(listed.begin(), listed.end(), [](const auto& e) { return e.name == "carol"; }));
}

TEST_CASE("101 with a non-empty payload -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  for (std::size_t size : {1, 16, 1000}) {
    CAPTURE(size);
    check_rejected(fixture, connection, fixture.alice, list_code, protocol::byte_buffer(size, 0));
  }
}

TEST_CASE("102 with a payload size other than 16 -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  for (std::size_t size : {0, 15, 17, 32}) {
    CAPTURE(size);
    protocol::byte_buffer payload(fixture.bob.begin(), fixture.bob.end());
    payload.resize(size, 0);
    check_rejected(fixture, connection, fixture.alice, key_code, payload);
  }
}

TEST_CASE("104 with a non-empty payload -> 9000, nothing is delivered") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  send_message(connection, fixture.alice, fixture.bob, 3, protocol::byte_buffer(16, 1));
  for (std::size_t size : {1, 16}) {
    CAPTURE(size);
    check_rejected(fixture, connection, fixture.bob, pull_code, protocol::byte_buffer(size, 0));
  }
  CHECK(pull(connection, fixture.bob).size() == 1);  // the message survived the bad pulls
}

TEST_CASE("103 with payload size != 21 + content size -> 9000, nothing stored") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  SUBCASE("one byte more than announced") {
    check_rejected(fixture, connection, fixture.alice, send_code, send_payload(fixture.bob, 3, 32, 33));
  }
  SUBCASE("one byte less than announced") {
    check_rejected(fixture, connection, fixture.alice, send_code, send_payload(fixture.bob, 3, 32, 31));
  }
  SUBCASE("content size claims 4 GiB, payload is small") {
    check_rejected(fixture, connection, fixture.alice, send_code, send_payload(fixture.bob, 4, 0xFFFF'FFFFu, 100));
  }
  SUBCASE("payload shorter than the 21-byte prefix") {
    auto payload = send_payload(fixture.bob, 1, 0, 0);
    payload.resize(20);
    check_rejected(fixture, connection, fixture.alice, send_code, payload);
  }
  SUBCASE("empty payload") {
    check_rejected(fixture, connection, fixture.alice, send_code, {});
  }
  check_mailbox_empty(fixture, fixture.bob);
}

TEST_CASE("103 to an unknown destination -> 9000, nothing stored") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, fixture.alice, send_code, send_payload(unknown_id(), 3, 16, 16));
  check_mailbox_empty(fixture, fixture.bob);
  check_mailbox_empty(fixture, fixture.alice);
}

TEST_CASE("103 with message type 0 -> 9000, nothing stored") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, fixture.alice, send_code, send_payload(fixture.bob, 0, 16, 16));
  check_mailbox_empty(fixture, fixture.bob);
}

TEST_CASE("103 with message type 5 (and 255) -> 9000, nothing stored") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, fixture.alice, send_code, send_payload(fixture.bob, 5, 16, 16));
  check_rejected(fixture, connection, fixture.alice, send_code, send_payload(fixture.bob, 255, 0, 0));
  check_mailbox_empty(fixture, fixture.bob);
}

TEST_CASE("103 of type 1 with content -> 9000, nothing stored") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, fixture.alice, send_code, send_payload(fixture.bob, 1, 5, 5));
  check_mailbox_empty(fixture, fixture.bob);
}

TEST_CASE("unknown request codes -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  for (std::uint8_t code : {0, 1, 99, 105, 110, 200, 255}) {
    CAPTURE(int{code});
    check_rejected(fixture, connection, fixture.alice, code, {});
  }
  // ... also with a small payload, and from an unregistered ID.
  check_rejected(fixture, connection, fixture.alice, 150, protocol::byte_buffer(300, 0xEE));
  check_rejected(fixture, connection, unknown_id(), 99, protocol::byte_buffer(16, 0));
}

TEST_CASE("102 for an unknown client -> 9000") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  check_rejected(fixture, connection, fixture.alice, key_code, protocol::encode_get_public_key_request({unknown_id()}));
}

TEST_CASE("a bad request between good ones on one connection does not disturb them") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  const auto first = send_message(connection, fixture.alice, fixture.bob, 3, protocol::byte_buffer(10, 1));
  check_error_response(connection.request(fixture.alice, send_code, send_payload(fixture.bob, 9, 4, 4)));
  const auto second = send_message(connection, fixture.alice, fixture.bob, 3, protocol::byte_buffer(10, 2));
  const auto messages = pull(connection, fixture.bob);
  REQUIRE(messages.size() == 2);
  CHECK(messages[0].header.message_id == first.message_id);
  CHECK(messages[1].header.message_id == second.message_id);
}

TEST_CASE("a bad request with exactly 64 KiB of payload -> 9000 and the connection stays open") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  constexpr std::size_t limit = 64 * 1024;
  check_rejected(fixture, connection, fixture.alice, 200, protocol::byte_buffer(limit, 0xAB));        // unknown code
  check_rejected(fixture, connection, fixture.alice, list_code, protocol::byte_buffer(limit, 0xAB));  // wrong size
  check_rejected(fixture, connection, unknown_id(), pull_code, protocol::byte_buffer(limit, 0xAB));   // unregistered
  check_rejected(fixture, connection, fixture.alice, send_code,                                      // bad type
                 send_payload(fixture.bob, 7, limit - protocol::send_message_prefix_size,
                              limit - protocol::send_message_prefix_size));
  check_mailbox_empty(fixture, fixture.bob);
}

}  // TEST_SUITE


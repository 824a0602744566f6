// Every request of protocol v1 (100–104) against the real server, with its exact success
// payload byte for byte, plus the last-seen time the server must record in server.db.
#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <thread>

#include "integration_support.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;
using namespace std::string_view_literals;

namespace {

protocol::byte_buffer bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

// LastSeen of a client as SQLite sees it: the stored text and its Julian day (NULL if SQLite
// can't parse it as a datetime).
struct last_seen_row {
  bool found = false;
  bool is_null = true;
  std::string text;
  bool parses = false;
  double seconds_from_now_utc = 0;  // stored time minus SQLite's 'now' (UTC), in seconds
  double julian_day = 0;
};

last_seen_row read_last_seen(const std::filesystem::path& db_path, const protocol::client_id& id) {
  SQLite::Database db(db_path.string(), SQLite::OPEN_READONLY);
  db.setBusyTimeout(5000);
  SQLite::Statement query(db,
                          "SELECT LastSeen, julianday(LastSeen), "
                          "(julianday(LastSeen) - julianday('now')) * 86400.0 FROM clients WHERE ID = ?");
  query.bind(1, id.data(), static_cast<int>(id.size()));
  last_seen_row row;
  if (!query.executeStep()) return row;
  row.found = true;
  row.is_null = query.getColumn(0).isNull();
  if (!row.is_null) row.text = query.getColumn(0).getString();
  row.parses = !query.getColumn(1).isNull();
  if (row.parses) {
    row.julian_day = query.getColumn(1).getDouble();
    row.seconds_from_now_utc = query.getColumn(2).getDouble();
  }
  return row;
}

}  // namespace

TEST_SUITE("requests") {

TEST_CASE("100 register: 1000 with a 16-byte client ID, distinct per client, header ID ignored") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());

  protocol::client_id garbage_header_id{};
  garbage_header_id.fill(0x77);  // "ignored for code 100"
  const auto payload = protocol::encode_register_request({"alice", make_test_key(1)});
  const auto first = connection.request(garbage_header_id, code_of(protocol::request_code::register_client), payload);
  CHECK(first.header.version == protocol::server_version);
  REQUIRE(first.code() == code_of(protocol::response_code::registered));
  REQUIRE(first.header.payload_size == protocol::client_id_size);

  const auto second = register_client(connection, "bob", make_test_key(2));
  protocol::client_id first_id{};
  std::copy(first.payload.begin(), first.payload.end(), first_id.begin());
  CHECK(first_id != second);
  CHECK(first_id != protocol::client_id{});
  CHECK(second != protocol::client_id{});
}

TEST_CASE("100 register: names of 1 and 254 bytes and UTF-8 names are accepted and listed exactly") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());
  const std::string longest(protocol::max_name_length, 'n');
  const std::string utf8 = "J\xC3\xBCrgen \xE6\x9D\x8E";  // "Jürgen 李"
  const auto viewer = register_client(connection, "viewer", make_test_key(1));
  const auto shortest_id = register_client(connection, "x", make_test_key(2));
  const auto longest_id = register_client(connection, longest, make_test_key(3));
  const auto utf8_id = register_client(connection, utf8, make_test_key(4));

  const auto listed = list_clients(connection, viewer);
  REQUIRE(listed.size() == 3);
  auto has = [&](const protocol::client_id& id, const std::string& name) {
    return std::count(listed.begin(), listed.end(), protocol::client_entry{id, name}) == 1;
  };
  CHECK(has(shortest_id, "x"));
  CHECK(has(longest_id, longest));
  CHECK(has(utf8_id, utf8));
}

TEST_CASE("101 list: 1001 with ID[16] + NUL-padded name[255] of every other client, requester excluded") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  raw_connection connection(server.port());
  const auto alice = register_client(connection, "alice", make_test_key(1));

  // Alone: an empty list.
  const auto alone = connection.request(alice, code_of(protocol::request_code::list_clients), {});
  CHECK(alone.header.version == protocol::server_version);
  REQUIRE(alone.code() == code_of(protocol::response_code::client_list));
  CHECK(alone.header.payload_size == 0);

  const auto bob = register_client(connection, "bob", make_test_key(2));
  const auto carol = register_client(connection, "carol", make_test_key(3));
  const auto reply = connection.request(alice, code_of(protocol::request_code::list_clients), {});
  REQUIRE(reply.code() == code_of(protocol::response_code::client_list));
  REQUIRE(reply.payload.size() == 2 * protocol::client_list_entry_size);

  // Byte-exact entries, in any order.
  auto entry_bytes = [](const protocol::client_id& id, const std::string& name) {
    protocol::byte_buffer entry(id.begin(), id.end());
    const auto field = protocol::encode_name(name);
    entry.insert(entry.end(), field.begin(), field.end());
    return entry;
  };
  const protocol::byte_buffer first(reply.payload.begin(), reply.payload.begin() + protocol::client_list_entry_size);
  const protocol::byte_buffer second(reply.payload.begin() + protocol::client_list_entry_size, reply.payload.end());
  const auto bob_entry = entry_bytes(bob, "bob");
  const auto carol_entry = entry_bytes(carol, "carol");
  CHECK(((first == bob_entry && second == carol_entry) || (first == carol_entry && second == bob_entry)));

  // Each requester sees the others, never itself.
  for (const auto& self : {alice, bob, carol}) {
    const auto others = list_clients(connection, self);
    CHECK(others.size() == 2);
    CHECK(std::none_of(others.begin(), others.end(), [&](const auto& e) { return e.id == self; }));
  }
}

TEST_CASE("102 get public key: 1002 with the client ID + the exact registered key") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  const auto payload = protocol::encode_get_public_key_request({fixture.bob});
  const auto reply = connection.request(fixture.alice, code_of(protocol::request_code::get_public_key), payload);
  CHECK(reply.header.version == protocol::server_version);
  REQUIRE(reply.code() == code_of(protocol::response_code::public_key));
  REQUIRE(reply.payload.size() == protocol::public_key_response_size);
  protocol::byte_buffer expected(fixture.bob.begin(), fixture.bob.end());
  expected.insert(expected.end(), fixture.bob_key.begin(), fixture.bob_key.end());
  CHECK(reply.payload == expected);

  // A client may ask for its own key.
  const auto own = get_public_key(connection, fixture.alice, fixture.alice);
  CHECK(own.id == fixture.alice);
  CHECK(own.key == fixture.alice_key);
}

TEST_CASE("103 send: 1003 with the to-client ID + a message ID, for every type") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();

  const protocol::byte_buffer encrypted_key(protocol::encrypted_symmetric_key_size, 0x42);
  const auto text = bytes_of("sixteen bytes!!!");
  const protocol::byte_buffer file(100'000, 0x17);
  const std::vector<std::pair<std::uint8_t, protocol::byte_buffer>> sends = {
      {1, {}}, {2, encrypted_key}, {3, text}, {4, file}, {4, {}}};
  std::vector<std::uint32_t> ids;
  for (const auto& [type, content] : sends) {
    CAPTURE(int{type});
    auto payload = protocol::encode_send_message_prefix({fixture.bob, type, static_cast<std::uint32_t>(content.size())});
    payload.insert(payload.end(), content.begin(), content.end());
    const auto reply = connection.request(fixture.alice, code_of(protocol::request_code::send_message), payload);
    CHECK(reply.header.version == protocol::server_version);
    REQUIRE(reply.code() == code_of(protocol::response_code::message_sent));
    REQUIRE(reply.payload.size() == protocol::message_sent_response_size);
    CHECK(std::equal(fixture.bob.begin(), fixture.bob.end(), reply.payload.begin()));
    ids.push_back(protocol::decode_message_sent_payload(reply.payload).message_id);
  }
  std::sort(ids.begin(), ids.end());
  CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());  // unique message IDs

  // Sending to oneself is allowed by the protocol.
  CHECK(send_message(connection, fixture.alice, fixture.alice, 3, text).to == fixture.alice);
}

TEST_CASE("104 pull: 1004 with every message in send order, exact bytes; then the mailbox is empty") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();

  // Empty mailbox: 1004 with an empty payload.
  const auto empty = connection.request(fixture.bob, code_of(protocol::request_code::pull_messages), {});
  CHECK(empty.header.version == protocol::server_version);
  REQUIRE(empty.code() == code_of(protocol::response_code::messages));
  CHECK(empty.header.payload_size == 0);

  struct sent {
    protocol::client_id from;
    std::uint8_t type;
    protocol::byte_buffer content;
    std::uint32_t id = 0;
  };
  const auto carol = register_client(connection, "carol", make_test_key(3));
  std::vector<sent> sends = {
      {fixture.alice, 1, {}},
      {carol, 2, protocol::byte_buffer(protocol::encrypted_symmetric_key_size, 0x99)},
      {fixture.alice, 3, bytes_of("hello bob, with a NUL\0 inside"sv)},
      {fixture.alice, 4, protocol::byte_buffer(70'000, 0x00)},
      {carol, 3, {}},
  };
  sends[3].content[0] = 1;
  sends[3].content.back() = 2;
  for (auto& message : sends)
    message.id = send_message(connection, message.from, fixture.bob, message.type, message.content).message_id;
  // A message for someone else must not show up in bob's pull.
  send_message(connection, fixture.bob, fixture.alice, 3, bytes_of("for alice"));

  const auto reply = connection.request(fixture.bob, code_of(protocol::request_code::pull_messages), {});
  REQUIRE(reply.code() == code_of(protocol::response_code::messages));
  // Byte-exact payload: from[16] id[4] type[1] size[4] content, in send order.
  protocol::byte_buffer expected;
  for (const auto& message : sends) {
    const auto header = protocol::encode_pulled_message_header(
        {message.from, message.id, message.type, static_cast<std::uint32_t>(message.content.size())});
    expected.insert(expected.end(), header.begin(), header.end());
    expected.insert(expected.end(), message.content.begin(), message.content.end());
  }
  CHECK(reply.payload.size() == expected.size());
  CHECK(reply.payload == expected);

  const auto after = connection.request(fixture.bob, code_of(protocol::request_code::pull_messages), {});
  REQUIRE(after.code() == code_of(protocol::response_code::messages));
  CHECK(after.header.payload_size == 0);

  // Alice's mailbox was untouched by bob's pulls.
  const auto alice_messages = pull(connection, fixture.alice);
  REQUIRE(alice_messages.size() == 1);
  CHECK(alice_messages[0].header.from == fixture.bob);
  CHECK(alice_messages[0].content == bytes_of("for alice"));
}

TEST_CASE("requests with any client version byte are accepted") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  for (std::uint8_t version : {0, 1, 2, 3, 255}) {
    CAPTURE(int{version});
    connection.send_request(fixture.alice, code_of(protocol::request_code::list_clients), {}, version);
    CHECK(connection.read_response().code() == code_of(protocol::response_code::client_list));
  }
}

TEST_CASE("LastSeen: every 101-104 request records a UTC datetime in clients.LastSeen") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  auto connection = fixture.connect();
  list_clients(connection, fixture.alice);

  const auto first = read_last_seen(fixture.server.db_path(), fixture.alice);
  REQUIRE(first.found);
  INFO("LastSeen = '" << first.text << "'");
  REQUIRE_FALSE(first.is_null);
  REQUIRE(first.parses);                                   // SQLite reads it as a datetime
  CHECK(std::abs(first.seconds_from_now_utc) < 120.0);    // and it is *now* in UTC

  // Later requests move it forward (SQLite datetimes may have 1-second resolution).
  const std::vector<std::pair<std::uint8_t, protocol::byte_buffer>> requests = {
      {code_of(protocol::request_code::get_public_key), protocol::encode_get_public_key_request({fixture.bob})},
      {code_of(protocol::request_code::send_message), protocol::encode_send_message_prefix({fixture.bob, 1, 0})},
      {code_of(protocol::request_code::pull_messages), {}},
      {code_of(protocol::request_code::list_clients), {}},
  };
  double previous = first.julian_day;
  for (const auto& [code, payload] : requests) {
    CAPTURE(int{code});
    std::this_thread::sleep_for(1100ms);
    const auto reply = connection.request(fixture.alice, code, payload);
    CHECK(reply.code() != error_code_9000);
    const auto now = read_last_seen(fixture.server.db_path(), fixture.alice);
    INFO("LastSeen = '" << now.text << "'");
    REQUIRE(now.parses);
    CHECK(now.julian_day > previous);
    previous = now.julian_day;
  }
}

}  // TEST_SUITE

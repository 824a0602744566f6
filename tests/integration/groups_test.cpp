// Groups on protocol v2 against the real server over loopback (docs/PROTOCOL.md Part IV):
// create / invite / join / leave / kick / ban / unban / handover / members / groups with their
// errors, a group send reaching every member's mailbox (online and offline) but not a kicked
// one, the PULL entry of a group message (flag bit 1, group ID first), a banned client that
// cannot rejoin, a large group file stored once (one spool file for every member) and removed
// after the last ACK, groups surviving a restart, and the limits. Codec-level clients
// (tests/support/v2_helpers.hpp) with real Ed25519 identities.
#include <SQLiteCpp/Database.h>

#include <filesystem>
#include <thread>

#include "integration_support.hpp"
#include "v2_helpers.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;
using protocol::byte_buffer;
using protocol::client_id;
using code = v2::group_request_code;

namespace {

constexpr auto reason_of(v2::reason why) { return static_cast<std::uint16_t>(why); }

// A server with `n` registered v2 clients c0..c(n-1).
struct group_server {
  test_server server;
  std::vector<v2_identity> clients;
  explicit group_server(int n, std::vector<std::string> extra_args = {}) : server(std::move(extra_args)) {
    for (int i = 0; i < n; ++i) {
      std::string name = "c";  // not "c" + std::to_string(i): g++ 12 -O3 warns -Wrestrict (falsely)
      name += std::to_string(i);
      clients.push_back(make_v2_identity(name));
      raw_connection connection(server.port());
      v2_register(connection, clients.back());
    }
  }
  raw_connection as(int i) const {
    raw_connection connection(server.port());
    v2_authenticate(connection, clients.at(static_cast<std::size_t>(i)));
    return connection;
  }
  const client_id& id(int i) const { return clients.at(static_cast<std::size_t>(i)).id; }
};

byte_buffer target(const v2::group_id& g, const client_id& c) { return v2::encode_group_target_request({g, c}); }
byte_buffer group_only(const v2::group_id& g) { return v2::encode_group_payload(g); }

std::size_t spool_files(const test_server& server) {
  std::size_t n = 0;
  if (std::filesystem::exists(server.spool_directory()))
    for (const auto& entry : std::filesystem::directory_iterator(server.spool_directory()))
      if (entry.is_regular_file()) ++n;
  return n;
}

// Waits (bounded) until the spool directory holds `n` files; the server removes them on its file pool.
bool wait_for_spool_files(const test_server& server, std::size_t n) {
  for (int i = 0; i < 200; ++i) {
    if (spool_files(server) == n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return spool_files(server) == n;
}

}  // namespace

TEST_SUITE("groups") {

TEST_CASE("groups: requests before authentication are bad_state; wrong sizes are malformed; the connection is kept") {
  group_server s(1);
  raw_connection anonymous(s.server.port());
  v2_hello(anonymous);
  CHECK(v2_group_refusal(anonymous, code::create, v2::encode_group_create_request({"room", true})) ==
        reason_of(v2::reason::bad_state));
  CHECK(v2_group_refusal(anonymous, code::list, {}) == reason_of(v2::reason::bad_state));
  auto c0 = s.as(0);
  CHECK(v2_group_refusal(c0, code::join, byte_buffer(15, 0)) == reason_of(v2::reason::malformed));
  CHECK(v2_group_refusal(c0, code::list, byte_buffer(1, 0)) == reason_of(v2::reason::malformed));
  auto bad_flags = v2::encode_group_create_request({"room", true});
  bad_flags.back() = 0x80;
  CHECK(v2_group_refusal(c0, code::create, bad_flags) == reason_of(v2::reason::malformed));
  CHECK(v2_group_refusal(c0, code::join, group_only(v2::group_id{})) == reason_of(v2::reason::unknown_group));
  CHECK(v2_groups(c0).empty());  // still served on the same connection
}

TEST_CASE("groups: create, join, invite, members, handover, leave: the flows with their errors over loopback") {
  group_server s(4);
  auto admin = s.as(0), bob = s.as(1), carol = s.as(2), dave = s.as(3);
  const auto room = v2_group_create(admin, "room", true);
  const auto club = v2_group_create(admin, "club", false);
  v2_group_only(bob, code::join, room);
  CHECK(v2_group_refusal(carol, code::join, group_only(club)) == reason_of(v2::reason::not_invited));
  CHECK(v2_group_refusal(bob, code::invite, target(club, s.id(2))) == reason_of(v2::reason::not_admin));
  v2_group_target(admin, code::invite, club, s.id(2));
  v2_group_only(carol, code::join, club);
  CHECK(v2_group_members(carol, club) ==
        std::vector<v2::group_member_entry>{{s.id(0), v2::member_flag_admin}, {s.id(2), 0}});
  CHECK(v2_group_refusal(dave, code::members, group_only(club)) == reason_of(v2::reason::not_a_member));
  // GROUPS: dave sees only the open room; carol sees both
  const auto seen_by_dave = v2_groups(dave);
  REQUIRE(seen_by_dave.size() == 1);
  CHECK(seen_by_dave[0] == v2::group_entry{room, "room", v2::group_entry_open, 2});
  const auto seen_by_carol = v2_groups(carol);
  REQUIRE(seen_by_carol.size() == 2);
  CHECK(seen_by_carol[1] == v2::group_entry{club, "club", v2::group_entry_member, 2});
  // HANDOVER, then the old admin cannot kick
  CHECK(v2_group_refusal(admin, code::handover, target(room, s.id(3))) == reason_of(v2::reason::not_a_member));
  v2_group_target(admin, code::handover, room, s.id(1));
  CHECK(v2_group_refusal(admin, code::kick, target(room, s.id(1))) == reason_of(v2::reason::not_admin));
  CHECK(v2_group_members(admin, room) == std::vector<v2::group_member_entry>{{s.id(0), 0}, {s.id(1), v2::member_flag_admin}});
  // the admin leaving hands over to the earliest member; the last one leaving deletes the group
  v2_group_only(admin, code::leave, club);
  CHECK(v2_group_members(carol, club) == std::vector<v2::group_member_entry>{{s.id(2), v2::member_flag_admin}});
  CHECK(v2_group_refusal(admin, code::leave, group_only(club)) == reason_of(v2::reason::not_a_member));
  v2_group_only(carol, code::leave, club);
  CHECK(v2_group_refusal(carol, code::members, group_only(club)) == reason_of(v2::reason::unknown_group));
}

TEST_CASE("groups: kick and ban: a banned client cannot rejoin or be invited until unbanned") {
  group_server s(3);
  auto admin = s.as(0), bob = s.as(1), carol = s.as(2);
  const auto room = v2_group_create(admin, "room", true);
  v2_group_only(bob, code::join, room);
  v2_group_only(carol, code::join, room);
  CHECK(v2_group_refusal(bob, code::ban, target(room, s.id(2))) == reason_of(v2::reason::not_admin));
  CHECK(v2_group_refusal(admin, code::kick, target(room, s.id(0))) == reason_of(v2::reason::malformed));
  v2_group_target(admin, code::kick, room, s.id(1));
  v2_group_only(bob, code::join, room);  // an open group: a kicked member may come back
  v2_group_target(admin, code::ban, room, s.id(1));
  CHECK(v2_group_refusal(bob, code::join, group_only(room)) == reason_of(v2::reason::banned));
  CHECK(v2_group_refusal(admin, code::invite, target(room, s.id(1))) == reason_of(v2::reason::banned));
  CHECK(v2_group_refusal(bob, code::send, [&] {
          auto p = v2::encode_send_message_prefix({room, 18, 3});
          p.insert(p.end(), {1, 2, 3});
          return p;
        }()) == reason_of(v2::reason::not_a_member));
  v2_group_target(admin, code::unban, room, s.id(1));
  v2_group_only(bob, code::join, room);
  CHECK(v2_group_members(bob, room).size() == 3);
}

TEST_CASE("groups: a group send reaches every member's mailbox, online and offline, not the sender's nor a kicked one's") {
  group_server s(5);
  auto admin = s.as(0), bob = s.as(1), carol = s.as(2);
  const auto room = v2_group_create(admin, "room", true);
  for (int i = 1; i <= 4; ++i) {
    auto c = s.as(i);
    v2_group_only(c, code::join, room);
  }
  v2_group_target(admin, code::kick, room, s.id(4));  // c4 gets nothing sent after this
  const byte_buffer content{'s', 'e', 'a', 'l', 'e', 'd'};
  CHECK(v2_group_send(bob, room, v2::group_text_type, content) == v2::group_sent{room, 3, 0});
  CHECK(v2_group_refusal(bob, code::send, [&] {
          auto p = v2::encode_send_message_prefix({room, 16, 1});
          p.push_back(0);
          return p;
        }()) == reason_of(v2::reason::type_not_accepted));
  byte_buffer expected(room.begin(), room.end());
  expected.insert(expected.end(), content.begin(), content.end());
  for (int i : {0, 2, 3}) {  // c0 and c2 are online (connected now), c3 connects only now (offline until then)
    CAPTURE(i);
    raw_connection fresh = (i == 3) ? s.as(3) : raw_connection(s.server.port());
    raw_connection& reader = (i == 0) ? admin : (i == 2) ? carol : fresh;
    const auto pulled = v2_pull(reader);
    REQUIRE(pulled.size() == 1);
    CHECK(pulled[0].header.from == s.id(1));
    CHECK(pulled[0].header.type == v2::group_text_type);
    CHECK(pulled[0].header.flags == v2::message_flag_group);
    CHECK(pulled[0].content == expected);
    CHECK(v2_ack(reader, {pulled[0].header.message_id}) == 1);
  }
  CHECK(v2_pull(bob).empty());  // not to the sender
  auto kicked = s.as(4);
  CHECK(v2_pull(kicked).empty());
  // a direct message keeps the §15 entry: flag bit 1 clear
  v2_send(admin, s.id(1), 16, byte_buffer{9});
  const auto direct = v2_pull(bob);
  REQUIRE(direct.size() == 1);
  CHECK(direct[0].header.flags == 0);
  CHECK(direct[0].content == byte_buffer{9});
}

TEST_CASE("groups: a large group file is one spool file for every member, removed after the last ACK; groups survive a restart") {
  constexpr int members = 6;
  group_server s(members);
  auto sender = s.as(0);
  const auto room = v2_group_create(sender, "files", false);
  for (int i = 1; i < members; ++i) {
    v2_group_target(sender, code::invite, room, s.id(i));
    auto c = s.as(i);
    v2_group_only(c, code::join, room);
  }
  byte_buffer file(3 * 1024 * 1024 + 17);
  for (std::size_t i = 0; i < file.size(); ++i) file[i] = static_cast<std::uint8_t>(i * 7 + 3);
  CHECK(wait_for_spool_files(s.server, 0));
  CHECK(v2_group_send(sender, room, v2::group_file_type, file) == v2::group_sent{room, members - 1, 0});
  CHECK(spool_files(s.server) == 1);  // stored once
  {
    SQLite::Database db(s.server.db_path().string(), SQLite::OPEN_READONLY);
    CHECK(db.execAndGet("SELECT count(*) FROM contents").getInt() == 1);
    CHECK(db.execAndGet("SELECT count(*) FROM messages WHERE ContentRef IS NOT NULL AND Content IS NULL AND ContentFile IS NULL").getInt() ==
          members - 1);
  }
  s.server.restart();  // groups, members and the shared content survive
  {
    auto c1 = s.as(1);
    CHECK(v2_group_members(c1, room).size() == members);
    CHECK(spool_files(s.server) == 1);
  }
  for (int i = 1; i < members; ++i) {
    CAPTURE(i);
    auto c = s.as(i);
    const auto pulled = v2_pull(c);
    REQUIRE(pulled.size() == 1);
    CHECK(pulled[0].header.flags == v2::message_flag_group);
    CHECK(pulled[0].header.content_size == 16 + file.size());
    CHECK(std::equal(room.begin(), room.end(), pulled[0].content.begin()));
    CHECK(std::equal(file.begin(), file.end(), pulled[0].content.begin() + 16, pulled[0].content.end()));
    CHECK(v2_ack(c, {pulled[0].header.message_id}) == 1);
    CHECK(wait_for_spool_files(s.server, i + 1 < members ? 1 : 0));  // until the last ACK
  }
  SQLite::Database db(s.server.db_path().string(), SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("SELECT count(*) FROM contents").getInt() == 0);
}

TEST_CASE("groups: a large group send from a non-member is refused before its content is received") {
  group_server s(2, {"--inline-limit", "1024"});
  auto admin = s.as(0);
  const auto room = v2_group_create(admin, "room", true);
  // The prefix alone: the refusal comes before any content byte (and closes: R > 64 KiB).
  auto c = s.as(1);
  auto front = protocol::encode_request_front(client_id{}, v2::wire_version, static_cast<std::uint8_t>(code::send),
                                              21 + 100'000, v2::encode_send_message_prefix({room, 19, 100'000}));
  c.send_bytes(front);
  CHECK(v2_error_reason(c.read_response()) == reason_of(v2::reason::not_a_member));
  CHECK(c.wait_for_close(std::chrono::seconds(5)) == close_outcome::closed);
  CHECK(wait_for_spool_files(s.server, 0));
}

TEST_CASE("groups: limits: --max-groups-per-user and --max-group-members are refused with their reasons") {
  group_server s(3, {"--max-groups-per-user", "1", "--max-group-members", "2"});
  auto c0 = s.as(0), c1 = s.as(1), c2 = s.as(2);
  const auto room = v2_group_create(c0, "room", true);
  CHECK(v2_group_refusal(c0, code::create, v2::encode_group_create_request({"second", true})) ==
        reason_of(v2::reason::too_many_groups));
  v2_group_only(c1, code::join, room);
  CHECK(v2_group_refusal(c2, code::join, group_only(room)) == reason_of(v2::reason::group_full));
  const auto other = v2_group_create(c2, "other", true);
  v2_group_only(c1, code::leave, room);
  v2_group_only(c1, code::join, other);
  CHECK(v2_group_refusal(c1, code::join, group_only(room)) == reason_of(v2::reason::too_many_groups));
}

}  // TEST_SUITE

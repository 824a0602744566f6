// Attacks on the v2 server (docs/PROTOCOL.md §20) beyond v2_test.cpp: the v1 lock with every
// version byte and on an authenticated connection, a v2 code naming a client, ACKs of another
// mailbox's IDs, and leases that a second connection of the owner always breaks.
#include <algorithm>

#include "integration_support.hpp"
#include "v2_helpers.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;
using protocol::byte_buffer;
using protocol::client_id;

namespace {

void check_v1_error(const response& reply) {
  CHECK(reply.header.version == protocol::server_version);
  CHECK(reply.code() == 9000);
  CHECK(reply.payload.empty());
}

byte_buffer bytes_of(std::string_view text) { return byte_buffer(text.begin(), text.end()); }
constexpr std::uint8_t sealed_text = static_cast<std::uint8_t>(v2::message_type::sealed_text);

}  // namespace

TEST_SUITE("v2") {

TEST_CASE("attack v2: the v1 lock holds for every version byte, on an authenticated connection, and for v2 codes naming a client") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  const auto alice = make_v2_identity("alice");
  const auto bob = make_v2_identity("bob");
  {
    raw_connection a(server.port()), b(server.port());
    v2_register(a, alice);
    v2_register(b, bob);
  }
  raw_connection bob_link(server.port());
  v2_authenticate(bob_link, bob);
  v2_send(bob_link, alice.id, sealed_text, bytes_of("for alice"));
  v2_send(bob_link, bob.id, sealed_text, bytes_of("note to self"));
  // v1 104 naming alice (and bob on bob's own authenticated connection), any version byte.
  for (const std::uint8_t version : {0, 1, 2, 3, 4, 200, 255}) {
    CAPTURE(int(version));
    bob_link.send_request(alice.id, 104, {}, version);
    check_v1_error(bob_link.read_response());
    bob_link.send_request(bob.id, 104, {}, version);
    check_v1_error(bob_link.read_response());
  }
  // v2 codes with a client ID in the header: unknown v1 codes, whatever the connection proved.
  for (const std::uint8_t code : {203, 204, 205, 206, 207}) {
    CAPTURE(int(code));
    bob_link.send_request(bob.id, code, {}, v2::wire_version);
    check_v1_error(bob_link.read_response());
  }
  // Still one message each, and the connection serves v2.
  const auto mine = v2_pull(bob_link);
  REQUIRE(mine.size() == 1);
  CHECK(mine[0].content == bytes_of("note to self"));
  auto alice_link = raw_connection(server.port());
  v2_authenticate(alice_link, alice);
  const auto hers = v2_pull(alice_link);
  REQUIRE(hers.size() == 1);
  CHECK(hers[0].content == bytes_of("for alice"));
}

TEST_CASE("attack v2: an ACK removes only the requester's messages, whatever IDs it names (65,536 of them)") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  const auto alice = make_v2_identity("alice");
  const auto bob = make_v2_identity("bob");
  raw_connection a(server.port()), b(server.port());
  v2_register(a, alice);
  v2_register(b, bob);
  const auto to_alice = v2_send(b, alice.id, sealed_text, bytes_of("for alice"));
  std::vector<std::uint32_t> every_id(v2::max_ack_ids);
  for (std::uint32_t i = 0; i < every_id.size(); ++i) every_id[i] = i;  // includes alice's message ID
  CHECK(std::find(every_id.begin(), every_id.end(), to_alice.message_id) != every_id.end());
  CHECK(v2_ack(b, every_id) == 0);  // bob's mailbox is empty: nothing of alice's goes
  const auto hers = v2_pull(a);
  REQUIRE(hers.size() == 1);
  CHECK(v2_ack(a, every_id) == 1);
  CHECK(v2_pull(a).empty());
}

TEST_CASE("attack v2: a stalled connection of the owner cannot hide mail from its next connection") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  const auto alice = make_v2_identity("alice");
  const auto bob = make_v2_identity("bob");
  raw_connection a(server.port()), b(server.port());
  v2_register(a, alice);
  v2_register(b, bob);
  v2_send(b, alice.id, sealed_text, bytes_of("one"));
  v2_send(b, alice.id, sealed_text, bytes_of("two"));
  REQUIRE(v2_pull(a).size() == 2);  // leased to a, which then stalls (never ACKs, stays open)
  raw_connection again(server.port());
  v2_authenticate(again, alice);
  CHECK(v2_pull(again).size() == 2);  // released at once for the key holder's new connection
  CHECK(v2_pull(a).size() == 2);      // and the stalled one gets them back too: nothing hidden
}

}  // TEST_SUITE

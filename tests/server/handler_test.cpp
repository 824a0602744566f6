// Tests of request_handler (server/requests/handler.hpp) over a mailbox_store on the memory
// backend. Every handler call runs inside store.begin()/commit() (rollback on a throw), as
// the storage worker runs it; its typed result is encoded as the request flows encode it
// (responses.hpp), so the tests check the bytes a client would get. Edge cases first: bad payloads, unregistered requesters,
// unknown targets; then registration, listing, keys, sending and the pull life cycle.
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <utility>

#include "handler.hpp"
#include "mailbox_store.hpp"
#include "memory_store.hpp"
#include "responses.hpp"
#include "server_test_support.hpp"
#include "spool.hpp"
#include "storage_worker.hpp"
#include "store_backends.hpp"

using namespace letterbox::server;
using namespace letterbox::server::test;
using namespace letterbox::protocol;

namespace {

// The handler's calls as the request flows make them: decode the payload, call, encode.
byte_buffer register_bytes(request_handler& handler, bytes_view payload) {
  return encode_response(handler.register_client(decode_register_request(payload)));
}
byte_buffer key_bytes(request_handler& handler, const client_id& requester, bytes_view payload) {
  return encode_response(handler.get_public_key(requester, decode_get_public_key_request(payload)));
}
byte_buffer send_bytes(request_handler& handler, const client_id& sender, const send_message_prefix& prefix,
                       byte_buffer content, std::string file) {
  return encode_response(handler.store_message(sender, prefix, std::move(content), std::move(file)));
}

// The store and a handler over it; every call goes through in_batch like a storage job.
struct handler_fixture {
  explicit handler_fixture(server_limits limits = {}) : handler(store, limits) {}

  temp_dir dir;
  spool_directory spool{dir / "server.db.spool"};
  memory_store records;
  faulty_records faults{records};  // so a test can make removals fail
  // Last-seen times written at every commit (no deferral), so tests can read them at once.
  mailbox_store store{faults, spool, std::chrono::milliseconds(0)};
  request_handler handler;

  template <typename F>
  auto in_batch(F&& fn) {
    return test::in_batch(store, std::forward<F>(fn));
  }

  client_id register_client(const std::string& name, std::uint8_t key_seed = 1) {
    const auto payload = encode_register_request({name, make_key(key_seed)});
    const auto response = in_batch([&] { return register_bytes(handler, payload); });
    REQUIRE(response.size() == response_header_size + client_id_size);
    const auto header = decode_response_header(bytes_view(response).first(response_header_size));
    REQUIRE(header.code == static_cast<std::uint16_t>(response_code::registered));
    return decode_registered_payload(bytes_view(response).subspan(response_header_size));
  }

  message_sent send(const client_id& from, const client_id& to, std::uint8_t type, const byte_buffer& content) {
    const send_message_prefix prefix{to, type, static_cast<std::uint32_t>(content.size())};
    const auto response = in_batch([&] { return send_bytes(handler, from, prefix, content, {}); });
    const auto header = decode_response_header(bytes_view(response).first(response_header_size));
    REQUIRE(header.code == static_cast<std::uint16_t>(response_code::message_sent));
    return decode_message_sent_payload(bytes_view(response).subspan(response_header_size));
  }

  // 101 as its request flow answers it: from the client directory, the requester touched.
  byte_buffer list_bytes(const client_id& requester) {
    if (!store.directory().contains(requester)) throw request_rejected("client is not registered");
    handler.touch(requester);
    const auto clients = store.directory().current();
    const auto header = encode_client_list_header(clients, requester);
    byte_buffer out(header.begin(), header.end());
    for (std::size_t next = 0; next < clients.size();) encode_client_list_piece(clients, requester, next, 1000, out);
    return out;
  }

  pull_batch begin_pull(const client_id& who) {
    return in_batch([&] { return handler.begin_pull(who); });
  }
  void finish_pull(const pull_batch& batch) {
    in_batch([&] { handler.finish_pull(batch); });
  }
  // The removal after a delivered pull, failing as on a full disk (the job throws).
  void finish_pull_failing(const pull_batch& batch) {
    faults.fail_deletes = true;
    CHECK_THROWS_AS(in_batch([&] { handler.finish_pull(batch); }), storage_error);
    faults.fail_deletes = false;
  }
  // A whole pull that was written successfully.
  std::vector<std::uint32_t> pull_all(const client_id& who) {
    auto batch = begin_pull(who);
    finish_pull(batch);
    std::vector<std::uint32_t> ids;
    for (const auto& m : batch.messages) ids.push_back(m.id);
    return ids;
  }
};

response_header header_of(const byte_buffer& response) {
  REQUIRE(response.size() >= response_header_size);
  return decode_response_header(bytes_view(response).first(response_header_size));
}

std::vector<std::uint32_t> ids_of(const pull_batch& batch) { return letterbox::server::test::ids_of(batch.messages); }


}  // namespace

// --- Edge cases --------------------------------------------------------------------------

// Bad registration payloads (empty, truncated, oversize, no NUL, empty name, bad UTF-8,
// control characters) never reach the handler: the request flow decodes the payload first
// (tests/common/messages_test.cpp), and the server answers 9000 (tests/integration/errors_test.cpp).

TEST_CASE("handler: unregistered requesters are rejected for list, get key, send and pull") {
  handler_fixture f;
  const auto alice = f.register_client("alice");
  const client_id zeros{};
  const auto stranger = make_id(200);
  const auto key_request = encode_get_public_key_request({alice});
  const send_message_prefix prefix{alice, 3, 4};
  for (const auto& who : {zeros, stranger}) {
    CHECK_THROWS_AS(f.in_batch([&] { return f.list_bytes(who); }), request_rejected);
    CHECK_THROWS_AS(f.in_batch([&] { return key_bytes(f.handler, who, key_request); }), request_rejected);
    CHECK_THROWS_AS(f.in_batch([&] { f.handler.check_send(who, prefix); }), request_rejected);
    CHECK_THROWS_AS(f.in_batch([&] { return send_bytes(f.handler, who, prefix, make_content(4, 1), {}); }),
                    request_rejected);
    CHECK_THROWS_AS(f.begin_pull(who), request_rejected);
  }
  CHECK(f.store.pending_messages(alice, 0, 100, 1 << 20, 1 << 20).empty());
  CHECK(f.begin_pull(alice).messages.empty());
}

TEST_CASE("handler: get_public_key of an unknown client is rejected; a wrong payload size throws") {
  handler_fixture f;
  const auto alice = f.register_client("alice");
  const auto unknown = encode_get_public_key_request({make_id(99)});
  CHECK_THROWS_AS(f.in_batch([&] { return key_bytes(f.handler, alice, unknown); }), request_rejected);
  const byte_buffer short_payload(client_id_size - 1, 0);
  CHECK_THROWS(f.in_batch([&] { return key_bytes(f.handler, alice, short_payload); }));
}

TEST_CASE("handler: sending to an unknown destination is rejected and stores nothing") {
  handler_fixture f;
  const auto alice = f.register_client("alice");
  const send_message_prefix prefix{make_id(77), 3, 4};
  CHECK_THROWS_AS(f.in_batch([&] { f.handler.check_send(alice, prefix); }), request_rejected);
  CHECK_THROWS_AS(f.in_batch([&] { return send_bytes(f.handler, alice, prefix, make_content(4, 1), {}); }),
                  request_rejected);
  CHECK(f.store.pending_messages(make_id(77), 0, 100, 1 << 20, 1 << 20).empty());
}

TEST_CASE("handler: inline content whose size differs from the prefix is rejected") {
  handler_fixture f;
  const auto alice = f.register_client("alice");
  const auto bob = f.register_client("bob", 2);
  const send_message_prefix prefix{bob, 3, 10};
  CHECK_THROWS_AS(f.in_batch([&] { return send_bytes(f.handler, alice, prefix, make_content(9, 1), {}); }),
                  request_rejected);
  CHECK(f.begin_pull(bob).messages.empty());
}

TEST_CASE("handler: a pull of an empty mailbox is an empty 1004 and can be finished") {
  handler_fixture f;
  const auto alice = f.register_client("alice");
  auto batch = f.begin_pull(alice);
  CHECK(batch.recipient == alice);
  CHECK(batch.messages.empty());
  CHECK(batch.payload_size == 0);
  CHECK_NOTHROW(f.finish_pull(batch));
}

// --- Registration, list, keys ------------------------------------------------------------

TEST_CASE("handler: registration returns 1000 with a fresh v4 UUID and stores name and key") {
  handler_fixture f;
  const auto payload = encode_register_request({"alice", make_key(5)});
  const auto response = f.in_batch([&] { return register_bytes(f.handler, payload); });
  const auto header = header_of(response);
  CHECK(header.version == server_version);
  CHECK(header.code == 1000);
  CHECK(header.payload_size == client_id_size);
  REQUIRE(response.size() == response_header_size + client_id_size);
  const auto id = decode_registered_payload(bytes_view(response).subspan(response_header_size));
  CHECK((id[6] >> 4) == 4);        // version 4
  CHECK((id[8] & 0xC0) == 0x80);   // RFC 4122 variant bits 10
  CHECK(f.store.client_exists(id));
  CHECK(f.store.public_key_of(id) == make_key(5));

  std::set<client_id> ids{id};
  for (int i = 0; i < 20; ++i) {
    const auto other = f.register_client("user" + std::to_string(i), static_cast<std::uint8_t>(i));
    CHECK((other[6] >> 4) == 4);
    CHECK((other[8] & 0xC0) == 0x80);
    ids.insert(other);
  }
  CHECK(ids.size() == 21);  // all distinct
}

TEST_CASE("handler: a duplicate name is rejected and the first registration stays") {
  handler_fixture f;
  const auto alice = f.register_client("alice", 1);
  const auto again = encode_register_request({"alice", make_key(2)});
  CHECK_THROWS_AS(f.in_batch([&] { return register_bytes(f.handler, again); }), request_rejected);
  CHECK(f.store.public_key_of(alice) == make_key(1));
  CHECK(f.store.clients_except(client_id{}).size() == 1);
}

TEST_CASE("handler: list_clients answers 1001 with every other client, in registration order") {
  handler_fixture f;
  const auto alice = f.register_client("alice");
  {
    const auto alone = f.in_batch([&] { return f.list_bytes(alice); });
    CHECK(header_of(alone).code == 1001);
    CHECK(header_of(alone).payload_size == 0);
    CHECK(alone.size() == response_header_size);
  }
  const auto bob = f.register_client("bob", 2);
  const auto carol = f.register_client("carol", 3);
  const auto response = f.in_batch([&] { return f.list_bytes(bob); });
  const auto header = header_of(response);
  CHECK(header.code == 1001);
  CHECK(header.payload_size == 2 * client_list_entry_size);
  const auto list = decode_client_list_payload(bytes_view(response).subspan(response_header_size));
  CHECK(list == std::vector<client_entry>{{alice, "alice"}, {carol, "carol"}});
}

TEST_CASE("handler: get_public_key answers 1002 with the target ID and its key") {
  handler_fixture f;
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  for (const auto& target : {bob, alice}) {
    const auto request = encode_get_public_key_request({target});
    const auto response = f.in_batch([&] { return key_bytes(f.handler, alice, request); });
    CHECK(header_of(response).code == 1002);
    CHECK(header_of(response).payload_size == public_key_response_size);
    const auto decoded = decode_public_key_payload(bytes_view(response).subspan(response_header_size));
    CHECK(decoded.id == target);
    CHECK(decoded.key == make_key(target == bob ? 2 : 1));
  }
}

TEST_CASE("handler: requests 101-104 record the requester's last-seen time") {
  handler_fixture f;
  const auto alice = f.register_client("alice");
  f.records.set_last_seen_of_all("2000-01-01 00:00:00");
  f.in_batch([&] { return f.list_bytes(alice); });
  const auto seen = f.records.last_seen(alice);
  CHECK(seen.size() == 19);
  CHECK(seen > std::string("2000-01-01 00:00:00"));
}

// --- Send and pull -----------------------------------------------------------------------

TEST_CASE("handler: store_message answers 1003 with the to-ID and increasing message IDs") {
  handler_fixture f;
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  const send_message_prefix prefix{bob, 3, 5};
  const auto response = f.in_batch([&] { return send_bytes(f.handler, alice, prefix, make_content(5, 1), {}); });
  REQUIRE(response.size() == response_header_size + message_sent_response_size);  // 7 + 20 bytes
  CHECK(header_of(response).version == server_version);
  CHECK(header_of(response).code == 1003);
  CHECK(header_of(response).payload_size == message_sent_response_size);
  const auto sent = decode_message_sent_payload(bytes_view(response).subspan(response_header_size));
  CHECK(sent.to == bob);
  const auto second = f.send(alice, bob, 1, {});
  const auto third = f.send(bob, alice, 2, make_content(128, 3));
  CHECK(second.message_id > sent.message_id);
  CHECK(third.message_id == 1);  // IDs count per mailbox: alice's first message
  CHECK(third.to == alice);
  CHECK(f.send(alice, bob, 2, make_content(16, 4)).message_id > second.message_id);
}

TEST_CASE("handler: begin_pull hands out the mailbox in send order; finish_pull removes it") {
  handler_fixture f;
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  const auto m1 = f.send(alice, bob, 1, {});
  const auto m2 = f.send(alice, bob, 3, make_content(40, 2));
  const auto other = f.send(bob, alice, 3, make_content(7, 3));

  auto batch = f.begin_pull(bob);
  CHECK(batch.recipient == bob);
  REQUIRE(batch.messages.size() == 2);
  CHECK(batch.messages[0].id == m1.message_id);
  CHECK(batch.messages[0].from == alice);
  CHECK(batch.messages[0].type == 1);
  CHECK(batch.messages[0].content_size == 0);
  CHECK(batch.messages[1].id == m2.message_id);
  CHECK(batch.messages[1].inline_content == make_content(40, 2));
  CHECK(batch.payload_size == 2 * pulled_message_header_size + 40);
  f.finish_pull(batch);

  CHECK(f.begin_pull(bob).messages.empty());
  CHECK(f.pull_all(alice) == std::vector<std::uint32_t>{other.message_id});  // alice's mail untouched
}

TEST_CASE("handler: a pull that is never finished leaves its messages for the next pull") {
  handler_fixture f;
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  const auto m1 = f.send(alice, bob, 3, make_content(3, 1));
  const auto m2 = f.send(alice, bob, 3, make_content(3, 2));
  auto failed = f.begin_pull(bob);  // its response could not be written: nothing more happens
  REQUIRE(ids_of(failed) == std::vector<std::uint32_t>{m1.message_id, m2.message_id});
  CHECK(f.pull_all(bob) == std::vector<std::uint32_t>{m1.message_id, m2.message_id});
  CHECK(f.begin_pull(bob).messages.empty());
}

TEST_CASE("handler: every pull starts from the oldest message, also while an earlier pull is being written") {
  // The session ends the earlier pull's connection (requests/request.hpp, pull_registry); the
  // handler must not keep its messages from the new one.
  server_limits limits;
  limits.max_messages_per_pull = 3;
  handler_fixture f(limits);
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  std::vector<std::uint32_t> sent;
  for (int i = 0; i < 5; ++i) sent.push_back(f.send(alice, bob, 3, make_content(8, static_cast<std::uint8_t>(i))).message_id);
  auto first = f.begin_pull(bob);
  auto second = f.begin_pull(bob);  // while the first is still being written
  CHECK(ids_of(first) == std::vector<std::uint32_t>{sent[0], sent[1], sent[2]});
  CHECK(ids_of(second) == ids_of(first));
  f.finish_pull(second);
  CHECK(ids_of(f.begin_pull(bob)) == std::vector<std::uint32_t>{sent[3], sent[4]});
  f.finish_pull(first);  // the earlier pull finishing late removes nothing more
  CHECK(f.pull_all(bob) == std::vector<std::uint32_t>{sent[3], sent[4]});
  CHECK(f.begin_pull(bob).messages.empty());
}

TEST_CASE("handler: while removals fail (disk full) each message is delivered at most twice, then removed once they work") {
  handler_fixture f;
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  std::vector<std::uint32_t> sent;
  for (int i = 0; i < 3; ++i) sent.push_back(f.send(alice, bob, 3, make_content(8, static_cast<std::uint8_t>(i))).message_id);
  std::map<std::uint32_t, int> deliveries;
  for (int pull = 0; pull < 10; ++pull) {
    const auto batch = f.begin_pull(bob);
    for (const auto& m : batch.messages) ++deliveries[m.id];
    f.finish_pull_failing(batch);
  }
  for (auto id : sent) {
    CAPTURE(id);
    CHECK(deliveries[id] == max_deliveries_while_deletes_fail);
  }
  // A new message is not held back by the old ones.
  const auto late = f.send(alice, bob, 3, make_content(8, 9)).message_id;
  CHECK(ids_of(f.begin_pull(bob)) == std::vector<std::uint32_t>{late});
  // Removals work again: the next finished pull also removes the held-back messages.
  CHECK(f.pull_all(bob) == std::vector<std::uint32_t>{late});
  CHECK(f.records.message_count() == 0);
  CHECK(f.begin_pull(bob).messages.empty());
}

TEST_CASE("handler: a quarantined message is kept but never handed out; the rest of the mailbox is") {
  handler_fixture f;
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  std::vector<std::uint32_t> sent;
  for (int i = 0; i < 3; ++i) sent.push_back(f.send(alice, bob, 3, make_content(8, static_cast<std::uint8_t>(i))).message_id);
  CHECK(f.in_batch([&] { return f.handler.quarantine(bob, {sent[0]}); }) == std::vector<std::uint32_t>{sent[0]});
  CHECK(f.in_batch([&] { return f.handler.quarantine(bob, {sent[0]}); }).empty());  // logged once: not new again
  CHECK(f.pull_all(bob) == std::vector<std::uint32_t>{sent[1], sent[2]});
  CHECK(f.begin_pull(bob).messages.empty());
  CHECK(f.records.message_count() == 1);  // kept in the database
}

TEST_CASE("handler: a pull respects max_messages_per_pull; the rest come with the next pulls") {
  server_limits limits;
  limits.max_messages_per_pull = 2;
  handler_fixture f(limits);
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  std::vector<std::uint32_t> sent;
  for (int i = 0; i < 5; ++i) sent.push_back(f.send(alice, bob, 3, make_content(10, static_cast<std::uint8_t>(i))).message_id);

  auto batch = f.begin_pull(bob);
  CHECK(ids_of(batch) == std::vector<std::uint32_t>{sent[0], sent[1]});
  CHECK(batch.payload_size == 2 * (pulled_message_header_size + 10));
  f.finish_pull(batch);
  CHECK(f.pull_all(bob) == std::vector<std::uint32_t>{sent[2], sent[3]});
  CHECK(f.pull_all(bob) == std::vector<std::uint32_t>{sent[4]});
  CHECK(f.pull_all(bob).empty());
}

TEST_CASE("handler: a pull respects the inline budget and the payload limit") {
  server_limits limits;
  limits.max_pull_inline_bytes = 150;
  limits.max_pull_payload = 2 * (pulled_message_header_size + 100);  // 250
  handler_fixture f(limits);
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  std::vector<std::uint32_t> sent;
  for (int i = 0; i < 3; ++i) sent.push_back(f.send(alice, bob, 3, make_content(100, static_cast<std::uint8_t>(i))).message_id);
  for (int i = 0; i < 6; ++i) sent.push_back(f.send(alice, bob, 1, {}).message_id);

  // Two 100-byte contents would fit the payload (250) but not the inline budget (150).
  CHECK(f.pull_all(bob) == std::vector<std::uint32_t>{sent[0]});
  CHECK(f.pull_all(bob) == std::vector<std::uint32_t>{sent[1]});
  // 125 + 5 * 25 = 250 bytes: a sixth empty message would exceed the payload limit.
  auto batch = f.begin_pull(bob);
  CHECK(ids_of(batch) == std::vector<std::uint32_t>{sent[2], sent[3], sent[4], sent[5], sent[6], sent[7]});
  CHECK(batch.payload_size == 250);
  f.finish_pull(batch);
  CHECK(f.pull_all(bob) == std::vector<std::uint32_t>{sent[8]});
  CHECK(f.pull_all(bob).empty());
}

// --- Failure paths -----------------------------------------------------------------------

TEST_CASE("handler: a pull whose batch fails to commit does not hide the mailbox from later pulls") {
  temp_dir dir;
  spool_directory spool(dir / "server.db.spool");
  memory_store real;
  faulty_records records(real);  // its next commit can be made to fail (say, disk full)
  mailbox_store store(records, spool);
  request_handler handler(store, server_limits{});
  auto in_batch = [&](auto fn) { return test::in_batch(store, fn); };
  const auto alice = decode_registered_payload(bytes_view(in_batch([&] {
    return register_bytes(handler, encode_register_request({"alice", make_key(1)}));
  })).subspan(response_header_size));
  const auto bob = decode_registered_payload(bytes_view(in_batch([&] {
    return register_bytes(handler, encode_register_request({"bob", make_key(2)}));
  })).subspan(response_header_size));
  const auto sent = decode_message_sent_payload(bytes_view(in_batch([&] {
    return send_bytes(handler, alice, {bob, 3, 4}, make_content(4, 1), {});
  })).subspan(response_header_size));

  // The pull's batch fails at commit: the session gets the error (and answers 9000) without a
  // pull_batch; the message must then still come with the next pull.
  records.fail_next_commit = true;
  boost::asio::io_context io;
  storage_worker worker(store, 16);
  bool failed = false;
  std::optional<pull_batch> retry;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        auto begin = [&handler, bob] { return handler.begin_pull(bob); };
        try {
          co_await worker.run<pull_batch>(begin);
        } catch (const storage_error&) {
          failed = true;
        }
        retry = co_await worker.run<pull_batch>(begin);
      },
      boost::asio::detached);
  io.run();
  CHECK(failed);
  REQUIRE(retry.has_value());
  CHECK(ids_of(*retry) == std::vector<std::uint32_t>{sent.message_id});
}

TEST_CASE("handler: with the default limits every content size the server accepts fits one pull") {
  // A message whose 25-byte pull header plus content exceeds the 1004 payload limit can never
  // be pulled, and pulls stop at it, so it would also block every later message of that mailbox.
  const server_limits limits;
  CHECK(limits.max_message_size + pulled_message_header_size <= limits.max_pull_payload);
}

// --- Mailboxes never cross -----------------------------------------------------------------

TEST_CASE("handler: a message is never handed to another mailbox, even when its storage row is reused in one batch") {
  // The storage row of X's newest message is deleted; a send to Y in the same batch gets that
  // row again (rowids: one more than the largest); X pulls again before the batch commits,
  // from its mailbox index. X must not be handed Y's message.
  handler_fixture f;
  const auto alice = f.register_client("alice", 1);
  const auto x = f.register_client("x", 2);
  const auto y = f.register_client("y", 3);
  f.send(alice, x, 3, make_content(5, 1));
  const auto delivered = f.begin_pull(x);
  REQUIRE(delivered.messages.size() == 1);
  const auto secret = make_content(6, 0x5E);
  const auto stolen = f.in_batch([&] {
    f.handler.finish_pull(delivered);
    send_bytes(f.handler, alice, {y, 3, static_cast<std::uint32_t>(secret.size())}, secret, {});
    return f.handler.begin_pull(x);
  });
  for (const auto& message : stolen.messages) CHECK(message.inline_content != secret);
  CHECK(stolen.messages.empty());
  f.finish_pull(stolen);
  const auto for_y = f.begin_pull(y);
  REQUIRE(for_y.messages.size() == 1);  // Y's message is still Y's
  CHECK(for_y.messages[0].inline_content == secret);
}

TEST_CASE("handler: message IDs are per mailbox and never reused, also after every message was delivered") {
  handler_fixture f;
  const auto alice = f.register_client("alice", 1);
  const auto bob = f.register_client("bob", 2);
  const auto carol = f.register_client("carol", 3);
  std::vector<std::uint32_t> to_bob;
  for (int i = 0; i < 3; ++i) to_bob.push_back(f.send(alice, bob, 3, make_content(4, 1)).message_id);
  CHECK(to_bob == std::vector<std::uint32_t>{1, 2, 3});
  CHECK(f.send(alice, carol, 3, make_content(4, 1)).message_id == 1);  // carol's mailbox counts on its own
  CHECK(f.pull_all(bob) == to_bob);
  CHECK(f.begin_pull(bob).messages.empty());
  const auto next = f.send(alice, bob, 3, make_content(4, 1)).message_id;
  CHECK(next == 4);  // not 1 again: bob has seen 1, 2 and 3
}

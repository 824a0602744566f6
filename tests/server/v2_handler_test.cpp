// Tests of the v2 parts of the request handler (server/requests/handler.hpp) over a
// mailbox_store on the memory backend, and of the lease registry (server/requests/v2_state.hpp).
// Signatures are checked by the request flows before the handler is called (integration tests).
#include <doctest/doctest.h>

#include <algorithm>

#include "handler.hpp"
#include "mailbox_store.hpp"
#include "memory_store.hpp"
#include "server_test_support.hpp"
#include "spool.hpp"
#include "v2_state.hpp"

using namespace letterbox::server;
using namespace letterbox::server::test;
using namespace letterbox::protocol;
using namespace std::chrono_literals;

namespace {

struct v2_fixture {
  explicit v2_fixture(server_limits limits = {}) : handler(store, limits) {}
  temp_dir dir;
  spool_directory spool{dir / "server.db.spool"};
  memory_store records;
  mailbox_store store{records, spool, std::chrono::milliseconds(0)};
  request_handler handler;

  template <typename F>
  auto in_batch(F&& fn) {
    return test::in_batch(store, std::forward<F>(fn));
  }
  client_id add_v2(const std::string& name, std::uint8_t seed) {
    const auto id = make_id(seed);
    in_batch([&] { handler.register_v2_client(id, make_v2_request(name, seed)); });
    return id;
  }
  client_id add_v1(const std::string& name, std::uint8_t seed) {
    return in_batch([&] { return handler.register_client({name, make_key(seed)}).id; });
  }
  std::uint32_t send(const client_id& from, const client_id& to, std::uint8_t type, std::size_t size) {
    const send_message_prefix prefix{to, type, static_cast<std::uint32_t>(size)};
    return in_batch([&] { return handler.store_message(from, prefix, make_content(size, type), {}).message_id; });
  }
};

v2::reason reason_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const request_rejected& e) {
    return e.why();
  }
  FAIL("no request_rejected");
  return v2::reason::malformed;
}

std::vector<std::uint32_t> ids_of(const pull_batch& batch) {
  std::vector<std::uint32_t> ids;
  for (const auto& m : batch.messages) ids.push_back(m.id);
  return ids;
}

}  // namespace

TEST_CASE("v2 handler: register stores every key; a taken name is name_taken, a taken ID key_taken, nothing changes") {
  v2_fixture f;
  const auto carol = f.add_v1("carol", 3);
  const auto alice = f.add_v2("alice", 1);
  CHECK(f.store.is_v2_client(alice));
  CHECK_FALSE(f.store.is_v2_client(carol));
  CHECK(reason_of([&] { f.in_batch([&] { f.handler.register_v2_client(make_id(9), make_v2_request("carol", 9)); }); }) ==
        v2::reason::name_taken);
  CHECK(reason_of([&] { f.in_batch([&] { f.handler.register_v2_client(alice, make_v2_request("alice2", 1)); }); }) ==
        v2::reason::key_taken);
  // A name both taken and with a taken ID: the name is checked first.
  CHECK(reason_of([&] { f.in_batch([&] { f.handler.register_v2_client(alice, make_v2_request("carol", 1)); }); }) ==
        v2::reason::name_taken);
  CHECK(f.records.client_count() == 2);
  CHECK_FALSE(f.store.name_taken("alice2"));
}

TEST_CASE("v2 handler: identity_of only for v2 clients; get_keys serves what was registered, zeros for a legacy client") {
  v2_fixture f;
  const auto carol = f.add_v1("carol", 3);
  const auto alice = f.add_v2("alice", 1);
  const auto expected = make_v2_request("alice", 1);
  CHECK(f.handler.identity_of(alice) == expected.identity);
  CHECK_FALSE(f.handler.identity_of(carol).has_value());
  CHECK_FALSE(f.handler.identity_of(make_id(99)).has_value());
  const auto keys = f.in_batch([&] { return f.handler.get_keys(carol, alice); });
  CHECK(keys.id == alice);
  CHECK(keys.flags == v2::client_flag_v2);
  CHECK(keys.name == "alice");
  CHECK(keys.identity == expected.identity);
  CHECK(keys.agreement == expected.agreement);
  CHECK(keys.legacy == expected.legacy);
  CHECK(keys.key_signature == expected.key_signature);
  const auto legacy = f.in_batch([&] { return f.handler.get_keys(alice, carol); });
  CHECK(legacy.flags == 0);
  CHECK(legacy.name == "carol");
  CHECK(legacy.legacy == make_key(3));
  CHECK(legacy.identity == v2::identity_key{});
  CHECK(legacy.agreement == v2::agreement_key{});
  CHECK(legacy.key_signature == v2::signature{});
  CHECK(reason_of([&] { f.in_batch([&] { f.handler.get_keys(alice, make_id(99)); }); }) == v2::reason::unknown_client);
  // The encoded 2004 is 7 + 560 bytes.
  CHECK(v2::encode_keys_response(keys).size() == 7 + 560);
}

TEST_CASE("v2 handler: begin_v2_pull skips leased messages, removes nothing, counts 26-byte entry headers") {
  server_limits limits;
  limits.max_pull_payload = 2 * (26 + 10) + 1;  // two entries of 10 bytes with 26-byte headers
  v2_fixture f(limits);
  const auto alice = f.add_v2("alice", 1);
  const auto bob = f.add_v2("bob", 2);
  const auto m1 = f.send(bob, alice, 16, 10);
  const auto m2 = f.send(bob, alice, 16, 10);
  const auto m3 = f.send(bob, alice, 17, 10);
  auto batch = f.in_batch([&] { return f.handler.begin_v2_pull(alice, ~std::uint64_t{0}, {}); });
  CHECK(ids_of(batch) == std::vector<std::uint32_t>{m1, m2});  // 3 × 36 > 73
  CHECK(batch.payload_size == 2 * 36);
  batch = f.in_batch([&] { return f.handler.begin_v2_pull(alice, ~std::uint64_t{0}, {m1, m2}); });
  CHECK(ids_of(batch) == std::vector<std::uint32_t>{m3});
  batch = f.in_batch([&] { return f.handler.begin_v2_pull(alice, ~std::uint64_t{0}, {m2}); });
  CHECK(ids_of(batch) == std::vector<std::uint32_t>{m1, m3});
  CHECK(f.store.usage_of(alice).messages == 3);  // a pull removes nothing
}

TEST_CASE("v2 handler: acknowledge removes (durably, at commit), ignores unknown IDs and other mailboxes, counts once") {
  v2_fixture f;
  const auto alice = f.add_v2("alice", 1);
  const auto bob = f.add_v2("bob", 2);
  const auto m1 = f.send(bob, alice, 16, 5);
  const auto m2 = f.send(bob, alice, 16, 5);
  const auto to_bob = f.send(alice, bob, 16, 5);
  CHECK(f.in_batch([&] { return f.handler.acknowledge(alice, {m1, m1, 12345}); }) == 1);
  CHECK(f.in_batch([&] { return f.handler.acknowledge(alice, {m1}); }) == 0);
  // bob's message has the same ID as one of alice's: only alice's mailbox is touched.
  CHECK(to_bob == m1);
  CHECK(f.store.usage_of(bob).messages == 1);
  CHECK(f.records.message_count() == 2);
  // A rolled-back ACK removes nothing.
  f.store.begin();
  CHECK(f.handler.acknowledge(alice, {m2}) == 1);
  f.store.rollback();
  CHECK(f.store.is_pending(alice, m2));
  CHECK(f.in_batch([&] { return f.handler.acknowledge(alice, {m2}); }) == 1);
  CHECK(f.store.usage_of(alice).messages == 0);
}

TEST_CASE("lease registry: leases per holder; release_others ends the others' and the expired ones; ACK and close end them") {
  lease_registry leases(100ms);
  const auto alice = make_id(1), bob = make_id(2);
  const auto t0 = lease_registry::clock::time_point{} + 10s;
  CHECK(leases.release_others(alice, 1, t0).empty());
  leases.lease(alice, 1, {1, 2, 3}, t0);
  leases.lease(bob, 1, {1}, t0);
  CHECK(leases.release_others(alice, 1, t0 + 50ms) == std::vector<std::uint32_t>{1, 2, 3});
  leases.release(alice, {2});
  CHECK(leases.release_others(alice, 1, t0 + 50ms) == std::vector<std::uint32_t>{1, 3});
  // Holder 2 pulls: holder 1's leases on alice end; bob's mailbox is untouched.
  CHECK(leases.release_others(alice, 2, t0 + 60ms).empty());
  CHECK(leases.leased(alice) == 0);
  CHECK(leases.leased(bob) == 1);
  leases.lease(alice, 2, {4}, t0 + 60ms);
  CHECK(leases.release_others(alice, 2, t0 + 159ms) == std::vector<std::uint32_t>{4});
  CHECK(leases.release_others(alice, 2, t0 + 160ms).empty());  // expired
  // A closed connection's leases end; another holder's stay.
  leases.lease(alice, 3, {5}, t0);
  leases.lease(alice, 4, {6}, t0);
  leases.release_holder(alice, 3);
  CHECK(leases.leased(alice) == 1);
  CHECK(leases.release_others(alice, 4, t0 + 1ms) == std::vector<std::uint32_t>{6});
  // A message leased again gets a new expiry and holder.
  leases.lease(alice, 5, {6}, t0 + 90ms);
  CHECK(leases.release_others(alice, 5, t0 + 150ms) == std::vector<std::uint32_t>{6});
}

TEST_CASE("v2 challenge: 32 bytes from the OS RNG, different every time; connection tokens are unique") {
  const auto a = draw_challenge(), b = draw_challenge();
  CHECK(a != b);
  CHECK(a != v2::challenge{});
  CHECK(next_connection_token() != next_connection_token());
}

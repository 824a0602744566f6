// Live delivery on protocol v2 against the real server over loopback (docs/PROTOCOL.md Part V):
// SUBSCRIBE and push (2015) under the PULL lease, what was waiting pushed on subscribe, the
// window (backpressure), a cut mid-push losing nothing, the heartbeat (2013, drop, leases back),
// PING, PRESENCE and the subscription limit. Real v2 identities (tests/support/v2_helpers).
#include <algorithm>
#include <chrono>
#include <thread>

#include "integration_support.hpp"
#include "messages_live.hpp"
#include "v2_helpers.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;
namespace live = letterbox::protocol::live;
using protocol::byte_buffer;
using protocol::client_id;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::uint8_t sealed_text = static_cast<std::uint8_t>(v2::message_type::sealed_text);
constexpr std::uint16_t code_2010 = 2010, code_2011 = 2011, code_2012 = 2012, code_2013 = 2013, code_2015 = 2015;

byte_buffer bytes_of(std::string_view text) { return byte_buffer(text.begin(), text.end()); }

response live_request(raw_connection& c, live::request_code code) {
  c.send_bytes(live::encode_empty_request(code));
  return c.read_response();
}

void subscribe(raw_connection& c) {
  const auto answer = live_request(c, live::request_code::subscribe);
  REQUIRE(answer.code() == code_2010);
  CHECK(answer.header.version == v2::wire_version);
  CHECK(answer.payload.empty());
}

// Reads frames until a 2015 (skipping 2013 pings); its entries.
std::vector<v2_pulled_message> read_push(raw_connection& c) {
  for (int i = 0; i < 100; ++i) {
    const auto frame = c.read_response();
    if (frame.code() == code_2013) continue;
    REQUIRE(frame.code() == code_2015);
    CHECK(frame.header.version == v2::wire_version);
    return parse_v2_pull_payload(frame.payload);
  }
  FAIL("only pings");
  return {};
}

// A v2 client registered on its own connection, which stays open (authenticated).
struct live_client {
  v2_identity who;
  raw_connection connection;
  live_client(const test_server& server, const std::string& name)
      : who(make_v2_identity(name)), connection(server.port()) {
    v2_register(connection, who);
  }
  // A second authenticated connection of the same client.
  raw_connection another(const test_server& server) const {
    raw_connection c(server.port());
    v2_authenticate(c, who);
    return c;
  }
};

// Waits `quiet` (the server pushes whatever it may meanwhile), then sends a PING and reads
// every frame up to its 2012: the pushes counted (their IDs collected), pings skipped. (A frame
// is written only between requests, so everything pushed before the PING comes before the PONG.)
std::size_t drain_pushes(raw_connection& c, std::chrono::milliseconds quiet, std::vector<std::uint32_t>* ids = nullptr) {
  std::this_thread::sleep_for(quiet);
  c.send_bytes(live::encode_empty_request(live::request_code::ping));
  std::size_t messages = 0;
  for (int i = 0; i < 10'000; ++i) {
    const auto frame = c.read_response();
    if (frame.code() == code_2012) return messages;
    if (frame.code() != code_2015) continue;
    const auto entries = parse_v2_pull_payload(frame.payload);
    messages += entries.size();
    if (ids)
      for (const auto& e : entries) ids->push_back(e.header.message_id);
  }
  FAIL("no 2012");
  return messages;
}

}  // namespace

TEST_SUITE("live") {

TEST_CASE("live: two subscribed clients exchange messages live, acknowledged; the push follows the 2005 within a bound") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob");
  subscribe(alice.connection);
  subscribe(bob.connection);
  raw_connection alice_sender = alice.another(server), bob_sender = bob.another(server);
  std::vector<double> latencies_ms;
  for (int round = 0; round < 20; ++round) {
    const auto text = bytes_of("hello bob " + std::to_string(round));
    const auto sent = v2_send(alice_sender, bob.who.id, sealed_text, text);
    const auto after_2005 = clock_type::now();
    const auto pushed = read_push(bob.connection);
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - after_2005).count());
    REQUIRE(pushed.size() == 1);
    CHECK(pushed[0].header.from == alice.who.id);
    CHECK(pushed[0].header.message_id == sent.message_id);
    CHECK(pushed[0].header.type == sealed_text);
    CHECK(pushed[0].header.flags == 0);
    CHECK(pushed[0].content == text);
    CHECK(v2_ack(bob.connection, {sent.message_id}) == 1);
    // And back.
    const auto reply = bytes_of("hi alice " + std::to_string(round));
    const auto back = v2_send(bob_sender, alice.who.id, sealed_text, reply);
    const auto at_alice = read_push(alice.connection);
    REQUIRE(at_alice.size() == 1);
    CHECK(at_alice[0].content == reply);
    CHECK(v2_ack(alice.connection, {back.message_id}) == 1);
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  LETTERBOX_REPORT("2005 -> 2015 observed: p50 " << latencies_ms[latencies_ms.size() / 2] << " ms, max "
                                                 << latencies_ms.back() << " ms (20 sends)");
  CHECK(latencies_ms.back() < 2000.0);
  // Acknowledged: nothing left for a PULL.
  raw_connection check = bob.another(server);
  CHECK(v2_pull(check).empty());
}

TEST_CASE("live: a group message is pushed to a subscribed member at once, an offline member finds it later") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob"), carol(server, "carol");
  const auto group = v2_group_create(alice.connection, "room", true);
  v2_group_only(bob.connection, v2::group_request_code::join, group);
  v2_group_only(carol.connection, v2::group_request_code::join, group);
  subscribe(bob.connection);
  const auto sent = v2_group_send(alice.connection, group, v2::group_text_type, bytes_of("hello room"));
  CHECK(sent.delivered == 2);
  // Pushed without any other wake-up (no send to bob, no ACK): before the group flow notified the
  // members' subscribers, bob's 2015 never came.
  const auto pushed = read_push(bob.connection);
  REQUIRE(pushed.size() == 1);
  CHECK(pushed[0].header.type == v2::group_text_type);
  // Flagged and laid out as a PULL hands it out (bit 1, the group ID first): the push once
  // carried only the legacy bit, and members shown it live read "a malformed group entry".
  CHECK(pushed[0].header.flags == v2::message_flag_group);
  REQUIRE(pushed[0].content.size() == v2::group_id_size + bytes_of("hello room").size());
  CHECK(std::equal(group.begin(), group.end(), pushed[0].content.begin()));
  const auto waiting = v2_pull(carol.connection);
  REQUIRE(waiting.size() == 1);
  CHECK(waiting[0].header.type == v2::group_text_type);
  CHECK(waiting[0].header.flags == pushed[0].header.flags);
  CHECK(waiting[0].content == pushed[0].content);
}

TEST_CASE("live: SUBSCRIBE pushes what was waiting; an offline recipient finds its mail later") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob");
  bob.connection.close();  // bob is offline
  const auto first = v2_send(alice.connection, bob.who.id, sealed_text, bytes_of("one"));
  const auto second = v2_send(alice.connection, bob.who.id, sealed_text, bytes_of("two"));
  raw_connection back = bob.another(server);
  subscribe(back);
  std::vector<std::uint32_t> ids;
  CHECK(drain_pushes(back, 500ms, &ids) == 2);
  CHECK(ids == std::vector<std::uint32_t>{first.message_id, second.message_id});
  // Leased to the subscribed connection: a PULL on it has nothing new while the lease lasts.
  CHECK(v2_pull(back).empty());
  CHECK(v2_ack(back, ids) == 2);
}

TEST_CASE("live: a subscriber's connection cut mid-push loses nothing: the message comes on the next PULL and the next subscribe") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob");
  subscribe(bob.connection);
  byte_buffer big(3u << 20);  // spooled (over the 64 KiB inline limit), far more than one socket buffer
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 131 + 7);
  const auto sent = v2_send(alice.connection, bob.who.id, sealed_text, big);
  // Read the 2015 header and a little of the entry, then cut.
  const auto header = bob.connection.read_response_header();
  REQUIRE(header.code == code_2015);
  CHECK(header.payload_size == v2::pulled_message_header_size + big.size());
  (void)bob.connection.read_exact(4096);
  bob.connection.close();
  // The next connection: PULL gets it whole (the cut connection's lease ended with it).
  bool pulled = false;
  for (int attempt = 0; attempt < 50 && !pulled; ++attempt) {
    raw_connection again = bob.another(server);
    const auto messages = v2_pull(again);
    if (!messages.empty()) {
      REQUIRE(messages.size() == 1);
      CHECK(messages[0].header.message_id == sent.message_id);
      CHECK(messages[0].content == big);
      pulled = true;
    }
    // not acknowledged: it stays for the subscribe below
  }
  CHECK(pulled);
  // And a later subscription is pushed it again (the PULL's connection closed, its lease ended).
  raw_connection subscriber = bob.another(server);
  subscribe(subscriber);
  const auto pushed = read_push(subscriber);
  REQUIRE(pushed.size() == 1);
  CHECK(pushed[0].content == big);
  CHECK(v2_ack(subscriber, {sent.message_id}) == 1);
}

TEST_CASE("live: the window bounds what is pushed and not acknowledged; ACKs open it again") {
  test_server server({"--push-window-messages", "4", "--push-window-bytes", "1000000"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob");
  subscribe(bob.connection);
  for (int i = 0; i < 10; ++i) {
    std::string text = "m";  // appended, not "m" + std::to_string(i): g++ 12 -O3 warns -Wrestrict (falsely)
    text += std::to_string(i);
    v2_send(alice.connection, bob.who.id, sealed_text, bytes_of(text));
  }
  std::vector<std::uint32_t> ids;
  REQUIRE(drain_pushes(bob.connection, 500ms, &ids) == 4);
  CHECK(v2_ack(bob.connection, {ids[0], ids[1]}) == 2);
  std::vector<std::uint32_t> more;
  REQUIRE(drain_pushes(bob.connection, 500ms, &more) == 2);  // two slots opened
  CHECK(v2_ack(bob.connection, {ids[2], ids[3], more[0], more[1]}) == 4);
  std::vector<std::uint32_t> rest;
  CHECK(drain_pushes(bob.connection, 500ms, &rest) == 4);
  CHECK(v2_ack(bob.connection, rest) == 4);
  CHECK(drain_pushes(bob.connection, 300ms) == 0);
}

TEST_CASE("live: a subscriber that never reads holds at most a window; server memory stays bounded, others are served") {
  test_server server({"--push-window-bytes", "1048576", "--heartbeat-timeout", "30"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob"), carol(server, "carol");
  subscribe(bob.connection);  // and never reads again
  const auto rss_before = server.rss_bytes();
  byte_buffer content(512u << 10);  // 512 KiB each: 64 MiB in all, spooled
  for (int i = 0; i < 128; ++i) v2_send(alice.connection, bob.who.id, sealed_text, content);
  // Carol is served meanwhile.
  subscribe(carol.connection);
  v2_send(alice.connection, carol.who.id, sealed_text, bytes_of("for carol"));
  const auto pushed = read_push(carol.connection);
  REQUIRE(pushed.size() == 1);
  CHECK(pushed[0].content == bytes_of("for carol"));
  const auto rss_after = server.rss_bytes();
  LETTERBOX_REPORT("server RSS " << rss_before / 1024 << " KiB before, " << rss_after / 1024
                                 << " KiB after 64 MiB for a subscriber that does not read");
  CHECK(rss_after < rss_before + (24u << 20));
  // Bob, reading at last, gets the window's worth (two 512 KiB messages) and no more.
  std::vector<std::uint32_t> ids;
  CHECK(drain_pushes(bob.connection, 1000ms, &ids) == 2);
}

TEST_CASE("live: a silent subscriber is pinged, then dropped after --heartbeat-timeout; its unacknowledged message goes back") {
  test_server server({"--heartbeat-timeout", "0.6"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob");
  subscribe(bob.connection);
  const auto sent = v2_send(alice.connection, bob.who.id, sealed_text, bytes_of("unacknowledged"));
  CHECK(read_push(bob.connection).size() == 1);
  const auto started = clock_type::now();
  const auto ping = bob.connection.read_response();  // after about a third of the timeout
  CHECK(ping.code() == code_2013);
  CHECK(ping.payload.empty());
  CHECK(bob.connection.wait_for_close(5000ms) == close_outcome::closed);
  const auto dropped_after = clock_type::now() - started;
  LETTERBOX_REPORT("dropped " << std::chrono::duration_cast<std::chrono::milliseconds>(dropped_after).count()
                              << " ms after the push (timeout 600 ms)");
  CHECK(dropped_after < 3s);
  CHECK(server.log(1 << 16).find("--heartbeat-timeout") != std::string::npos);
  // Its lease ended: the message waits in the mailbox.
  raw_connection again = bob.another(server);
  const auto messages = v2_pull(again);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].header.message_id == sent.message_id);
}

TEST_CASE("live: a lease that runs out is pushed again to the subscriber, without any new message") {
  // Lease 0.4 s; the heartbeat long enough not to interfere (pings are answered anyway).
  test_server server({"--lease-timeout", "0.4", "--heartbeat-timeout", "30"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob");
  // Another connection of bob's PULLs it first and never acknowledges: when that lease runs out
  // the message is free, and bob's subscriber must get it.
  raw_connection puller = bob.another(server);
  const auto sent = v2_send(alice.connection, bob.who.id, sealed_text, bytes_of("pull it, forget it"));
  REQUIRE(v2_pull(puller).size() == 1);
  subscribe(bob.connection);  // nothing free to push: the PULL's lease is in force
  const auto started = clock_type::now();
  const auto first = read_push(bob.connection);  // pings are skipped; before: only pings came
  REQUIRE(first.size() == 1);
  CHECK(first[0].header.message_id == sent.message_id);
  const auto after_pull_lease = clock_type::now() - started;
  // Pushed and again not acknowledged: its own lease runs out, and it comes once more.
  const auto second = read_push(bob.connection);
  REQUIRE(second.size() == 1);
  CHECK(second[0].header.message_id == sent.message_id);
  const auto total = clock_type::now() - started;
  LETTERBOX_REPORT("re-pushed " << std::chrono::duration_cast<std::chrono::milliseconds>(after_pull_lease).count()
                                << " ms after subscribing (the PULL's lease: 400 ms), again after "
                                << std::chrono::duration_cast<std::chrono::milliseconds>(total).count() << " ms");
  CHECK(after_pull_lease < 2s);
  CHECK(total - after_pull_lease >= 350ms);  // not before its own lease (400 ms from its push) ran out
  CHECK(v2_ack(bob.connection, {sent.message_id}) == 1);
  // Acknowledged: nothing is pushed again (only pings until the quiet period ends).
  CHECK(drain_pushes(bob.connection, 900ms) == 0);
}

TEST_CASE("live: a subscriber that answers pings (212 → 2012) stays past the heartbeat timeout") {
  test_server server({"--heartbeat-timeout", "0.6"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob");
  subscribe(bob.connection);
  const auto until = clock_type::now() + 2s;
  int pings = 0;
  while (clock_type::now() < until) {
    const auto frame = bob.connection.read_response();
    REQUIRE(frame.code() == code_2013);
    ++pings;
    const auto pong = live_request(bob.connection, live::request_code::ping);
    CHECK(pong.code() == code_2012);
    CHECK(pong.payload.empty());
  }
  CHECK(pings >= 3);
  // Still subscribed: a message is pushed.
  v2_send(alice.connection, bob.who.id, sealed_text, bytes_of("still here"));
  CHECK(read_push(bob.connection).size() == 1);
}

TEST_CASE("live: PRESENCE shows online now and last seen for v2 clients") {
  test_server server;
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client alice(server, "alice"), bob(server, "bob");
  raw_connection legacy(server.port());
  const auto legacy_id = register_client(legacy, "legacy", make_test_key(3));
  const auto presence = [&] {
    const auto answer = live_request(alice.connection, live::request_code::presence);
    REQUIRE(answer.code() == code_2011);
    return live::decode_presence_payload(answer.payload);
  };
  auto entries = presence();
  REQUIRE(entries.size() == 2);  // bob and the legacy client, in registration order; not alice
  CHECK(entries[0].id == bob.who.id);
  CHECK(entries[0].flags == (live::presence_flag_v2 | live::presence_flag_online));
  CHECK(entries[0].last_seen > 0);
  CHECK(entries[1].id == legacy_id);
  CHECK(entries[1].flags == 0);
  CHECK(entries[1].last_seen == 0);
  bob.connection.close();
  bool offline = false;
  for (int i = 0; i < 100 && !offline; ++i) {
    entries = presence();
    offline = entries[0].flags == live::presence_flag_v2;
    if (!offline) std::this_thread::sleep_for(20ms);
  }
  CHECK(offline);
  CHECK(entries[0].last_seen > 0);
  raw_connection bob_again = bob.another(server);
  live_request(bob_again, live::request_code::ping);  // any request after AUTH
  CHECK(presence()[0].flags == (live::presence_flag_v2 | live::presence_flag_online));
}

TEST_CASE("live: SUBSCRIBE's checks: authentication, payload, twice, --max-subscriptions (too_many_subscriptions)") {
  test_server server({"--max-subscriptions", "2"});
  LETTERBOX_ATTACH_SERVER_LOG(server);
  live_client bob(server, "bob");
  raw_connection anonymous(server.port());
  v2_hello(anonymous);
  CHECK(v2_error_reason(live_request(anonymous, live::request_code::subscribe)) ==
        static_cast<std::uint16_t>(v2::reason::bad_state));
  CHECK(v2_error_reason(live_request(anonymous, live::request_code::presence)) ==
        static_cast<std::uint16_t>(v2::reason::bad_state));
  // A payload: malformed (and the connection goes on).
  auto with_payload = live::encode_empty_request(live::request_code::subscribe);
  with_payload[18] = 1;
  with_payload.push_back(0);
  bob.connection.send_bytes(with_payload);
  CHECK(v2_error_reason(bob.connection.read_response()) == static_cast<std::uint16_t>(v2::reason::malformed));
  subscribe(bob.connection);
  CHECK(v2_error_reason(live_request(bob.connection, live::request_code::subscribe)) ==
        static_cast<std::uint16_t>(v2::reason::bad_state));
  raw_connection second = bob.another(server), third = bob.another(server);
  subscribe(second);
  const auto refused = live_request(third, live::request_code::subscribe);
  CHECK(v2_error_reason(refused) == static_cast<std::uint16_t>(v2::reason::too_many_subscriptions));
  CHECK(std::string(v2::reason_name(20)) == "too_many_subscriptions");
  bool logged = false;  // the log line follows the answer
  for (int i = 0; i < 100 && !logged; ++i) {
    logged = server.log(1 << 16).find("(--max-subscriptions) [too_many_subscriptions]") != std::string::npos;
    if (!logged) std::this_thread::sleep_for(10ms);
  }
  CHECK(logged);
  // The refused connection still serves; once a subscription ends, it may subscribe.
  CHECK(live_request(third, live::request_code::ping).code() == code_2012);
  second.close();
  bool subscribed = false;
  for (int i = 0; i < 100 && !subscribed; ++i) {
    const auto answer = live_request(third, live::request_code::subscribe);
    subscribed = answer.code() == code_2010;
    if (!subscribed) std::this_thread::sleep_for(20ms);
  }
  CHECK(subscribed);
  // Codes 213-219 stay unknown (v1 9000).
  raw_connection c(server.port());
  auto unknown = live::encode_empty_request(live::request_code::ping);
  unknown[17] = 213;
  c.send_bytes(unknown);
  const auto answer = c.read_response();
  CHECK(answer.code() == 9000);
  CHECK(answer.header.version == protocol::server_version);
  CHECK(answer.payload.empty());
}

}  // TEST_SUITE

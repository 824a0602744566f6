// The protocol v1 wire corpus (see wire_corpus.hpp). Each scenario is a straight script:
// connect, write, read every answer, and record how each connection ends. Scenarios only
// depend on what the server answers on a fresh database, never on timing: a connection is
// shown to stay open by a following request, and a close is awaited (bounded) where the
// protocol says it happens.
#include "wire_corpus.hpp"

#include <cstdio>
#include <thread>

#include "protocol_helpers.hpp"
#include "test_server.hpp"

namespace letterbox::test::wire {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using protocol::byte_buffer;
using protocol::client_id;

constexpr auto register_code = code_of(protocol::request_code::register_client);
constexpr auto list_code = code_of(protocol::request_code::list_clients);
constexpr auto key_code = code_of(protocol::request_code::get_public_key);
constexpr auto send_code = code_of(protocol::request_code::send_message);
constexpr auto pull_code = code_of(protocol::request_code::pull_messages);

constexpr std::uint32_t kib = 1024;
constexpr std::uint32_t mib = 1024 * kib;
constexpr std::uint32_t inline_limit = 64 * kib;  // the server's default --inline-limit
constexpr std::uint32_t discard_limit = 64 * kib;  // max_discard_size: larger rests close the connection
constexpr std::size_t prefix_size = protocol::send_message_prefix_size;

client_id unknown_id() {
  client_id id{};
  id.fill(0xA5);
  return id;
}
const client_id zero_id{};

byte_buffer filled(std::size_t size, std::uint8_t byte) { return byte_buffer(size, byte); }
byte_buffer bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

// A 100 payload whose name field holds exactly `field` (embedded NULs included), NUL-padded
// to 255 bytes; a 255-byte `field` leaves no NUL.
byte_buffer register_payload(std::string_view field, std::uint32_t key_seed) {
  byte_buffer payload(protocol::name_field_size, 0);
  std::copy_n(field.begin(), std::min(field.size(), payload.size()), payload.begin());
  const auto key = make_test_key(key_seed);
  payload.insert(payload.end(), key.begin(), key.end());
  return payload;
}

// A 103 payload: the prefix as given (content_size may lie) followed by `content`.
byte_buffer send_payload(const client_id& to, std::uint8_t type, std::uint32_t content_size,
                         protocol::bytes_view content) {
  auto payload = protocol::encode_send_message_prefix({to, type, content_size});
  payload.insert(payload.end(), content.begin(), content.end());
  return payload;
}
byte_buffer send_payload(const client_id& to, std::uint8_t type, protocol::bytes_view content) {
  return send_payload(to, type, static_cast<std::uint32_t>(content.size()), content);
}

byte_buffer key_request(const client_id& target) { return protocol::encode_get_public_key_request({target}); }

// --- 100 register ------------------------------------------------------------------------------

void register_valid(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  r.note("the header client ID of a 100 is ignored: 77*16 here");
  client_id garbage{};
  garbage.fill(0x77);
  c.request("100 register \"bob\" key 2, header ID 77*16", garbage, register_code,
            protocol::encode_register_request({"bob", make_test_key(2)}));
  c.register_client("x", 3);                                    // 1 byte
  c.register_client(std::string(protocol::max_name_length, 'n'), 4);  // 254 bytes
  c.register_client("J\xC3\xBCrgen \xE6\x9D\x8E", 5);           // "Jürgen 李"
  c.register_client("\xF0\x9F\x93\xAE box", 6);                 // 4-byte UTF-8
  c.register_client("nb\xC2\xA0sp", 7);                         // U+00A0 is not a control character
  c.register_client("Alice", 8);                                // names compare byte for byte
  r.note("bytes after the first NUL are ignored and not stored: listed back in canonical form");
  c.request("100 register \"carol\\0junk\\xff\" key 9", zero_id, register_code,
            register_payload("carol\0junk\xff"sv, 9));
  c.request("101 list from alice: everyone else, registration order", alice, list_code, {});
  c.close();
}

void register_bad_names(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const std::vector<std::pair<std::string, std::string>> fields = {
      {"name field without NUL (255 x 'z')", std::string(protocol::name_field_size, 'z')},
      {"empty name (all NUL)", ""},
      {"empty name, junk after the NUL", std::string("\0abc", 4)},
      {"invalid UTF-8: lone continuation byte", "\x80" "abc"},
      {"invalid UTF-8: overlong '/'", "a\xC0\xAF"},
      {"invalid UTF-8: surrogate U+D800", "\xED\xA0\x80"},
      {"invalid UTF-8: above U+10FFFF", "\xF4\x90\x80\x80"},
      {"invalid UTF-8: truncated sequence", "ab\xE6\x9D"},
      {"invalid UTF-8: byte FF", "x\xFF"},
      {"control character 01", "a\x01" "b"},
      {"control character TAB", "tab\tname"},
      {"control character 1F", "\x1F"},
      {"control character DEL", "del\x7F"},
      {"C1 control U+0085", "a\xC2\x85"},
      {"C1 control U+009F", "\xC2\x9F" "b"},
      {"duplicate name \"alice\"", "alice"},
      {"duplicate name \"alice\", junk after the NUL", std::string("alice\0zz", 8)},
  };
  std::uint32_t seed = 10;
  for (const auto& [what, field] : fields)
    c.request("100 register, " + what, zero_id, register_code, register_payload(field, seed++));
  r.note("none of them was registered; the connection still serves");
  c.request("101 list from alice", alice, list_code, {});
  c.register_client("bob", 2);
  c.request("101 list from alice", alice, list_code, {});
  c.close();
}

void register_sizes(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto good = protocol::encode_register_request({"carol", make_test_key(3)});
  r.note("the valid 415-byte payload for \"carol\", cut or padded; R = payload size <= 64 KiB: 9000, kept");
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{255}, std::size_t{414},
                                 std::size_t{416}, std::size_t{4096}, std::size_t{discard_limit}}) {
    auto payload = good;
    payload.resize(size, 0);
    c.request("100 register \"carol\" with a " + std::to_string(size) + "-byte payload", zero_id, register_code,
              payload);
  }
  c.request("101 list from alice: no carol", alice, list_code, {});
  c.close();
}

// --- 101 list, 102 get key ---------------------------------------------------------------------

void list_clients(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  c.request("101 list from alice, alone: empty", alice, list_code, {});
  const auto bob = c.register_client("bob", 2);
  const auto carol = c.register_client("carol", 3);
  c.request("101 list from alice", alice, list_code, {});
  c.request("101 list from bob", bob, list_code, {});
  c.request("101 list from carol", carol, list_code, {});
  c.request("101 list from an unregistered ID", unknown_id(), list_code, {});
  c.request("101 list from the zero ID", zero_id, list_code, {});
  for (const std::size_t size : {1, 16, 1000})
    c.request("101 list with a " + std::to_string(size) + "-byte payload", alice, list_code, filled(size, 0));
  c.request("101 list from alice", alice, list_code, {});
  c.close();
}

void get_public_key(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  c.request("102 key of bob, from alice", alice, key_code, key_request(bob));
  c.request("102 key of alice, from alice (own key)", alice, key_code, key_request(alice));
  c.request("102 key of an unknown ID, from alice", alice, key_code, key_request(unknown_id()));
  c.request("102 key of the zero ID, from alice", alice, key_code, key_request(zero_id));
  c.request("102 key of bob, from an unregistered ID", unknown_id(), key_code, key_request(bob));
  c.request("102 key of bob, from the zero ID", zero_id, key_code, key_request(bob));
  c.request("102 with an empty payload", alice, key_code, {});
  c.request("102 with a 15-byte payload", alice, key_code, filled(15, 0x5A));
  for (const std::size_t size : {17, 32}) {
    byte_buffer payload(bob.begin(), bob.end());
    payload.resize(size, 0);
    c.request("102 key of bob with a " + std::to_string(size) + "-byte payload", alice, key_code, payload);
  }
  c.request("102 key of bob, from alice", alice, key_code, key_request(bob));
  c.close();
}

// --- 103 send ------------------------------------------------------------------------------------

void send_every_type(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  c.request("103 alice -> bob, type 1 (key request), empty", alice, send_code, send_payload(bob, 1, {}));
  c.request("103 alice -> bob, type 2, 128 bytes", alice, send_code, send_payload(bob, 2, filled(128, 0x42)));
  c.request("103 alice -> bob, type 3, 16 bytes", alice, send_code,
            send_payload(bob, 3, bytes_of("sixteen bytes!!!")));
  c.request("103 alice -> bob, type 3 with a NUL inside", alice, send_code,
            send_payload(bob, 3, bytes_of("hello\0bob"sv)));
  c.request("103 alice -> bob, type 4, 100 bytes", alice, send_code, send_payload(bob, 4, filled(100, 0x17)));
  for (const std::uint8_t type : {2, 3, 4})
    c.request("103 alice -> bob, type " + std::to_string(type) + ", empty", alice, send_code,
              send_payload(bob, type, {}));
  c.request("103 alice -> alice (to oneself), type 3", alice, send_code, send_payload(alice, 3, bytes_of("me")));
  c.request("104 pull bob: every message, send order", bob, pull_code, {});
  c.request("104 pull alice", alice, pull_code, {});
  c.request("104 pull bob: empty", bob, pull_code, {});
  c.close();
}

void send_errors(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  const auto content16 = filled(16, 0x5A);
  r.note("every rest R is small: 9000 and the connection stays");
  c.request("103 with an empty payload (< 21)", alice, send_code, {});
  auto short_prefix = send_payload(bob, 1, {});
  short_prefix.resize(prefix_size - 1);
  c.request("103 with a 20-byte payload (< 21)", alice, send_code, short_prefix);
  c.request("103 content size 32, 33 bytes follow", alice, send_code, send_payload(bob, 3, 32, filled(33, 1)));
  c.request("103 content size 32, 31 bytes follow", alice, send_code, send_payload(bob, 3, 32, filled(31, 1)));
  c.request("103 content size claims 4 GiB - 1, 100 bytes follow", alice, send_code,
            send_payload(bob, 4, 0xFFFF'FFFFu, filled(100, 2)));
  c.request("103 content size 0, 5 bytes follow", alice, send_code, send_payload(bob, 3, 0, filled(5, 3)));
  for (const std::uint8_t type : {0, 5, 255})
    c.request("103 type " + std::to_string(type), alice, send_code, send_payload(bob, type, content16));
  c.request("103 type 1 with 5 content bytes", alice, send_code, send_payload(bob, 1, filled(5, 4)));
  c.request("103 to an unknown destination", alice, send_code, send_payload(unknown_id(), 3, content16));
  c.request("103 to the zero ID", alice, send_code, send_payload(zero_id, 3, content16));
  c.request("103 from an unregistered sender", unknown_id(), send_code, send_payload(bob, 3, content16));
  c.request("103 from the zero ID", zero_id, send_code, send_payload(bob, 3, content16));
  c.request("103 from an unregistered sender to an unknown destination, type 9", unknown_id(), send_code,
            send_payload(unknown_id(), 9, content16));
  r.note("nothing was stored, no message ID was used");
  c.request("104 pull bob: empty", bob, pull_code, {});
  c.request("104 pull alice: empty", alice, pull_code, {});
  c.request("103 alice -> bob, type 3: message ID 1", alice, send_code, send_payload(bob, 3, content16));
  c.request("104 pull bob", bob, pull_code, {});
  c.close();
}

void send_inline_limit(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  r.note("contents up to --inline-limit (65536) are kept in server.db, larger ones in spool files");
  std::uint64_t seed = 100;
  for (const std::uint32_t size : {inline_limit - 1, inline_limit, inline_limit + 1, inline_limit + 4096, 1u}) {
    c.send_content("103 alice -> bob, type 4, " + std::to_string(size) + " bytes", alice, bob, 4, size, seed++);
    c.receive();
  }
  c.request("104 pull bob: both storage paths, send order", bob, pull_code, {});
  c.request("104 pull bob: empty", bob, pull_code, {});

  r.note("refused contents of at most --inline-limit are read first (R = 0 then): 9000, kept");
  c.send_content("103 from an unregistered sender, 65536 bytes", unknown_id(), bob, 4, inline_limit, seed++);
  c.receive();
  c.send_content("103 alice -> unknown destination, 65536 bytes", alice, unknown_id(), 4, inline_limit, seed++);
  c.receive();
  c.request("101 list from alice", alice, list_code, {});
  c.close();

  r.note("larger ones are refused before any content is read: R = content size > 64 KiB, 9000 + close");
  auto unregistered = r.connect();
  unregistered.send_content("103 from an unregistered sender, 65537 bytes, prefix only", unknown_id(), bob, 4,
                            inline_limit + 1, seed++, 0);
  unregistered.receive();
  unregistered.expect_close();
  auto nobody = r.connect();
  nobody.send_content("103 alice -> unknown destination, 65537 bytes, prefix only", alice, unknown_id(), 4,
                      inline_limit + 1, seed++, 0);
  nobody.receive();
  nobody.expect_close();
  auto check = r.connect();
  check.request("104 pull bob: nothing stored", bob, pull_code, {});
  check.close();
}

void send_large_files(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  const auto carol = c.register_client("carol", 3);
  c.send_content("103 alice -> bob, type 4, 3 MiB + 5 bytes", alice, bob, 4, 3 * mib + 5, 1);
  c.receive();
  c.send_content("103 carol -> bob, type 4, 2 MiB", carol, bob, 4, 2 * mib, 2);
  c.receive();
  c.request("103 alice -> bob, type 3, 16 bytes", alice, send_code, send_payload(bob, 3, filled(16, 0x33)));
  c.request("104 pull bob: two spooled files and a text", bob, pull_code, {});
  c.request("104 pull bob: empty", bob, pull_code, {});
  c.close();
}

// --- 104 pull ------------------------------------------------------------------------------------

void pull_messages(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  const auto carol = c.register_client("carol", 3);
  c.request("104 pull bob: empty mailbox", bob, pull_code, {});
  c.request("103 alice -> bob, type 3", alice, send_code, send_payload(bob, 3, bytes_of("from alice 1")));
  c.request("103 carol -> bob, type 2", carol, send_code, send_payload(bob, 2, filled(128, 0xC0)));
  c.request("103 bob -> bob, type 3", bob, send_code, send_payload(bob, 3, bytes_of("note to self")));
  c.request("103 alice -> carol, type 3", alice, send_code, send_payload(carol, 3, bytes_of("for carol")));
  c.request("103 carol -> bob, type 1", carol, send_code, send_payload(bob, 1, {}));
  c.request("103 alice -> bob, type 4, 300 bytes", alice, send_code, send_payload(bob, 4, filled(300, 0x44)));
  r.note("bad pulls deliver nothing");
  c.request("104 pull bob with a 1-byte payload", bob, pull_code, filled(1, 0));
  c.request("104 pull bob with a 16-byte payload", bob, pull_code, filled(16, 0));
  c.request("104 pull from an unregistered ID", unknown_id(), pull_code, {});
  c.request("104 pull from the zero ID", zero_id, pull_code, {});
  c.request("104 pull bob: five messages from three senders, send order", bob, pull_code, {});
  c.request("104 pull bob: empty", bob, pull_code, {});
  c.request("104 pull carol", carol, pull_code, {});
  r.note("every message delivered: message IDs start at 1 again (PROTOCOL.md §4)");
  c.request("103 alice -> bob, type 3", alice, send_code, send_payload(bob, 3, bytes_of("again")));
  c.request("104 pull bob", bob, pull_code, {});
  c.close();
}

void pull_budget(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  for (std::uint8_t i = 1; i <= 5; ++i)
    c.request("103 alice -> bob, type 3, message " + std::to_string(i), alice, send_code,
              send_payload(bob, 3, filled(i, i)));
  for (int i = 0; i < 4; ++i) c.request("104 pull bob (at most 2 per pull)", bob, pull_code, {});
  c.close();
}

void max_message_size(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  c.request("103 alice -> bob, 100 bytes (the limit)", alice, send_code, send_payload(bob, 4, filled(100, 1)));
  c.request("103 alice -> bob, 101 bytes: R = 101, 9000, kept", alice, send_code,
            send_payload(bob, 4, filled(101, 2)));
  c.request("104 pull bob", bob, pull_code, {});
  c.close();
  auto big = r.connect();
  big.send_content("103 alice -> bob, 70000 bytes, prefix only: R = 70000, 9000 + close", alice, bob, 4, 70000, 3,
                   0);
  big.receive();
  big.expect_close();
}

// --- Codes, versions, framing ----------------------------------------------------------------------

void unknown_codes(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  for (const std::uint8_t code : {0, 1, 99, 105, 110, 200, 255})
    c.request("code " + std::to_string(code) + ", empty payload", alice, code, {});
  c.request("code 150, 300-byte payload", alice, 150, filled(300, 0xEE));
  c.request("code 99 from an unregistered ID, 16-byte payload", unknown_id(), 99, filled(16, 0));
  c.request("code 200, 65536-byte payload (R = 64 KiB: kept)", alice, 200, filled(discard_limit, 0xAB));
  c.request("101 list from alice", alice, list_code, {});
  c.close();
}

void header_versions(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  for (const std::uint8_t version : {0, 1, 2, 3, 255}) {
    const auto v = " v" + std::to_string(version);
    const auto name = "client" + std::to_string(version);
    const auto reply = c.request("100 register \"" + name + "\"" + v, zero_id, register_code,
                                 protocol::encode_register_request({name, make_test_key(version + 20u)}), version);
    client_id id{};
    if (reply.payload.size() == id.size()) std::copy(reply.payload.begin(), reply.payload.end(), id.begin());
    c.request("101 list" + v, id, list_code, {}, version);
    c.request("102 key of alice" + v, id, key_code, key_request(alice), version);
    c.request("103 -> alice" + v, id, send_code, send_payload(alice, 3, filled(4, version)), version);
    c.request("104 pull alice" + v, alice, pull_code, {}, version);
    c.request("code 200" + v, id, 200, {}, version);
  }
  c.close();
}

void pipelined(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  r.note("ten requests in one write, good and bad mixed: answered one by one, in order");
  pipeline batch;
  batch.add("101 list from alice", alice, list_code, {});
  batch.add("102 key of bob", alice, key_code, key_request(bob));
  batch.add("103 alice -> bob, type 3", alice, send_code, send_payload(bob, 3, bytes_of("first")));
  batch.add("code 250", alice, 250, {});
  batch.add("103 type 9 (4 content bytes discarded)", alice, send_code, send_payload(bob, 9, filled(4, 9)));
  batch.add("101 with a 10-byte payload (discarded)", alice, list_code, filled(10, 0x10));
  batch.add("103 alice -> bob, type 3", alice, send_code, send_payload(bob, 3, bytes_of("second")));
  batch.add("104 pull bob", bob, pull_code, {});
  batch.add("104 pull bob", bob, pull_code, {});
  batch.add("100 register \"dave\"", zero_id, register_code,
            protocol::encode_register_request({"dave", make_test_key(4)}));
  c.send_pipeline(batch);
  for (std::size_t i = 0; i < batch.size(); ++i) c.receive();
  pipeline registrations;
  registrations.add("100 register \"erin\"", zero_id, register_code,
                    protocol::encode_register_request({"erin", make_test_key(5)}));
  registrations.add("100 register \"frank\"", zero_id, register_code,
                    protocol::encode_register_request({"frank", make_test_key(6)}));
  registrations.add("101 list from alice", alice, list_code, {});
  c.send_pipeline(registrations);
  for (std::size_t i = 0; i < registrations.size(); ++i) c.receive();

  r.note("requests written in pieces: a 101 one byte at a time, a 103 in three writes");
  c.send_in_pieces("101 list from alice", alice, list_code, {}, std::vector<std::size_t>(22, 1));
  c.receive();
  c.send_in_pieces("103 alice -> bob, type 3", alice, send_code, send_payload(bob, 3, bytes_of("in pieces")),
                   {10, 17, 25});
  c.receive();
  c.request("104 pull bob", bob, pull_code, {});
  c.close();
}

// --- Discard or close: R <= 64 KiB keeps the connection, R > 64 KiB closes it ------------------------

void discard_small_rest(recorder& r) {
  auto c = r.connect();
  const auto alice = c.register_client("alice", 1);
  const auto bob = c.register_client("bob", 2);
  const auto list_again = [&] { c.request("101 list from alice (still served)", alice, list_code, {}); };
  c.request("101 with a 1000-byte payload", alice, list_code, filled(1000, 0x01));
  list_again();
  c.request("101 with a 65536-byte payload", alice, list_code, filled(discard_limit, 0x02));
  list_again();
  c.request("104 from an unregistered ID, 65536-byte payload", unknown_id(), pull_code,
            filled(discard_limit, 0x03));
  list_again();
  c.request("103 type 7 with 65515 content bytes (R = 65515)", alice, send_code,
            send_payload(bob, 7, filled(discard_limit - prefix_size, 0x04)));
  list_again();
  c.request("103 content size 10, 65515 bytes follow (R = 65515)", alice, send_code,
            send_payload(bob, 3, 10, filled(discard_limit - prefix_size, 0x05)));
  list_again();
  c.request("104 pull bob: nothing stored", bob, pull_code, {});
  c.close();
}

void close_after_large_rest(recorder& r) {
  client_id alice{}, bob{};
  {
    auto c = r.connect();
    alice = c.register_client("alice", 1);
    bob = c.register_client("bob", 2);
    c.close();
  }
  const auto refuse_and_close = [&r](const std::function<void(connection&)>& send) {
    auto c = r.connect();
    send(c);
    c.receive();
    c.expect_close();
  };
  refuse_and_close([&](connection& c) { c.send_header("code 200, 65537-byte payload, header only", alice, 200,
                                                      discard_limit + 1); });
  refuse_and_close([&](connection& c) {
    c.send_request("code 200, 65537-byte payload sent in full", alice, 200, filled(discard_limit + 1, 0x06));
  });
  refuse_and_close([&](connection& c) {
    c.send_header("101 with a 65537-byte payload, header only", alice, list_code, discard_limit + 1);
  });
  refuse_and_close([&](connection& c) {
    c.send_header("100 with a 4 GiB - 1 payload, header only", zero_id, register_code, 0xFFFF'FFFFu);
  });
  refuse_and_close([&](connection& c) {
    c.send_header("102 with a 16 MiB payload, header only", alice, key_code, 16 * mib);
  });
  refuse_and_close([&](connection& c) {
    c.send_header("104 with a 2 GiB payload, header only", alice, pull_code, 0x8000'0000u);
  });
  refuse_and_close([&](connection& c) {
    c.send_header("103 with payload 21 + 65537, header only", alice, send_code, prefix_size + discard_limit + 1);
    c.send_raw("103 prefix: content size 10 (R = 65537)",
               protocol::encode_send_message_prefix({bob, 3, 10}));
  });
  refuse_and_close([&](connection& c) {
    c.send_content("103 type 0, 70000 bytes, prefix only", alice, bob, 0, 70000, 7, 0);
  });
  refuse_and_close([&](connection& c) {
    c.send_content("103 type 1, 70000 bytes, prefix only", alice, bob, 1, 70000, 8, 0);
  });
  refuse_and_close([&](connection& c) {
    c.send_content("103 content over --max-message-size (4294967274 bytes), prefix only", alice, bob, 4,
                   0xFFFF'FFFFu - prefix_size, 9, 0);
  });
  refuse_and_close([&](connection& c) {
    c.send_content("103 alice -> unknown destination, 1 MiB sent in full", alice, unknown_id(), 4, mib, 10);
  });
  auto check = r.connect();
  check.request("101 list from alice: only bob", alice, list_code, {});
  check.request("104 pull bob: nothing stored", bob, pull_code, {});
  check.close();
}

// --- Connections ended by the client -------------------------------------------------------------

void client_closes_mid_request(recorder& r) {
  client_id alice{}, bob{};
  {
    auto c = r.connect();
    alice = c.register_client("alice", 1);
    bob = c.register_client("bob", 2);
    c.close();
  }
  {
    auto c = r.connect();
    c.send_in_pieces("101 list from alice, header cut short", alice, list_code, {}, {11});
    c.close();
  }
  {
    auto c = r.connect();
    c.send_in_pieces("100 register \"mallory\", payload cut short", zero_id, register_code,
                     protocol::encode_register_request({"mallory", make_test_key(3)}),
                     {protocol::request_header_size, 200});
    c.close();
  }
  {
    auto c = r.connect();
    c.send_content("103 alice -> bob, 2000 bytes (inline)", alice, bob, 4, 2000, 11, 1000);
    c.close();
  }
  {
    auto c = r.connect();
    c.send_content("103 alice -> bob, 1 MiB (spooled)", alice, bob, 4, mib, 12, 300 * kib);
    c.close();
  }
  {
    auto c = r.connect();
    c.send_request("101 list from alice", alice, list_code, {});
    c.send_in_pieces("101 list from alice, header cut short", alice, list_code, {}, {11});
    c.receive();
    c.close();
  }
  std::this_thread::sleep_for(100ms);  // let the server see those closes (nothing may be stored either way)
  auto check = r.connect();
  check.request("101 list from alice: no mallory", alice, list_code, {});
  check.request("104 pull bob: nothing stored", bob, pull_code, {});
  check.request("103 alice -> bob: message ID 1 (none was used)", alice, send_code,
                send_payload(bob, 3, bytes_of("after")));
  check.request("104 pull bob", bob, pull_code, {});
  check.close();
}

void legacy_and_half_close(recorder& r) {
  r.note("one request per connection, as legacy clients do");
  client_id alice{}, bob{};
  {
    auto c = r.connect();
    alice = c.register_client("alice", 1);
    c.close();
  }
  {
    auto c = r.connect();
    bob = c.register_client("bob", 2);
    c.close();
  }
  {
    auto c = r.connect();
    c.request("103 alice -> bob", alice, send_code, send_payload(bob, 3, bytes_of("legacy")));
    c.close();
  }
  {
    auto c = r.connect();
    c.request("104 pull bob", bob, pull_code, {});
    c.close();
  }
  r.note("a request followed by a half-close: answered, then the server closes");
  auto c = r.connect();
  c.send_request("101 list from alice", alice, list_code, {});
  c.shutdown_send();
  c.receive();
  c.expect_close();
  r.note("two pipelined requests and a half-close: both answered, then closed");
  auto d = r.connect();
  pipeline two;
  two.add("102 key of bob", alice, key_code, key_request(bob));
  two.add("code 200", alice, 200, {});
  d.send_pipeline(two);
  d.shutdown_send();
  d.receive();
  d.receive();
  d.expect_close();
}

}  // namespace

const std::vector<scenario>& v1_corpus() {
  static const std::vector<scenario> corpus = {
      {"register_valid", "100: valid names, canonical form, header ID ignored", {}, register_valid},
      {"register_bad_names", "100: bad name fields and duplicates -> 9000, connection kept", {}, register_bad_names},
      {"register_sizes", "100: payload sizes other than 415 -> 9000, connection kept", {}, register_sizes},
      {"list_clients", "101: empty list, others in order, unregistered requester, payloads", {}, list_clients},
      {"get_public_key", "102: known, own, unknown target, unregistered requester, sizes", {}, get_public_key},
      {"send_every_type", "103: types 1-4, empty contents, to oneself; pulled back", {}, send_every_type},
      {"send_errors", "103: every content/type/size/ID rule -> 9000, nothing stored", {}, send_errors},
      {"send_inline_limit", "103: contents around --inline-limit, both storage paths and both refusal points", {},
       send_inline_limit},
      {"send_large_files", "103: spooled files of a few MiB from two senders, pulled back", {}, send_large_files},
      {"pull_messages", "104: empty, several senders, bad pulls, send order, message IDs restart", {},
       pull_messages},
      {"pull_budget", "104: --max-pull-messages 2 splits a mailbox over pulls", {"--max-pull-messages", "2"},
       pull_budget},
      {"max_message_size", "103: --max-message-size 100, refused small (kept) and large (closed)",
       {"--max-message-size", "100"}, max_message_size},
      {"unknown_codes", "unknown request codes -> 9000, connection kept", {}, unknown_codes},
      {"header_versions", "every request with header versions 0, 1, 2, 3, 255", {}, header_versions},
      {"pipelined", "pipelined requests in one write; requests written in pieces", {}, pipelined},
      {"discard_small_rest", "bad requests with a rest R <= 64 KiB: 9000, discarded, connection kept", {},
       discard_small_rest},
      {"close_after_large_rest", "bad requests with a rest R > 64 KiB: 9000, then the server closes", {},
       close_after_large_rest},
      {"client_closes_mid_request", "connections closed by the client mid-request store nothing", {},
       client_closes_mid_request},
      {"legacy_and_half_close", "one request per connection; half-close after requests", {},
       legacy_and_half_close},
  };
  return corpus;
}

std::string record_v1_corpus() {
  std::string text;
  int number = 0;
  for (const auto& scenario : v1_corpus()) {
    char heading[16];
    std::snprintf(heading, sizeof heading, "=== %02d ", ++number);
    text += heading + scenario.name + ": " + scenario.summary + "\n";
    std::string args;
    for (const auto& arg : scenario.server_args) args += " " + arg;
    text += "server: fresh database, default limits" + (args.empty() ? std::string() : " except" + args) + "\n";
    test_server server(scenario.server_args);
    recorder recording(server.port());
    scenario.run(recording);
    for (const auto& line : recording.lines()) text += line + "\n";
    text += server.has_exited() ? "server exited\n" : "server still running\n";
    text += "\n";
  }
  return text;
}

}  // namespace letterbox::test::wire

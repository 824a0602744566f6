// Writes the seed corpus of both fuzz targets from the protocol's own encoders:
//   make_corpus DIR   →  DIR/decoders/*, DIR/session/*, DIR/session.dict
// The files in tests/fuzz/corpus/ are its output (commit them after changing this file or
// the protocol; see docs/TESTING.md). Names say what each seed is.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "identity.hpp"
#include "messages.hpp"
#include "messages_v2.hpp"
#include "session_input.hpp"

namespace {

using namespace letterbox::protocol;
using letterbox::fuzz::alias_ids;
using letterbox::fuzz::alias_of;
using letterbox::fuzz::known_clients;
using letterbox::fuzz::known_v2_clients;
using letterbox::fuzz::v2_alias_of;
namespace crypto = letterbox::crypto;
namespace fs = std::filesystem;

void write_file(const fs::path& path, const byte_buffer& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

byte_buffer cat(std::initializer_list<byte_buffer> parts) {
  byte_buffer out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

byte_buffer bytes_of(std::string_view text) { return byte_buffer(text.begin(), text.end()); }
byte_buffer filled(std::size_t n, std::uint8_t seed) {
  byte_buffer out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(seed + 11 * i);
  return out;
}

// --- decoders: selector + bytes (selectors as in fuzz_decoders.cpp) ----------------------
enum selector : std::uint8_t {
  request_header, response_header, register_request, get_public_key, send_message, pulled_header,
  registered, client_list, public_key_payload, message_sent, hex, client_id_hex, name, name_field, request_frame,
  sel_v2_hello, sel_v2_register, sel_v2_auth, sel_v2_client_list, sel_v2_keys, sel_v2_pulled_header, sel_v2_ack,
  sel_v2_send, sel_v2_error,
};

void write_decoders(const fs::path& dir) {
  fs::create_directories(dir);
  auto seed = [&](const std::string& file, selector s, const byte_buffer& bytes) {
    write_file(dir / file, cat({{static_cast<std::uint8_t>(s)}, bytes}));
  };
  const auto alice = known_clients()[0], bob = known_clients()[1];
  const auto header = encode_request_header({alice.id, client_version, 103, 53});
  seed("request_header", request_header, byte_buffer(header.begin(), header.end()));
  const auto response = encode_response_header({server_version, 1004, 25});
  seed("response_header", response_header, byte_buffer(response.begin(), response.end()));
  seed("register", register_request, encode_register_request({"fuzz-dave", bob.key}));
  seed("register_utf8_name", register_request, encode_register_request({"Zoë \xE2\x82\xAC \xF0\x9F\x93\xAC", bob.key}));
  seed("get_public_key", get_public_key, encode_get_public_key_request({bob.id}));
  byte_buffer size_and_prefix = {53, 0, 0, 0};
  const auto prefix = encode_send_message_prefix({bob.id, 3, 32});
  seed("send_message_text", send_message, cat({size_and_prefix, prefix}));
  seed("send_message_key_request", send_message, cat({{21, 0, 0, 0}, encode_send_message_prefix({bob.id, 1, 0})}));
  const auto pulled = encode_pulled_message_header({alice.id, 7, 4, 300});
  seed("pulled_header", pulled_header, byte_buffer(pulled.begin(), pulled.end()));
  seed("registered", registered, byte_buffer(alice.id.begin(), alice.id.end()));
  const auto list = encode_client_list_response({{alice.id, alice.name}, {bob.id, bob.name}});
  seed("client_list", client_list, byte_buffer(list.begin() + response_header_size, list.end()));
  seed("client_list_empty", client_list, {});
  const auto key = encode_public_key_response({bob.id, bob.key});
  seed("public_key", public_key_payload, byte_buffer(key.begin() + response_header_size, key.end()));
  const auto sent = encode_message_sent_response({bob.id, 42});
  seed("message_sent", message_sent, byte_buffer(sent.begin() + response_header_size, sent.end()));
  seed("hex", hex, bytes_of("00ff7Fa0"));
  seed("client_id_hex", client_id_hex, bytes_of(to_hex(alice.id)));
  seed("name", name, bytes_of("fuzz-alice"));
  seed("name_c1_control", name, bytes_of("a\xC2\x85z"));
  seed("name_truncated_utf8", name, bytes_of("ab\xE2\x82"));
  const auto field = encode_name("fuzz-bob");
  seed("name_field", name_field, byte_buffer(field.begin(), field.end()));
  seed("name_field_without_nul", name_field, byte_buffer(name_field_size, 'a'));
  seed("client_list_last_name_without_nul", client_list,
       cat({byte_buffer(list.begin() + response_header_size, list.end() - name_field_size), byte_buffer(name_field_size, 'a')}));
  seed("request_frame", request_frame, cat({byte_buffer(alice.id.begin(), alice.id.end()), {2, 104}}));
  seed("request_frame_v2", request_frame, cat({byte_buffer(16, 0), {3, 200}, v2::encode_hello_request()}));
  // protocol v2
  const auto& dave = known_v2_clients()[0];
  seed("v2_hello", sel_v2_hello, v2::encode_hello_request());
  seed("v2_register", sel_v2_register,
       v2::encode_register_request({dave.name, dave.key, dave.agreement, dave.legacy, dave.key_signature, {}}));
  seed("v2_auth", sel_v2_auth, v2::encode_auth_request({dave.id, {}}));
  const auto list_v2 = v2::encode_client_list_response({{dave.id, dave.name, 1}, {bob.id, bob.name, 0}});
  seed("v2_client_list", sel_v2_client_list, byte_buffer(list_v2.begin() + response_header_size, list_v2.end()));
  const auto keys_v2 =
      v2::encode_keys_response({dave.id, 1, dave.name, dave.key, dave.agreement, dave.legacy, dave.key_signature});
  seed("v2_keys", sel_v2_keys, byte_buffer(keys_v2.begin() + response_header_size, keys_v2.end()));
  const auto pulled_v2 = v2::encode_pulled_message_header({alice.id, 7, 16, 1, 300});
  seed("v2_pulled_header", sel_v2_pulled_header, byte_buffer(pulled_v2.begin(), pulled_v2.end()));
  seed("v2_ack", sel_v2_ack, v2::encode_ack_request({{1, 2, 3}}));
  seed("v2_send", sel_v2_send, cat({{50, 0, 0, 0}, encode_send_message_prefix({dave.id, 16, 29}), {1}}));
  seed("v2_error", sel_v2_error, {7, 0});
}

// --- session: control + stream -------------------------------------------------------------
byte_buffer request(const client_id& client, std::uint8_t code, const byte_buffer& payload) {
  return encode_request(client, client_version, code, payload);
}
byte_buffer send(const client_id& from, const client_id& to, std::uint8_t type, const byte_buffer& content) {
  return request(from, 103, cat({encode_send_message_prefix({to, type, static_cast<std::uint32_t>(content.size())}), content}));
}
client_id stranger_id() {
  client_id stranger{};
  stranger.fill(0x40);
  return stranger;
}
byte_buffer register_as(const std::string& name) {
  return request({}, 100, encode_register_request({name, known_clients()[2].key}));
}

// --- session: protocol v2 (docs/PROTOCOL.md Part II) ---------------------------------------
// Every HELLO's challenge is fuzz_challenge(), so these proofs are valid in the target.
byte_buffer v2_request(v2::request_code code, const byte_buffer& payload) { return v2::encode_request(code, payload); }
byte_buffer v2_hello() { return v2_request(v2::request_code::hello, v2::encode_hello_request()); }
byte_buffer v2_auth(const letterbox::fuzz::known_v2_client& who) {
  const auto challenge = letterbox::fuzz::fuzz_challenge();
  return v2_request(v2::request_code::auth,
                    v2::encode_auth_request({who.id, crypto::sign(who.secret, crypto::labels::auth_proof, {challenge, who.id})}));
}
byte_buffer v2_register(const letterbox::fuzz::known_v2_client& who) {
  const auto challenge = letterbox::fuzz::fuzz_challenge();
  v2::register_request request{who.name, who.key, who.agreement, who.legacy, who.key_signature,
                               crypto::sign(who.secret, crypto::labels::register_proof, {challenge, who.key})};
  return v2_request(v2::request_code::register_client, v2::encode_register_request(request));
}
byte_buffer v2_send(const client_id& to, std::uint8_t type, const byte_buffer& content) {
  return v2_request(v2::request_code::send_message,
                    cat({encode_send_message_prefix({to, type, static_cast<std::uint32_t>(content.size())}), content}));
}
byte_buffer v2_ack(std::initializer_list<std::uint32_t> ids) {
  return v2_request(v2::request_code::ack, v2::encode_ack_request({std::vector<std::uint32_t>(ids)}));
}

template <typename Seed>
void write_v2_session(Seed& seed) {
  const auto alice = alias_of(0), bob = alias_of(1);
  const auto dave = v2_alias_of(0), erin = v2_alias_of(1);
  const auto& known_dave = known_v2_clients()[0];
  const auto frank = letterbox::fuzz::make_v2_client(2, "fuzz-v2-frank");
  const auto text = filled(40, 4), sealed = filled(300, 6);
  const auto pull = v2_request(v2::request_code::pull_messages, {});
  const auto list = v2_request(v2::request_code::list_clients, {});
  auto keys = [](const client_id& target) { return v2_request(v2::request_code::get_keys, byte_buffer(target.begin(), target.end())); };
  // The happy paths: hello, auth, directory, pull and ack of the preloaded mail (IDs 1 and 2).
  seed("v2_hello", alias_ids, v2_hello());
  seed("v2_auth_list_keys", alias_ids, cat({v2_hello(), v2_auth(known_dave), list, keys(erin), keys(alice)}));
  seed("v2_auth_pull_ack_pull", alias_ids, cat({v2_hello(), v2_auth(known_dave), pull, pull, v2_ack({1}), pull, v2_ack({2, 2, 77}), pull}));
  seed("v2_register_send_pull", alias_ids,
       cat({v2_hello(), v2_register(frank), list, v2_send(dave, 16, text), v2_send(erin, 17, sealed),
            v2_send(alice, 3, text), pull, v2_ack({1})}));
  seed("v2_spooled_send_to_self", alias_ids,
       cat({v2_hello(), v2_auth(known_dave), v2_send(dave, 17, sealed), pull, v2_ack({3}), pull}));
  for (std::uint8_t chunks = 1; chunks < 8; chunks += 3)
    seed("v2_auth_pull_ack_chunks" + std::to_string(chunks), alias_ids | chunks,
         cat({v2_hello(), v2_auth(known_dave), pull, v2_ack({1, 2}), pull}));
  // v1 peers and v2 clients: a v1 send to a v2 mailbox (legacy flag), then its pull.
  seed("v1_send_to_v2_then_pull", alias_ids, cat({send(alice, dave, 3, text), v2_hello(), v2_auth(known_dave), pull}));
  // The v1 lock: v1 requests naming a v2 client are 9000 and change nothing.
  seed("v1_lock", alias_ids,
       cat({request(dave, 104, {}), send(dave, alice, 3, text), request(dave, 101, {}),
            request(dave, 102, byte_buffer(alice.begin(), alice.end())), request(dave, 100, encode_register_request({"x", known_clients()[0].key})),
            v2_hello(), v2_auth(known_dave), pull}));
  // Refusals: each a v2 9000 with its reason; REGISTER/AUTH failures close the connection.
  seed("v2_before_auth", alias_ids,
       cat({list, pull, keys(erin), v2_send(erin, 16, text), v2_ack({1}), v2_request(v2::request_code::list_clients, filled(3, 1)),
            v2_request(v2::request_code::get_keys, filled(15, 1)), v2_request(v2::request_code::ack, filled(6, 1)), v2_hello(), list}));
  seed("v2_hello_twice_and_bad", alias_ids,
       cat({v2_hello(), v2_hello(), v2_request(v2::request_code::hello, bytes_of("LBX1\x02\x02")),
            v2_request(v2::request_code::hello, v2::encode_hello_request({3, 4})), v2_request(v2::request_code::hello, {})}));
  auto wrong_proof = v2_auth(known_dave);
  wrong_proof.back() ^= 1;
  seed("v2_auth_wrong_proof", alias_ids, cat({v2_hello(), wrong_proof, list}));
  seed("v2_auth_without_hello", alias_ids, cat({v2_auth(known_dave), list}));
  seed("v2_auth_twice", alias_ids, cat({v2_hello(), v2_auth(known_dave), v2_auth(known_dave), list}));
  auto auth_legacy = v2_auth(known_dave);
  const auto& legacy_id = known_clients()[0].id;  // first byte 0xA0: not an alias
  std::copy(legacy_id.begin(), legacy_id.end(), auth_legacy.begin() + static_cast<std::ptrdiff_t>(request_header_size));
  seed("v2_auth_legacy_id", alias_ids, cat({v2_hello(), auth_legacy, list}));
  auto bad_signature = v2_register(frank);
  bad_signature[request_header_size + 479] ^= 1;
  seed("v2_register_bad_key_signature", alias_ids, cat({v2_hello(), bad_signature, list}));
  seed("v2_register_key_taken", alias_ids, cat({v2_hello(), v2_register(letterbox::fuzz::make_v2_client(0, "fuzz-v2-alias"))}));
  seed("v2_register_name_taken", alias_ids, cat({v2_hello(), v2_register(letterbox::fuzz::make_v2_client(3, "fuzz-alice"))}));
  seed("v2_send_type_rules", alias_ids,
       cat({v2_hello(), v2_auth(known_dave), v2_send(erin, 3, text), v2_send(alice, 16, text), v2_send(erin, 5, text),
            v2_send(alice, 1, text), v2_send(alice, 1, {}), v2_send(stranger_id(), 16, text),
            v2_request(v2::request_code::send_message, filled(20, 1)),
            v2_request(v2::request_code::send_message, cat({encode_send_message_prefix({erin, 16, 10}), filled(3, 1)})),
            list}));
  seed("v2_malformed_sizes", alias_ids,
       cat({v2_hello(), v2_auth(known_dave), v2_request(v2::request_code::ack, {}), v2_request(v2::request_code::ack, filled(6, 1)),
            v2_request(v2::request_code::list_clients, filled(3, 1)), v2_request(v2::request_code::get_keys, filled(15, 1)),
            v2_request(v2::request_code::pull_messages, filled(2, 1)), list}));
  // A v2 code that is not v2: version 2, or a non-zero client ID field (an unknown v1 code).
  seed("v2_code_not_v2", alias_ids,
       cat({encode_request(client_id{}, 2, 200, v2::encode_hello_request()), encode_request(alice, 3, 200, v2::encode_hello_request()),
            v2_hello()}));
  // Groups (Part IV, 220-230): before authentication, then every code authenticated (the server
  // under test allows no group: too_many_groups, unknown_group, an empty 2029), wrong sizes.
  const auto group = [](v2::group_request_code code, const byte_buffer& payload) { return v2::encode_group_request(code, payload); };
  client_id group_id{};
  group_id.fill(7);
  const byte_buffer some_group(group_id.begin(), group_id.end());
  seed("v2_groups", alias_ids,
       cat({v2_hello(), group(v2::group_request_code::list, {}), v2_auth(known_dave),
            group(v2::group_request_code::create, v2::encode_group_create_request({"room", true})),
            group(v2::group_request_code::list, {}), group(v2::group_request_code::join, some_group),
            group(v2::group_request_code::invite, cat({some_group, byte_buffer(erin.begin(), erin.end())})),
            group(v2::group_request_code::members, some_group), group(v2::group_request_code::leave, some_group),
            group(v2::group_request_code::send, cat({encode_send_message_prefix({group_id, 18, static_cast<std::uint32_t>(text.size())}), text})),
            group(v2::group_request_code::send, cat({encode_send_message_prefix({group_id, 16, static_cast<std::uint32_t>(text.size())}), text})),
            group(v2::group_request_code::join, filled(15, 1)), group(v2::group_request_code::create, filled(256, 0x41)),
            list}));
}

void write_session(const fs::path& dir) {
  fs::create_directories(dir);
  auto seed = [&](const std::string& file, std::uint8_t control, const byte_buffer& stream) {
    write_file(dir / file, cat({{control}, stream}));
  };
  // With alias_ids the IDs are written as aliases; alice, bob, carol = known clients 0, 1, 2.
  const auto alice = alias_of(0), bob = alias_of(1), carol = alias_of(2);
  client_id stranger{};
  stranger.fill(0x40);  // first byte 0x40 % 8 == 0: stays unregistered under alias_ids
  const auto text = filled(48, 3), file = filled(400, 9), key = filled(encrypted_symmetric_key_size, 5);

  // One valid request of each code.
  seed("register", alias_ids, register_as("fuzz-dave"));
  seed("list_clients", alias_ids, request(alice, 101, {}));
  seed("get_public_key", alias_ids, request(alice, 102, byte_buffer(bob.begin(), bob.end())));
  seed("send_text", alias_ids, send(alice, bob, 3, text));
  seed("pull_messages", alias_ids, request(alice, 104, {}));  // the preloaded inline text and spooled file
  // The deep paths: a send to self then a pull, a spooled send then its pull, a key exchange.
  seed("send_to_self_then_pull", alias_ids, cat({send(carol, carol, 3, text), request(carol, 104, {})}));
  seed("spooled_send_then_pull", alias_ids, cat({send(bob, carol, 4, file), request(carol, 104, {})}));
  seed("key_exchange", alias_ids,
       cat({send(alice, bob, 1, {}), request(bob, 104, {}), send(bob, alice, 2, key), request(alice, 104, {}),
            request(alice, 104, {})}));
  const auto everything = cat({register_as("fuzz-erin"), request(bob, 101, {}),
                               request(bob, 102, byte_buffer(carol.begin(), carol.end())), send(bob, alice, 3, text),
                               send(bob, alice, 4, file), request(alice, 104, {}), request(bob, 104, {})});
  seed("pipelined_all_codes", alias_ids, everything);
  for (std::uint8_t chunks = 1; chunks < 8; ++chunks)
    seed("pipelined_all_codes_chunks" + std::to_string(chunks), alias_ids | chunks, everything);
  // The same without aliases: the known IDs written out.
  const auto& known = known_clients();
  seed("raw_ids_send_and_pull", 0, cat({send(known[0].id, known[1].id, 3, text), request(known[1].id, 104, {})}));
  // Edge cases: each answered 9000 (and the connection goes on, unless said otherwise).
  seed("register_name_taken", alias_ids, register_as("fuzz-alice"));
  seed("register_bad_name", alias_ids, request({}, 100, cat({bytes_of("bad\x01name"), byte_buffer(415 - 8, 0)})));
  seed("register_name_without_nul", alias_ids,
       cat({request({}, 100, cat({byte_buffer(name_field_size, 'a'), filled(public_key_size, 1)})), request(alice, 101, {})}));
  seed("unregistered_requester", alias_ids,
       cat({request(stranger, 101, {}), request(stranger, 102, byte_buffer(bob.begin(), bob.end())),
            send(stranger, bob, 3, text), request(stranger, 104, {})}));
  seed("send_to_unregistered", alias_ids, send(alice, stranger, 3, text));
  seed("send_spooled_to_unregistered", alias_ids, cat({send(alice, stranger, 4, file), request(alice, 101, {})}));
  seed("send_bad_type", alias_ids, cat({send(alice, bob, 5, text), send(alice, bob, 1, text), request(alice, 101, {})}));
  seed("send_size_mismatch", alias_ids,
       cat({request(alice, 103, cat({encode_send_message_prefix({bob, 3, 10}), filled(4, 1)})), request(alice, 101, {})}));
  seed("send_shorter_than_prefix", alias_ids, cat({request(alice, 103, filled(5, 1)), request(alice, 101, {})}));
  seed("fixed_size_mismatch", alias_ids, cat({request(alice, 101, filled(3, 1)), request(alice, 104, filled(2, 1)),
                                              request(alice, 102, filled(15, 1)), request(alice, 101, {})}));
  seed("unknown_code", alias_ids, cat({request(alice, 99, filled(10, 1)), request(alice, 105, {}), request(alice, 101, {})}));
  seed("old_version_byte", alias_ids, encode_request(alice, 1, 101, {}));
  seed("oversized_announced_payload", alias_ids,  // 9000, then the connection closes
       cat({encode_request_front(alice, client_version, 99, 1 << 20, filled(30, 1))}));
  seed("send_announced_but_cut", alias_ids, encode_request_front(alice, client_version, 103, 21 + 1000,
                                                                 encode_send_message_prefix({bob, 4, 1000})));
  const auto list = request(alice, 101, {});
  seed("truncated_header", alias_ids, cat({list, byte_buffer(list.begin(), list.begin() + 10)}));
  seed("empty", 0, {});
  write_v2_session(seed);
}

void write_dictionary(const fs::path& path) {
  std::ofstream out(path, std::ios::trunc);
  auto quoted = [](bytes_view bytes) {
    std::string s = "\"";
    for (auto b : bytes) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02X", b);
      s += hex;
    }
    return s + "\"";
  };
  out << "# fuzz_session dictionary, written by make_corpus: the known clients' IDs, codes, sizes\n";
  for (std::size_t k = 0; k < known_clients().size(); ++k) out << "known_client_" << k << "=" << quoted(known_clients()[k].id) << "\n";
  for (std::uint8_t code = 100; code <= 104; ++code) out << "code_" << int(code) << "=" << quoted(byte_buffer{2, code}) << "\n";
  for (std::uint8_t code = 200; code <= 207; ++code) out << "v2_code_" << int(code) << "=" << quoted(byte_buffer{3, code}) << "\n";
  for (std::uint8_t code = 220; code <= 230; ++code) out << "group_code_" << int(code) << "=" << quoted(byte_buffer{3, code}) << "\n";
  out << "group_types=" << quoted(byte_buffer{18, 19}) << "\n";
  out << "v2_hello=" << quoted(v2::encode_hello_request()) << "\n";
  for (std::size_t k = 0; k < known_v2_clients().size(); ++k)
    out << "known_v2_client_" << k << "=" << quoted(known_v2_clients()[k].id) << "\n";
  out << "v2_register_size=" << quoted(byte_buffer{0x5F, 0x02, 0, 0}) << "\n";
  out << "v2_auth_size=" << quoted(byte_buffer{80, 0, 0, 0}) << "\n";
  out << "sealed_types=" << quoted(byte_buffer{16, 17}) << "\n";
  out << "register_size=" << quoted(byte_buffer{0x9F, 0x01, 0, 0}) << "\n";
  out << "get_key_size=" << quoted(byte_buffer{16, 0, 0, 0}) << "\n";
  out << "inline_limit=" << quoted(byte_buffer{128, 0, 0, 0}) << "\n";
  out << "discard_limit_plus_one=" << quoted(byte_buffer{1, 0, 1, 0}) << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  const fs::path dir = argv[1];
  write_decoders(dir / "decoders");
  write_session(dir / "session");
  write_dictionary(dir / "session.dict");
  return 0;
}

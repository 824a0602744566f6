// The input format of fuzz_session, shared by the target and the corpus generator:
//
//   input = control[1] stream[...]
//
// stream is the byte stream the fuzzer's client sends to the server over one loopback TCP
// connection (then it shuts its sending side down and reads every response until the server
// closes). control steers how:
//   bit 7 (alias_ids)  before sending, every client-ID field of the stream whose first byte b
//                      has b % 8 in 1..5 is replaced by a pre-registered client: v1 client
//                      (b % 8) - 1 for 1..3, v2 client (b % 8) - 4 for 4..5. The fields: the
//                      client ID of each request header, the destination of a 103 and the
//                      target of a 102; in v2 requests (version 3) the destination of a 205
//                      and the target of a 204 (not the ID of a 202: its proof names it). So a one-byte mutation switches
//                      between a registered sender/destination, a v2 one (the v1 lock) and an
//                      unregistered one, without the 16-byte IDs.
//   bits 0-2           how the stream is cut into writes (chunk_sizes): 0 sends it in one
//                      write; otherwise the first max_chunks chunks of that size are each
//                      followed by a yield to the server, then the rest goes in one write, so
//                      requests arrive split at arbitrary points (at a bounded cost per input).
//   bits 3-6           unused (ignored).
// Framing for the aliases (and for the target's checks) follows the server's: a 22-byte
// header, then payload_size bytes of payload; a short last request is "incomplete".
//
// Every run starts from the same state: three registered v1 clients (known_clients), two v2
// clients (known_v2_clients) and five pending messages (preloaded in fuzz_session.cpp):
// client 0 has an inline text from client 1 and a spooled file from client 2; client 1 has a
// symmetric-key request from client 0; v2 client 0 has a text from v1 client 0 and a sealed
// text from v2 client 1. Every HELLO's challenge is fuzz_challenge(), so the corpus can hold
// valid REGISTER and AUTH proofs.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "identity.hpp"
#include "messages.hpp"
#include "messages_v2.hpp"

namespace letterbox::fuzz {

inline constexpr std::uint8_t alias_ids = 0x80;
inline constexpr std::uint8_t chunk_mask = 0x07;
inline constexpr std::array<std::size_t, 8> chunk_sizes = {0, 1, 5, 13, 22, 64, 200, 512};
inline constexpr std::size_t max_chunks = 32;

// The inline limit the target's server runs with (the default is 64 KiB): contents above it
// go to a spool file, so small inputs reach the spool paths too.
inline constexpr std::uint32_t fuzz_inline_limit = 128;

struct known_client {
  protocol::client_id id;
  std::string name;
  protocol::public_key key;
};

inline constexpr std::size_t known_client_count = 3;

// Fixed IDs, names and keys, so the corpus can name them directly too (without alias_ids).
inline const std::array<known_client, known_client_count>& known_clients() {
  static const auto clients = [] {
    std::array<known_client, known_client_count> out;
    const char* names[] = {"fuzz-alice", "fuzz-bob", "fuzz-carol"};
    for (std::size_t k = 0; k < known_client_count; ++k) {
      for (std::size_t i = 0; i < out[k].id.size(); ++i) out[k].id[i] = static_cast<std::uint8_t>(0xA0 + 16 * k + i);
      out[k].name = names[k];
      for (std::size_t i = 0; i < out[k].key.size(); ++i) out[k].key[i] = static_cast<std::uint8_t>(k * 50 + i);
    }
    return out;
  }();
  return clients;
}

// A v2 client with a fixed identity (secret seed), so the corpus can sign for it.
struct known_v2_client {
  std::string name;
  crypto::identity_secret secret{};
  crypto::identity_key key{};
  protocol::client_id id{};
  protocol::v2::agreement_key agreement{};
  protocol::public_key legacy{};
  protocol::v2::signature key_signature{};
};

inline constexpr std::size_t known_v2_client_count = 2;

// The v2 client of a fixed seed (known ones: 0 and 1; 2 and up are free to register).
inline known_v2_client make_v2_client(std::size_t seed, std::string name) {
  known_v2_client c;
  c.name = std::move(name);
  for (std::size_t i = 0; i < c.secret.size(); ++i) c.secret[i] = static_cast<std::uint8_t>(0x31 * (seed + 1) + i);
  c.key = crypto::public_key_of(c.secret);
  c.id = crypto::derive_client_id(c.key);
  for (std::size_t i = 0; i < c.agreement.size(); ++i) c.agreement[i] = static_cast<std::uint8_t>(seed * 9 + i);
  for (std::size_t i = 0; i < c.legacy.size(); ++i) c.legacy[i] = static_cast<std::uint8_t>(seed * 70 + i);
  const auto field = protocol::encode_name(c.name);
  c.key_signature = crypto::sign(c.secret, crypto::labels::keys, {field, c.agreement, c.legacy});
  return c;
}

inline const std::array<known_v2_client, known_v2_client_count>& known_v2_clients() {
  static const std::array<known_v2_client, known_v2_client_count> clients = {make_v2_client(0, "fuzz-v2-dave"),
                                                                             make_v2_client(1, "fuzz-v2-erin")};
  return clients;
}

// The challenge of every HELLO in the fuzz target.
inline protocol::v2::challenge fuzz_challenge() {
  protocol::v2::challenge c{};
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::uint8_t>(0xC0 ^ (i * 5));
  return c;
}

// A client-ID field that alias_ids rewrites into known client `index` (0-based).
inline protocol::client_id alias_of(std::size_t index) {
  protocol::client_id field{};
  field[0] = static_cast<std::uint8_t>(index + 1);
  return field;
}
// A client-ID field that alias_ids rewrites into known v2 client `index` (0-based).
inline protocol::client_id v2_alias_of(std::size_t index) {
  protocol::client_id field{};
  field[0] = static_cast<std::uint8_t>(index + 4);
  return field;
}

// One request as the server frames the stream.
struct framed_request {
  std::size_t offset = 0;  // of its header in the stream
  protocol::request_header header;
  bool complete = false;  // header and whole payload present
  std::span<const std::uint8_t> payload;  // what of it is present
};

// Splits a stream into requests the way the server reads it. A trailing piece shorter than a
// header is not a request.
inline std::vector<framed_request> frame_requests(std::span<const std::uint8_t> stream) {
  std::vector<framed_request> out;
  std::size_t at = 0;
  while (stream.size() - at >= protocol::request_header_size) {
    framed_request r;
    r.offset = at;
    r.header = protocol::decode_request_header(stream.subspan(at, protocol::request_header_size));
    at += protocol::request_header_size;
    const std::size_t present = std::min<std::size_t>(r.header.payload_size, stream.size() - at);
    r.payload = stream.subspan(at, present);
    r.complete = present == r.header.payload_size;
    out.push_back(r);
    at += present;
    if (!r.complete) break;
  }
  return out;
}

// Applies alias_ids to the stream in place.
inline void apply_aliases(std::vector<std::uint8_t>& stream) {
  auto rewrite = [&](std::size_t at) {
    const std::uint8_t selector = stream[at] % 8;
    if (selector == 0 || selector > 5) return;
    const auto& id = selector <= 3 ? known_clients()[selector - 1].id : known_v2_clients()[selector - 4].id;
    std::copy(id.begin(), id.end(), stream.begin() + static_cast<std::ptrdiff_t>(at));
  };
  for (const auto& r : frame_requests(stream)) {
    const std::size_t payload = r.offset + protocol::request_header_size;
    if (r.header.version == protocol::v2::wire_version &&
        (protocol::v2::is_v2_request(r.header.code) || protocol::v2::is_group_request(r.header.code))) {
      // v2: the header's ID field stays as it is (zero selects v2); the IDs in payloads change.
      const auto code = static_cast<protocol::v2::request_code>(r.header.code);
      if (r.payload.size() >= protocol::client_id_size &&
          (code == protocol::v2::request_code::send_message || code == protocol::v2::request_code::get_keys))
        rewrite(payload);
      continue;
    }
    rewrite(r.offset);
    const auto code = static_cast<protocol::request_code>(r.header.code);
    if ((code == protocol::request_code::send_message && r.payload.size() >= protocol::send_message_prefix_size) ||
        (code == protocol::request_code::get_public_key && r.payload.size() >= protocol::client_id_size))
      rewrite(payload);
  }
}

}  // namespace letterbox::fuzz

// The input format of fuzz_session, shared by the target and the corpus generator:
//
//   input = control[1] stream[...]
//
// stream is the byte stream the fuzzer's client sends to the server over one loopback TCP
// connection (then it shuts its sending side down and reads every response until the server
// closes). control steers how:
//   bit 7 (alias_ids)  before sending, every client-ID field of the stream whose first byte b
//                      has b % 4 != 0 is replaced by pre-registered client (b % 4) - 1: the
//                      client ID of each request header, the destination of a 103 and the
//                      target of a 102. So a one-byte mutation switches between a registered
//                      sender/destination and an unregistered one, without the 16-byte IDs.
//   bits 0-2           how the stream is cut into writes (chunk_sizes): 0 sends it in one
//                      write; otherwise the first max_chunks chunks of that size are each
//                      followed by a yield to the server, then the rest goes in one write, so
//                      requests arrive split at arbitrary points (at a bounded cost per input).
//   bits 3-6           unused (ignored).
// Framing for the aliases (and for the target's checks) follows the server's: a 22-byte
// header, then payload_size bytes of payload; a short last request is "incomplete".
//
// Every run starts from the same state: three registered clients (known_clients) and three
// pending messages (preloaded in fuzz_session.cpp): client 0 has an inline text from client 1
// and a spooled file from client 2; client 1 has a symmetric-key request from client 0.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "messages.hpp"

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

// A client-ID field that alias_ids rewrites into known client `index` (0-based).
inline protocol::client_id alias_of(std::size_t index) {
  protocol::client_id field{};
  field[0] = static_cast<std::uint8_t>(index + 1);
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
    const std::uint8_t selector = stream[at] % 4;
    if (selector == 0) return;
    const auto& id = known_clients()[selector - 1].id;
    std::copy(id.begin(), id.end(), stream.begin() + static_cast<std::ptrdiff_t>(at));
  };
  for (const auto& r : frame_requests(stream)) {
    rewrite(r.offset);
    const std::size_t payload = r.offset + protocol::request_header_size;
    const auto code = static_cast<protocol::request_code>(r.header.code);
    if ((code == protocol::request_code::send_message && r.payload.size() >= protocol::send_message_prefix_size) ||
        (code == protocol::request_code::get_public_key && r.payload.size() >= protocol::client_id_size))
      rewrite(payload);
  }
}

}  // namespace letterbox::fuzz

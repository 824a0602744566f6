// Typed protocol v1 operations over a raw_connection, for tests and benchmarks.
//
// Each helper sends one request and expects the success response; any other response throws
// unexpected_response (carrying the code), so "expect 9000" tests use raw_connection directly.
// Large contents are streamed through content_pattern: deterministic bytes generated on the fly,
// so neither side of a test ever holds a big message in memory.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "raw_connection.hpp"

namespace letterbox::test {

class unexpected_response : public connection_error {
 public:
  unexpected_response(const std::string& what, std::uint16_t code)
      : connection_error(what), code_(code) {}
  std::uint16_t code() const noexcept { return code_; }

 private:
  std::uint16_t code_;
};

// A public key for tests: 160 arbitrary bytes derived from `seed` (the server never parses it).
protocol::public_key make_test_key(std::uint32_t seed);
// Request code as the raw byte the header carries.
constexpr std::uint8_t code_of(protocol::request_code code) noexcept { return static_cast<std::uint8_t>(code); }
constexpr std::uint16_t code_of(protocol::response_code code) noexcept { return static_cast<std::uint16_t>(code); }

// 100 → 1000: returns the new client ID.
protocol::client_id register_client(raw_connection& connection, std::string_view name,
                                    const protocol::public_key& key);
// 100 → 1000 with a key derived from the name (handy when the key does not matter).
protocol::client_id register_client(raw_connection& connection, std::string_view name);
// 101 → 1001.
std::vector<protocol::client_entry> list_clients(raw_connection& connection, const protocol::client_id& self);
// 102 → 1002.
protocol::public_key_response get_public_key(raw_connection& connection, const protocol::client_id& self,
                                             const protocol::client_id& target);
// 103 → 1003 with the content in memory; returns the 1003 payload.
protocol::message_sent send_message(raw_connection& connection, const protocol::client_id& from,
                                    const protocol::client_id& to, std::uint8_t type,
                                    protocol::bytes_view content);

struct pulled_message {
  protocol::pulled_message_header header;
  protocol::byte_buffer content;
};
// 104 → 1004, whole payload in memory (bounded by max_payload); returns the messages in wire order.
std::vector<pulled_message> pull(raw_connection& connection, const protocol::client_id& self,
                                 std::size_t max_payload = default_max_response_payload);
// Pulls until a 1004 comes back empty (a pull may return fewer than all waiting messages);
// throws connection_error if the mailbox is still not empty after max_pulls pulls.
std::vector<pulled_message> pull_all(raw_connection& connection, const protocol::client_id& self,
                                     int max_pulls = 100);
// Parses a complete 1004 payload; throws connection_error if it is not a whole number of messages.
std::vector<pulled_message> parse_pull_payload(protocol::bytes_view payload);

// --- Streamed large contents --------------------------------------------------------------

// Deterministic pseudo-random byte stream (splitmix64) of a given seed: the same seed always
// yields the same bytes, so a receiver can verify content by regenerating it.
class content_pattern {
 public:
  explicit content_pattern(std::uint64_t seed) noexcept : state_(seed) {}
  void fill(std::span<std::uint8_t> out) noexcept;

 private:
  std::uint64_t next() noexcept;
  std::uint64_t state_;
  std::uint64_t pending_ = 0;
  int pending_bytes_ = 0;
};

// Sends a 103 whose content is `content_size` bytes of content_pattern(seed), written in chunks,
// and returns the 1003 answer.
protocol::message_sent send_pattern_message(raw_connection& connection, const protocol::client_id& from,
                                            const protocol::client_id& to, std::uint8_t type,
                                            std::uint32_t content_size, std::uint64_t seed);
// Called after each chunk of a streamed content was written, with the content bytes written so far.
using send_progress = std::function<void(std::uint64_t bytes_sent)>;
// send_pattern_message() writing the content in chunks of `chunk_size` bytes (> 0) and calling
// `progress` after each one, so a test can act while an upload is under way.
protocol::message_sent send_pattern_message(raw_connection& connection, const protocol::client_id& from,
                                            const protocol::client_id& to, std::uint8_t type,
                                            std::uint32_t content_size, std::uint64_t seed,
                                            std::size_t chunk_size, const send_progress& progress);
// Like send_pattern_message() but stops after `send_limit` content bytes (an aborted upload);
// reads no response.
void send_partial_pattern_message(raw_connection& connection, const protocol::client_id& from,
                                  const protocol::client_id& to, std::uint8_t type,
                                  std::uint32_t content_size, std::uint64_t seed, std::uint64_t send_limit);

// A message of a 1004 response read in streamed mode: its header and whether its content
// matched the expected pattern (checked chunk by chunk while reading).
struct streamed_message {
  protocol::pulled_message_header header;
  bool content_matches = false;
  std::uint64_t first_mismatch = 0;  // offset of the first differing byte when !content_matches
};

// Reads the payload of a 1004 response whose header was already read, message by message,
// comparing each content to content_pattern(seed_of(index, header)) without buffering it.
// Throws connection_error if the payload does not split into whole messages.
template <typename SeedOf>
std::vector<streamed_message> read_streamed_pull_payload(raw_connection& connection,
                                                         std::uint32_t payload_size, SeedOf seed_of);

// pull_all() in streamed mode: each content is compared with content_pattern(seeds[message ID])
// (seed 0 for an ID not in the map, which will not match).
std::vector<streamed_message> pull_all_streamed(raw_connection& connection, const protocol::client_id& self,
                                                const std::map<std::uint32_t, std::uint64_t>& seeds,
                                                int max_pulls = 100);
// pull_all_streamed() with the expected seed of each content chosen by seed_of(header), for
// tests that know a message by more than its ID (sender, size) before they know its ID.
template <typename SeedOf>
std::vector<streamed_message> pull_all_streamed_by(raw_connection& connection, const protocol::client_id& self,
                                                   SeedOf seed_of, int max_pulls = 100);

// Reads one content of `size` bytes and compares it with content_pattern(seed).
streamed_message verify_streamed_content(raw_connection& connection, const protocol::pulled_message_header& header,
                                         std::uint64_t seed);

template <typename SeedOf>
std::vector<streamed_message> read_streamed_pull_payload(raw_connection& connection,
                                                         std::uint32_t payload_size, SeedOf seed_of) {
  std::vector<streamed_message> messages;
  std::uint64_t remaining = payload_size;
  while (remaining > 0) {
    if (remaining < protocol::pulled_message_header_size)
      throw connection_error("1004 payload ends inside a message header");
    const auto header_bytes = connection.read_exact(protocol::pulled_message_header_size);
    const auto header = protocol::decode_pulled_message_header(header_bytes);
    remaining -= protocol::pulled_message_header_size;
    if (header.content_size > remaining) throw connection_error("1004 message content runs past the payload");
    messages.push_back(verify_streamed_content(connection, header, seed_of(messages.size(), header)));
    remaining -= header.content_size;
  }
  return messages;
}

template <typename SeedOf>
std::vector<streamed_message> pull_all_streamed_by(raw_connection& connection, const protocol::client_id& self,
                                                   SeedOf seed_of, int max_pulls) {
  std::vector<streamed_message> all;
  for (int pulls = 0; pulls < max_pulls; ++pulls) {
    connection.send_request(self, code_of(protocol::request_code::pull_messages), {});
    const auto header = connection.read_response_header();
    if (header.code != code_of(protocol::response_code::messages))
      throw unexpected_response("pull: expected response 1004, got " + std::to_string(header.code), header.code);
    if (header.payload_size == 0) return all;
    auto part = read_streamed_pull_payload(connection, header.payload_size,
                                           [&](std::size_t, const protocol::pulled_message_header& message) {
                                             return seed_of(message);
                                           });
    all.insert(all.end(), part.begin(), part.end());
  }
  throw connection_error("mailbox not empty after " + std::to_string(max_pulls) + " pulls");
}

}  // namespace letterbox::test

// Typed protocol v1 operations and streamed contents over raw_connection.
#include "protocol_helpers.hpp"

#include <algorithm>

namespace letterbox::test {
namespace {

constexpr std::size_t stream_chunk_size = 1024 * 1024;

response expect_code(response reply, protocol::response_code expected, const char* what) {
  if (reply.code() != code_of(expected))
    throw unexpected_response(std::string(what) + ": expected response " + std::to_string(code_of(expected)) +
                                  ", got " + std::to_string(reply.code()) + " with " +
                                  std::to_string(reply.header.payload_size) + " payload bytes",
                              reply.code());
  return reply;
}

void send_pattern_content(raw_connection& connection, std::uint64_t seed, std::uint64_t bytes,
                          std::size_t chunk_size = stream_chunk_size, const send_progress& progress = {}) {
  content_pattern pattern(seed);
  protocol::byte_buffer chunk(std::min<std::uint64_t>(bytes, std::max<std::size_t>(chunk_size, 1)));
  std::uint64_t sent = 0;
  while (sent < bytes) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(bytes - sent, chunk.size()));
    std::span<std::uint8_t> part(chunk.data(), n);
    pattern.fill(part);
    connection.send_bytes(part);
    sent += n;
    if (progress) progress(sent);
  }
}

// The header of a 103 (announcing 21 + content_size) and its 21-byte prefix, in one write; the
// content is the caller's to send. Throws protocol_error when the size does not fit a u32.
void send_103_front(raw_connection& connection, const protocol::client_id& from, const protocol::client_id& to,
                    std::uint8_t type, std::uint32_t content_size) {
  connection.send_bytes(protocol::encode_request_front(
      from, protocol::client_version, code_of(protocol::request_code::send_message),
      protocol::send_message_prefix_size + std::uint64_t{content_size},
      protocol::encode_send_message_prefix({to, type, content_size})));
}

}  // namespace

protocol::public_key make_test_key(std::uint32_t seed) {
  protocol::public_key key{};
  content_pattern pattern(0x6b65790000000000ull ^ seed);
  pattern.fill(key);
  return key;
}

protocol::client_id register_client(raw_connection& connection, std::string_view name,
                                    const protocol::public_key& key) {
  const auto payload = protocol::encode_register_request({std::string(name), key});
  auto reply = expect_code(connection.request(protocol::client_id{}, code_of(protocol::request_code::register_client),
                                              payload),
                           protocol::response_code::registered, "register");
  return protocol::decode_registered_payload(reply.payload);
}

protocol::client_id register_client(raw_connection& connection, std::string_view name) {
  std::uint32_t seed = 2166136261u;  // FNV-1a of the name
  for (const char c : name) seed = (seed ^ static_cast<std::uint8_t>(c)) * 16777619u;
  return register_client(connection, name, make_test_key(seed));
}

std::vector<protocol::client_entry> list_clients(raw_connection& connection, const protocol::client_id& self) {
  auto reply = expect_code(connection.request(self, code_of(protocol::request_code::list_clients), {}),
                           protocol::response_code::client_list, "list clients");
  return protocol::decode_client_list_payload(reply.payload);
}

protocol::public_key_response get_public_key(raw_connection& connection, const protocol::client_id& self,
                                             const protocol::client_id& target) {
  const auto payload = protocol::encode_get_public_key_request({target});
  auto reply = expect_code(connection.request(self, code_of(protocol::request_code::get_public_key), payload),
                           protocol::response_code::public_key, "get public key");
  return protocol::decode_public_key_payload(reply.payload);
}

protocol::message_sent send_message(raw_connection& connection, const protocol::client_id& from,
                                    const protocol::client_id& to, std::uint8_t type,
                                    protocol::bytes_view content) {
  auto payload = protocol::encode_send_message_prefix({to, type, static_cast<std::uint32_t>(content.size())});
  payload.insert(payload.end(), content.begin(), content.end());
  auto reply = expect_code(connection.request(from, code_of(protocol::request_code::send_message), payload),
                           protocol::response_code::message_sent, "send message");
  return protocol::decode_message_sent_payload(reply.payload);
}

std::vector<pulled_message> parse_pull_payload(protocol::bytes_view payload) {
  std::vector<pulled_message> messages;
  protocol::byte_reader in(payload);
  while (!in.empty()) {
    if (in.remaining() < protocol::pulled_message_header_size)
      throw connection_error("1004 payload ends inside a message header");
    pulled_message message;
    message.header = protocol::decode_pulled_message_header(in.bytes(protocol::pulled_message_header_size));
    if (message.header.content_size > in.remaining())
      throw connection_error("1004 message content runs past the payload");
    const auto content = in.bytes(message.header.content_size);
    message.content.assign(content.begin(), content.end());
    messages.push_back(std::move(message));
  }
  return messages;
}

std::vector<pulled_message> pull(raw_connection& connection, const protocol::client_id& self,
                                 std::size_t max_payload) {
  auto reply = expect_code(connection.request(self, code_of(protocol::request_code::pull_messages), {}, max_payload),
                           protocol::response_code::messages, "pull");
  return parse_pull_payload(reply.payload);
}

std::vector<pulled_message> pull_all(raw_connection& connection, const protocol::client_id& self, int max_pulls) {
  std::vector<pulled_message> all;
  for (int pulls = 0; pulls < max_pulls; ++pulls) {
    auto part = pull(connection, self);
    if (part.empty()) return all;
    all.insert(all.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  throw connection_error("mailbox not empty after " + std::to_string(max_pulls) + " pulls");
}

std::vector<streamed_message> pull_all_streamed(raw_connection& connection, const protocol::client_id& self,
                                                const std::map<std::uint32_t, std::uint64_t>& seeds,
                                                int max_pulls) {
  return pull_all_streamed_by(
      connection, self,
      [&](const protocol::pulled_message_header& message) {
        const auto it = seeds.find(message.message_id);
        return it == seeds.end() ? std::uint64_t{0} : it->second;
      },
      max_pulls);
}

// splitmix64: fast, and every seed gives a distinct well-mixed stream.
std::uint64_t content_pattern::next() noexcept {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void content_pattern::fill(std::span<std::uint8_t> out) noexcept {
  std::size_t i = 0;
  while (i < out.size() && pending_bytes_ > 0) {
    out[i++] = static_cast<std::uint8_t>(pending_);
    pending_ >>= 8;
    --pending_bytes_;
  }
  for (; i + 8 <= out.size(); i += 8) {
    auto word = next();
    for (int b = 0; b < 8; ++b, word >>= 8) out[i + b] = static_cast<std::uint8_t>(word);
  }
  if (i < out.size()) {
    pending_ = next();
    pending_bytes_ = 8;
    while (i < out.size()) {
      out[i++] = static_cast<std::uint8_t>(pending_);
      pending_ >>= 8;
      --pending_bytes_;
    }
  }
}

protocol::message_sent send_pattern_message(raw_connection& connection, const protocol::client_id& from,
                                            const protocol::client_id& to, std::uint8_t type,
                                            std::uint32_t content_size, std::uint64_t seed) {
  return send_pattern_message(connection, from, to, type, content_size, seed, stream_chunk_size, {});
}

protocol::message_sent send_pattern_message(raw_connection& connection, const protocol::client_id& from,
                                            const protocol::client_id& to, std::uint8_t type,
                                            std::uint32_t content_size, std::uint64_t seed,
                                            std::size_t chunk_size, const send_progress& progress) {
  send_103_front(connection, from, to, type, content_size);
  send_pattern_content(connection, seed, content_size, chunk_size, progress);
  auto reply = expect_code(connection.read_response(), protocol::response_code::message_sent, "send message");
  return protocol::decode_message_sent_payload(reply.payload);
}

void send_partial_pattern_message(raw_connection& connection, const protocol::client_id& from,
                                  const protocol::client_id& to, std::uint8_t type,
                                  std::uint32_t content_size, std::uint64_t seed, std::uint64_t send_limit) {
  send_103_front(connection, from, to, type, content_size);
  send_pattern_content(connection, seed, std::min<std::uint64_t>(send_limit, content_size));
}

streamed_message verify_streamed_content(raw_connection& connection, const protocol::pulled_message_header& header,
                                         std::uint64_t seed) {
  streamed_message result{header, true, 0};
  content_pattern pattern(seed);
  const auto chunk_size = std::min<std::size_t>(header.content_size, stream_chunk_size);
  protocol::byte_buffer received(chunk_size), expected(chunk_size);
  std::uint64_t offset = 0;
  while (offset < header.content_size) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(header.content_size - offset, chunk_size));
    std::span<std::uint8_t> got(received.data(), n), want(expected.data(), n);
    connection.read_exact(got);
    pattern.fill(want);
    if (result.content_matches && !std::equal(got.begin(), got.end(), want.begin())) {
      result.content_matches = false;
      result.first_mismatch = offset + static_cast<std::uint64_t>(
                                           std::mismatch(got.begin(), got.end(), want.begin()).first - got.begin());
    }
    offset += n;
  }
  return result;
}

}  // namespace letterbox::test

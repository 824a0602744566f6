// Response encoding (see responses.hpp).
#include "responses.hpp"

#include <algorithm>

namespace letterbox::server {
using namespace protocol;

byte_buffer encode_response(const registered& result) { return encode_registered_response(result.id); }
byte_buffer encode_response(const public_key_response& result) { return encode_public_key_response(result); }
byte_buffer encode_response(const message_sent& result) { return encode_message_sent_response(result); }

response_header_bytes encode_client_list_header(const client_directory::snapshot& clients, const client_id& requester) {
  std::uint64_t count = clients.size();
  for (std::size_t i = 0; i < clients.size(); ++i)
    if (clients[i].id == requester) {
      --count;
      break;
    }
  return protocol::encode_client_list_header(count);
}

void encode_client_list_piece(const client_directory::snapshot& clients, const client_id& requester, std::size_t& next,
                              std::size_t max_bytes, byte_buffer& out) {
  const std::size_t limit = out.size() + std::max(max_bytes, client_list_entry_size);  // one entry at least
  for (; next < clients.size() && out.size() + client_list_entry_size <= limit; ++next)
    if (clients[next].id != requester) append_client_list_entry(out, clients[next]);
}

namespace {
std::uint64_t others_in(const client_directory::snapshot& clients, const client_id& requester) {
  std::uint64_t count = clients.size();
  for (std::size_t i = 0; i < clients.size(); ++i)
    if (clients[i].id == requester) return count - 1;
  return count;
}
}  // namespace

response_header_bytes encode_v2_client_list_header(const client_directory::snapshot& clients,
                                                   const client_id& requester) {
  return v2::encode_client_list_header(others_in(clients, requester));
}

void encode_v2_client_list_piece(const client_directory::snapshot& clients, const client_id& requester,
                                 std::size_t& next, std::size_t max_bytes, byte_buffer& out) {
  const std::size_t limit = out.size() + std::max(max_bytes, v2::client_list_entry_size);  // one entry at least
  for (; next < clients.size() && out.size() + v2::client_list_entry_size <= limit; ++next)
    if (clients[next].id != requester) {
      byte_writer w(out);
      w.bytes(clients[next].id);
      w.bytes(encode_name(clients[next].name));
      w.u8(clients.flags(next));
    }
}

response_header_bytes encode_v2_pull_response_header(const pull_batch& batch) {
  return v2::encode_response_header(v2::response_code::messages, batch.payload_size);
}

std::array<std::uint8_t, v2::pulled_message_header_size> encode_v2_pulled_header(const stored_message& message,
                                                                                std::uint8_t flags) {
  return v2::encode_pulled_message_header({message.from, message.id, message.type, flags, message.content_size});
}

const byte_buffer& error_response() {
  static const byte_buffer error = encode_error_response();
  return error;
}

response_header_bytes encode_pull_response_header(const pull_batch& batch) {
  return encode_response_header({server_version, static_cast<std::uint16_t>(response_code::messages), batch.payload_size});
}

std::array<std::uint8_t, pulled_message_header_size> encode_pulled_header(const stored_message& message) {
  return encode_pulled_message_header({message.from, message.id, message.type, message.content_size});
}

std::uint8_t v2_entry_flags(const stored_message& message, bool sender_is_v2) {
  std::uint8_t flags = sender_is_v2 ? 0 : protocol::v2::message_flag_legacy_sender;
  if (message.group) flags |= protocol::v2::message_flag_group;
  return flags;
}

}  // namespace letterbox::server

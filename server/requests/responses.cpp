// Response encoding (see responses.hpp).
#include "responses.hpp"

namespace letterbox::server {
using namespace protocol;

byte_buffer encode_response(const registered& result) { return encode_registered_response(result.id); }
byte_buffer encode_response(const client_list& result) { return encode_client_list_response(result.clients); }
byte_buffer encode_response(const public_key_response& result) { return encode_public_key_response(result); }
byte_buffer encode_response(const message_sent& result) { return encode_message_sent_response(result); }

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

}  // namespace letterbox::server

// Encoding of every response the request flows send: the one place where a typed result
// becomes bytes (the byte layouts themselves live in common/messages.hpp).
#pragma once

#include <array>

#include "handler.hpp"
#include "messages.hpp"

namespace letterbox::server {

protocol::byte_buffer encode_response(const registered& result);                     // 1000
protocol::byte_buffer encode_response(const client_list& result);                    // 1001
protocol::byte_buffer encode_response(const protocol::public_key_response& result);  // 1002
protocol::byte_buffer encode_response(const protocol::message_sent& result);         // 1003
const protocol::byte_buffer& error_response();                                       // 9000

// 1004 is streamed: its header, then for each message its header and its content.
protocol::response_header_bytes encode_pull_response_header(const pull_batch& batch);
std::array<std::uint8_t, protocol::pulled_message_header_size> encode_pulled_header(const stored_message& message);

}  // namespace letterbox::server

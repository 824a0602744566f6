// Encoding of every response the request flows send: the one place where a typed result
// becomes bytes (the byte layouts themselves live in common/messages.hpp).
#pragma once

#include <array>

#include "client_directory.hpp"
#include "handler.hpp"
#include "messages.hpp"
#include "messages_v2.hpp"

namespace letterbox::server {

protocol::byte_buffer encode_response(const registered& result);                     // 1000
protocol::byte_buffer encode_response(const protocol::public_key_response& result);  // 1002
protocol::byte_buffer encode_response(const protocol::message_sent& result);         // 1003
const protocol::byte_buffer& error_response();                                       // 9000

// 1001 is streamed from a directory snapshot: its header, then pieces of about max_bytes.
// The requester (when in the snapshot) is left out, as 1001 lists the other clients.
protocol::response_header_bytes encode_client_list_header(const client_directory::snapshot& clients,
                                                          const client_id& requester);
// Appends entries from position `next` on (advancing it) until about max_bytes were added.
void encode_client_list_piece(const client_directory::snapshot& clients, const client_id& requester,
                              std::size_t& next, std::size_t max_bytes, protocol::byte_buffer& out);

// 2003 (v2) is streamed the same way, each entry with its flags.
protocol::response_header_bytes encode_v2_client_list_header(const client_directory::snapshot& clients,
                                                             const client_id& requester);
void encode_v2_client_list_piece(const client_directory::snapshot& clients, const client_id& requester,
                                 std::size_t& next, std::size_t max_bytes, protocol::byte_buffer& out);

// 1004 is streamed: its header, then for each message its header and its content.
protocol::response_header_bytes encode_pull_response_header(const pull_batch& batch);
std::array<std::uint8_t, protocol::pulled_message_header_size> encode_pulled_header(const stored_message& message);
// 2006 likewise; flags: protocol::v2::message_flag_legacy_sender when the sender is a v1 client.
protocol::response_header_bytes encode_v2_pull_response_header(const pull_batch& batch);
std::array<std::uint8_t, protocol::v2::pulled_message_header_size> encode_v2_pulled_header(const stored_message& message,
                                                                                          std::uint8_t flags);
// The flags of a 2006 or 2015 entry: bit 0 (legacy sender) unless the sender is a v2 client,
// bit 1 for a group message, whose content starts with its group ID (§15, Part IV §23). One
// function for PULL and push, so the two can never disagree.
std::uint8_t v2_entry_flags(const stored_message& message, bool sender_is_v2);

}  // namespace letterbox::server

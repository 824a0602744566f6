// Types shared by the storage layer and its users: the one storage error type, messages as
// stored and as pulled, and a hash for client IDs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "messages.hpp"
#include "messages_v2.hpp"

namespace letterbox::server {

using protocol::byte_buffer;
using protocol::client_id;
using protocol::public_key;

// The keys a v2 client registered beside its legacy key (docs/PROTOCOL.md §13); a v1 client
// has none.
struct v2_keys {
  protocol::v2::identity_key identity{};
  protocol::v2::agreement_key agreement{};
  protocol::v2::signature key_signature{};
  bool operator==(const v2_keys&) const = default;
};

using protocol::v2::group_id;

// Whether a message type can be stored: v1's 1..4, v2's sealed 16, 17 and the group envelopes
// 18, 19 (Part IV).
inline bool is_storable_type(std::uint8_t type) noexcept {
  return (type >= protocol::min_message_type && type <= protocol::max_message_type) ||
         type == static_cast<std::uint8_t>(protocol::v2::message_type::sealed_text) ||
         type == static_cast<std::uint8_t>(protocol::v2::message_type::sealed_file) ||
         protocol::v2::is_group_message_type(type);
}

// The one error type of the storage layer (I/O error, full disk, corrupt DB, ...).
// Translated into a 9000 response plus a log line at the session boundary.
class storage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A message to store. Small content is inline; large content was already written to a
// spool file (durably) and is referenced by its file name.
struct new_message {
  client_id to{};
  client_id from{};
  std::uint8_t type = 0;
  std::uint32_t content_size = 0;
  byte_buffer inline_content;  // used when content_file is empty
  std::string content_file;    // spool file name, or empty
};

// A pending message as delivered by a pull.
struct stored_message {
  std::uint32_t id = 0;
  client_id from{};
  std::uint8_t type = 0;
  std::uint32_t content_size = 0;
  byte_buffer inline_content;  // when content_file is empty
  std::string content_file;    // spool file name, or empty
  std::optional<group_id> group;  // a group message (PULL flag bit 1)
};

struct client_id_hash {
  std::size_t operator()(const client_id& id) const noexcept {
    std::size_t h = 0;
    for (int i = 0; i < 8; ++i) h = (h << 8) | id[static_cast<std::size_t>(i)];
    return h;  // IDs are random: their first bytes hash well
  }
};

}  // namespace letterbox::server

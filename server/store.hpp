// The storage interface of the server: clients and their pending messages. Everything the
// handler knows about persistence goes through mailbox_store; SQLite lives behind it.
// A store is used from one thread only (the storage worker's).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "messages.hpp"

namespace letterbox::server {

using protocol::byte_buffer;
using protocol::client_id;
using protocol::public_key;

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
};

// Longest time a last-seen update waits before it is written.
inline constexpr std::chrono::seconds last_seen_flush_interval{1};

class mailbox_store {
 public:
  virtual ~mailbox_store() = default;

  // Batch transaction of the storage worker: every change between begin() and commit() becomes
  // durable together (one fsync), or not at all after rollback().
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;

  virtual bool client_exists(const client_id& id) = 0;
  // Adds a client. Returns false (and changes nothing) when the name is already taken.
  virtual bool add_client(const client_id& id, const std::string& name, const public_key& key) = 0;
  virtual std::optional<public_key> public_key_of(const client_id& id) = 0;
  // Every registered client except `except`, in registration order.
  virtual std::vector<protocol::client_entry> clients_except(const client_id& except) = 0;
  // Records that the client made a request now. Last-seen times are written at most once per
  // last_seen_flush_interval (with whatever batch commits then), so read-only requests rarely
  // cause an fsync and busy senders do not rewrite their clients row in every batch.
  virtual void touch(const client_id& id) = 0;
  // True while some change (such as a last-seen time) waits to be written.
  virtual bool has_deferred_writes() const noexcept = 0;

  // Stores a message and returns its ID (send order: IDs increase). Throws storage_error.
  virtual std::uint32_t add_message(const new_message& message) = 0;
  // Pending messages of `to` with ID > after_id, in send order, at most max_count of them and
  // stopping before inline content would exceed max_inline_bytes or the total 1004 payload
  // would exceed max_payload_bytes (at least one message when any is pending and it fits the
  // payload limit).
  virtual std::vector<stored_message> pending_messages(const client_id& to, std::uint32_t after_id,
                                                       std::size_t max_count, std::uint64_t max_inline_bytes,
                                                       std::uint64_t max_payload_bytes) = 0;
  // Removes delivered messages of `to`; their spool files are deleted after the commit.
  virtual void remove_messages(const client_id& to, const std::vector<std::uint32_t>& ids) = 0;
  // Spool file names referenced by stored messages (for the start-up sweep).
  virtual std::vector<std::string> referenced_content_files() = 0;
};

}  // namespace letterbox::server

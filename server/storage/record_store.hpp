// The interface every storage backend implements: durable rows of clients and messages,
// changed in batch transactions. Only rows — the mailbox index, last-seen deferral, spool
// cleanup and the start-up sweep are backend-neutral policy in mailbox_store, written once.
// Backends: sqlite/sqlite_store (server.db), memory_store (tests). One contract test suite
// (tests/server/store_contract_test.cpp) runs against each of them.
// A record_store is used from one thread at a time (the storage worker's).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "store_types.hpp"

namespace letterbox::server {

// A registered client as stored.
struct client_record {
  client_id id{};
  std::string name;
  public_key key{};
  std::optional<v2_keys> v2;  // a v2 registration (IdentityKey, AgreementKey, KeySignature), else NULL
};

// Where a stored message is: its row, its recipient and its message ID in that mailbox (what
// the mailbox index is built from).
struct message_location {
  std::uint64_t row = 0;
  client_id to{};
  std::uint32_t id = 0;
  std::uint32_t content_size = 0;
};

// A stored message row.
struct message_record {
  std::uint32_t id = 0;  // the message ID in the recipient's mailbox
  client_id to{};
  client_id from{};
  std::uint8_t type = 0;
  std::uint32_t content_size = 0;
  byte_buffer inline_content;  // when content_file is empty
  std::string content_file;    // spool file name, or empty
};

// What delete_message removed.
struct deleted_message {
  std::string content_file;  // its spool file, to delete after the commit; empty when inline
};

class record_store {
 public:
  virtual ~record_store() = default;

  // One write transaction: every change between begin() and commit() becomes durable
  // together, or none after rollback(). rollback() is harmless when no transaction is open
  // (also after a failed commit). Throw storage_error.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;

  // Calls fn for every client (and the last message ID recorded for its mailbox), in
  // registration order. (A visitor, not a vector: start-up holds no second copy of a table.)
  using client_visitor = std::function<void(const client_record&, std::uint32_t last_message_id)>;
  virtual void for_each_client(const client_visitor& fn) = 0;
  // Calls fn for every stored message's location, in ascending row order (= the order stored).
  virtual void for_each_message_location(const std::function<void(const message_location&)>& fn) = 0;
  // Spool file names referenced by stored messages.
  virtual std::vector<std::string> referenced_content_files() = 0;

  // Inserts a client with `now` as its last-seen time. Returns false (and changes nothing)
  // when the ID or the name is taken.
  virtual bool insert_client(const client_record& client, const std::string& now) = 0;
  // Sets the last-seen time of each given client.
  virtual void update_last_seen(const std::vector<client_id>& clients, const std::string& now) = 0;
  // Raises the last message ID recorded for a client's mailbox to `id` (never lowers it).
  virtual void record_last_message_id(const client_id& client, std::uint32_t id) = 0;
  // Stores a message with message ID `id` in its recipient's mailbox, sent at `now`; returns
  // its row, larger than every row currently stored. Throws storage_error when `to` or
  // `from` is not a client or the type is not 1..4, 16 or 17.
  virtual std::uint64_t insert_message(const new_message& message, std::uint32_t id, const std::string& now) = 0;
  // The message in this row, or nullopt when there is none.
  virtual std::optional<message_record> read_message(std::uint64_t row) = 0;
  // Deletes the message in this row if it is message `id` of `to`'s mailbox; nullopt when
  // there is no such message.
  virtual std::optional<deleted_message> delete_message(std::uint64_t row, const client_id& to, std::uint32_t id) = 0;
};

}  // namespace letterbox::server

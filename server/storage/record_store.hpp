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
  std::string content_file;    // spool file name, or empty (a shared content's, for a group message)
  std::optional<group_id> group;  // a group message
};

// What delete_message removed.
struct deleted_message {
  // Its spool file, to delete after the commit; empty when inline, and for a group message
  // whose shared content other messages still refer to.
  std::string content_file;
};

// A group as stored (Part IV): members in join order (the admin among them), invitations, bans.
struct group_record {
  group_id id{};
  std::string name;
  client_id admin{};
  bool open = false;
  std::vector<client_id> members;
  std::vector<client_id> invited;
  std::vector<client_id> banned;
  bool operator==(const group_record&) const = default;
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
  // A group message (Part IV): as insert_message, from `group`, its content the shared one
  // stored under `content` (insert_content; the message's own content fields are ignored).
  virtual std::uint64_t insert_group_message(const new_message& message, const group_id& group, std::uint64_t content,
                                             std::uint32_t id, const std::string& now) = 0;
  // The message in this row, or nullopt when there is none.
  virtual std::optional<message_record> read_message(std::uint64_t row) = 0;
  // Deletes the message in this row if it is message `id` of `to`'s mailbox; nullopt when
  // there is no such message.
  // A message that refers to a shared content lowers its count; the last one deletes it (and
  // returns its spool file).
  virtual std::optional<deleted_message> delete_message(std::uint64_t row, const client_id& to, std::uint32_t id) = 0;

  // --- Groups (schema 005, docs/PROTOCOL.md Part IV) ---
  // Calls fn for every group, in creation order.
  virtual void for_each_group(const std::function<void(const group_record&)>& fn) = 0;
  // Inserts a group with no members (the caller adds its admin with put_group_member). Throws
  // storage_error when the ID is taken or the admin is not a client.
  virtual void insert_group(const group_id& id, const std::string& name, const client_id& admin, bool open,
                            const std::string& now) = 0;
  // Deletes a group with its members, invitations and bans (its messages stay).
  virtual void delete_group(const group_id& id) = 0;
  virtual void set_group_admin(const group_id& id, const client_id& admin) = 0;
  // Makes `client` a member (member = true) or invited; replaces its row, so a member that was
  // invited comes last in join order. Throws storage_error for an unknown group or client.
  virtual void put_group_member(const group_id& id, const client_id& client, bool member) = 0;
  // Removes a member or an invitation (none: nothing changes).
  virtual void delete_group_member(const group_id& id, const client_id& client) = 0;
  virtual void put_group_ban(const group_id& id, const client_id& client) = 0;
  virtual void delete_group_ban(const group_id& id, const client_id& client) = 0;
  // Stores a content shared by `refs` messages (new_message::content_ref); returns its key.
  virtual std::uint64_t insert_content(const byte_buffer& inline_content, const std::string& content_file,
                                       std::uint32_t content_size, std::uint32_t refs) = 0;
};

}  // namespace letterbox::server

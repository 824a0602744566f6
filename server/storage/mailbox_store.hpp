// The store the request handler and the storage worker use: clients and their pending
// messages, over any record_store backend. It holds the policy that is not the backend's:
//   - a cache of the clients (ID → key), so "is this client registered" costs no query;
//   - the mailbox index: each recipient's pending message IDs in send order with their rows,
//     in memory (loaded at start-up; the batch's changes apply when it commits). A row read
//     through the index is handed out only if it still is that message of that mailbox;
//   - message IDs: a sequence per mailbox, never reused — one more than the highest ID the
//     mailbox ever had (pending, or delivered and recorded with the removal);
//   - last-seen deferral: touch() is written at most once per flush interval;
//   - spool cleanup: files of delivered messages are deleted after the commit that removed
//     their rows, never before; a rollback keeps them. Deleting a large file takes long (a
//     1 GiB unlink: ~0.25 s here), so the server hands the names to its file pool
//     (remove_files_with) instead of deleting them on the storage thread;
//   - the start-up sweep: spool files no message references are deleted.
// Used from one thread only (the storage worker's).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "record_store.hpp"
#include "spool.hpp"
#include "batch_store.hpp"
#include "client_directory.hpp"
#include "store_types.hpp"

namespace letterbox::server {

// Pending messages of a mailbox and their content bytes.
struct mailbox_usage {
  std::uint64_t messages = 0;
  std::uint64_t bytes = 0;
};

class mailbox_store final : public batch_store {
 public:
  // Loads the clients and the mailbox index from `records` and sweeps `spool` of files no
  // message references. Both must outlive the store. Throws storage_error.
  // last_seen_flush: how long last-seen updates may wait (see touch).
  mailbox_store(record_store& records, spool_directory& spool,
                std::chrono::milliseconds last_seen_flush = deferred_write_interval);
  ~mailbox_store() override;
  mailbox_store(const mailbox_store&) = delete;
  mailbox_store& operator=(const mailbox_store&) = delete;

  // Batch transaction of the storage worker: every change between begin() and commit() becomes
  // durable together (one fsync), or not at all after rollback().
  void begin() override;
  void commit() override;
  void rollback() noexcept override;
  // True while some change (such as a last-seen time) waits to be written.
  bool has_deferred_writes() const noexcept override { return !touched_.empty(); }

  bool client_exists(const client_id& id) const;
  // Adds a client (a v2 one with its v2 keys). Returns false (and changes nothing) when the ID
  // or the name is taken.
  bool add_client(const client_id& id, const std::string& name, const public_key& key,
                  const std::optional<v2_keys>& v2 = std::nullopt);
  std::optional<public_key> public_key_of(const client_id& id) const;
  // A registered client as stored (committed, or added in this batch); nullopt when unknown.
  struct client_info {
    std::string name;
    public_key key{};
    std::optional<v2_keys> v2;
  };
  std::optional<client_info> client_of(const client_id& id) const;
  // True for a registered v2 client.
  bool is_v2_client(const client_id& id) const;
  // True when a client (committed, or added in this batch) has this name.
  bool name_taken(const std::string& name) const { return names_.count(name) != 0; }
  // Every registered client except `except`, in registration order (committed ones).
  std::vector<protocol::client_entry> clients_except(const client_id& except) const;
  // The committed clients' IDs and names, readable from any thread (see client_directory).
  const client_directory& directory() const noexcept { return directory_; }
  // Records that the client made a request now. Last-seen times are written at most once per
  // flush interval (with whatever batch commits then), so read-only requests rarely cause an
  // fsync and busy senders do not rewrite their client row in every batch.
  void touch(const client_id& id);

  // Stores a message and returns its ID in the recipient's mailbox (send order: IDs
  // increase, and an ID is never given twice in one mailbox). Throws storage_error, also when
  // the mailbox has used all 2^32 - 1 IDs.
  std::uint32_t add_message(const new_message& message);
  // Pending messages of `to` with ID > after_id, in send order, at most max_count of them and
  // stopping before inline content would exceed max_inline_bytes or the total payload
  // (entry_header_size + content per message: 25 for a 1004, 26 for a 2006) would exceed
  // max_payload_bytes (at least one message when any is pending and it fits the
  // payload limit). A message committed in the current batch is not seen before the commit.
  // Messages for which skip(id) is true are passed over (they count for no limit).
  std::vector<stored_message> pending_messages(const client_id& to, std::uint32_t after_id, std::size_t max_count,
                                               std::uint64_t max_inline_bytes, std::uint64_t max_payload_bytes,
                                               const std::function<bool(std::uint32_t)>& skip = {},
                                               std::size_t entry_header_size = protocol::pulled_message_header_size);
  // True while message `id` of `to`'s mailbox is stored (committed state).
  bool is_pending(const client_id& to, std::uint32_t id) const { return find_pending(to, id) != nullptr; }
  // Removes delivered messages of `to` (IDs of other mailboxes are ignored, and an ID given
  // twice counts once); their spool files are deleted after the commit. Returns how many.
  std::size_t remove_messages(const client_id& to, const std::vector<std::uint32_t>& ids);
  // What `to`'s mailbox holds now (this batch's sends and removals included), for quotas.
  mailbox_usage usage_of(const client_id& to) const;
  // Whether `to` (a client) can still be given a message ID: false once it used 0xFFFFFFFF.
  bool has_message_ids_left(const client_id& to) const;
  // Spool file names referenced by stored messages.
  std::vector<std::string> referenced_content_files() { return records_.referenced_content_files(); }

  // --- Groups (docs/PROTOCOL.md Part IV): a cache of every group, loaded at start-up; changes
  // go to the backend at once and are undone here when the batch rolls back ---
  struct group_state {
    std::string name;
    client_id admin{};
    bool open = false;
    std::vector<client_id> members;  // join order, the admin among them
    std::vector<client_id> invited;
    std::vector<client_id> banned;
    std::uint64_t created = 0;  // creation order
    bool is_member(const client_id& id) const;
    bool is_invited(const client_id& id) const;
    bool is_banned(const client_id& id) const;
  };
  // The group (this batch's changes included); nullptr when there is none.
  const group_state* group(const group_id& id) const;
  // Every group in creation order.
  std::vector<std::pair<group_id, const group_state*>> groups() const;
  // How many groups `client` is a member of.
  std::size_t groups_of(const client_id& client) const;
  // Changes. Each throws storage_error when a row write fails; what was written before it is
  // cached as written (a rollback of the batch undoes both).
  void create_group(const group_id& id, const std::string& name, const client_id& admin, bool open);
  void delete_group(const group_id& id);
  void set_group_admin(const group_id& id, const client_id& admin);
  void add_group_member(const group_id& id, const client_id& client);  // ends its invitation
  void invite_to_group(const group_id& id, const client_id& client);
  void remove_from_group(const group_id& id, const client_id& client);  // a member or an invitation
  void ban_from_group(const group_id& id, const client_id& client);
  void unban_from_group(const group_id& id, const client_id& client);
  // A group message to these recipients (each must be a client): the content (inline, or a
  // durable spool file) is stored once, and each mailbox gets a message referring to it.
  // Returns each recipient's message ID, in the order given. Nothing is stored for none.
  std::vector<std::uint32_t> add_group_message(const group_id& group, const client_id& from, std::uint8_t type,
                                               std::uint32_t content_size, const byte_buffer& inline_content,
                                               const std::string& content_file, const std::vector<client_id>& to);

  // Files the start-up sweep deleted.
  std::size_t swept_files() const noexcept { return swept_files_; }

  // From now on the spool files of delivered messages go to `remover` after each commit that
  // removed their rows (called on the storage thread; it must delete them, e.g. on another
  // thread, or leave them to the next start-up sweep). Without one, commit() deletes them.
  using file_remover = std::function<void(std::vector<std::string> names)>;
  void remove_files_with(file_remover remover) { remover_ = std::move(remover); }

 private:
  struct client_state {
    std::string name;
    public_key key{};
    std::optional<v2_keys> v2;
    std::uint32_t last_id = 0;       // highest message ID given in this mailbox
    std::uint32_t recorded_id = 0;   // highest delivered ID recorded in the backend
    mailbox_usage usage;             // pending, this batch's changes included
  };
  struct pending_entry {
    std::uint32_t id = 0;
    std::uint64_t row = 0;
    std::uint32_t content_size = 0;
  };
  struct batch_message {
    client_id to{};
    pending_entry entry;
  };
  void apply_batch_to_mailboxes();
  std::string now() const;  // of the batch
  const pending_entry* find_pending(const client_id& to, std::uint32_t id) const;

  record_store& records_;
  spool_directory& spool_;
  std::unordered_map<client_id, client_state, client_id_hash> clients_;  // cache of the clients
  std::vector<client_directory::entry> added_in_batch_;
  std::unordered_set<std::string> names_;  // of the clients in clients_
  client_directory directory_;
  // Each recipient's pending messages in send order (committed state).
  std::unordered_map<client_id, std::deque<pending_entry>, client_id_hash> mailboxes_;
  std::vector<batch_message> messages_added_in_batch_, messages_removed_in_batch_;
  std::unordered_map<client_id, std::uint32_t, client_id_hash> removed_up_to_;  // this batch's highest removed ID
  std::unordered_set<client_id, client_id_hash> touched_;  // last-seen updates not yet written
  std::vector<std::string> files_to_remove_;  // after the commit that deleted their rows
  file_remover remover_;                      // empty: commit() deletes them itself
  std::string batch_time_;                      // UTC time of the current batch
  bool in_batch_ = false;
  std::chrono::milliseconds last_seen_flush_;
  std::chrono::steady_clock::time_point last_touch_flush_ = std::chrono::steady_clock::now();
  std::size_t swept_files_ = 0;

  // Groups: the cache, how many groups each client is in, and this batch's undo steps.
  void replace_group(const group_id& id, std::optional<group_state> next);
  std::uint32_t add_message_row(const new_message& message, const group_id* group, std::uint64_t content);
  void change_group(const group_id& id, const std::function<void(group_state&)>& change);
  std::unordered_map<group_id, group_state, client_id_hash> groups_;
  std::unordered_map<client_id, std::size_t, client_id_hash> groups_per_client_;
  std::uint64_t group_sequence_ = 0;
  std::vector<std::function<void()>> group_undo_;
};

}  // namespace letterbox::server

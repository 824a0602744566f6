// mailbox_store on SQLite (SQLiteCpp): server.db in WAL mode with synchronous=FULL, schema
// created and migrated from the embedded schema/*.sql, large contents in a spool directory.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "spool.hpp"
#include "store.hpp"

namespace letterbox::server {

struct client_id_hash {
  std::size_t operator()(const client_id& id) const noexcept {
    std::size_t h = 0;
    for (int i = 0; i < 8; ++i) h = (h << 8) | id[static_cast<std::size_t>(i)];
    return h;  // IDs are random: their first bytes hash well
  }
};

// Copies committed WAL frames into the database file from its own connection and thread,
// every wal_checkpoint_interval, with PRAGMA wal_checkpoint(PASSIVE): the writer never stalls
// for a checkpoint (SQLite's automatic one would run inside a commit, for tens of ms).
class wal_checkpointer {
 public:
  explicit wal_checkpointer(const std::filesystem::path& db_path);
  ~wal_checkpointer();  // stops the thread
  wal_checkpointer(const wal_checkpointer&) = delete;
  wal_checkpointer& operator=(const wal_checkpointer&) = delete;

 private:
  void loop();
  SQLite::Database db_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

class sqlite_store final : public mailbox_store {
 public:
  // Opens (creating or migrating) the database at db_path and sweeps `spool` of files no
  // message references. Throws storage_error, also for a database newer than this server.
  // last_seen_flush: how long last-seen updates may wait (see mailbox_store::touch).
  sqlite_store(const std::filesystem::path& db_path, spool_directory& spool,
               std::chrono::milliseconds last_seen_flush = last_seen_flush_interval);
  ~sqlite_store() override;

  void begin() override;
  void commit() override;
  void rollback() noexcept override;

  bool client_exists(const client_id& id) override;
  bool add_client(const client_id& id, const std::string& name, const public_key& key) override;
  std::optional<public_key> public_key_of(const client_id& id) override;
  std::vector<protocol::client_entry> clients_except(const client_id& except) override;
  void touch(const client_id& id) override;
  bool has_deferred_writes() const noexcept override { return !touched_.empty(); }

  std::uint32_t add_message(const new_message& message) override;
  std::vector<stored_message> pending_messages(const client_id& to, std::uint32_t after_id, std::size_t max_count,
                                               std::uint64_t max_inline_bytes,
                                               std::uint64_t max_payload_bytes) override;
  void remove_messages(const client_id& to, const std::vector<std::uint32_t>& ids) override;
  std::vector<std::string> referenced_content_files() override;

  // The schema version of the open database (PRAGMA user_version).
  int schema_version();
  std::size_t swept_files() const noexcept { return swept_files_; }

 private:
  void migrate();
  void load_clients();
  void load_mailboxes();
  void apply_batch_to_mailboxes();

  SQLite::Database db_;
  spool_directory& spool_;
  std::unique_ptr<SQLite::Statement> insert_client_, insert_message_, touch_client_, select_message_,
      delete_message_, select_clients_;
  std::unordered_map<client_id, public_key, client_id_hash> clients_;  // cache of the clients table
  std::vector<client_id> added_in_batch_;
  // Each recipient's pending message IDs in send order: the mailbox index (schema v2 has no
  // SQL index on ToClient). Reflects committed state; the batch's changes apply at commit.
  std::unordered_map<client_id, std::deque<std::uint32_t>, client_id_hash> mailboxes_;
  std::vector<std::pair<client_id, std::uint32_t>> messages_added_in_batch_, messages_removed_in_batch_;
  std::unordered_set<client_id, client_id_hash> touched_;  // last-seen updates not yet written
  std::vector<std::string> files_to_remove_;  // after the commit that deleted their rows
  std::string batch_time_;                      // UTC time of the current batch
  bool in_batch_ = false;
  std::chrono::milliseconds last_seen_flush_;
  std::chrono::steady_clock::time_point last_touch_flush_ = std::chrono::steady_clock::now();
  std::size_t swept_files_ = 0;
  int wal_pages_ = 0;  // pages in the WAL after the last commit (sqlite3_wal_hook)
  std::unique_ptr<wal_checkpointer> checkpointer_;  // declared last: stops before db_ closes
};

}  // namespace letterbox::server

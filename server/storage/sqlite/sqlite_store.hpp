// record_store on SQLite (SQLiteCpp): server.db in WAL mode with synchronous=FULL, schema
// created and migrated from the embedded schema/*.sql. The only place that includes SQLite.
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "record_store.hpp"
#include "wal_checkpointer.hpp"

namespace letterbox::server {

class sqlite_store final : public record_store {
 public:
  // Opens (creating or migrating) the database at db_path. Throws storage_error, also for a
  // database newer than this server (which it leaves untouched).
  explicit sqlite_store(const std::filesystem::path& db_path);
  ~sqlite_store() override;
  sqlite_store(const sqlite_store&) = delete;
  sqlite_store& operator=(const sqlite_store&) = delete;

  // A failed statement can make SQLite roll the whole transaction back (SQLITE_FULL,
  // SQLITE_IOERR, SQLITE_BUSY, a trigger's RAISE(ROLLBACK)); the statements after it would
  // then run and commit one by one. Once that happened, every later call of the batch and its
  // commit() throw storage_error, so the whole batch fails, until rollback().
  void begin() override;
  void commit() override;
  void rollback() noexcept override;

  void for_each_client(const client_visitor& fn) override;
  void for_each_message_location(const std::function<void(const message_location&)>& fn) override;
  std::vector<std::string> referenced_content_files() override;

  bool insert_client(const client_record& client, const std::string& now) override;
  void update_last_seen(const std::vector<client_id>& clients, const std::string& now) override;
  void record_last_message_id(const client_id& client, std::uint32_t id) override;
  std::uint64_t insert_message(const new_message& message, std::uint32_t id, const std::string& now) override;
  std::uint64_t insert_group_message(const new_message& message, const group_id& group, std::uint64_t content,
                                     std::uint32_t id, const std::string& now) override;
  std::optional<message_record> read_message(std::uint64_t row) override;
  std::optional<deleted_message> delete_message(std::uint64_t row, const client_id& to, std::uint32_t id) override;

  void for_each_group(const std::function<void(const group_record&)>& fn) override;
  void insert_group(const group_id& id, const std::string& name, const client_id& admin, bool open,
                    const std::string& now) override;
  void delete_group(const group_id& id) override;
  void set_group_admin(const group_id& id, const client_id& admin) override;
  void put_group_member(const group_id& id, const client_id& client, bool member) override;
  void delete_group_member(const group_id& id, const client_id& client) override;
  void put_group_ban(const group_id& id, const client_id& client) override;
  void delete_group_ban(const group_id& id, const client_id& client) override;
  std::uint64_t insert_content(const byte_buffer& inline_content, const std::string& content_file,
                               std::uint32_t content_size, std::uint32_t refs) override;

  // The schema version of the open database (PRAGMA user_version).
  int schema_version();

 private:
  void migrate();
  // Runs fn, translating SQLite exceptions into storage_error and noticing a transaction that
  // SQLite rolled back (see begin()).
  template <typename F>
  auto checked(const char* what, F&& fn);
  void notice_lost_transaction() noexcept;
  // After a commit: when the WAL is large and the background checkpointer has copied nearly
  // all of it, copies the rest so that the next transaction starts the WAL over; otherwise
  // hurries the checkpointer. Never copies more than a few MiB (see sqlite_store.cpp).
  void finish_checkpoint() noexcept;
  std::uint64_t insert_row(const new_message& message, const group_id* group, std::uint64_t content_ref,
                           std::uint32_t id, const std::string& now);

  SQLite::Database db_;
  std::unique_ptr<SQLite::Statement> release_content_;  // a shared content's count, lowered
  std::unique_ptr<SQLite::Statement> insert_client_, insert_message_, touch_client_, select_message_,
      delete_message_, record_last_id_;
  bool in_transaction_ = false;
  bool transaction_lost_ = false;
  int wal_pages_ = 0;                  // pages in the WAL after the last commit (sqlite3_wal_hook)
  bool wal_frames_committed_ = false;  // by the transaction now ending (the hook ran)
  bool wal_copied_ = false;            // finish_checkpoint() copied all of it; no new frame since
  std::unique_ptr<wal_checkpointer> checkpointer_;  // stops before db_ closes
  std::unique_lock<std::mutex> wal_file_lock_;      // checkpointer_->wal_file_mutex(), begin() to commit()
};

}  // namespace letterbox::server

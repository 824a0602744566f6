// Copies committed WAL frames of server.db into the database file from its own connection and
// thread, every wal_checkpoint_interval, with PRAGMA wal_checkpoint(PASSIVE): the writer
// never stalls for a checkpoint (SQLite's automatic one would run inside a commit).
#pragma once

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

namespace letterbox::server {

inline constexpr auto wal_checkpoint_interval = std::chrono::milliseconds(100);

class wal_checkpointer {
 public:
  // Opens a second connection to db_path and starts the thread. Throws storage_error.
  wal_checkpointer(const std::filesystem::path& db_path, int busy_timeout_ms);
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

}  // namespace letterbox::server

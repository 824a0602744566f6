// The background WAL checkpointer (see wal_checkpointer.hpp).
#include "wal_checkpointer.hpp"

#include <SQLiteCpp/Exception.h>

#include <string>

#include "sqlite_errors.hpp"

namespace letterbox::server {

wal_checkpointer::wal_checkpointer(const std::filesystem::path& db_path, int busy_timeout_ms)
    : db_(translate("open checkpoint connection",
                    [&] {
                      return SQLite::Database(db_path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX,
                                              busy_timeout_ms);
                    })),
      thread_([this] { loop(); }) {}

wal_checkpointer::~wal_checkpointer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void wal_checkpointer::loop() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, wal_checkpoint_interval, [&] { return stopping_; })) {
    lock.unlock();
    try {
      db_.exec("PRAGMA wal_checkpoint(PASSIVE)");
    } catch (const SQLite::Exception&) {
      // Busy or failing now: the WAL only grows a little; the next round tries again.
    }
    lock.lock();
  }
}

}  // namespace letterbox::server

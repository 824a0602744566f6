// The background WAL checkpointer (see wal_checkpointer.hpp).
#include "wal_checkpointer.hpp"

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

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

void wal_checkpointer::wal_committed(int frames) {
  std::lock_guard lock(mutex_);
  if (frames < wal_frames_) {  // started over: counts from rounds that began before are of the old WAL
    ++wal_generation_;
    copied_frames_ = 0;
    last_round_copied_ = true;  // a new WAL: the next hurry() is worth a round
  }
  wal_frames_ = frames;
}

int wal_checkpointer::copied_frames() const {
  std::lock_guard lock(mutex_);
  return copied_frames_;
}

void wal_checkpointer::hurry(std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  if (!last_round_copied_) return;
  if (!hurried_) {
    hurried_ = true;
    wake_.notify_one();
  }
  const auto ended = rounds_ended_;
  if (wait.count() > 0) round_ended_.wait_for(lock, wait, [&] { return rounds_ended_ != ended || stopping_; });
}

void wal_checkpointer::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, wal_checkpoint_interval, [&] { return stopping_ || hurried_; });
      if (stopping_) return;
      hurried_ = false;
    }
    run_round();
  }
}

void wal_checkpointer::run_round() {
  std::uint64_t generation;
  {
    std::lock_guard lock(mutex_);
    generation = wal_generation_;
  }
  // PASSIVE takes no lock the writer needs and never waits: it copies every frame that no
  // reader still needs (and syncs the database file if that was all of the WAL). Its row: busy
  // (another checkpoint was running: the writer finishing one itself), frames in the WAL,
  // frames copied so far (-1 while the connection has not seen WAL mode). Busy or failed: the
  // next round tries again.
  bool done = false;
  int copied = 0;
  try {
    SQLite::Statement checkpoint(db_, "PRAGMA wal_checkpoint(PASSIVE)");
    if (checkpoint.executeStep() && checkpoint.getColumn(0).getInt() == 0) {
      copied = checkpoint.getColumn(2).getInt();
      done = copied >= 0;
    }
  } catch (const SQLite::Exception&) {
  }
  {
    std::lock_guard lock(mutex_);
    ++rounds_ended_;
    if (generation == wal_generation_) {  // else the WAL started over meanwhile: counts of the old one
      last_round_copied_ = done && copied > copied_frames_;
      if (done) copied_frames_ = copied;
    }
  }
  round_ended_.notify_all();
}

}  // namespace letterbox::server

// The background WAL checkpointer (see wal_checkpointer.hpp).
#include "wal_checkpointer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

#include <algorithm>
#include <string>
#include <system_error>

#include "paced_vfs.hpp"
#include "sqlite_errors.hpp"

namespace letterbox::server {
namespace {

constexpr std::uintmax_t wal_header_bytes = 32;
constexpr std::uintmax_t wal_frame_header_bytes = 24;

}  // namespace

wal_checkpointer::wal_checkpointer(const std::filesystem::path& db_path, int busy_timeout_ms,
                                   std::uintmax_t wal_size_limit)
    : db_(translate("open checkpoint connection",
                    [&] {
                      // paced: the rounds' writes to server.db reach the disk as they go
                      return SQLite::Database(db_path.string().c_str(), SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX,
                                              busy_timeout_ms, paced_vfs_name());
                    })),
      wal_path_(db_path.string() + "-wal"),
      wal_size_limit_(wal_size_limit),
      frame_bytes_(wal_frame_header_bytes +
                   static_cast<std::uintmax_t>(
                       translate("read page size", [&] { return db_.execAndGet("PRAGMA page_size").getInt64(); }))),
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
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (frames < wal_frames_) {  // started over: counts from rounds that began before are of the old WAL
      ++wal_generation_;
      copied_frames_ = 0;
      held_up_ = false;  // a new WAL: the next round is worth running
      losing_ground_ = false;
      behind_ = -1;
      frames_at_round_start_ = 0;
    }
    wal_frames_ = frames;
    if (!held_up_ && !hurried_ && frames - frames_at_round_start_ >= wal_round_frames) wake = hurried_ = true;
  }
  if (wake) wake_.notify_one();
}

int wal_checkpointer::copied_frames() const {
  std::lock_guard lock(mutex_);
  return copied_frames_;
}

void wal_checkpointer::hurry(std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  if (held_up_) return;
  if (!hurried_) {
    hurried_ = true;
    wake_.notify_one();
  }
  const auto ended = rounds_ended_;
  if (wait.count() > 0 && losing_ground_)
    round_ended_.wait_for(lock, wait, [&] { return rounds_ended_ != ended || stopping_; });
}

void wal_checkpointer::loop() {
  bool shrinking = false;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, shrinking ? wal_shrink_pause : wal_checkpoint_interval,
                     [&] { return stopping_ || hurried_; });
      if (stopping_) return;
      hurried_ = false;
    }
    run_round();
    shrinking = shrink_wal_step();
  }
}

void wal_checkpointer::run_round() {
  std::uint64_t generation;
  {
    std::lock_guard lock(mutex_);
    generation = wal_generation_;
    frames_at_round_start_ = std::max(wal_frames_, 0);
  }
  // PASSIVE takes no lock the writer needs and never waits: it copies every frame that no
  // reader still needs (and syncs the database file if that was all of the WAL). Its row: busy
  // (another checkpoint was running: the writer finishing one itself), frames in the WAL,
  // frames copied so far (-1 while the connection has not seen WAL mode). Busy or failed: the
  // next round tries again.
  bool done = false;
  int log_frames = 0, copied = 0;
  try {
    SQLite::Statement checkpoint(db_, "PRAGMA wal_checkpoint(PASSIVE)");
    if (checkpoint.executeStep() && checkpoint.getColumn(0).getInt() == 0) {
      log_frames = checkpoint.getColumn(1).getInt();
      copied = checkpoint.getColumn(2).getInt();
      done = copied >= 0;
    }
  } catch (const SQLite::Exception&) {
  }
  {
    std::lock_guard lock(mutex_);
    ++rounds_ended_;
    if (generation == wal_generation_ && done) {  // else busy, or the WAL started over meanwhile
      const bool progressed = copied > copied_frames_;
      held_up_ = !progressed && copied < log_frames;
      const int behind = std::max(0, wal_frames_ - copied);
      losing_ground_ = progressed && behind_ >= 0 && behind >= behind_;
      behind_ = behind;
      copied_frames_ = copied;
    } else if (generation == wal_generation_) {
      held_up_ = true;  // until the next round at the interval, or the WAL starts over
    }
  }
  round_ended_.notify_all();
}

bool wal_checkpointer::shrink_wal_step() {
  // Only SQLite's journal_size_limit would shorten the WAL file, at the first commit after the
  // WAL started over and all at once: after a long reader, hundreds of MiB freed inside that
  // commit. Here it is cut from the end, one step at a time, while the writer is between two
  // transactions (wal_file_mutex_) and only beyond its last frame (readers never read past
  // it; everything there belongs to an earlier WAL).
  std::error_code error;
  if (std::filesystem::file_size(wal_path_, error) <= wal_size_limit_ || error) return false;
  std::unique_lock file_lock(wal_file_mutex_);
  int frames;
  {
    std::lock_guard lock(mutex_);
    frames = wal_frames_;
  }
  if (frames < 0 || wal_header_bytes + static_cast<std::uintmax_t>(frames) * frame_bytes_ > wal_size_limit_)
    return false;  // not known yet, or the frames in use reach beyond the limit: not started over yet
  const auto size = std::filesystem::file_size(wal_path_, error);
  if (error || size <= wal_size_limit_) return false;
  const auto target = std::max(wal_size_limit_, size > wal_shrink_step ? size - wal_shrink_step : 0);
  const int fd = ::open(wal_path_.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool cut = ::ftruncate(fd, static_cast<off_t>(target)) == 0;
  file_lock.unlock();
  if (cut) ::fdatasync(fd);  // the journal commit of the new size here, not in the writer's next sync
  ::close(fd);
  return cut && target > wal_size_limit_;
}

}  // namespace letterbox::server

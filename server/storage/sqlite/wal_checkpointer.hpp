// Keeps server.db's WAL short from its own connection and thread, so that no commit waits for
// work that grows with the WAL: every wal_checkpoint_interval (sooner when the writer asks) it
// copies committed frames into the database file with wal_checkpoint(PASSIVE), which never
// blocks the writer, and it publishes how far it got; after a long reader it is this thread
// that copies the backlog. It also keeps the WAL file below its size limit, a step at a time
// (see sqlite_store::finish_checkpoint for the writer's side).
#pragma once

#include <SQLiteCpp/Database.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <thread>

namespace letterbox::server {

inline constexpr auto wal_checkpoint_interval = std::chrono::milliseconds(100);
// A round also starts once this many frames were committed since the last one began (4 MiB
// with 4 KiB pages): under fast commits the rounds keep pace instead of waiting for the
// interval, and when the WAL reaches the writer's catch-up size little is left to copy.
inline constexpr int wal_round_frames = 1024;
// Shrinking a large WAL file: at most this much per truncate call (freeing blocks costs about
// 0.3 ms per MiB on an ext4 mounted with discard) and a pause between two calls.
inline constexpr std::uintmax_t wal_shrink_step = 4u << 20;
inline constexpr auto wal_shrink_pause = std::chrono::milliseconds(5);

class wal_checkpointer {
 public:
  // Opens a second connection to db_path and starts the thread. wal_size_limit: the size the
  // WAL file is brought back to once the WAL restarted. Throws storage_error.
  wal_checkpointer(const std::filesystem::path& db_path, int busy_timeout_ms, std::uintmax_t wal_size_limit);
  ~wal_checkpointer();  // stops the thread (a round in progress finishes first)
  wal_checkpointer(const wal_checkpointer&) = delete;
  wal_checkpointer& operator=(const wal_checkpointer&) = delete;

  // The writer's side; one thread.
  //
  // Locked by the writer from the start of each write transaction until it has reported the
  // frames it committed (wal_committed), or rolled back: while this thread holds it to shorten
  // the WAL file (one ftruncate of at most wal_shrink_step: milliseconds, more only while the
  // filesystem's journal is busy), nothing writes to that file.
  std::mutex& wal_file_mutex() { return wal_file_mutex_; }
  // After a commit that wrote frames, under wal_file_mutex: the WAL now holds `frames` frames
  // (sqlite3_wal_hook). Fewer than the last time means it started over from its beginning.
  // Starts a round after wal_round_frames new frames (see hurry() for when it does not).
  void wal_committed(int frames);
  // Frames of the current WAL already copied into the database file: the count reported by
  // the last round that began after the WAL last started over (0 before such a round ended).
  // A lower bound: the writer's own checkpoints and rounds under way may have copied more.
  int copied_frames() const;
  // Asks for a round now instead of at the next interval. Not granted while rounds are held
  // up (the last one copied nothing though frames were waiting: a reader holds them; or it
  // failed): those keep to the interval instead of spinning. With a wait, and if the rounds are
  // losing ground (the last one copied something, yet left more behind than the one before:
  // commits as fast as the disk takes them), also blocks until the round in progress or the
  // next has ended, at most `wait`.
  void hurry(std::chrono::milliseconds wait = std::chrono::milliseconds(0));

 private:
  void loop();
  // One PASSIVE checkpoint; publishes its count unless the WAL started over meanwhile.
  void run_round();
  // Truncates the WAL file by one step towards wal_size_limit_ if it is larger and every
  // frame the WAL holds lies below the limit. Returns true if more remains to cut.
  bool shrink_wal_step();

  SQLite::Database db_;
  const std::filesystem::path wal_path_;
  const std::uintmax_t wal_size_limit_;
  std::uintmax_t frame_bytes_ = 0;  // WAL frame: 24-byte header + one page
  std::mutex wal_file_mutex_;
  mutable std::mutex mutex_;  // everything below; taken after wal_file_mutex_ when both are
  std::condition_variable wake_;        // the thread: stop, or a hurry
  std::condition_variable round_ended_;  // a writer in hurry(wait)
  std::uint64_t rounds_ended_ = 0;
  bool stopping_ = false;
  bool hurried_ = false;
  bool held_up_ = false;
  bool losing_ground_ = false;
  int frames_at_round_start_ = 0;  // wal_frames_ when the last round began
  int behind_ = -1;  // frames the last round left to copy, as far as the writer had reported; -1: none yet
  std::uint64_t wal_generation_ = 0;  // times the WAL started over, as the writer saw it
  int wal_frames_ = -1;               // as the writer last reported; -1: no commit yet
  int copied_frames_ = 0;             // of WAL generation wal_generation_
  std::thread thread_;                // declared last: starts after everything above exists
};

}  // namespace letterbox::server

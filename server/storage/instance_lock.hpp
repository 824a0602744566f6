// One server per database: an exclusive lock on <db>.lock, held for the life of the process
// (the kernel releases it when the process ends, also after kill -9). Taken before the
// server touches the database or its spool directory, so a second server on the same
// database refuses to start instead of sweeping the first one's uploads in progress.
#pragma once

#include <filesystem>

namespace letterbox::server {

class instance_lock {
 public:
  // Creates <db_path>.lock if needed and locks it; records this process's ID in it. Throws
  // storage_error naming the process that holds it when another process does.
  explicit instance_lock(const std::filesystem::path& db_path);
  ~instance_lock();
  instance_lock(const instance_lock&) = delete;
  instance_lock& operator=(const instance_lock&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace letterbox::server

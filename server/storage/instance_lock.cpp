// The database lock (see instance_lock.hpp).
#include "instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "store_types.hpp"

namespace letterbox::server {

namespace {
// The same database under another name (a symlink, "./x" and "x") must find the same lock.
std::filesystem::path lock_path_of(const std::filesystem::path& db_path) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(db_path, ec);
  return (ec ? db_path : canonical).string() + ".lock";
}
}  // namespace

instance_lock::instance_lock(const std::filesystem::path& db_path) : path_(lock_path_of(db_path)) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw storage_error("cannot open lock file " + path_.string() + ": " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[32] = {};
    const ssize_t n = ::pread(fd_, holder, sizeof holder - 1, 0);
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK) {
      std::string pid = n > 0 ? std::string(holder, static_cast<std::size_t>(n)) : std::string("unknown");
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      throw storage_error("another server (pid " + pid + ") is using " + db_path.string() + " (lock " +
                          path_.string() + "); refusing to start");
    }
    throw storage_error("cannot lock " + path_.string() + ": " + std::strerror(error));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t written = ::pwrite(fd_, pid.data(), pid.size(), 0);  // informative only
  }
}

instance_lock::~instance_lock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (removing it would race a new server)
}

}  // namespace letterbox::server

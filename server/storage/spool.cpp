// Spool files for large message contents (see spool.hpp).
#include "spool.hpp"

#include <fcntl.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "messages.hpp"
#include "random_bytes.hpp"
#include "store_types.hpp"

namespace letterbox::server {
namespace {

constexpr int random_name_bytes = 16;
// Pipe capacity asked for splice(2); Linux allows up to 1 MiB (fs.pipe-max-size) by default.
constexpr std::size_t splice_pipe_size = 1 << 20;

[[noreturn]] void throw_errno(const std::string& what) {
  throw storage_error(what + ": " + std::strerror(errno));
}

std::string random_name() {
  std::array<std::uint8_t, random_name_bytes> bytes{};
  fill_random(bytes);
  return protocol::to_hex(bytes);
}

}  // namespace

spool_directory::spool_directory(std::filesystem::path dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw storage_error("cannot create spool directory " + dir_.string() + ": " + ec.message());
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, ec);
}

spool_directory::upload::upload(const spool_directory& owner, int fd, std::string name)
    : owner_(&owner), fd_(fd), name_(std::move(name)) {}

spool_directory::upload::upload(upload&& other) noexcept
    : owner_(other.owner_), fd_(std::exchange(other.fd_, -1)), name_(std::move(other.name_)),
      written_(other.written_), kept_(std::exchange(other.kept_, true)) {
  pipe_[0] = std::exchange(other.pipe_[0], -1);
  pipe_[1] = std::exchange(other.pipe_[1], -1);
}

spool_directory::upload::~upload() {
  if (fd_ >= 0) ::close(fd_);
  for (int end : pipe_)
    if (end >= 0) ::close(end);
  if (!kept_ && !name_.empty()) owner_->remove(name_);
}

void spool_directory::upload::write(std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write to spool file " + name_);
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
    written_ += static_cast<std::uint64_t>(n);
  }
}

spool_directory::upload::received spool_directory::upload::receive_from_socket(int socket_fd, std::uint64_t max) {
  if (pipe_[0] < 0) {
    if (::pipe2(pipe_, O_CLOEXEC) != 0) throw_errno("create a pipe for spool file " + name_);
    ::fcntl(pipe_[1], F_SETPIPE_SZ, static_cast<int>(splice_pipe_size));  // best effort: 64 KiB otherwise
  }
  received result;
  while (result.bytes < max) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(max - result.bytes, splice_pipe_size));
    const ssize_t in = ::splice(socket_fd, nullptr, pipe_[1], nullptr, want, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (in == 0) {
      result.end_of_stream = true;
      break;
    }
    if (in < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) result.socket_error = errno;
      break;  // nothing more waiting (the pipe is always empty here)
    }
    for (ssize_t left = in; left > 0;) {
      const ssize_t out = ::splice(pipe_[0], nullptr, fd_, nullptr, static_cast<std::size_t>(left), SPLICE_F_MOVE);
      if (out < 0 && errno == EINTR) continue;
      if (out <= 0) throw_errno("write to spool file " + name_);
      left -= out;
    }
    written_ += static_cast<std::uint64_t>(in);
    result.bytes += static_cast<std::uint64_t>(in);
  }
  return result;
}

void spool_directory::upload::finish() {
  if (::fsync(fd_) != 0) throw_errno("fsync spool file " + name_);
  owner_->sync_directory();
}

spool_directory::upload spool_directory::create() const {
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::string name = random_name();
    const int fd = ::open((dir_ / name).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) return upload(*this, fd, std::move(name));
    if (errno != EEXIST) throw_errno("create spool file in " + dir_.string());
  }
  throw storage_error("cannot find a free spool file name in " + dir_.string());
}

int spool_directory::open_for_read(const std::string& name) const {
  const int fd = ::open((dir_ / name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open spool file " + name);
  return fd;
}

std::optional<std::uint64_t> spool_directory::file_size(const std::string& name) const noexcept {
  struct stat info {};
  if (::stat((dir_ / name).c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return std::nullopt;
  return static_cast<std::uint64_t>(info.st_size);
}

void spool_directory::remove(const std::string& name) const noexcept {
  ::unlink((dir_ / name).c_str());
}

std::size_t spool_directory::sweep(const std::unordered_set<std::string>& keep) const {
  std::size_t removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    const auto name = entry.path().filename().string();
    if (keep.count(name) == 0) {
      remove(name);
      ++removed;
    }
  }
  if (ec) throw storage_error("cannot list spool directory " + dir_.string() + ": " + ec.message());
  return removed;
}

void spool_directory::sync_directory() const {
  const int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw_errno("open spool directory");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw_errno("fsync spool directory");
}

}  // namespace letterbox::server

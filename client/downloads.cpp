// Received files on disk (see downloads.hpp).
#include "downloads.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "client_files.hpp"
#include "terminal_text.hpp"

namespace letterbox::client {
namespace {

constexpr std::string_view partial_suffix = ".part";
constexpr unsigned max_name_attempts = 10'000;

[[noreturn]] void fail_errno(const std::filesystem::path& path, const char* step) {
  throw config_error(path.string() + ": " + step + " failed: " + std::strerror(errno));
}

// The name for attempt n: "stem.ext", then "stem (n).ext".
std::string numbered(const std::string& stem, const std::string& extension, unsigned n) {
  return n == 0 ? stem + extension : stem + " (" + std::to_string(n) + ")" + extension;
}

}  // namespace

std::string safe_file_name(std::string_view proposed, std::string_view fallback) {
  if (const auto slash = proposed.find_last_of("/\\"); slash != std::string_view::npos)
    proposed.remove_prefix(slash + 1);
  // One character (or one byte that is not UTF-8) at a time: whatever the terminal escaper
  // would escape (controls, bidi overrides, bad bytes, a backslash) becomes one '_'.
  std::string out;
  for (std::size_t at = 0; at < proposed.size();) {
    const auto length = std::max<std::size_t>(1, utf8_sequence_length(proposed, at));
    const auto piece = proposed.substr(at, length);
    out += escape_for_terminal(piece) == piece ? std::string(piece) : std::string("_");
    at += length;
  }
  if (!out.empty() && out.front() == '.') out.front() = '_';
  out = std::string(utf8_prefix(out, max_download_name));
  return out.empty() ? safe_file_name(fallback, "received-file") : out;
}

void prepare_download_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    if (dir.has_parent_path() && !dir.parent_path().empty()) std::filesystem::create_directories(dir.parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) fail_errno(dir, "creating the download directory");
  }
  struct stat info {};
  if (::stat(dir.c_str(), &info) != 0) fail_errno(dir, "stat of the download directory");
  if (!S_ISDIR(info.st_mode)) throw config_error(dir.string() + ": the download directory is not a directory");
  if ((info.st_mode & 077) != 0)
    throw config_error(dir.string() + ": the download directory is open to other users (mode " +
                       [&] {
                         char mode[8];
                         std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(info.st_mode & 0777));
                         return std::string(mode);
                       }() +
                       "); run chmod 700 on it, or choose another with --download-dir");
}

download_file::download_file(const std::filesystem::path& dir, const std::string& base_name)
    : directory_(std::filesystem::absolute(dir)) {
  const auto dot = base_name.rfind('.');
  if (dot == std::string::npos || dot == 0) {
    stem_ = base_name;
  } else {
    stem_ = base_name.substr(0, dot);
    extension_ = base_name.substr(dot);
  }
  for (; attempt_ < max_name_attempts; ++attempt_) {
    final_ = directory_ / numbered(stem_, extension_, attempt_);
    partial_ = final_;
    partial_ += partial_suffix;
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::symlink_status(final_, ec))) continue;
    fd_ = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ >= 0) return;
    if (errno != EEXIST) fail_errno(partial_, "creating the received file");
  }
  throw config_error(directory_.string() + ": no free name for " + base_name);
}

download_file::download_file(download_file&& other) noexcept
    : directory_(std::move(other.directory_)),
      stem_(std::move(other.stem_)),
      extension_(std::move(other.extension_)),
      attempt_(other.attempt_),
      final_(std::move(other.final_)),
      partial_(std::move(other.partial_)),
      fd_(other.fd_) {
  other.fd_ = -1;
  other.partial_.clear();
}

download_file::~download_file() { discard(); }

void download_file::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!partial_.empty()) ::unlink(partial_.c_str());
  partial_.clear();
}

void download_file::write(std::span<const std::uint8_t> bytes) {
  if (fd_ < 0) throw config_error("the received file was already closed");
  for (std::size_t done = 0; done < bytes.size();) {
    const auto n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail_errno(partial_, "writing the received file");
    done += static_cast<std::size_t>(n);
  }
}

std::filesystem::path download_file::publish() {
  if (fd_ < 0) throw config_error("the received file was already closed");
  if (::fsync(fd_) != 0) fail_errno(partial_, "fsync of the received file");
  ::close(fd_);
  fd_ = -1;
  while (::link(partial_.c_str(), final_.c_str()) != 0) {
    if (errno != EEXIST || ++attempt_ >= max_name_attempts) fail_errno(final_, "naming the received file");
    final_ = directory_ / numbered(stem_, extension_, attempt_);  // taken meanwhile: the next free name
  }
  ::unlink(partial_.c_str());
  partial_.clear();
  sync_directory(directory_);
  return final_;
}

void sync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail_errno(dir, "opening the directory to fsync it");
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) fail_errno(dir, "fsync of the directory");
}

}  // namespace letterbox::client

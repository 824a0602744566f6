// Received files on disk: a private download directory, names made safe (a base name, never a
// path), never overwriting, ".part" while receiving, fsync'd (file and directory) when done.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace letterbox::client {

// The longest base name kept from a sender's proposal, in bytes (room is left for " (N)"
// and ".part" within the usual 255-byte file name limit).
inline constexpr std::size_t max_download_name = 200;

// A name that is safe as one file name in the download directory: what follows the last '/'
// or '\' of proposed; control characters, bidirectional overrides and bytes that are not
// well-formed UTF-8 become '_'; a leading '.' becomes '_' (no hidden files, never "." or
// ".."); cut to max_download_name bytes on a character boundary. An empty result is fallback.
std::string safe_file_name(std::string_view proposed, std::string_view fallback = "received-file");

// Creates dir (and its parents) with mode 0700 when it does not exist. Throws config_error
// when it is not a directory, cannot be created, or is open to other users (group/other
// permission bits set): received files are private.
void prepare_download_directory(const std::filesystem::path& dir);

// One file being received: created as "<final>.part" (O_EXCL, mode 0600) under a final name
// that does not exist yet ("name.ext", else "name (1).ext", "name (2).ext", ...). Not copyable;
// destroying it before publish() removes the .part file.
class download_file {
 public:
  // Throws config_error when no file can be created in dir.
  download_file(const std::filesystem::path& dir, const std::string& base_name);
  download_file(download_file&&) noexcept;
  download_file& operator=(download_file&&) = delete;
  download_file(const download_file&) = delete;
  ~download_file();

  // Appends bytes; throws config_error (disk full, I/O error).
  void write(std::span<const std::uint8_t> bytes);
  // fsyncs the file, gives it its final name with link() (never replacing a file: a name
  // taken meanwhile moves on to the next " (N)"), removes the .part name and fsyncs the
  // directory. Returns the final path. Throws config_error.
  std::filesystem::path publish();
  // Removes the .part file now (never throws).
  void discard() noexcept;

  const std::filesystem::path& partial_path() const { return partial_; }

 private:
  std::filesystem::path directory_;
  std::string stem_, extension_;
  unsigned attempt_ = 0;
  std::filesystem::path final_, partial_;
  int fd_ = -1;
};

// fsyncs a directory (its entries become durable); throws config_error on failure.
void sync_directory(const std::filesystem::path& dir);

}  // namespace letterbox::client

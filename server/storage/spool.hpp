// The spool directory: where contents too large to keep inline in server.db live, one file
// per message, written once and fsync'd before the row that references it commits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>

namespace letterbox::server {

class spool_directory {
 public:
  // Creates the directory (owner-only) if needed. Throws storage_error.
  explicit spool_directory(std::filesystem::path dir);

  // A spool file being written. Unless keep() is called, the destructor deletes it, so a
  // half-received upload leaves nothing behind.
  class upload {
   public:
    upload(upload&& other) noexcept;
    upload& operator=(upload&&) = delete;
    ~upload();
    const std::string& name() const noexcept { return name_; }
    // Appends bytes. Throws storage_error.
    void write(std::span<const std::uint8_t> bytes);
    // What receive_from_socket did.
    struct received {
      std::uint64_t bytes = 0;    // moved into the file
      bool end_of_stream = false;  // the peer closed its side
      int socket_error = 0;        // errno of a failed socket read, else 0
    };
    // Moves up to max bytes already waiting on a non-blocking socket into the file with
    // splice(2), through a pipe the upload owns: one copy fewer than read() + write(), and
    // no user-space buffer. Stops when nothing more is waiting. Throws storage_error when the
    // file cannot be written.
    received receive_from_socket(int socket_fd, std::uint64_t max);
    // fsyncs the file and the directory: after it returns the content is durable.
    void finish();
    // The file now belongs to a stored message: the destructor no longer deletes it.
    void keep() noexcept { kept_ = true; }
    std::uint64_t size() const noexcept { return written_; }

   private:
    friend class spool_directory;
    upload(const spool_directory& owner, int fd, std::string name);
    const spool_directory* owner_;
    int fd_;
    int pipe_[2] = {-1, -1};  // for receive_from_socket, made on first use
    std::string name_;
    std::uint64_t written_ = 0;
    bool kept_ = false;
  };

  // Creates a new, uniquely named empty file. Throws storage_error.
  upload create() const;
  // Opens a stored content for reading; returns a file descriptor the caller closes.
  // Throws storage_error when it is missing.
  int open_for_read(const std::string& name) const;
  // The size of a stored content's file; nullopt when it is missing or cannot be looked at.
  std::optional<std::uint64_t> file_size(const std::string& name) const noexcept;
  // Deletes a file; missing files are ignored.
  void remove(const std::string& name) const noexcept;
  // Deletes every file whose name is not in `keep` (half-written uploads, files of messages
  // already delivered). Returns how many were deleted.
  std::size_t sweep(const std::unordered_set<std::string>& keep) const;
  void sync_directory() const;
  const std::filesystem::path& path() const noexcept { return dir_; }

 private:
  std::filesystem::path dir_;
};

}  // namespace letterbox::server

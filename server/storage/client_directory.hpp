// Every registered client's ID, name and kind (v1 or v2), in registration order, readable from any thread while
// the storage worker adds to it — so a 101 (list clients) and "is this client registered"
// are answered on the I/O thread, never waiting for a batch or holding up group commit.
// Entries live in fixed-size chunks that never move; the worker publishes a batch's clients
// after its commit, and a reader sees a consistent prefix.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "messages.hpp"
#include "messages_v2.hpp"
#include "store_types.hpp"

namespace letterbox::server {

class client_directory {
 public:
  static constexpr std::size_t chunk_size = 4096;
  // One client: its ID and name, and protocol::v2::client_flag_v2 for a v2 registration.
  struct entry {
    protocol::client_entry client;
    std::uint8_t flags = 0;
  };
  using chunk = std::array<entry, chunk_size>;

  // A consistent prefix of the directory: the first `count` clients.
  class snapshot {
   public:
    std::size_t size() const noexcept { return count_; }
    const protocol::client_entry& operator[](std::size_t i) const { return at(i).client; }
    std::uint8_t flags(std::size_t i) const { return at(i).flags; }

   private:
    friend class client_directory;
    const entry& at(std::size_t i) const { return (*chunks_[i / chunk_size])[i % chunk_size]; }
    std::vector<const chunk*> chunks_;
    std::size_t count_ = 0;
  };

  // Adds clients (committed ones, in registration order). Storage worker thread only.
  void publish(const std::vector<entry>& added);
  // Any thread.
  snapshot current() const;
  bool contains(const client_id& id) const;
  // True for a registered v2 client (it has an identity key): v1 requests naming it are refused.
  bool is_v2(const client_id& id) const;
  std::size_t size() const;

 private:
  mutable std::shared_mutex mutex_;
  std::vector<std::unique_ptr<chunk>> chunks_;
  std::size_t count_ = 0;
  std::unordered_map<client_id, std::uint8_t, client_id_hash> ids_;  // → flags
};

}  // namespace letterbox::server

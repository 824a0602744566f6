// Protocol v2 state that lives in memory only (docs/PROTOCOL.md §13, §15): what one connection
// has negotiated and proved, and the leases of pulled messages not yet acknowledged.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "messages_v2.hpp"
#include "store_types.hpp"

namespace letterbox::server {

// One connection's v2 state (owned by its session; I/O thread only).
struct v2_connection {
  std::uint64_t token = 0;  // unique per connection for the server's life (lease holder)
  bool hello_done = false;
  std::optional<protocol::v2::challenge> challenge;  // drawn by HELLO, consumed by REGISTER/AUTH
  std::optional<client_id> client;                   // once authenticated
};

// A fresh, unique token for a new connection.
std::uint64_t next_connection_token() noexcept;

// 32 bytes from the operating system's RNG (getrandom(2)). Throws std::system_error.
protocol::v2::challenge draw_challenge();

// Leases of pulled messages (§15): per mailbox, message ID → the connection holding it and its
// expiry. A message without a live lease is free. I/O thread only.
class lease_registry {
 public:
  using clock = std::chrono::steady_clock;
  explicit lease_registry(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  // Ends every lease of `mailbox` held by another connection than `holder`, and every expired
  // one; returns the IDs still leased (to `holder`), sorted.
  std::vector<std::uint32_t> release_others(const client_id& mailbox, std::uint64_t holder, clock::time_point now = clock::now());
  // Leases these messages of `mailbox` to `holder` until now + timeout.
  void lease(const client_id& mailbox, std::uint64_t holder, const std::vector<std::uint32_t>& ids,
             clock::time_point now = clock::now());
  // Ends the leases of these messages (acknowledged).
  void release(const client_id& mailbox, const std::vector<std::uint32_t>& ids);
  // Ends every lease `holder` has on `mailbox` (its connection closed).
  void release_holder(const client_id& mailbox, std::uint64_t holder) noexcept;
  // Live delivery (Part V): every lease in force on `mailbox`, whoever holds it, sorted (the
  // expired ones end here); and whether `holder` holds a lease in force on message `id`.
  std::vector<std::uint32_t> in_force(const client_id& mailbox, clock::time_point now = clock::now());
  bool holds(const client_id& mailbox, std::uint64_t holder, std::uint32_t id, clock::time_point now = clock::now()) const;
  // The earliest expiry after `now` of a lease on `mailbox`, whoever holds it: when a subscriber
  // must look again, since the message then is free to be pushed (Part V). O(leases of mailbox).
  std::optional<clock::time_point> next_expiry(const client_id& mailbox, clock::time_point now = clock::now()) const;
  // Leases in force on a mailbox (expired ones included until the next release_others), for tests.
  std::size_t leased(const client_id& mailbox) const;
  std::chrono::milliseconds timeout() const noexcept { return timeout_; }

 private:
  struct lease_entry {
    std::uint64_t holder = 0;
    clock::time_point expiry{};
  };
  std::chrono::milliseconds timeout_;
  std::unordered_map<client_id, std::unordered_map<std::uint32_t, lease_entry>, client_id_hash> mailboxes_;
};

}  // namespace letterbox::server

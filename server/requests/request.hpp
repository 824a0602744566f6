// What every request flow gets: the server context (shared by all connections), the request
// being handled (its header, its connection, how much of its payload is unread), and the
// outcome it reports to the session. Each flow is one file of this folder:
//   fixed_requests.cpp  100 register, 101 list clients, 102 public key
//   send_message.cpp    103 send (inline content, or streamed to a spool file)
//   pull_messages.cpp   104 pull (inline contents, spool files by sendfile)
//   v2_session.cpp      v2 200 HELLO, 201 REGISTER, 202 AUTH (the connection's identity)
//   v2_directory.cpp    v2 203 LIST, 204 KEYS
//   v2_mail.cpp         v2 205 SEND (the 103 path), 206 PULL (leases), 207 ACK
//   v2_groups.cpp       v2 220..230 groups (Part IV), rules in group_handler.cpp
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "client_directory.hpp"
#include "connection.hpp"
#include "handler.hpp"
#include "limits.hpp"
#include "messages.hpp"
#include "spool.hpp"
#include "storage_worker.hpp"
#include "v2_state.hpp"

namespace letterbox::server {

class live_registry;      // v2_live.hpp: subscriptions and presence (Part V)
class live_subscription;  // v2_live.hpp: one connection's subscription

// One pull in progress (see pull_registry).
struct pull_ticket {
  net::connection* connection = nullptr;
  bool writing = false;  // its 1004 carries messages and is being written
};

// Pulls in progress, one per mailbox (I/O thread only), so that a new pull of a mailbox sees
// every message not yet delivered — also right after a cut connection the server has not
// noticed yet, or while a reader has stopped reading: every pull starts from the oldest
// message, and a new pull of a mailbox closes the connection of an earlier one that is still
// writing messages (they stay in the mailbox; nothing of that pull is removed). Two pulls
// that overlap otherwise may both deliver a message (at least once, never lost).
class pull_registry {
 public:
  // Registers a pull of `mailbox` on `connection`, dealing with the pull it replaces.
  std::shared_ptr<pull_ticket> begin(const client_id& mailbox, net::connection& connection);
  // Ends the registration if `ticket` still holds it.
  void end(const client_id& mailbox, const std::shared_ptr<pull_ticket>& ticket) noexcept;
  std::size_t size() const noexcept { return pulls_.size(); }

 private:
  std::unordered_map<client_id, std::shared_ptr<pull_ticket>, client_id_hash> pulls_;
};

// Writes a line at most once per interval per key; the next one says how many were dropped.
// For errors that repeat on every request while a disk is full.
class log_limiter {
 public:
  explicit log_limiter(std::chrono::milliseconds interval = std::chrono::seconds(1)) : interval_(interval) {}
  // Returns the number of lines dropped since the last one written (>= 0) when this one
  // should be written, or -1 when it should be dropped.
  long allow(const std::string& key, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  struct state {
    std::chrono::steady_clock::time_point last{};
    long dropped = 0;
  };
  std::chrono::milliseconds interval_;
  std::unordered_map<std::string, state> keys_;
};

// So many events per minute per IP address (a token bucket per address holding as many).
// For registrations: one address cannot fill the directory. I/O thread only.
class rate_limiter {
 public:
  explicit rate_limiter(std::uint32_t per_minute) : per_minute_(per_minute) {}
  // True (and counted) when one more event from `address` is within the rate.
  bool allow(const boost::asio::ip::address& address,
             std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
  // Whether one more event from `address` would be within the rate, counting nothing (for
  // events counted only once they happened: a failed AUTH, after its verification).
  bool available(const boost::asio::ip::address& address,
                 std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) const;

 private:
  struct bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point updated{};
  };
  std::uint32_t per_minute_;
  std::map<boost::asio::ip::address, bucket> buckets_;
};

// The free space of the file system holding the database and the spool, looked at no more
// than every 100 ms: sends are refused before the disk is full. I/O thread only.
class disk_space {
 public:
  disk_space(std::filesystem::path directory, std::uint64_t min_free)
      : directory_(std::move(directory)), min_free_(min_free) {}
  // True when storing `bytes` more — beyond the sends in progress — leaves at least the
  // minimum free (or the minimum is 0).
  bool allows(std::uint64_t bytes, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
  std::uint64_t min_free() const noexcept { return min_free_; }
  // A send in progress counts its size against the free space until it ends.
  class reservation {
   public:
    reservation(disk_space& disk, std::uint64_t bytes) : disk_(disk), bytes_(bytes) { disk_.reserved_ += bytes_; }
    ~reservation() { disk_.reserved_ -= bytes_; }
    reservation(const reservation&) = delete;
    reservation& operator=(const reservation&) = delete;

   private:
    disk_space& disk_;
    std::uint64_t bytes_;
  };

 private:
  std::filesystem::path directory_;
  std::uint64_t min_free_;
  std::uint64_t reserved_ = 0;  // sizes of the sends in progress
  std::uint64_t free_ = 0;
  std::chrono::steady_clock::time_point checked_{};
  bool known_ = false;
};

// Bytes of inline content all pulls in progress hold together, at most `total`. A pull takes
// its share before it reads messages and gives back what it did not use at once, the rest
// when its response was written; a pull that finds too little waits. I/O thread only.
class memory_budget {
 public:
  explicit memory_budget(std::uint64_t total) : total_(total) {}
  // Waits until `min` bytes (at most the total) are free, then takes a fair share — an eighth
  // of what is free, at least `min`, at most `max` — and returns it. Gives up, throwing
  // request_rejected, when `connection` closes or after `patience`; operation_aborted after
  // cancel_all().
  boost::asio::awaitable<std::uint64_t> acquire(std::uint64_t min, std::uint64_t max, const net::connection& connection,
                                                std::chrono::milliseconds patience);
  void release(std::uint64_t bytes) noexcept;
  // Ends every wait (shutdown).
  void cancel_all() noexcept;
  std::uint64_t in_use() const noexcept { return used_; }

 private:
  std::uint64_t total_;
  std::uint64_t used_ = 0;
  bool cancelled_ = false;
  std::vector<boost::asio::steady_timer*> waiters_;
};

// What every session shares; owned by main and outlives all sessions.
struct server_context {
  storage_worker& storage;
  request_handler& handler;  // touched only inside storage jobs (the worker's thread)
  spool_directory& spool;
  const client_directory& directory;    // any thread
  boost::asio::thread_pool& file_pool;  // the connections' blocking file and socket calls
  pull_registry& pulls;                 // I/O thread only
  log_limiter& errors;                  // I/O thread only
  rate_limiter& registrations;          // I/O thread only
  rate_limiter& auth_failures;          // I/O thread only: failed v2 AUTHs (--auth-failure-rate)
  disk_space& disk;                     // I/O thread only
  memory_budget& pull_memory;           // I/O thread only
  lease_registry& leases;               // I/O thread only
  server_limits limits;
  // Where HELLO's challenges come from: the OS RNG. (The fuzz target fixes it, so its corpus
  // can carry valid REGISTER and AUTH proofs and reach the authenticated paths.)
  protocol::v2::challenge (*new_challenge)() = &draw_challenge;
  // Live delivery (docs/PROTOCOL.md Part V), I/O thread only; null: none (codes 210-212 are
  // then unknown v1 codes, as before).
  live_registry* live = nullptr;
};

// One request whose header was read.
struct request {
  protocol::request_header header;
  net::connection& connection;
  server_context& server;
  std::uint64_t unread_payload = header.payload_size;
  v2_connection* v2 = nullptr;      // the connection's v2 state (null where a flow needs none)
  bool close_after_error = false;   // a failed REGISTER / AUTH ends the connection after its 9000
  live_subscription* live = nullptr;  // the connection's subscription state (Part V), when live delivery is on

  // Reads exactly the buffer's size of the payload.
  boost::asio::awaitable<void> read(const boost::asio::mutable_buffer& buffer) {
    co_await connection.read_exact(static_cast<std::uint8_t*>(buffer.data()), buffer.size());
    unread_payload -= buffer.size();
  }
};

// How a request ended, for the session's log line.
struct outcome {
  std::uint16_t code = static_cast<std::uint16_t>(protocol::response_code::error);
  std::uint64_t response_size = 0;
  std::string reason;  // why a 9000 was sent
  bool close = false;  // the stream cannot be re-synchronised: close after the response
};

// Writes a whole response and reports it.
boost::asio::awaitable<outcome> respond(request& r, protocol::byte_buffer response);

// The flows. Each answers its request on success; a rule violation throws request_rejected or
// protocol_error, a storage failure storage_error, and the session answers 9000 (when the
// response has not begun). Socket errors end the connection.
boost::asio::awaitable<outcome> handle_fixed_request(request& r);  // 100, 101, 102
boost::asio::awaitable<outcome> handle_send_message(request& r);   // 103
boost::asio::awaitable<outcome> handle_pull_messages(request& r);  // 104
// v2 (r.header.version == 3, code 200..207, r.v2 set). Rule violations throw request_rejected
// with their §18 reason.
boost::asio::awaitable<outcome> handle_v2_session_request(request& r);  // 200, 201, 202
boost::asio::awaitable<outcome> handle_v2_directory_request(request& r);  // 203, 204
boost::asio::awaitable<outcome> handle_v2_send(request& r);  // 205
boost::asio::awaitable<outcome> handle_v2_pull(request& r);  // 206
boost::asio::awaitable<outcome> handle_v2_ack(request& r);   // 207
boost::asio::awaitable<outcome> handle_v2_group_request(request& r);  // 220..230 (v2_groups.cpp, Part IV)
// Live delivery (v2_live.cpp; r.live and r.server.live set): 210 SUBSCRIBE, 211 PRESENCE, 212 PING.
boost::asio::awaitable<outcome> handle_live_request(request& r);

// --- Shared by the v1 and v2 flows ------------------------------------------------------------
// The part of a send after its prefix was checked (103 and 205): disk watermark, content
// inline or to a spool file, the storage job (quotas, commit), then `encode(sent)` is written.
boost::asio::awaitable<outcome> receive_and_store(request& r, const client_id& sender,
                                                  const protocol::send_message_prefix& prefix,
                                                  protocol::byte_buffer (*encode)(const protocol::message_sent&));
// GROUP SEND (230) after its prefix was checked: as receive_and_store, the content stored once as
// group ID ‖ content for every member but the sender (Part IV §22, §24); answers 2030.
boost::asio::awaitable<outcome> receive_and_store_group(request& r, const client_id& sender,
                                                        const protocol::send_message_prefix& prefix);
// The authenticated client of a v2 request; bad_state when the connection has none. (Its
// last-seen time is recorded by the flow's storage job, as for v1.)
client_id require_authenticated(request& r);
// Reads a payload of exactly `expected` bytes (at most 64 KiB + a register's size): malformed
// when the header announces another size.
boost::asio::awaitable<protocol::byte_buffer> read_fixed_payload(request& r, std::uint32_t expected);
}  // namespace letterbox::server

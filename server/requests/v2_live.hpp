// Live delivery on protocol v2 (docs/PROTOCOL.md Part V): who is subscribed (to wake them when
// a message for them is committed), who is online and when each client was last seen (memory
// only), one connection's subscription, and the push itself (the PULL path of v2_mail.cpp
// under a window). I/O thread only.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "messages_live.hpp"
#include "request.hpp"

namespace letterbox::server {

// Something to wake when a mailbox has news (a live_subscription).
class live_subscriber {
 public:
  virtual void wake() noexcept = 0;

 protected:
  ~live_subscriber() = default;
};

class live_registry {
 public:
  explicit live_registry(std::size_t max_subscriptions) : max_subscriptions_(max_subscriptions) {}

  // Subscribes `s` to `mailbox`; false (nothing changed) at --max-subscriptions.
  bool subscribe(const client_id& mailbox, live_subscriber* s);
  void unsubscribe(const client_id& mailbox, live_subscriber* s) noexcept;
  // Wakes every subscriber of `mailbox` (a message was committed for it, or leases ended).
  void notify(const client_id& mailbox) noexcept;
  std::size_t subscriptions(const client_id& mailbox) const noexcept;
  std::size_t subscribers() const noexcept { return total_; }

  // Presence: an authenticated v2 connection of `client` opened, made a request, closed.
  void connected(const client_id& client);
  void seen(const client_id& client);
  void disconnected(const client_id& client) noexcept;
  // Its 2011 entry (flags online and v2, last seen in Unix seconds; 0 = not this run).
  protocol::live::presence_entry presence_of(const client_id& client, bool is_v2) const;

 private:
  struct presence {
    std::size_t connections = 0;
    std::uint64_t last_seen = 0;
  };
  std::size_t max_subscriptions_;
  std::size_t total_ = 0;
  std::unordered_map<client_id, std::vector<live_subscriber*>, client_id_hash> subscribers_;
  std::unordered_map<client_id, presence, client_id_hash> presence_;
};

// One connection's live state (owned by its session): subscribed or not, whether a push is
// due, what was pushed and not acknowledged (the window), and the signal the session waits on.
class live_subscription final : public live_subscriber {
 public:
  explicit live_subscription(const boost::asio::any_io_executor& executor) : signal(executor) {}
  void wake() noexcept override {
    pending = true;
    signal.cancel();
  }

  boost::asio::steady_timer signal;  // the session's wait; cancelled to wake it
  bool subscribed = false;
  bool pending = false;                         // look for messages to push
  std::map<std::uint32_t, std::uint64_t> outstanding;  // pushed, leased, not acknowledged: ID → content size
};

// Pushes what is free in the connection's mailbox within its window as one 2015 (nothing when
// the window is full or nothing is free); returns the number of messages pushed. `r` is a
// request of the session made for the push (its header is not read). Socket errors end the
// connection, as a 2006 cut short.
boost::asio::awaitable<std::size_t> push_waiting(request& r);

}  // namespace letterbox::server

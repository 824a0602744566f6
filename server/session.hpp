// One coroutine per connection: read a request header, dispatch to the request flow of its
// code (requests/), turn any rule violation or storage failure into a 9000, log one line;
// repeat until the peer closes, a timeout, or an error the stream cannot recover from.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <cstddef>
#include <string>
#include <map>
#include <vector>

#include "request.hpp"

namespace letterbox::server {

class session;

// Tracks live sessions: shutdown closes them, the accept loop counts them per IP address and
// makes room when the server is full.
class session_registry {
 public:
  std::size_t size() const noexcept { return sessions_.size(); }
  std::size_t count_from(const boost::asio::ip::address& address) const;
  void add(session* s);
  void remove(session* s) noexcept;
  void close_all();
  // Closes the session idle longest — or, when none is idle, the one whose request began
  // longest ago (the slowest) — and returns a description of it for the log; "" when none.
  std::string close_least_active();

 private:
  std::vector<session*> sessions_;
  std::map<boost::asio::ip::address, std::size_t> per_address_;  // (no std::hash for it in Boost 1.74)
};

// Starts a session for an accepted socket from `peer`; it runs on the socket's executor.
void start_session(boost::asio::ip::tcp::socket socket, const boost::asio::ip::tcp::endpoint& peer,
                   server_context& context, session_registry& registry);

}  // namespace letterbox::server

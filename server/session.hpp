// One coroutine per connection: read a request header, dispatch to the request flow of its
// code (requests/), turn any rule violation or storage failure into a 9000, log one line;
// repeat until the peer closes, a timeout, or an error the stream cannot recover from.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <cstddef>
#include <vector>

#include "request.hpp"

namespace letterbox::server {

class session;

// Tracks live sessions so shutdown can close them.
class session_registry {
 public:
  std::size_t size() const noexcept { return sessions_.size(); }
  void add(session* s);
  void remove(session* s) noexcept;
  void close_all();

 private:
  std::vector<session*> sessions_;
};

// Starts a session for an accepted socket from `peer`; it runs on the socket's executor.
void start_session(boost::asio::ip::tcp::socket socket, const boost::asio::ip::tcp::endpoint& peer,
                   server_context& context, session_registry& registry);

}  // namespace letterbox::server

// One coroutine per connection: read a request, hand it to the handler through the storage
// worker, write the response; repeat until the peer closes, a timeout, or an unrecoverable
// protocol error. Large contents stream between socket and spool file in fixed-size chunks.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <memory>

#include "handler.hpp"
#include "limits.hpp"
#include "spool.hpp"
#include "storage_worker.hpp"

namespace letterbox::server {

// What every session shares; owned by main and outlives all sessions.
struct server_context {
  storage_worker& storage;
  request_handler& handler;  // touched only inside storage jobs (the worker's thread)
  spool_directory& spool;
  boost::asio::thread_pool& file_pool;  // blocking spool-file reads/writes/fsyncs
  server_limits limits;
};

class session;

// Tracks live sessions so shutdown can close them.
class session_registry {
 public:
  std::size_t size() const noexcept { return live_; }
  void add(session* s);
  void remove(session* s) noexcept;
  void close_all();

 private:
  std::vector<session*> sessions_;
  std::size_t live_ = 0;
};

// Starts a session for an accepted socket from `peer`; it runs on the socket's executor.
void start_session(boost::asio::ip::tcp::socket socket, const boost::asio::ip::tcp::endpoint& peer,
                   server_context& context, session_registry& registry);

}  // namespace letterbox::server

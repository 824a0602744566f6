// What every request flow gets: the server context (shared by all connections), the request
// being handled (its header, its connection, how much of its payload is unread), and the
// outcome it reports to the session. Each flow is one file of this folder:
//   fixed_requests.cpp  100 register, 101 list clients, 102 public key
//   send_message.cpp    103 send (inline content, or streamed to a spool file)
//   pull_messages.cpp   104 pull (inline contents, spool files by sendfile)
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <cstdint>
#include <string>

#include "connection.hpp"
#include "handler.hpp"
#include "limits.hpp"
#include "messages.hpp"
#include "spool.hpp"
#include "storage_worker.hpp"

namespace letterbox::server {

// What every session shares; owned by main and outlives all sessions.
struct server_context {
  storage_worker& storage;
  request_handler& handler;  // touched only inside storage jobs (the worker's thread)
  spool_directory& spool;
  boost::asio::thread_pool& file_pool;  // the connections' blocking file and socket calls
  server_limits limits;
};

// One request whose header was read.
struct request {
  protocol::request_header header;
  net::connection& connection;
  server_context& server;
  std::uint64_t unread_payload = header.payload_size;

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

}  // namespace letterbox::server

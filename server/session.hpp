// One coroutine per connection: read a request header, dispatch to the request flow of its
// code (requests/), turn any rule violation or storage failure into a 9000, log one line;
// repeat until the peer closes, a timeout, or an error the stream cannot recover from.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>

#include "connection_registry.hpp"
#include "request.hpp"

namespace letterbox::server {

// Starts a session for an accepted socket from `peer`; it runs on the socket's executor and
// keeps its connection in `registry` while it lives.
void start_session(boost::asio::ip::tcp::socket socket, const boost::asio::ip::tcp::endpoint& peer,
                   server_context& context, net::connection_registry& registry);

}  // namespace letterbox::server

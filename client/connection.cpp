// Blocking socket with per-operation timeouts: each operation is started asynchronously and
// the io_context runs for at most the timeout; if it did not finish, the socket is closed.
#include <utility>  // before Boost.Asio (Boost 1.74 + g++ 12 + C++20)

#include "connection.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include <boost/asio.hpp>

namespace letterbox::client {

namespace asio = boost::asio;
using asio::ip::tcp;

struct connection::impl {
  asio::io_context io;
  tcp::socket socket{io};
  std::chrono::steady_clock::duration timeout;
  std::string peer;

  // Runs the pending operation; if it is not done within the timeout, cancels it (by default
  // by closing the socket) and returns false once it has completed with an error.
  template <typename Cancel>
  bool run_with_timeout(Cancel cancel) {
    io.restart();
    io.run_for(timeout);
    if (io.stopped()) return true;
    cancel();
    io.run();
    return false;
  }
  bool run_with_timeout() {
    return run_with_timeout([this] {
      boost::system::error_code ignored;
      socket.close(ignored);  // completes the operation with operation_aborted
    });
  }

  // The socket stays open so that a caller may still read a response the server sent
  // before giving up on the request (e.g. 9000 then close during a large upload).
  [[noreturn]] void fail(const char* what, const boost::system::error_code& ec, bool timed_out) {
    if (timed_out) throw connection_error(what + std::string(" ") + peer + " timed out");
    if (ec == asio::error::eof) throw connection_error("server " + peer + " closed the connection");
    throw connection_error(what + std::string(" ") + peer + " failed: " + ec.message());
  }
};

connection::connection(const server_address& server, std::chrono::steady_clock::duration io_timeout)
    : impl_(std::make_unique<impl>()) {
  auto& s = *impl_;
  s.timeout = io_timeout;
  s.peer = server.host + ":" + std::to_string(server.port);
  tcp::resolver resolver(s.io);
  boost::system::error_code ec;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(server.host, std::to_string(server.port),
                         [&](const boost::system::error_code& e, tcp::resolver::results_type r) {
                           ec = e;
                           endpoints = std::move(r);
                         });
  if (!s.run_with_timeout([&] { resolver.cancel(); })) s.fail("resolving", ec, true);
  if (ec) s.fail("resolving", ec, false);
  asio::async_connect(s.socket, endpoints, [&](const boost::system::error_code& e, const tcp::endpoint&) { ec = e; });
  const bool in_time = s.run_with_timeout();
  if (!in_time || ec) s.fail("connecting to", ec, !in_time);
  s.socket.set_option(tcp::no_delay(true), ec);
}

connection::~connection() = default;

void connection::write(protocol::bytes_view bytes) {
  auto& s = *impl_;
  boost::system::error_code ec;
  asio::async_write(s.socket, asio::buffer(bytes.data(), bytes.size()),
                    [&](const boost::system::error_code& e, std::size_t) { ec = e; });
  const bool in_time = s.run_with_timeout();
  if (!in_time || ec) s.fail("sending to", ec, !in_time);
}

int connection::descriptor() const { return impl_->socket.native_handle(); }

void connection::read(std::span<std::uint8_t> out) {
  auto& s = *impl_;
  boost::system::error_code ec;
  asio::async_read(s.socket, asio::buffer(out.data(), out.size()),
                   [&](const boost::system::error_code& e, std::size_t) { ec = e; });
  const bool in_time = s.run_with_timeout();
  if (!in_time || ec) s.fail("reading from", ec, !in_time);
}

bool connection::peer_closed() {
  auto& s = *impl_;
  if (!s.socket.is_open()) return true;
  pollfd ready{s.socket.native_handle(), POLLIN, 0};
  if (::poll(&ready, 1, 0) <= 0) return false;  // nothing to read: still open
  std::uint8_t byte = 0;
  const auto n = ::recv(s.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);  // closed (0), stray bytes (1), or reset
}

void connection::send_request(const protocol::request_header& header, protocol::bytes_view payload_prefix) {
  write(protocol::encode_request_front(header.client, header.version, header.code, header.payload_size,
                                       payload_prefix));
}

protocol::response_header connection::read_response_header() {
  protocol::response_header_bytes bytes{};
  read(bytes);
  return protocol::decode_response_header(bytes);
}

protocol::byte_buffer connection::read_payload(std::uint32_t size, std::uint32_t limit) {
  if (size > limit)
    throw connection_error("server " + impl_->peer + " announced a " + std::to_string(size) +
                           "-byte payload, more than the expected " + std::to_string(limit));
  // Read in pieces so that the buffer grows with the bytes that arrived, not with the size
  // the server announced (a peer that announces 16 MiB and sends nothing costs 64 KiB).
  constexpr std::size_t piece = 64u << 10;
  protocol::byte_buffer payload;
  while (payload.size() < size) {
    const auto at = payload.size();
    payload.resize(at + std::min<std::size_t>(piece, size - at));
    read(std::span(payload.data() + at, payload.size() - at));
  }
  return payload;
}

}  // namespace letterbox::client

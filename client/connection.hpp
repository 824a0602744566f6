// One TCP connection to the server with framing helpers: request out, response header and
// payload in. Every socket operation has its own timeout; no protocol semantics here.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>

#include "client_files.hpp"
#include "messages.hpp"

namespace letterbox::client {

// The one error type of the connection layer: resolve/connect failure, timeout, peer closed.
class connection_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr std::chrono::seconds default_io_timeout{60};

// A connected, blocking socket. Any failure leaves it unusable (throw, then discard it).
class connection {
 public:
  // Resolves and connects; throws connection_error (naming host:port) on failure or timeout.
  connection(const server_address& server, std::chrono::steady_clock::duration io_timeout);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Writes all bytes, or throws connection_error if they are not written within the timeout.
  void write(protocol::bytes_view bytes);
  // Reads exactly out.size() bytes, or throws connection_error (timeout, closed, reset).
  void read(std::span<std::uint8_t> out);

  // True when the peer has closed the connection, or sent bytes nobody asked for (the stream
  // is then out of step): checked without blocking before an idle connection is reused.
  bool peer_closed();
  // The socket's descriptor, to poll(2) it for readability (reads are never buffered here).
  int descriptor() const;

  // Writes, in one write, the request header (announcing header.payload_size) followed by
  // payload_prefix, which is the whole payload or its first part (the rest follows through
  // write()). Throws protocol_error if payload_prefix is longer than header.payload_size,
  // connection_error as write() does.
  void send_request(const protocol::request_header& header, protocol::bytes_view payload_prefix);
  // Reads and decodes the 7-byte response header; throws connection_error.
  protocol::response_header read_response_header();
  // Reads a payload of a known size into memory; throws connection_error if size > limit,
  // before allocating anything. The buffer grows as the bytes arrive.
  protocol::byte_buffer read_payload(std::uint32_t size, std::uint32_t limit);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace letterbox::client

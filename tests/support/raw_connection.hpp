// raw_connection: a blocking TCP client for tests that speaks bytes, not semantics.
//
// Every operation is bounded by a per-operation timeout (default 10 s), so a test can never
// hang on a misbehaving server: on expiry the socket is closed and operation_timeout is thrown.
// A peer close or reset is reported as connection_closed. Nothing here validates responses;
// protocol_helpers.hpp builds the typed requests on top.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include "messages.hpp"

namespace letterbox::test {

namespace protocol = letterbox::protocol;

class connection_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// The operation did not complete within the timeout; the socket has been closed.
class operation_timeout : public connection_error {
 public:
  using connection_error::connection_error;
};
// The server closed (EOF) or reset the connection.
class connection_closed : public connection_error {
 public:
  using connection_error::connection_error;
};

struct response {
  protocol::response_header header;
  protocol::byte_buffer payload;
  std::uint16_t code() const noexcept { return header.code; }
};

// What wait_for_close() observed.
enum class close_outcome {
  closed,          // EOF or reset: the server closed the connection
  still_open,      // nothing arrived within the wait; the connection is open
  data_received,   // the server sent bytes instead (they are consumed and lost)
};

inline constexpr std::chrono::milliseconds default_operation_timeout{10'000};
inline constexpr std::size_t default_max_response_payload = 64 * 1024 * 1024;

class raw_connection {
 public:
  // Connects to host:port (bounded by `timeout`); throws connection_error on failure.
  explicit raw_connection(std::uint16_t port,
                          std::chrono::milliseconds timeout = default_operation_timeout,
                          const std::string& host = "127.0.0.1");
  ~raw_connection();
  raw_connection(raw_connection&&) noexcept;
  raw_connection& operator=(raw_connection&&) noexcept;

  void set_timeout(std::chrono::milliseconds timeout) noexcept { timeout_ = timeout; }
  std::chrono::milliseconds timeout() const noexcept { return timeout_; }

  // --- Sending ---------------------------------------------------------------------------
  void send_bytes(protocol::bytes_view bytes);
  // The 22-byte request header alone (payload_size as given, whatever follows).
  void send_header(const protocol::client_id& client, std::uint8_t code, std::uint32_t payload_size,
                   std::uint8_t version = protocol::client_version);
  // Header with payload_size = payload.size(), then the payload, in one write. Throws
  // protocol_error if the payload does not fit the u32 size field.
  void send_request(const protocol::client_id& client, std::uint8_t code,
                    protocol::bytes_view payload, std::uint8_t version = protocol::client_version);
  // Half-closes the sending side (the server reads EOF); reading still works.
  void shutdown_send();

  // --- Receiving -------------------------------------------------------------------------
  void read_exact(std::span<std::uint8_t> out);
  protocol::byte_buffer read_exact(std::size_t n);
  // Reads until `out` is full or the server closes (EOF or reset); returns the bytes read,
  // fewer than out.size() only when the server closed. Throws operation_timeout on expiry.
  std::size_t read_or_close(std::span<std::uint8_t> out);
  protocol::response_header read_response_header();
  // Header + payload. Throws connection_error if the payload is larger than max_payload
  // (the payload is then not read).
  response read_response(std::size_t max_payload = default_max_response_payload);
  // send_request() + read_response().
  response request(const protocol::client_id& client, std::uint8_t code,
                   protocol::bytes_view payload, std::size_t max_payload = default_max_response_payload);

  // Waits up to `wait` for the server to close the connection, reading (and discarding) at
  // most one byte.
  close_outcome wait_for_close(std::chrono::milliseconds wait);

  void close() noexcept;
  bool is_open() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::chrono::milliseconds timeout_;
};

}  // namespace letterbox::test

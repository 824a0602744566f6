// raw_connection: blocking reads/writes built on Asio async operations driven by
// io_context::run_for(), so each operation has a hard deadline (Boost 1.74 has no
// cancel_after). On expiry the socket is closed, which completes the pending operation.
#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include "raw_connection.hpp"

#include <boost/asio.hpp>

#include <optional>

namespace letterbox::test {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

struct raw_connection::impl {
  asio::io_context io;
  tcp::socket socket{io};

  // Runs the already-started async operation until `done` or the deadline. On timeout the
  // operation is cancelled (and drained) and false is returned; the socket stays open.
  bool run_until(const std::optional<error_code>& done, std::chrono::milliseconds timeout) {
    io.restart();
    io.run_for(timeout);
    if (done) return true;
    error_code ignored;
    socket.cancel(ignored);
    io.restart();
    io.run();
    return false;
  }

  // Like run_until(), but a timeout closes the socket and throws operation_timeout.
  void run(const std::optional<error_code>& done, std::chrono::milliseconds timeout, const char* what) {
    if (run_until(done, timeout)) return;
    error_code ignored;
    socket.close(ignored);
    throw operation_timeout(std::string(what) + ": timed out after " + std::to_string(timeout.count()) +
                            " ms");
  }
};

namespace {

bool is_close_error(const error_code& error) {
  return error == asio::error::eof || error == asio::error::connection_reset ||
         error == asio::error::broken_pipe || error == asio::error::connection_aborted;
}

[[noreturn]] void throw_for(const error_code& error, const char* what) {
  if (is_close_error(error))
    throw connection_closed(std::string(what) + ": connection closed by server (" + error.message() + ")");
  throw connection_error(std::string(what) + ": " + error.message());
}

}  // namespace

raw_connection::raw_connection(std::uint16_t port, std::chrono::milliseconds timeout,
                               const std::string& host)
    : impl_(std::make_unique<impl>()), timeout_(timeout) {
  const tcp::endpoint endpoint(asio::ip::make_address(host), port);
  std::optional<error_code> done;
  impl_->socket.async_connect(endpoint, [&](const error_code& error) { done = error; });
  impl_->run(done, timeout_, "connect");
  if (*done) throw connection_error("connect to " + host + ":" + std::to_string(port) + ": " + done->message());
  impl_->socket.set_option(tcp::no_delay(true));
}

raw_connection::~raw_connection() { close(); }
raw_connection::raw_connection(raw_connection&&) noexcept = default;
raw_connection& raw_connection::operator=(raw_connection&&) noexcept = default;

void raw_connection::send_bytes(protocol::bytes_view bytes) {
  if (!is_open()) throw connection_error("send: connection is closed");
  std::optional<error_code> done;
  asio::async_write(impl_->socket, asio::buffer(bytes.data(), bytes.size()),
                    [&](const error_code& error, std::size_t) { done = error; });
  impl_->run(done, timeout_, "send");
  if (*done) throw_for(*done, "send");
}

void raw_connection::send_header(const protocol::client_id& client, std::uint8_t code,
                                 std::uint32_t payload_size, std::uint8_t version) {
  const auto header = protocol::encode_request_header({client, version, code, payload_size});
  send_bytes(header);
}

void raw_connection::send_request(const protocol::client_id& client, std::uint8_t code,
                                  protocol::bytes_view payload, std::uint8_t version) {
  // One write for header + payload: a request arrives as the server would usually see it.
  send_bytes(protocol::encode_request(client, version, code, payload));
}

void raw_connection::shutdown_send() {
  error_code error;
  impl_->socket.shutdown(tcp::socket::shutdown_send, error);
  if (error == asio::error::not_connected) throw connection_closed("shutdown: connection already reset by server");
  if (error) throw connection_error("shutdown: " + error.message());
}

void raw_connection::read_exact(std::span<std::uint8_t> out) {
  const std::size_t transferred = read_or_close(out);
  if (transferred < out.size())
    throw connection_closed("read: connection closed by server after " + std::to_string(transferred) + " of " +
                            std::to_string(out.size()) + " bytes");
}

protocol::byte_buffer raw_connection::read_exact(std::size_t n) {
  protocol::byte_buffer out(n);
  read_exact(std::span<std::uint8_t>(out));
  return out;
}

std::size_t raw_connection::read_or_close(std::span<std::uint8_t> out) {
  if (!is_open()) throw connection_error("read: connection is closed");
  std::optional<error_code> done;
  std::size_t transferred = 0;
  asio::async_read(impl_->socket, asio::buffer(out.data(), out.size()),
                   [&](const error_code& error, std::size_t n) {
                     done = error;
                     transferred = n;
                   });
  impl_->run(done, timeout_, "read");
  if (*done && !is_close_error(*done)) throw_for(*done, "read");
  return transferred;
}

protocol::response_header raw_connection::read_response_header() {
  protocol::response_header_bytes bytes{};
  read_exact(std::span<std::uint8_t>(bytes));
  return protocol::decode_response_header(bytes);
}

response raw_connection::read_response(std::size_t max_payload) {
  response result;
  result.header = read_response_header();
  if (result.header.payload_size > max_payload)
    throw connection_error("response " + std::to_string(result.header.code) + " announces " +
                           std::to_string(result.header.payload_size) + " payload bytes, more than the " +
                           std::to_string(max_payload) + " this read accepts");
  result.payload = read_exact(result.header.payload_size);
  return result;
}

response raw_connection::request(const protocol::client_id& client, std::uint8_t code,
                                 protocol::bytes_view payload, std::size_t max_payload) {
  send_request(client, code, payload);
  return read_response(max_payload);
}

close_outcome raw_connection::wait_for_close(std::chrono::milliseconds wait) {
  if (!is_open()) throw connection_error("wait_for_close: connection is closed");
  std::optional<error_code> done;
  std::uint8_t byte = 0;
  impl_->socket.async_read_some(asio::buffer(&byte, 1), [&](const error_code& error, std::size_t) { done = error; });
  if (!impl_->run_until(done, wait)) return close_outcome::still_open;
  if (!*done) return close_outcome::data_received;
  if (is_close_error(*done)) return close_outcome::closed;
  throw_for(*done, "wait_for_close");
}

void raw_connection::close() noexcept {
  if (!impl_) return;
  error_code ignored;
  impl_->socket.close(ignored);
}

bool raw_connection::is_open() const noexcept { return impl_ && impl_->socket.is_open(); }

}  // namespace letterbox::test

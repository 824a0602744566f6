// The server's connection (see connection.hpp).
#include "connection.hpp"

#include <spdlog/spdlog.h>

#include <cstring>

namespace letterbox::server::net {
namespace asio = boost::asio;

connection::connection(tcp::socket socket, const tcp::endpoint& peer, const timing& times, asio::thread_pool& file_pool)
    : socket_(std::move(socket)),
      watchdog_(socket_.get_executor()),
      times_(times),
      activity_{false, clock_type::now()},
      file_pool_(file_pool),
      peer_(peer.address().to_string() + ":" + std::to_string(peer.port())),
      peer_address_(peer.address()),
      peer_network_(network_of(peer.address())) {
  boost::system::error_code ec;
  socket_.set_option(tcp::no_delay(true), ec);
}

asio::ip::address network_of(const asio::ip::address& address) {
  if (!address.is_v6()) return address;
  const auto v6 = address.to_v6();
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
  auto bytes = v6.to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes);
}

void connection::begin_request() {
  activity_ = {true, clock_type::now(), 0};
  request_used_ = clock_type::duration::zero();
  in_request_limit_ = times_.min_rate != 0;
}

void connection::end_request() {
  in_request_limit_ = false;
  request_used_ = clock_type::duration::zero();
  activity_ = {false, clock_type::now(), 0};
}

connection::clock_type::duration connection::request_time_left(std::uint64_t bytes) const noexcept {
  if (!in_request_limit_) return clock_type::duration::max();
  // grace + bytes / rate, in double seconds: no overflow for any byte count.
  const double allowed = std::chrono::duration<double>(times_.request_grace).count() +
                         static_cast<double>(activity_.moved + bytes) / static_cast<double>(times_.min_rate);
  const double left = allowed - std::chrono::duration<double>(request_used_).count();
  if (left >= std::chrono::duration<double>(std::chrono::hours(24 * 365)).count()) return clock_type::duration::max();
  return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(left));
}

void connection::close() noexcept {
  closing_ = true;
  boost::system::error_code ec;
  if (pool_operation_active_)
    socket_.shutdown(tcp::socket::shutdown_both, ec);
  else
    socket_.close(ec);
  watchdog_.cancel();
}

asio::awaitable<void> connection::watch() {
  boost::system::error_code ec;
  while (socket_.is_open() && !closing_) {
    if (deadline_ <= clock_type::now()) {
      if (deadline_is_request_)
        spdlog::info("{}: the request's reads and writes took longer than {} ms + the bytes it moved at {} B/s, closing", peer_,
                     times_.request_grace.count(), times_.min_rate);
      else
        spdlog::info("{}: a read or write step took longer than {} ms, closing", peer_, times_.io_timeout.count());
      close();
      break;
    }
    // No deadline (waiting for storage): look again one timeout later. Never wait for
    // time_point::max(), or a deadline set meanwhile would go unnoticed.
    watchdog_expiry_ = deadline_ == clock_type::time_point::max() ? clock_type::now() + times_.io_timeout : deadline_;
    watchdog_.expires_at(watchdog_expiry_);
    co_await watchdog_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

asio::awaitable<bool> connection::wait_for_input() {
  if (input_begin_ != input_end_) co_return true;
  boost::system::error_code ec;
  std::size_t got = 0;
  {
    deadline_guard step(*this);
    got = co_await socket_.async_read_some(asio::buffer(input_), asio::redirect_error(asio::use_awaitable, ec));
  }
  if (ec == asio::error::eof) co_return false;
  if (ec) throw boost::system::system_error(ec);
  input_begin_ = 0;
  input_end_ = got;
  co_return true;
}

asio::awaitable<void> connection::read_exact(std::uint8_t* destination, std::size_t n) {
  const std::size_t buffered = std::min(n, input_end_ - input_begin_);
  std::memcpy(destination, input_.data() + input_begin_, buffered);
  input_begin_ += buffered;
  destination += buffered;
  n -= buffered;
  count_moved(buffered);
  if (n == 0) co_return;
  deadline_guard step(*this, n);
  if (n >= input_.size()) {
    co_await asio::async_read(socket_, asio::buffer(destination, n), asio::use_awaitable);
  } else {
    input_begin_ = 0;
    input_end_ = co_await asio::async_read(socket_, asio::buffer(input_), asio::transfer_at_least(n),
                                           asio::use_awaitable);
    std::memcpy(destination, input_.data(), n);
    input_begin_ = n;
  }
  count_moved(n);
}

asio::awaitable<void> connection::wait_readable() {
  if (input_begin_ != input_end_) co_return;
  deadline_guard step(*this);
  co_await socket_.async_wait(tcp::socket::wait_read, asio::use_awaitable);
}

asio::awaitable<void> connection::wait_writable() {
  deadline_guard step(*this);
  co_await socket_.async_wait(tcp::socket::wait_write, asio::use_awaitable);
}

std::size_t connection::read_available(std::uint8_t* destination, std::size_t n) {
  make_non_blocking();
  std::size_t got = std::min(n, input_end_ - input_begin_);
  std::memcpy(destination, input_.data() + input_begin_, got);
  input_begin_ += got;
  while (got < n) {
    boost::system::error_code ec;
    const std::size_t more = socket_.read_some(asio::buffer(destination + got, n - got), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) throw boost::system::system_error(ec);
    got += more;
  }
  count_moved(got);
  return got;
}

void connection::make_non_blocking() {
  if (!socket_.non_blocking()) socket_.non_blocking(true);
}

asio::awaitable<void> connection::linger_before_close() {
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  deadline_ = clock_type::now() + std::min<clock_type::duration>(times_.io_timeout, close_linger_time);
  deadline_is_request_ = false;
  if (deadline_ < watchdog_expiry_) watchdog_.cancel();  // wake it for this shorter deadline
  for (std::size_t drained = 0; drained < close_linger_bytes;) {
    drained += co_await socket_.async_read_some(asio::buffer(input_), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;  // the peer closed, or the watchdog did at the deadline
  }
}

}  // namespace letterbox::server::net

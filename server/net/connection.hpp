// One TCP connection of the server: buffered reads and writes, each step under a deadline
// that a watchdog enforces, linger-before-close, and blocking calls on the file pool (also
// while they use the socket's descriptor). Knows nothing of the protocol.
//
// Every awaitable here runs on the socket's executor and is awaited by the one coroutine that
// owns the connection; close() may be called from any handler on that executor.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

namespace letterbox::server::net {

// How long a connection's reads and writes may take.
struct timing {
  // Each read or write step (waiting for the next request, for more bytes of one, for the
  // peer to take more of a response) may take this long.
  std::chrono::milliseconds io_timeout{30'000};
  // And the steps of a whole request together — from its first byte until its response is
  // written — may take request_grace plus the bytes the request has moved so far (read and
  // written, the current step's included) at min_rate bytes per second: a peer must keep
  // the bytes coming, so one that drips a byte now and then cannot hold a connection — not
  // even by announcing a huge size. Time outside the steps (waiting for storage or for
  // memory) does not count. min_rate 0: no such limit.
  std::chrono::milliseconds request_grace{10'000};
  std::uint64_t min_rate = 0;
};

// What a connection is doing, for choosing one to close when the server is full.
struct activity {
  bool in_request = false;
  std::chrono::steady_clock::time_point since{};  // idle since, or the request began at
  std::uint64_t moved = 0;                         // bytes the request has moved so far
};

// Per-connection input buffer: holds a whole small request (a 64-byte text send is 107 bytes)
// while staying cheap for 10,000 idle connections.
inline constexpr std::size_t input_buffer_size = 512;
// How long and how much a connection being closed keeps reading (see linger_before_close).
inline constexpr auto close_linger_time = std::chrono::seconds(2);
inline constexpr std::size_t close_linger_bytes = 16 << 20;

// Runs fn on the pool and resumes the caller on its own executor with fn's result.
// (Not a coroutine itself, for the same g++ 12 reason as storage_worker::run.)
template <typename F>
boost::asio::awaitable<std::invoke_result_t<F>> run_blocking(boost::asio::thread_pool& pool, F fn) {
  using result = std::invoke_result_t<F>;
  return boost::asio::co_spawn(
      pool.get_executor(), [fn = std::move(fn)]() mutable -> boost::asio::awaitable<result> { co_return fn(); },
      boost::asio::use_awaitable);
}

class connection {
 public:
  using clock_type = std::chrono::steady_clock;
  using tcp = boost::asio::ip::tcp;

  // peer: where the socket was accepted from. times: the deadlines the watchdog enforces.
  // file_pool runs the blocking calls; it must outlive the connection.
  connection(tcp::socket socket, const tcp::endpoint& peer, const timing& times, boost::asio::thread_pool& file_pool);
  connection(tcp::socket socket, const tcp::endpoint& peer, std::chrono::milliseconds io_timeout,
             boost::asio::thread_pool& file_pool)
      : connection(std::move(socket), peer, timing{io_timeout, {}, 0}, file_pool) {}

  // "address:port" of the peer, for log lines; its address alone.
  const std::string& peer() const noexcept { return peer_; }
  const boost::asio::ip::address& peer_address() const noexcept { return peer_address_; }
  // The address as per-address limits count it: IPv4 as is, IPv6 by its /64 (one end site
  // gets a whole /64, so counting single IPv6 addresses would limit nothing).
  const boost::asio::ip::address& peer_network() const noexcept { return peer_network_; }

  // A request began: its time limit (see timing) starts now; end_request: its response was
  // written. Bytes moved outside this class's reads and writes (splice, sendfile on the
  // file pool) are reported with count_moved.
  void begin_request();
  void end_request();
  void count_moved(std::uint64_t bytes) noexcept { activity_.moved += bytes; }
  net::activity activity() const noexcept { return activity_; }
  boost::asio::any_io_executor executor() { return socket_.get_executor(); }

  // Closes the socket when a read or write step has not completed by its deadline. Spawn it
  // beside the coroutine that uses the connection; it ends when the connection closes.
  boost::asio::awaitable<void> watch();
  // Ends the connection. While a file-pool thread uses the socket's descriptor it is only shut
  // down (the descriptor number must not be reused under that call); run_on_socket then throws
  // operation_aborted and the owner's final close() releases the descriptor.
  void close() noexcept;
  bool closing() const noexcept { return closing_; }

  // Waits for the next bytes when nothing is buffered. Returns false at a clean end of stream
  // (no exception: legacy clients end every connection this way).
  boost::asio::awaitable<bool> wait_for_input();
  // Reads exactly n bytes: first from what an earlier read brought in, then from the socket.
  // Small reads fill the input buffer (one receive usually brings a whole small request, or
  // several pipelined ones); large ones go straight to their destination.
  boost::asio::awaitable<void> read_exact(std::uint8_t* destination, std::size_t n);
  // Returns once input is buffered or the socket is readable, holding no buffer meanwhile.
  boost::asio::awaitable<void> wait_readable();
  // Calls handler(error_code) once the socket is readable, or with an error once it closes. Not
  // a step: no deadline (a subscribed connection's idle wait, whose limit is its heartbeat).
  template <typename Handler>
  void on_readable(Handler&& handler) {
    socket_.async_wait(tcp::socket::wait_read, std::forward<Handler>(handler));
  }
  // Copies up to n bytes that are already here (input buffer, then socket) without waiting.
  // Throws boost::system::system_error at end of stream or a socket error.
  std::size_t read_available(std::uint8_t* destination, std::size_t n);
  // Bytes received but not yet consumed, and consuming them.
  std::span<const std::uint8_t> buffered() const noexcept {
    return {input_.data() + input_begin_, input_end_ - input_begin_};
  }
  void consume(std::size_t n) noexcept {
    input_begin_ += n;
    count_moved(n);
  }

  template <typename ConstBufferSequence>
  boost::asio::awaitable<void> write(const ConstBufferSequence& buffers) {
    const std::uint64_t size = boost::asio::buffer_size(buffers);
    deadline_guard step(*this, size);
    co_await boost::asio::async_write(socket_, buffers, boost::asio::use_awaitable);
    count_moved(size);
  }
  // Returns once the socket can take more bytes.
  boost::asio::awaitable<void> wait_writable();

  // Runs fn on the file pool. fn must not touch the socket; see run_on_socket.
  template <typename F>
  boost::asio::awaitable<std::invoke_result_t<F>> run_blocking(F fn) {
    return net::run_blocking(file_pool_, std::move(fn));
  }
  // Runs fn(descriptor) on the file pool; the descriptor is non-blocking. Meanwhile close()
  // only shuts the socket down (the descriptor must not be reused under fn); afterwards a
  // close that happened meanwhile throws operation_aborted.
  template <typename F>
  boost::asio::awaitable<std::invoke_result_t<F, int>> run_on_socket(F fn) {
    make_non_blocking();
    const int fd = socket_.native_handle();
    struct active_flag {
      bool& flag;
      explicit active_flag(bool& f) : flag(f) { flag = true; }
      ~active_flag() { flag = false; }
    } active(pool_operation_active_);
    auto result = co_await net::run_blocking(file_pool_, [fn = std::move(fn), fd]() mutable { return fn(fd); });
    if (closing_) throw boost::system::system_error(boost::asio::error::operation_aborted);
    co_return result;
  }

  // Before closing after an answer the peer may not expect (a 9000 that ends the
  // connection): stop sending, then read and drop what the peer still sends for a little
  // while. Closing with unread data makes the kernel answer with a reset, which can destroy
  // the last answer before the peer reads it.
  boost::asio::awaitable<void> linger_before_close();

 private:
  // A read or write step: the watchdog closes the connection unless it ends in time.
  class deadline_guard {
   public:
    // bytes: what this step will move when it completes (0: not known in advance).
    explicit deadline_guard(connection& c, std::uint64_t bytes = 0) : c_(c), started_(clock_type::now()) {
      const auto left = c_.request_time_left(bytes);
      c_.deadline_is_request_ = left < c_.times_.io_timeout;
      c_.deadline_ = started_ + (c_.deadline_is_request_ ? std::max(left, clock_type::duration::zero())
                                                         : clock_type::duration(c_.times_.io_timeout));
      if (c_.deadline_ < c_.watchdog_expiry_) c_.watchdog_.cancel();  // it sleeps past this deadline: wake it
    }
    ~deadline_guard() {
      c_.deadline_ = clock_type::time_point::max();
      c_.request_used_ += clock_type::now() - started_;
    }
    deadline_guard(const deadline_guard&) = delete;
    deadline_guard& operator=(const deadline_guard&) = delete;

   private:
    connection& c_;
    clock_type::time_point started_;
  };

  // read_some and sendfile must not block the thread. Asio's own async operations do not care;
  // set only when needed, so small requests cost no extra system call.
  void make_non_blocking();

  tcp::socket socket_;
  boost::asio::steady_timer watchdog_;
  clock_type::time_point deadline_ = clock_type::time_point::max();
  // Time the current request's steps may still take, counting `bytes` more than moved so far.
  clock_type::duration request_time_left(std::uint64_t bytes) const noexcept;

  bool in_request_limit_ = false;  // a request is running and min_rate applies
  clock_type::duration request_used_{};  // by its steps so far
  bool deadline_is_request_ = false;  // the current step's deadline is the request's
  clock_type::time_point watchdog_expiry_ = clock_type::time_point::max();  // when the watchdog looks next
  timing times_;
  net::activity activity_;
  boost::asio::thread_pool& file_pool_;
  std::array<std::uint8_t, input_buffer_size> input_{};
  std::size_t input_begin_ = 0, input_end_ = 0;  // unconsumed bytes in input_
  bool pool_operation_active_ = false;  // a file-pool thread is using the socket's descriptor
  bool closing_ = false;
  std::string peer_;
  boost::asio::ip::address peer_address_;
  boost::asio::ip::address peer_network_;
};

// The /64 of an IPv6 address (IPv4 and IPv4-mapped addresses as IPv4); see peer_network().
boost::asio::ip::address network_of(const boost::asio::ip::address& address);

}  // namespace letterbox::server::net

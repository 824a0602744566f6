// The per-connection session (see session.hpp). Path of one request:
//   read 22-byte header → check code and payload size → read payload (or stream content to a
//   spool file) → storage job (handler, group commit) → write response → log one line.
#include "session.hpp"

#include <spdlog/spdlog.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

namespace letterbox::server {
namespace asio = boost::asio;
using asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace protocol;

namespace {

// Per-connection input buffer: holds a whole small request (a 64-byte text send is 107 bytes)
// while staying cheap for 10,000 idle connections.
constexpr std::size_t input_buffer_size = 512;

// How long and how much a connection closed after a 9000 keeps reading (see linger_before_close).
constexpr auto close_linger_time = std::chrono::seconds(2);
constexpr std::size_t close_linger_bytes = 16 << 20;

// First allocation step of an inline content; it then grows with the bytes received.
constexpr std::size_t inline_growth_step = 4096;
// Largest sendfile(2) call for pulled spool files.
constexpr std::size_t sendfile_chunk_size = 4 << 20;
// Output of a pull is gathered into writes of about this size.
constexpr std::size_t pull_write_chunk = 256 * 1024;

// Runs fn on the file pool and resumes the caller on its own executor with the result.
// (Not a coroutine itself, for the same g++ 12 reason as storage_worker::run.)
template <typename F>
asio::awaitable<std::invoke_result_t<F>> run_blocking(asio::thread_pool& pool, F fn) {
  using result = std::invoke_result_t<F>;
  return asio::co_spawn(
      pool.get_executor(), [fn = std::move(fn)]() mutable -> asio::awaitable<result> { co_return fn(); },
      asio::use_awaitable);
}

// How a request ended, for the log line.
struct outcome {
  std::uint16_t code = static_cast<std::uint16_t>(response_code::error);
  std::uint64_t response_size = 0;
  std::string reason;  // why a 9000 was sent
  bool close = false;  // the stream cannot be re-synchronised: close after the response
};

}  // namespace

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, const tcp::endpoint& peer, server_context& context, session_registry& registry)
      : socket_(std::move(socket)),
        watchdog_(socket_.get_executor()),
        context_(context),
        registry_(registry),
        peer_(peer.address().to_string() + ":" + std::to_string(peer.port())) {
    boost::system::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    registry_.add(this);
  }
  ~session() { registry_.remove(this); }

  void start() {
    auto self = shared_from_this();
    asio::co_spawn(socket_.get_executor(), [self]() { return self->run(); }, asio::detached);
    asio::co_spawn(socket_.get_executor(), [self]() { return self->watch(); }, asio::detached);
  }

  // Ends the connection. While a file-pool thread uses the socket's descriptor it is only
  // shut down; the session closes it when that call returns.
  void close() noexcept {
    closing_ = true;
    boost::system::error_code ec;
    if (pool_operation_active_)
      socket_.shutdown(tcp::socket::shutdown_both, ec);
    else
      socket_.close(ec);
    watchdog_.cancel();
  }

  std::size_t registry_index = 0;

 private:
  asio::awaitable<void> run() {
    try {
      for (;;) {
        if (input_begin_ == input_end_ && !co_await fill_input()) break;  // the peer closed between requests
        request_header_bytes header_bytes;
        co_await read_exact(header_bytes.data(), header_bytes.size());
        const auto started = clock_type::now();
        const auto header = decode_request_header(header_bytes);
        unread_payload_ = header.payload_size;
        outcome result = co_await handle(header);
        log_request(header, result, started);
        if (result.close) {
          co_await linger_before_close();
          break;
        }
      }
    } catch (const boost::system::system_error& e) {
      if (e.code() != asio::error::eof && e.code() != asio::error::operation_aborted &&
          e.code() != asio::error::connection_reset && e.code() != asio::error::bad_descriptor)
        spdlog::debug("{}: connection ended: {}", peer_, e.what());
    } catch (const std::exception& e) {
      spdlog::error("{}: session failed: {}", peer_, e.what());
    }
    close();
  }

  // After a 9000 that ends the connection the peer may still be sending what was refused.
  // Closing with unread data makes the kernel answer with a reset, which can destroy the 9000
  // before the peer reads it; so stop sending, then read and drop for a little while.
  asio::awaitable<void> linger_before_close() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    deadline_ = clock_type::now() + std::min<clock_type::duration>(context_.limits.io_timeout, close_linger_time);
    for (std::size_t drained = 0; drained < close_linger_bytes;) {
      drained += co_await socket_.async_read_some(asio::buffer(input_), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;  // the peer closed, or the watchdog did at the deadline
    }
  }

  // Closes the socket when a read or write step has not completed by its deadline.
  asio::awaitable<void> watch() {
    boost::system::error_code ec;
    while (socket_.is_open() && !closing_) {
      if (deadline_ <= clock_type::now()) {
        spdlog::info("{}: a read or write step took longer than {} ms, closing", peer_, context_.limits.io_timeout.count());
        close();
        break;
      }
      // No deadline (waiting for storage): look again one timeout later. Never wait for
      // time_point::max(), or a deadline set meanwhile would go unnoticed.
      watchdog_.expires_at(deadline_ == clock_type::time_point::max()
                               ? clock_type::now() + context_.limits.io_timeout
                               : deadline_);
      co_await watchdog_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // Waits for the next bytes into the empty input buffer. Returns false at a clean end of
  // stream (no exception: legacy clients end every connection this way).
  asio::awaitable<bool> fill_input() {
    boost::system::error_code ec;
    deadline_ = clock_type::now() + context_.limits.io_timeout;
    const std::size_t got =
        co_await socket_.async_read_some(asio::buffer(input_), asio::redirect_error(asio::use_awaitable, ec));
    deadline_ = clock_type::time_point::max();
    if (ec == asio::error::eof) co_return false;
    if (ec) throw boost::system::system_error(ec);
    input_begin_ = 0;
    input_end_ = got;
    co_return true;
  }

  // Reads exactly n bytes: first from what an earlier read brought in, then from the socket.
  // Small reads fill the session's input buffer (one receive usually brings a whole small
  // request, or several pipelined ones); large ones go straight to their destination.
  asio::awaitable<void> read_exact(std::uint8_t* destination, std::size_t n) {
    const std::size_t buffered = std::min(n, input_end_ - input_begin_);
    std::memcpy(destination, input_.data() + input_begin_, buffered);
    input_begin_ += buffered;
    destination += buffered;
    n -= buffered;
    if (n == 0) co_return;
    deadline_ = clock_type::now() + context_.limits.io_timeout;
    if (n >= input_.size()) {
      co_await asio::async_read(socket_, asio::buffer(destination, n), asio::use_awaitable);
    } else {
      input_begin_ = 0;
      input_end_ = co_await asio::async_read(socket_, asio::buffer(input_), asio::transfer_at_least(n),
                                             asio::use_awaitable);
      std::memcpy(destination, input_.data(), n);
      input_begin_ = n;
    }
    deadline_ = clock_type::time_point::max();
  }

  // Returns once input is buffered or the socket is readable, holding no buffer meanwhile.
  asio::awaitable<void> wait_readable() {
    if (input_begin_ != input_end_) co_return;
    deadline_ = clock_type::now() + context_.limits.io_timeout;
    co_await socket_.async_wait(tcp::socket::wait_read, asio::use_awaitable);
    deadline_ = clock_type::time_point::max();
  }

  // Copies up to n bytes that are already here (input buffer, then socket) without waiting.
  // Throws on end of stream or a socket error.
  std::size_t read_available(std::uint8_t* destination, std::size_t n) {
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
    return got;
  }

  // Runs fn, which uses the socket's descriptor, on the file pool. Meanwhile close() only
  // shuts the socket down (the descriptor must not be reused under fn); afterwards a close
  // that happened meanwhile ends the session.
  template <typename F>
  asio::awaitable<std::invoke_result_t<F>> run_on_socket(F fn) {
    struct active_flag {
      bool& flag;
      explicit active_flag(bool& f) : flag(f) { flag = true; }
      ~active_flag() { flag = false; }
    } active(pool_operation_active_);
    auto result = co_await run_blocking(context_.file_pool, std::move(fn));
    if (closing_) throw boost::system::system_error(asio::error::operation_aborted);
    co_return result;
  }

  // read_some and sendfile must not block the thread. Asio's own async operations do not care;
  // set only when needed, so small requests cost no extra system call.
  void make_non_blocking() {
    if (!socket_.non_blocking()) socket_.non_blocking(true);
  }

  // Reads exactly the buffer's size of the current request's payload.
  asio::awaitable<void> read(const asio::mutable_buffer& buffer) {
    co_await read_exact(static_cast<std::uint8_t*>(buffer.data()), buffer.size());
    unread_payload_ -= buffer.size();
  }

  template <typename Buffer>
  asio::awaitable<void> write(const Buffer& buffer) {
    deadline_ = clock_type::now() + context_.limits.io_timeout;
    co_await asio::async_write(socket_, buffer, asio::use_awaitable);
    deadline_ = clock_type::time_point::max();
  }

  // Handles one request whose header was read. Every rule violation and storage failure
  // becomes a 9000 here, the one place errors are translated into the protocol.
  asio::awaitable<outcome> handle(const request_header& header) {
    std::string failure;
    try {
      switch (static_cast<request_code>(header.code)) {
        case request_code::send_message: co_return co_await handle_send(header);
        case request_code::pull_messages: co_return co_await handle_pull(header);
        case request_code::register_client:
        case request_code::list_clients:
        case request_code::get_public_key: co_return co_await handle_fixed(header);
      }
      failure = "unknown request code " + std::to_string(header.code);
    } catch (const request_rejected& e) {
      failure = e.what();
    } catch (const protocol_error& e) {
      failure = e.what();
    } catch (const storage_error& e) {
      spdlog::error("{}: storage error: {}", peer_, e.what());
      failure = std::string("storage error: ") + e.what();
    }
    co_return co_await reject(std::move(failure));
  }

  // Answers 9000 after consuming the rest of the request's payload when that is cheap;
  // otherwise the stream cannot be re-synchronised and the connection closes after the answer.
  asio::awaitable<outcome> reject(std::string reason) {
    outcome result;
    result.reason = std::move(reason);
    result.close = unread_payload_ > max_discard_size;
    if (!result.close) {
      std::array<std::uint8_t, input_buffer_size> scratch;  // sized by what arrives, not by the size field
      while (unread_payload_ > 0)
        co_await read(asio::buffer(scratch.data(), std::min<std::uint64_t>(unread_payload_, scratch.size())));
    }
    static const byte_buffer error = encode_error_response();
    co_await write(asio::buffer(error));
    result.response_size = error.size();
    co_return result;
  }

  asio::awaitable<outcome> respond(byte_buffer response) {
    co_await write(asio::buffer(response));
    co_return outcome{decode_response_header(bytes_view(response).first(response_header_size)).code,
                      response.size(), {}, false};
  }

  // 100, 101, 102: small fixed-size payloads.
  asio::awaitable<outcome> handle_fixed(const request_header& header) {
    const auto expected = *fixed_payload_size(header.code);
    if (header.payload_size != expected)
      throw request_rejected("payload size " + std::to_string(header.payload_size) + " instead of " +
                             std::to_string(expected));
    std::array<std::uint8_t, register_payload_size> storage{};
    auto payload = std::span<std::uint8_t>(storage).first(expected);
    if (expected > 0) co_await read(asio::buffer(payload.data(), payload.size()));
    auto& handler = context_.handler;
    const client_id requester = header.client;
    const auto code = static_cast<request_code>(header.code);
    auto job = [&handler, requester, code, payload](mailbox_store&) {
      switch (code) {
        case request_code::register_client: return handler.register_client(payload);
        case request_code::list_clients: return handler.list_clients(requester);
        default: return handler.get_public_key(requester, payload);
      }
    };
    byte_buffer response = co_await context_.storage.run<byte_buffer>(std::move(job));
    co_return co_await respond(std::move(response));
  }

  // 103: validate the prefix, then take the content inline or stream it to a spool file.
  asio::awaitable<outcome> handle_send(const request_header& header) {
    if (header.payload_size < send_message_prefix_size)
      throw request_rejected("send payload shorter than its 21-byte prefix");
    std::array<std::uint8_t, send_message_prefix_size> prefix_bytes;
    co_await read(asio::buffer(prefix_bytes));
    const auto prefix = decode_send_message_prefix(prefix_bytes);
    validate_send_message(prefix, header.payload_size);
    if (prefix.content_size > context_.limits.max_message_size)
      throw request_rejected("content of " + std::to_string(prefix.content_size) + " bytes exceeds --max-message-size");
    auto& handler = context_.handler;
    const client_id sender = header.client;
    if (prefix.content_size <= context_.limits.inline_content_limit) {
      // Grown as bytes arrive (at most doubling), so a peer that announces content and
      // stalls holds no more memory than it actually sent.
      byte_buffer content;
      while (content.size() < prefix.content_size) {
        co_await wait_readable();
        const std::size_t have = content.size();
        const std::size_t step = std::min<std::size_t>(prefix.content_size - have, std::max(have, inline_growth_step));
        content.resize(have + step);
        const std::size_t got = read_available(content.data() + have, step);
        content.resize(have + got);
        unread_payload_ -= got;
      }
      auto job = [&handler, sender, prefix, content = std::move(content)](mailbox_store&) mutable {
        return handler.store_message(sender, prefix, std::move(content), {});
      };
      byte_buffer response = co_await context_.storage.run<byte_buffer>(std::move(job));
      co_return co_await respond(std::move(response));
    }
    // Large content: refuse before receiving gigabytes for nobody.
    auto check = [&handler, sender, prefix](mailbox_store&) {
      handler.check_send(sender, prefix);
      return true;
    };
    co_await context_.storage.run<bool>(std::move(check));
    auto& spool = context_.spool;
    auto create = [&spool] { return std::make_unique<spool_directory::upload>(spool.create()); };
    auto upload = co_await run_blocking(context_.file_pool, std::move(create));
    std::uint64_t left = prefix.content_size;
    if (input_begin_ != input_end_) {  // the start of the content came with the header
      const auto buffered = static_cast<std::size_t>(std::min<std::uint64_t>(left, input_end_ - input_begin_));
      const std::span<const std::uint8_t> head(input_.data() + input_begin_, buffered);
      auto write_head = [&] {
        upload->write(head);
        return true;
      };
      co_await run_blocking(context_.file_pool, std::move(write_head));
      input_begin_ += buffered;
      unread_payload_ -= buffered;
      left -= buffered;
    }
    // The rest moves socket → file with splice(2) on the file pool. No buffer is held while
    // waiting for the peer: a stalled upload costs no memory.
    make_non_blocking();
    const int socket_fd = socket_.native_handle();
    while (left > 0) {
      co_await wait_readable();
      auto receive = [&] { return upload->receive_from_socket(socket_fd, left); };
      const auto received = co_await run_on_socket(std::move(receive));
      unread_payload_ -= received.bytes;
      left -= received.bytes;
      if (received.socket_error != 0)
        throw boost::system::system_error(received.socket_error, boost::system::system_category());
      if (received.end_of_stream && left > 0) throw boost::system::system_error(asio::error::eof);
    }
    auto finish = [&] {
      upload->finish();
      return true;
    };
    co_await run_blocking(context_.file_pool, std::move(finish));
    auto store = [&handler, sender, prefix, file = upload->name()](mailbox_store&) {
      return handler.store_message(sender, prefix, {}, file);
    };
    byte_buffer response = co_await context_.storage.run<byte_buffer>(std::move(store));
    upload->keep();  // committed: the row owns the file now
    co_return co_await respond(std::move(response));
  }

  // 104: reserve the next messages, stream them, and remove them only once all was written.
  asio::awaitable<outcome> handle_pull(const request_header& header) {
    if (header.payload_size != 0) throw request_rejected("pull with a payload");
    auto& handler = context_.handler;
    const client_id requester = header.client;
    auto begin = [&handler, requester](mailbox_store&) { return handler.begin_pull(requester); };
    auto undo = [&handler](mailbox_store&, pull_batch& batch) noexcept { handler.abort_pull(batch); };
    pull_batch batch = co_await context_.storage.run<pull_batch>(std::move(begin), std::move(undo));
    bool written = false;
    std::exception_ptr failure;
    try {
      co_await write_pull_response(batch);
      written = true;
    } catch (...) {
      failure = std::current_exception();
    }
    if (!written) {
      auto abort = [&handler, &batch](mailbox_store&) {
        handler.abort_pull(batch);
        return true;
      };
      co_await context_.storage.run<bool>(std::move(abort));
      try {
        std::rethrow_exception(failure);
      } catch (const storage_error& e) {
        // Part of the 1004 may be on the wire: no 9000 can follow, the connection must end.
        throw std::runtime_error(std::string("pull aborted mid-response: ") + e.what());
      }
    }
    auto finish = [&handler, &batch](mailbox_store&) {
      handler.finish_pull(batch);
      return true;
    };
    try {
      co_await context_.storage.run<bool>(std::move(finish));
    } catch (const std::exception& e) {
      spdlog::error("{}: delivered messages could not be removed (they will be delivered again): {}", peer_, e.what());
    }
    co_return outcome{static_cast<std::uint16_t>(response_code::messages), response_header_size + batch.payload_size,
                      {}, false};
  }

  asio::awaitable<void> write_pull_response(const pull_batch& batch) {
    byte_buffer out;
    out.reserve(std::min<std::size_t>(pull_write_chunk + 64 * 1024, response_header_size + batch.payload_size));
    const auto header = encode_response_header(
        {server_version, static_cast<std::uint16_t>(response_code::messages), batch.payload_size});
    out.insert(out.end(), header.begin(), header.end());
    for (const auto& message : batch.messages) {
      const auto message_header =
          encode_pulled_message_header({message.from, message.id, message.type, message.content_size});
      out.insert(out.end(), message_header.begin(), message_header.end());
      if (message.content_file.empty()) {
        out.insert(out.end(), message.inline_content.begin(), message.inline_content.end());
        if (out.size() >= pull_write_chunk) {
          co_await write(asio::buffer(out));
          out.clear();
        }
        continue;
      }
      co_await write(asio::buffer(out));
      out.clear();
      co_await stream_file(message.content_file, message.content_size);
    }
    if (!out.empty()) co_await write(asio::buffer(out));
  }

  // Sends a spool file with sendfile(2) on the file pool: no user-space buffer, and the I/O
  // thread never waits for the disk.
  asio::awaitable<void> stream_file(const std::string& name, std::uint32_t size) {
    auto& spool = context_.spool;
    auto open = [&] { return spool.open_for_read(name); };
    const int fd = co_await run_blocking(context_.file_pool, std::move(open));
    struct closer {
      int fd;
      ~closer() { ::close(fd); }
    } guard{fd};
    off_t offset = 0;
    make_non_blocking();
    const int socket_fd = socket_.native_handle();
    while (static_cast<std::uint64_t>(offset) < size) {
      deadline_ = clock_type::now() + context_.limits.io_timeout;
      co_await socket_.async_wait(tcp::socket::wait_write, asio::use_awaitable);
      deadline_ = clock_type::time_point::max();
      const std::size_t want = size - static_cast<std::size_t>(offset);
      auto send = [&]() -> std::pair<ssize_t, int> {
        const ssize_t sent = ::sendfile(socket_fd, fd, &offset, std::min<std::size_t>(want, sendfile_chunk_size));
        return {sent, sent < 0 ? errno : 0};
      };
      const auto [sent, error] = co_await run_on_socket(std::move(send));
      if (sent < 0 && error != EAGAIN && error != EINTR)
        throw boost::system::system_error(error, boost::system::system_category());
      if (sent == 0) throw storage_error("spool file " + name + " is shorter than its message");
    }
  }

  void log_request(const request_header& header, const outcome& result, clock_type::time_point started) {
    const auto level = result.reason.empty() ? spdlog::level::info : spdlog::level::warn;
    if (!spdlog::should_log(level)) return;
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started).count();
    if (result.reason.empty())
      spdlog::log(level, "{} client={} code={} in={} -> {} out={} {}us", peer_, to_hex(header.client), header.code,
                  header.payload_size, result.code, result.response_size, micros);
    else
      spdlog::log(level, "{} client={} code={} in={} -> {} out={} {}us: {}{}", peer_, to_hex(header.client),
                  header.code, header.payload_size, result.code, result.response_size, micros, result.reason,
                  result.close ? " (closing)" : "");
  }

  tcp::socket socket_;
  asio::steady_timer watchdog_;
  clock_type::time_point deadline_ = clock_type::time_point::max();
  std::uint64_t unread_payload_ = 0;  // of the request being handled
  std::array<std::uint8_t, input_buffer_size> input_{};
  std::size_t input_begin_ = 0, input_end_ = 0;  // unconsumed bytes in input_
  bool pool_operation_active_ = false;  // a file-pool thread is using the socket's descriptor
  bool closing_ = false;
  server_context& context_;
  session_registry& registry_;
  std::string peer_;
};

void session_registry::add(session* s) {
  s->registry_index = sessions_.size();
  sessions_.push_back(s);
  live_ = sessions_.size();
}

void session_registry::remove(session* s) noexcept {
  const auto index = s->registry_index;
  if (index >= sessions_.size() || sessions_[index] != s) return;
  sessions_[index] = sessions_.back();
  sessions_[index]->registry_index = index;
  sessions_.pop_back();
  live_ = sessions_.size();
}

void session_registry::close_all() {
  for (auto* s : std::vector<session*>(sessions_)) s->close();
}

void start_session(tcp::socket socket, const tcp::endpoint& peer, server_context& context,
                   session_registry& registry) {
  std::make_shared<session>(std::move(socket), peer, context, registry)->start();
}

}  // namespace letterbox::server

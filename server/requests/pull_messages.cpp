// 104 pull: reserve the next messages of the requester's mailbox, stream them as one 1004
// (inline contents gathered into large writes, spool files by sendfile(2)), and remove them
// only once all of it was written. A pull cut short leaves every message in the mailbox.
#include <spdlog/spdlog.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "request.hpp"
#include "responses.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using namespace protocol;

namespace {

// Largest sendfile(2) call for pulled spool files.
constexpr std::size_t sendfile_chunk_size = 4 << 20;
// Output of a pull is gathered into writes of about this size.
constexpr std::size_t pull_write_chunk = 256 * 1024;

// Sends a spool file with sendfile(2) on the file pool: no user-space buffer, and the I/O
// thread never waits for the disk.
asio::awaitable<void> send_file(net::connection& connection, const spool_directory& spool, const std::string& name,
                                std::uint32_t size) {
  auto open = [&spool, &name] { return spool.open_for_read(name); };
  const int fd = co_await connection.run_blocking(std::move(open));
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } guard{fd};
  off_t offset = 0;
  while (static_cast<std::uint64_t>(offset) < size) {
    co_await connection.wait_writable();
    const std::size_t want = std::min<std::size_t>(size - static_cast<std::size_t>(offset), sendfile_chunk_size);
    auto send = [fd, &offset, want](int socket_fd) -> std::pair<ssize_t, int> {
      const ssize_t sent = ::sendfile(socket_fd, fd, &offset, want);
      return {sent, sent < 0 ? errno : 0};
    };
    const auto [sent, error] = co_await connection.run_on_socket(std::move(send));
    if (sent < 0 && error != EAGAIN && error != EINTR)
      throw boost::system::system_error(error, boost::system::system_category());
    if (sent == 0) throw storage_error("spool file " + name + " is shorter than its message");
  }
}

asio::awaitable<void> write_pull_response(request& r, const pull_batch& batch) {
  byte_buffer out;
  out.reserve(std::min<std::size_t>(pull_write_chunk + 64 * 1024, response_header_size + batch.payload_size));
  const auto header = encode_pull_response_header(batch);
  out.insert(out.end(), header.begin(), header.end());
  for (const auto& message : batch.messages) {
    const auto message_header = encode_pulled_header(message);
    out.insert(out.end(), message_header.begin(), message_header.end());
    if (message.content_file.empty()) {
      out.insert(out.end(), message.inline_content.begin(), message.inline_content.end());
      if (out.size() >= pull_write_chunk) {
        co_await r.connection.write(asio::buffer(out));
        out.clear();
      }
      continue;
    }
    co_await r.connection.write(asio::buffer(out));
    out.clear();
    co_await send_file(r.connection, r.server.spool, message.content_file, message.content_size);
  }
  if (!out.empty()) co_await r.connection.write(asio::buffer(out));
}

}  // namespace

asio::awaitable<outcome> handle_pull_messages(request& r) {
  if (r.header.payload_size != 0) throw request_rejected("pull with a payload");
  auto& handler = r.server.handler;
  auto& storage = r.server.storage;
  const client_id requester = r.header.client;
  auto begin = [&handler, requester] { return handler.begin_pull(requester); };
  auto undo = [&handler](pull_batch& batch) noexcept { handler.abort_pull(batch); };
  const pull_batch batch = co_await storage.run<pull_batch>(std::move(begin), std::move(undo));
  std::exception_ptr failure;
  try {
    co_await write_pull_response(r, batch);
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) {
    auto abort = [&handler, &batch] { handler.abort_pull(batch); };
    co_await storage.run<void>(std::move(abort));
    try {
      std::rethrow_exception(failure);
    } catch (const storage_error& e) {
      // Part of the 1004 may be on the wire: no 9000 can follow, the connection must end.
      throw std::runtime_error(std::string("pull aborted mid-response: ") + e.what());
    }
  }
  auto finish = [&handler, &batch] { handler.finish_pull(batch); };
  try {
    co_await storage.run<void>(std::move(finish));
  } catch (const std::exception& e) {
    spdlog::error("{}: delivered messages could not be removed (they will be delivered again): {}",
                  r.connection.peer(), e.what());
  }
  co_return outcome{static_cast<std::uint16_t>(response_code::messages), response_header_size + batch.payload_size,
                    {}, false};
}

}  // namespace letterbox::server

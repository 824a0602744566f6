// 104 pull: reserve the next messages of the requester's mailbox, stream them as one 1004
// (inline contents gathered into large writes, spool files by sendfile(2)), and remove them
// only once all of it was written. A pull cut short leaves every message in the mailbox.
#include <spdlog/spdlog.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include <algorithm>

#include "pull_support.hpp"
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
    if (sent > 0) connection.count_moved(static_cast<std::uint64_t>(sent));
  }
}

}  // namespace

asio::awaitable<void> write_pull_entries(request& r, const pull_batch& batch, const response_header_bytes& header,
                                         const entry_header_writer& entry_header) {
  try {
    byte_buffer out;
    out.reserve(std::min<std::size_t>(pull_write_chunk + 64 * 1024, response_header_size + batch.payload_size));
    out.insert(out.end(), header.begin(), header.end());
    for (const auto& message : batch.messages) {
      entry_header(out, message);
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
  } catch (const storage_error& e) {
    // Part of the response may be on the wire: no 9000 can follow, the connection must end.
    // The messages stay in the mailbox.
    throw std::runtime_error(std::string("pull aborted mid-response: ") + e.what());
  }
}

namespace {

// Messages of the batch whose spool file is missing or shorter than the message (a broken
// spool: deleted or truncated by hand, a disk error). Looked at before the 1004 header is
// written, which announces every size.
std::vector<std::uint32_t> broken_spool_files(const spool_directory& spool, const pull_batch& batch) {
  std::vector<std::uint32_t> broken;
  for (const auto& message : batch.messages) {
    if (message.content_file.empty()) continue;
    const auto size = spool.file_size(message.content_file);
    if (!size || *size < message.content_size) broken.push_back(message.id);
  }
  return broken;
}

}  // namespace

asio::awaitable<void> acquire_pull_memory(request& r, budget_share& share) {
  share.bytes = co_await r.server.pull_memory.acquire(std::max<std::uint64_t>(r.server.limits.inline_content_limit, 1),
                                                      r.server.limits.max_pull_inline_bytes, r.connection,
                                                      r.server.limits.io_timeout);
}

void trim_pull_memory(const pull_batch& batch, budget_share& share) {
  std::uint64_t held = 0;
  for (const auto& m : batch.messages) held += m.inline_content.size();
  share.budget.release(share.bytes - std::min(held, share.bytes));  // keep only what is used
  share.bytes = std::min(held, share.bytes);
}

asio::awaitable<void> drop_broken_spool_files(request& r, const client_id& mailbox, pull_batch& batch,
                                              std::size_t entry_header_size) {
  if (std::none_of(batch.messages.begin(), batch.messages.end(), [](const auto& m) { return !m.content_file.empty(); }))
    co_return;
  auto& handler = r.server.handler;
  auto& spool = r.server.spool;
  auto check = [&spool, &batch] { return broken_spool_files(spool, batch); };
  const auto broken = co_await r.connection.run_blocking(std::move(check));
  if (broken.empty()) co_return;
  auto quarantine = [&handler, mailbox, broken] { return handler.quarantine(mailbox, broken); };
  const auto newly = co_await r.server.storage.run<std::vector<std::uint32_t>>(std::move(quarantine));
  for (auto id : newly)
    spdlog::error("mailbox {}: message {} quarantined: its spool file is missing or shorter than the message "
                  "(kept in the database; the rest of the mailbox is delivered)", to_hex(mailbox), id);
  std::erase_if(batch.messages, [&](const stored_message& m) {
    return std::find(broken.begin(), broken.end(), m.id) != broken.end();
  });
  batch.payload_size = pull_payload_size(batch.messages, entry_header_size);
}

asio::awaitable<outcome> handle_pull_messages(request& r) {
  if (r.header.payload_size != 0) throw request_rejected("pull with a payload");
  auto& handler = r.server.handler;
  auto& storage = r.server.storage;
  const client_id requester = r.header.client;
  // A pull of this mailbox still writing on another connection is closed (see pull_registry).
  const pull_registration registration{r.server.pulls, requester, r.server.pulls.begin(requester, r.connection)};
  // Inline contents are held in memory until written: take a share of the server-wide budget.
  budget_share share{r.server.pull_memory};
  co_await acquire_pull_memory(r, share);
  auto begin = [&handler, requester, budget = share.bytes] { return handler.begin_pull(requester, budget); };
  pull_batch batch = co_await storage.run<pull_batch>(std::move(begin));
  batch.payload_size = pull_payload_size(batch.messages);
  trim_pull_memory(batch, share);
  registration.ticket->writing = !batch.messages.empty();
  co_await drop_broken_spool_files(r, requester, batch, pulled_message_header_size);
  const auto write_header = [](byte_buffer& out, const stored_message& message) {
    const auto bytes = encode_pulled_header(message);
    out.insert(out.end(), bytes.begin(), bytes.end());
  };
  co_await write_pull_entries(r, batch, encode_pull_response_header(batch), write_header);
  registration.ticket->writing = false;  // written: a newer pull must not close it now
  auto finish = [&handler, &batch] { handler.finish_pull(batch); };
  auto not_committed = [&handler, &batch]() noexcept { handler.deletes_failed(batch); };
  try {
    co_await storage.run<void>(std::move(finish), std::move(not_committed));
  } catch (const std::exception& e) {
    if (const long dropped = r.server.errors.allow("pull-remove"); dropped >= 0)
      spdlog::error("{}: delivered messages could not be removed (each is delivered at most {} times while this "
                    "lasts): {}{}", r.connection.peer(), max_deliveries_while_deletes_fail, e.what(),
                    dropped > 0 ? " (" + std::to_string(dropped) + " more such lines dropped)" : std::string());
  }
  co_return outcome{static_cast<std::uint16_t>(response_code::messages), response_header_size + batch.payload_size,
                    {}, false};
}

}  // namespace letterbox::server

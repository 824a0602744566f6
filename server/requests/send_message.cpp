// 103 send: validate the 21-byte prefix, then take the content inline (read into memory as it
// arrives) or, when it is larger than --inline-limit, stream it to a spool file that is
// fsync'd before the row referencing it commits. The 1003 is sent after that commit.
// receive_and_store is that second half, shared with v2's SEND (205, v2_mail.cpp).
#include <memory>

#include "messages_v2.hpp"
#include "request.hpp"
#include "v2_live.hpp"
#include "responses.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using namespace protocol;

namespace {

// First allocation step of an inline content; it then grows with the bytes received.
constexpr std::size_t inline_growth_step = 4096;

// Reads the whole content into memory. The buffer grows as bytes arrive (at most doubling),
// so a peer that announces content and stalls holds no more memory than it actually sent.
asio::awaitable<byte_buffer> receive_inline(request& r, std::uint32_t size) {
  byte_buffer content;
  while (content.size() < size) {
    co_await r.connection.wait_readable();
    const std::size_t have = content.size();
    const std::size_t step = std::min<std::size_t>(size - have, std::max(have, inline_growth_step));
    content.resize(have + step);
    const std::size_t got = r.connection.read_available(content.data() + have, step);
    content.resize(have + got);
    r.unread_payload -= got;
  }
  co_return content;
}

// An upload destroyed on the file pool: unless it was kept, its destructor unlinks the file,
// which for a large one takes long (the filesystem frees its blocks; ~0.25 s for 1 GiB here)
// and must not hold up every connection of the I/O thread.
struct delete_on_pool {
  asio::thread_pool* pool;
  void operator()(spool_directory::upload* upload) const noexcept {
    try {
      asio::post(*pool, [upload] { delete upload; });
    } catch (...) {
      delete upload;  // could not queue it: here, then
    }
  }
};
using pooled_upload = std::unique_ptr<spool_directory::upload, delete_on_pool>;

// Moves the content into a new spool file and makes it durable. No buffer is held while
// waiting for the peer: a stalled upload costs no memory. The upload deletes its file unless
// the caller keeps it.
// `stored_prefix` (a group message's group ID) is written first, before the content.
asio::awaitable<pooled_upload> receive_to_spool(request& r, std::uint32_t size, bytes_view stored_prefix = {}) {
  auto& connection = r.connection;
  auto& spool = r.server.spool;
  auto create = [&spool, pool = &r.server.file_pool] {
    return pooled_upload(new spool_directory::upload(spool.create()), delete_on_pool{pool});
  };
  auto upload = co_await connection.run_blocking(std::move(create));
  if (!stored_prefix.empty()) {
    auto write_prefix = [&upload, stored_prefix] { upload->write(stored_prefix); };
    co_await connection.run_blocking(std::move(write_prefix));
  }
  std::uint64_t left = size;
  if (const auto head = connection.buffered(); !head.empty()) {  // the start came with the header
    const auto part = head.first(static_cast<std::size_t>(std::min<std::uint64_t>(left, head.size())));
    auto write_head = [&upload, part] { upload->write(part); };
    co_await connection.run_blocking(std::move(write_head));
    connection.consume(part.size());
    r.unread_payload -= part.size();
    left -= part.size();
  }
  // The rest moves socket → file with splice(2) on the file pool: one copy fewer, no buffer.
  while (left > 0) {
    co_await connection.wait_readable();
    auto receive = [&upload, left](int socket_fd) { return upload->receive_from_socket(socket_fd, left); };
    const auto received = co_await connection.run_on_socket(std::move(receive));
    connection.count_moved(received.bytes);
    r.unread_payload -= received.bytes;
    left -= received.bytes;
    if (received.socket_error != 0)
      throw boost::system::system_error(received.socket_error, boost::system::system_category());
    if (received.end_of_stream && left > 0) throw boost::system::system_error(asio::error::eof);
  }
  auto finish = [&upload] { upload->finish(); };
  co_await connection.run_blocking(std::move(finish));
  co_return upload;
}

}  // namespace

asio::awaitable<outcome> handle_send_message(request& r) {
  if (r.header.payload_size < send_message_prefix_size)
    throw request_rejected("send payload shorter than its 21-byte prefix");
  std::array<std::uint8_t, send_message_prefix_size> prefix_bytes;
  co_await r.read(asio::buffer(prefix_bytes));
  const auto prefix = decode_send_message_prefix(prefix_bytes);
  validate_send_message(prefix, r.header.payload_size);
  if (prefix.content_size > r.server.limits.max_message_size)
    throw request_rejected("content of " + std::to_string(prefix.content_size) + " bytes exceeds --max-message-size");
  const client_id sender = r.header.client;
  // Before any content is read: sender and destination registered (the client directory,
  // on this thread; the storage job checks again).
  if (!r.server.directory.contains(sender)) throw request_rejected("client " + to_hex(sender) + " is not registered");
  if (!r.server.directory.contains(prefix.to))
    throw request_rejected("destination " + to_hex(prefix.to) + " is not registered");
  // A v2 mailbox is pulled with 2006, whose entry header is one byte longer than 1004's.
  if (prefix.content_size > v2::max_content_size && r.server.directory.is_v2(prefix.to))
    throw request_rejected("content of " + std::to_string(prefix.content_size) +
                           " bytes does not fit one 2006 entry of the v2 destination");
  co_return co_await receive_and_store(r, sender, prefix, &protocol::encode_message_sent_response);
}

asio::awaitable<outcome> receive_and_store(request& r, const client_id& sender, const send_message_prefix& prefix,
                                           byte_buffer (*encode)(const message_sent&)) {
  auto& handler = r.server.handler;
  auto& storage = r.server.storage;
  if (!r.server.disk.allows(prefix.content_size))
    throw request_rejected(v2::reason::disk_full, "the disk holding the database has less than " +
                                                      std::to_string(r.server.disk.min_free()) +
                                                      " bytes free after this message and the sends in progress "
                                                      "(--min-free-disk)");
  const disk_space::reservation on_disk(r.server.disk, prefix.content_size);
  if (prefix.content_size <= r.server.limits.inline_content_limit) {
    auto content = co_await receive_inline(r, prefix.content_size);
    auto store = [&handler, sender, prefix, content = std::move(content)]() mutable {
      return handler.store_message(sender, prefix, std::move(content), {});
    };
    const auto sent = co_await storage.run<message_sent>(std::move(store));
    if (r.server.live) r.server.live->notify(prefix.to);  // committed: wake its subscribers (Part V)
    co_return co_await respond(r, encode(sent));
  }
  // Large content: refuse before receiving gigabytes for nobody.
  auto check = [&handler, sender, prefix] { handler.check_send(sender, prefix); };
  co_await storage.run<void>(std::move(check));
  auto upload = co_await receive_to_spool(r, prefix.content_size);
  auto store = [&handler, sender, prefix, file = upload->name()] {
    return handler.store_message(sender, prefix, {}, file);
  };
  const auto sent = co_await storage.run<message_sent>(std::move(store));
  upload->keep();  // committed: the row owns the file now
  if (r.server.live) r.server.live->notify(prefix.to);
  co_return co_await respond(r, encode(sent));
}

namespace {

// A group message stored, and the members whose subscribers (Part V) its commit must wake, read
// in the same storage job: exactly the members it was delivered to, without a second round trip
// to the storage thread. Empty when the server has no live delivery.
struct stored_group_message {
  v2::group_sent sent;
  std::vector<client_id> to_wake;
};

template <typename Store>
stored_group_message store_and_list_members(request_handler& handler, bool live, const client_id& sender,
                                            const client_id& group, Store&& store) {
  stored_group_message out{store(), {}};
  if (live && out.sent.delivered > 0)
    for (const auto& member : handler.group_members(sender, group))
      if (member.id != sender) out.to_wake.push_back(member.id);
  return out;
}

// After the commit: wake them, as a direct send wakes its recipient's subscribers.
void notify_group_subscribers(request& r, const stored_group_message& stored) {
  for (const auto& member : stored.to_wake) r.server.live->notify(member);
}

}  // namespace

asio::awaitable<outcome> receive_and_store_group(request& r, const client_id& sender, const send_message_prefix& prefix) {
  auto& handler = r.server.handler;
  auto& storage = r.server.storage;
  const std::uint64_t stored_size = v2::group_id_size + std::uint64_t{prefix.content_size};
  if (!r.server.disk.allows(stored_size))
    throw request_rejected(v2::reason::disk_full, "the disk holding the database has less than " +
                                                      std::to_string(r.server.disk.min_free()) +
                                                      " bytes free after this message and the sends in progress "
                                                      "(--min-free-disk)");
  const disk_space::reservation on_disk(r.server.disk, stored_size);
  if (stored_size <= r.server.limits.inline_content_limit) {
    byte_buffer stored(prefix.to.begin(), prefix.to.end());  // group ID ‖ content, stored once
    auto content = co_await receive_inline(r, prefix.content_size);
    stored.insert(stored.end(), content.begin(), content.end());
    auto store = [&handler, live = r.server.live != nullptr, sender, prefix, stored = std::move(stored)]() mutable {
      return store_and_list_members(handler, live, sender, prefix.to, [&] {
        return handler.store_group_message(sender, prefix, std::move(stored), {});
      });
    };
    const auto result = co_await storage.run<stored_group_message>(std::move(store));
    notify_group_subscribers(r, result);
    co_return co_await respond(r, v2::encode_group_sent_response(result.sent));
  }
  // Large content: refuse before receiving it for a group the sender is not in.
  auto check = [&handler, sender, group = prefix.to] { handler.check_group_send(sender, group); };
  co_await storage.run<void>(std::move(check));
  auto upload = co_await receive_to_spool(r, prefix.content_size, bytes_view(prefix.to));
  auto store = [&handler, live = r.server.live != nullptr, sender, prefix, file = upload->name()] {
    return store_and_list_members(handler, live, sender, prefix.to,
                                  [&] { return handler.store_group_message(sender, prefix, {}, file); });
  };
  const auto result = co_await storage.run<stored_group_message>(std::move(store));
  if (result.sent.delivered > 0) upload->keep();  // committed: the shared content owns the file now
  notify_group_subscribers(r, result);
  co_return co_await respond(r, v2::encode_group_sent_response(result.sent));
}

}  // namespace letterbox::server

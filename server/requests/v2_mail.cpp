// v2 205 SEND, 206 PULL, 207 ACK (docs/PROTOCOL.md §15).
//   SEND: the checks of 103 with the type rules of §15, then the 103 path itself
//         (receive_and_store: disk watermark, inline or spool, quotas, commit before 2005).
//   PULL: leases instead of deleting: other connections' leases of the mailbox are released,
//         free messages are taken within 104's budgets, leased to this connection, and written
//         as 2006 entries (flag bit 0: a legacy sender). Nothing is removed.
//   ACK:  removes the messages (committed before 2007) and ends their leases.
#include "messages_v2.hpp"
#include "pull_support.hpp"
#include "request.hpp"
#include "responses.hpp"
#include "v2_live.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using namespace protocol;
using v2::reason;

asio::awaitable<outcome> handle_v2_send(request& r) {
  const client_id sender = require_authenticated(r);
  if (r.header.payload_size < v2::send_message_prefix_size)
    throw request_rejected(reason::malformed, "send payload shorter than its 21-byte prefix");
  std::array<std::uint8_t, v2::send_message_prefix_size> prefix_bytes;
  co_await r.read(asio::buffer(prefix_bytes));
  const auto prefix = v2::decode_send_message_prefix(prefix_bytes);
  v2::validate_send_framing(prefix, r.header.payload_size);  // protocol_error: malformed
  if (!v2::is_sendable_type(prefix.type))
    throw request_rejected(reason::type_not_accepted, "message type " + std::to_string(prefix.type) + " is not 1-4, 16 or 17");
  if (!v2::is_empty_when_required(prefix))
    throw request_rejected(reason::malformed, "a symmetric key request must have empty content");
  if (prefix.content_size > std::min(r.server.limits.max_message_size, v2::max_content_size))
    throw request_rejected(reason::too_large,
                           "content of " + std::to_string(prefix.content_size) + " bytes exceeds --max-message-size");
  // Before any content is read: the recipient (the client directory, on this thread; the
  // storage job checks again) and the type it can read.
  if (!r.server.directory.contains(prefix.to))
    throw request_rejected(reason::unknown_client, "recipient " + to_hex(prefix.to) + " is not registered");
  const bool recipient_is_v2 = r.server.directory.is_v2(prefix.to);
  if (!v2::type_fits_recipient(prefix.type, recipient_is_v2))
    throw request_rejected(reason::type_not_accepted, "type " + std::to_string(prefix.type) + " to a " +
                                                          (recipient_is_v2 ? "v2" : "legacy") + " recipient");
  co_return co_await receive_and_store(r, sender, prefix, &v2::encode_message_sent_response);
}

asio::awaitable<outcome> handle_v2_pull(request& r) {
  const client_id mailbox = require_authenticated(r);
  if (r.header.payload_size != v2::pull_payload_size) throw request_rejected(reason::malformed, "pull with a payload");
  auto& handler = r.server.handler;
  auto& storage = r.server.storage;
  const std::uint64_t holder = r.v2->token;
  // A pull of this mailbox still writing on another connection is closed (as for 104), and
  // every lease another connection holds on it ends: the same key holder is back.
  const pull_registration registration{r.server.pulls, mailbox, r.server.pulls.begin(mailbox, r.connection)};
  auto leased = r.server.leases.release_others(mailbox, holder);
  budget_share share{r.server.pull_memory};
  co_await acquire_pull_memory(r, share);
  // Leases may have changed while waiting for memory (an ACK of another request cannot, the
  // connection is ours; an expiry can): look again.
  leased = r.server.leases.release_others(mailbox, holder);
  auto begin = [&handler, mailbox, budget = share.bytes, &leased] { return handler.begin_v2_pull(mailbox, budget, leased); };
  pull_batch batch = co_await storage.run<pull_batch>(std::move(begin));
  trim_pull_memory(batch, share);
  registration.ticket->writing = !batch.messages.empty();
  co_await drop_broken_spool_files(r, mailbox, batch, v2::pulled_message_header_size);
  std::vector<std::uint32_t> ids;
  ids.reserve(batch.messages.size());
  for (const auto& message : batch.messages) ids.push_back(message.id);
  r.server.leases.lease(mailbox, holder, ids);  // before the first byte: a cut connection releases them
  const auto& directory = r.server.directory;
  const auto write_header = [&directory](byte_buffer& out, const stored_message& message) {
    const auto bytes = encode_v2_pulled_header(message, v2_entry_flags(message, directory.is_v2(message.from)));
    out.insert(out.end(), bytes.begin(), bytes.end());
  };
  co_await write_pull_entries(r, batch, encode_v2_pull_response_header(batch), write_header);
  registration.ticket->writing = false;
  co_return outcome{static_cast<std::uint16_t>(v2::response_code::messages), response_header_size + batch.payload_size,
                    {}, false};
}

asio::awaitable<outcome> handle_v2_ack(request& r) {
  const client_id mailbox = require_authenticated(r);
  if (!v2::is_valid_ack_payload_size(r.header.payload_size))
    throw request_rejected(reason::malformed, "ACK payload of " + std::to_string(r.header.payload_size) +
                                                  " bytes: 1 to 65,536 message IDs of 4 bytes");
  byte_buffer payload(r.header.payload_size);
  co_await r.read(asio::buffer(payload));
  auto decoded = v2::decode_ack_request(payload);
  auto& handler = r.server.handler;
  auto job = [&handler, mailbox, &decoded] { return handler.acknowledge(mailbox, decoded.message_ids); };
  const std::uint32_t removed = co_await r.server.storage.run<std::uint32_t>(std::move(job));  // committed
  r.server.leases.release(mailbox, decoded.message_ids);
  if (r.server.live) r.server.live->notify(mailbox);  // the window of its subscribers opened (Part V §29)
  co_return co_await respond(r, v2::encode_acknowledged_response(removed));
}

}  // namespace letterbox::server

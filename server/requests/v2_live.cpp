// Live delivery (docs/PROTOCOL.md Part V): 210 SUBSCRIBE, 211 PRESENCE, 212 PING, the push
// (2015) and the registry of subscribers and presence. The session (session.cpp) owns the wait
// of a subscribed connection and calls push_waiting between requests.
#include "v2_live.hpp"

#include <algorithm>
#include <chrono>

#include "pull_support.hpp"
#include "responses.hpp"

namespace letterbox::server {
namespace asio = boost::asio;
using namespace protocol;
using v2::reason;

namespace {

std::uint64_t unix_now() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

asio::awaitable<outcome> subscribe(request& r, const client_id& client) {
  co_await read_fixed_payload(r, 0);
  if (r.live->subscribed) throw request_rejected(reason::bad_state, "SUBSCRIBE on a subscribed connection");
  if (!r.server.live->subscribe(client, r.live))
    throw request_rejected(reason::too_many_subscriptions,
                           "client " + to_hex(client) + " has " + std::to_string(r.server.live->subscriptions(client)) +
                               " subscribed connections (--max-subscriptions)");
  r.live->subscribed = true;
  r.live->pending = true;  // what is waiting is pushed right after the 2010
  co_return co_await respond(r, live::encode_empty_response(live::response_code::subscribed));
}

asio::awaitable<outcome> presence(request& r, const client_id& client) {
  co_await read_fixed_payload(r, 0);
  const auto clients = r.server.directory.current();
  // The entries in LIST's order; the requester is left out. (25 bytes each: 16,384 clients
  // make 400 KiB, written at once as 2003's pieces are.)
  byte_buffer payload;
  payload.reserve(clients.size() * live::presence_entry_size);
  for (std::size_t i = 0; i < clients.size(); ++i) {
    if (clients[i].id == client) continue;
    live::append_presence_entry(payload, r.server.live->presence_of(clients[i].id, (clients.flags(i) & v2::client_flag_v2) != 0));
  }
  const auto header = v2::encode_response_header(live::as_v2(live::response_code::presence),
                                                 static_cast<std::uint32_t>(payload.size()));
  byte_buffer out(header.begin(), header.end());
  out.insert(out.end(), payload.begin(), payload.end());
  co_return co_await respond(r, std::move(out));
}

}  // namespace

asio::awaitable<outcome> handle_live_request(request& r) {
  const client_id client = require_authenticated(r);  // before any payload byte (§28)
  auto touch = [&handler = r.server.handler, client] { handler.touch(client); };
  asio::co_spawn(r.connection.executor(), r.server.storage.run<void>(std::move(touch)), asio::detached);
  switch (static_cast<live::request_code>(r.header.code)) {
    case live::request_code::subscribe: co_return co_await subscribe(r, client);
    case live::request_code::presence: co_return co_await presence(r, client);
    case live::request_code::ping:
      co_await read_fixed_payload(r, 0);
      co_return co_await respond(r, live::encode_empty_response(live::response_code::pong));
  }
  throw request_rejected(reason::malformed, "unknown live request code " + std::to_string(r.header.code));
}

asio::awaitable<std::size_t> push_waiting(request& r) {
  auto& live = *r.live;
  live.pending = false;
  if (!live.subscribed || !r.v2 || !r.v2->client) co_return 0;
  const client_id mailbox = *r.v2->client;
  const std::uint64_t holder = r.v2->token;
  auto& leases = r.server.leases;
  const auto& limits = r.server.limits;
  // The window: what this connection still holds leased (an ACK, here or on another connection,
  // a PULL elsewhere or an expiry ended the others).
  std::erase_if(live.outstanding, [&](const auto& entry) { return !leases.holds(mailbox, holder, entry.first); });
  std::uint64_t bytes = 0;
  for (const auto& [id, size] : live.outstanding) bytes += size;
  if (live.outstanding.size() >= limits.push_window_messages || bytes >= limits.push_window_bytes) co_return 0;
  const std::size_t max_count = limits.push_window_messages - live.outstanding.size();
  const std::uint64_t bytes_left = limits.push_window_bytes - bytes;
  const std::uint64_t max_payload = bytes_left + max_count * v2::pulled_message_header_size;
  const bool one_large = live.outstanding.empty();

  budget_share share{r.server.pull_memory};
  const std::uint64_t min_memory = std::max<std::uint64_t>(limits.inline_content_limit, 1);
  share.bytes = co_await r.server.pull_memory.acquire(
      min_memory, std::max(min_memory, std::min(limits.max_pull_inline_bytes, bytes_left)), r.connection,
      limits.io_timeout);
  auto& handler = r.server.handler;
  const auto leased = leases.in_force(mailbox);
  auto job = [&handler, mailbox, budget = share.bytes, &leased, max_count, max_payload, one_large] {
    return handler.begin_v2_push(mailbox, budget, leased, max_count, max_payload, one_large);
  };
  pull_batch batch = co_await r.server.storage.run<pull_batch>(std::move(job));
  // Another connection may have leased some of them meanwhile (a PULL, another subscriber).
  const auto now_leased = leases.in_force(mailbox);
  std::erase_if(batch.messages, [&](const stored_message& m) {
    return std::binary_search(now_leased.begin(), now_leased.end(), m.id);
  });
  trim_pull_memory(batch, share);
  co_await drop_broken_spool_files(r, mailbox, batch, v2::pulled_message_header_size);
  if (batch.messages.empty()) co_return 0;
  std::vector<std::uint32_t> ids;
  ids.reserve(batch.messages.size());
  for (const auto& message : batch.messages) ids.push_back(message.id);
  leases.lease(mailbox, holder, ids);  // before the first byte: a cut connection releases them
  for (const auto& message : batch.messages) live.outstanding[message.id] = message.content_size;
  const auto& directory = r.server.directory;
  const auto write_header = [&directory](byte_buffer& out, const stored_message& message) {
    // Not only the legacy bit: a pushed group message without bit 1 reached members as
    // "malformed" (client chat '#GROUP' found it; the live tests only counted pushes).
    const auto bytes = encode_v2_pulled_header(message, v2_entry_flags(message, directory.is_v2(message.from)));
    out.insert(out.end(), bytes.begin(), bytes.end());
  };
  co_await write_pull_entries(r, batch, v2::encode_response_header(live::as_v2(live::response_code::push), batch.payload_size),
                              write_header);
  co_return batch.messages.size();
}

// --- live_registry ------------------------------------------------------------------------------

bool live_registry::subscribe(const client_id& mailbox, live_subscriber* s) {
  auto& list = subscribers_[mailbox];
  if (list.size() >= max_subscriptions_) return false;
  list.push_back(s);
  ++total_;
  return true;
}

void live_registry::unsubscribe(const client_id& mailbox, live_subscriber* s) noexcept {
  auto it = subscribers_.find(mailbox);
  if (it == subscribers_.end()) return;
  const auto before = it->second.size();
  std::erase(it->second, s);
  total_ -= before - it->second.size();
  if (it->second.empty()) subscribers_.erase(it);
}

void live_registry::notify(const client_id& mailbox) noexcept {
  auto it = subscribers_.find(mailbox);
  if (it == subscribers_.end()) return;
  for (auto* s : it->second) s->wake();
}

std::size_t live_registry::subscriptions(const client_id& mailbox) const noexcept {
  auto it = subscribers_.find(mailbox);
  return it == subscribers_.end() ? 0 : it->second.size();
}

void live_registry::connected(const client_id& client) {
  auto& p = presence_[client];
  ++p.connections;
  p.last_seen = unix_now();
}

void live_registry::seen(const client_id& client) { presence_[client].last_seen = unix_now(); }

void live_registry::disconnected(const client_id& client) noexcept {
  auto it = presence_.find(client);
  if (it == presence_.end()) return;
  if (it->second.connections > 0) --it->second.connections;
  it->second.last_seen = unix_now();
}

live::presence_entry live_registry::presence_of(const client_id& client, bool is_v2) const {
  live::presence_entry entry;
  entry.id = client;
  if (!is_v2) return entry;
  entry.flags = live::presence_flag_v2;
  if (auto it = presence_.find(client); it != presence_.end()) {
    if (it->second.connections > 0) entry.flags |= live::presence_flag_online;
    entry.last_seen = it->second.last_seen;
  }
  return entry;
}

}  // namespace letterbox::server

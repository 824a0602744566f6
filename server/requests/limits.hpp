// Every limit of the server as a named constant (the defaults), gathered in server_limits so
// each can be overridden from the command line.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "messages_v2.hpp"  // max_group_envelope_members
#include "protocol_constants.hpp"

namespace letterbox::server {

// Contents up to this size are read into memory and kept inline in server.db; larger ones
// are streamed to a spool file.
inline constexpr std::uint32_t default_inline_content_limit = 64 * 1024;
// A bad request whose remaining payload is at most this big is read and discarded so the
// connection can go on; a bigger one is answered with 9000 and the connection is closed.
inline constexpr std::uint32_t max_discard_size = 64 * 1024;
// Largest content a 103 may carry: the most that still fits one 1004 response (a u32 payload
// holding the 25-byte message header plus the content), so every accepted message can be pulled.
inline constexpr std::uint64_t default_max_message_size =
    protocol::max_payload_size - protocol::pulled_message_header_size;
// Per pull (104): at most this many messages and this many bytes of inline content held in
// memory; the u32 payload size bounds the rest. What does not fit waits for the next pull.
inline constexpr std::size_t default_max_messages_per_pull = 100'000;
inline constexpr std::uint64_t default_max_pull_inline_bytes = 16ull << 20;
// A read or write step that takes longer than this closes the connection: waiting for the
// next request, a header, a fixed-size payload, a response write; for a message content, the
// wait for its next bytes to arrive.
inline constexpr std::chrono::seconds default_io_timeout{30};
// A whole request (from its first byte until its response is written, storage waits not
// counted) may take this grace plus its size at the minimum rate: one byte every 29 s no
// longer holds a connection forever. 4 KiB/s is far below any real link.
inline constexpr std::chrono::seconds default_request_grace{10};
inline constexpr std::uint64_t default_min_rate = 4096;  // bytes per second
// Connections served at once; when full, a new connection is served anyway and the one idle
// (or slow) longest is closed.
inline constexpr std::size_t default_max_connections = 16'384;
// Connections from one IP address at once; more are closed at once.
inline constexpr std::size_t default_max_connections_per_ip = 256;
// Registrations (100) from one IP address per minute (a token bucket holding as many).
inline constexpr std::uint32_t default_registration_rate = 60;
// Failed v2 AUTHs (202) from one IP address per minute (a token bucket holding as many): each
// costs an Ed25519 verification on the I/O thread; beyond it AUTH is refused unverified.
inline constexpr std::uint32_t default_auth_failure_rate = 60;
// Inline content held in memory by all pulls in progress together (each pull at most
// max_pull_inline_bytes); a pull waits while the server is at this bound.
inline constexpr std::uint64_t default_max_pull_memory = 64ull << 20;
// Per mailbox: pending messages and bytes of content at most; a send beyond is refused.
inline constexpr std::uint64_t default_max_mailbox_messages = 1'000'000;
inline constexpr std::uint64_t default_max_mailbox_bytes = 64ull << 30;
// A send is refused when the free space of the database's file system would drop below this.
inline constexpr std::uint64_t default_min_free_disk = 64ull << 20;
// A v2 PULL leases the messages it delivers to its connection for this long (docs/PROTOCOL.md
// §15): not acknowledged by then, they are free again for the next PULL.
inline constexpr std::chrono::seconds default_lease_timeout{120};
// Groups (docs/PROTOCOL.md Part IV §26): groups one client may be a member of (CREATE, JOIN;
// 0: nobody may), and members of one group (JOIN). A GROUP SEND fills at most members − 1
// mailboxes, so this also bounds the fan-out of one request.
inline constexpr std::size_t default_max_groups_per_user = 256;
inline constexpr std::size_t default_max_group_members = 1024;
// The most --max-group-members accepts: a group envelope is sealed for at most this many
// members (§16a), so a larger group could be joined but never written to.
inline constexpr std::size_t max_group_members_limit = protocol::v2::max_group_envelope_members;
// Jobs the storage worker runs in one transaction (one fsync) at most.
inline constexpr std::size_t default_max_batch = 4096;

// Live delivery (docs/PROTOCOL.md Part V): subscribed connections per client at most; per
// subscriber, messages and content bytes pushed and not yet acknowledged at most (the window;
// beyond it the rest waits in the mailbox); a subscribed connection silent this long is
// dropped (it is pinged after a third of it).
inline constexpr std::size_t default_max_subscriptions = 4;
inline constexpr std::size_t default_push_window_messages = 64;
inline constexpr std::uint64_t default_push_window_bytes = 1ull << 20;
inline constexpr std::chrono::seconds default_heartbeat_timeout{60};

struct server_limits {
  std::uint32_t inline_content_limit = default_inline_content_limit;
  std::uint64_t max_message_size = default_max_message_size;
  std::size_t max_messages_per_pull = default_max_messages_per_pull;
  std::uint64_t max_pull_inline_bytes = default_max_pull_inline_bytes;
  std::uint64_t max_pull_payload = protocol::max_payload_size;
  std::chrono::milliseconds io_timeout = default_io_timeout;
  std::chrono::milliseconds request_grace = default_request_grace;
  std::uint64_t min_rate = default_min_rate;
  std::size_t max_connections = default_max_connections;
  std::size_t max_connections_per_ip = default_max_connections_per_ip;
  std::uint32_t registration_rate = default_registration_rate;
  std::uint32_t auth_failure_rate = default_auth_failure_rate;
  std::uint64_t max_pull_memory = default_max_pull_memory;
  std::uint64_t max_mailbox_messages = default_max_mailbox_messages;
  std::uint64_t max_mailbox_bytes = default_max_mailbox_bytes;
  std::uint64_t min_free_disk = default_min_free_disk;
  std::size_t max_batch = default_max_batch;
  std::chrono::milliseconds lease_timeout = default_lease_timeout;
  std::size_t max_groups_per_user = default_max_groups_per_user;
  std::size_t max_group_members = default_max_group_members;
  std::size_t max_subscriptions = default_max_subscriptions;
  std::size_t push_window_messages = default_push_window_messages;
  std::uint64_t push_window_bytes = default_push_window_bytes;
  std::chrono::milliseconds heartbeat_timeout = default_heartbeat_timeout;
};

}  // namespace letterbox::server

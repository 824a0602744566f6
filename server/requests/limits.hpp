// Every limit of the server as a named constant (the defaults), gathered in server_limits so
// each can be overridden from the command line.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

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
inline constexpr std::size_t default_max_connections = 16'384;
// Jobs the storage worker runs in one transaction (one fsync) at most.
inline constexpr std::size_t default_max_batch = 4096;

struct server_limits {
  std::uint32_t inline_content_limit = default_inline_content_limit;
  std::uint64_t max_message_size = default_max_message_size;
  std::size_t max_messages_per_pull = default_max_messages_per_pull;
  std::uint64_t max_pull_inline_bytes = default_max_pull_inline_bytes;
  std::uint64_t max_pull_payload = protocol::max_payload_size;
  std::chrono::milliseconds io_timeout = default_io_timeout;
  std::size_t max_connections = default_max_connections;
  std::size_t max_batch = default_max_batch;
};

}  // namespace letterbox::server

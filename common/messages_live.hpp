// Live delivery on protocol v2 (docs/PROTOCOL.md Part V, §28–§30): codes and the PRESENCE
// entry. Requests 210-212 keep the v2 framing (zero client ID, version 3); responses and the
// unsolicited frames 2013 (PING) and 2015 (PUSH, 2006 entries) keep the v2 response header.
#pragma once

#include <cstdint>
#include <vector>

#include "messages_v2.hpp"

namespace letterbox::protocol::live {

enum class request_code : std::uint8_t {
  subscribe = 210,
  presence = 211,
  ping = 212,
};
inline constexpr std::uint8_t min_request_code = 210;
inline constexpr std::uint8_t max_request_code = 212;  // 213-219 are reserved, unknown today
bool is_live_request(std::uint8_t code) noexcept;

enum class response_code : std::uint16_t {
  subscribed = 2010,
  presence = 2011,
  pong = 2012,
  ping = 2013,  // unsolicited, server → client
  push = 2015,  // unsolicited, server → client: 2006 entries
};
inline v2::response_code as_v2(response_code code) noexcept { return static_cast<v2::response_code>(code); }

// One 2011 entry: client ID[16], flags[1], last seen u64 LE (Unix seconds, 0 = not seen).
inline constexpr std::size_t presence_entry_size = client_id_size + 1 + 8;  // 25
inline constexpr std::uint8_t presence_flag_online = 0x01;
inline constexpr std::uint8_t presence_flag_v2 = 0x02;
struct presence_entry {
  client_id id{};
  std::uint8_t flags = 0;
  std::uint64_t last_seen = 0;
  bool operator==(const presence_entry&) const = default;
};
void append_presence_entry(byte_buffer& out, const presence_entry& entry);
std::vector<presence_entry> decode_presence_payload(bytes_view payload);  // n × 25

// A request of `code` with an empty payload (210, 211, 212): 22 bytes.
byte_buffer encode_empty_request(request_code code);
// A response or frame with an empty payload (2010, 2012, 2013): 7 bytes.
byte_buffer encode_empty_response(response_code code);

}  // namespace letterbox::protocol::live

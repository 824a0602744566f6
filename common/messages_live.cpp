// Live delivery codec (see messages_live.hpp).
#include "messages_live.hpp"

#include <algorithm>

#include "byte_codec.hpp"

namespace letterbox::protocol::live {

bool is_live_request(std::uint8_t code) noexcept { return code >= min_request_code && code <= max_request_code; }

void append_presence_entry(byte_buffer& out, const presence_entry& entry) {
  out.insert(out.end(), entry.id.begin(), entry.id.end());
  out.push_back(entry.flags);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(entry.last_seen >> (8 * i)));
}

std::vector<presence_entry> decode_presence_payload(bytes_view payload) {
  if (payload.size() % presence_entry_size != 0)
    throw protocol_error("presence payload of " + std::to_string(payload.size()) + " bytes is not n x 25");
  std::vector<presence_entry> result;
  result.reserve(payload.size() / presence_entry_size);
  for (std::size_t at = 0; at < payload.size(); at += presence_entry_size) {
    presence_entry e;
    std::copy_n(payload.begin() + at, client_id_size, e.id.begin());
    e.flags = payload[at + 16];
    for (int i = 0; i < 8; ++i) e.last_seen |= static_cast<std::uint64_t>(payload[at + 17 + i]) << (8 * i);
    result.push_back(e);
  }
  return result;
}

byte_buffer encode_empty_request(request_code code) {
  byte_buffer out(request_header_size, 0);
  out[16] = v2::wire_version;
  out[17] = static_cast<std::uint8_t>(code);
  return out;  // payload size 0
}

byte_buffer encode_empty_response(response_code code) {
  const auto header = v2::encode_response_header(as_v2(code), 0);
  return byte_buffer(header.begin(), header.end());
}

}  // namespace letterbox::protocol::live

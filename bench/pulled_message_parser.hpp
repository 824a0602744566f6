// Incremental parser of a 1004 payload (a sequence of pulled_message_header[25] + content), or
// of a v2 2006 payload (entry headers of 26 bytes: a flags byte after the type), that arrives
// in arbitrary chunks: the load generator streams pulls of any size through it without
// buffering whole messages. No I/O.
#pragma once

#include <algorithm>
#include <cstdint>

#include "messages.hpp"
#include "messages_v2.hpp"

namespace letterbox::bench {

template <bool V2>
class basic_pulled_message_parser {
 public:
  // Consumes a chunk of the 1004 payload. For each message calls handler.on_message(header)
  // once its 25-byte header is complete, then handler.on_content(bytes, offset_in_content)
  // for each piece of its content (possibly several calls, never for empty content).
  // Throws protocol::protocol_error only through decode_pulled_message_header (it cannot fail
  // on 25 bytes); the caller checks at_message_boundary() when the payload ends.
  template <typename Handler>
  void feed(protocol::bytes_view data, Handler& handler) {
    while (!data.empty()) {
      if (header_have_ < header_.size()) {
        const std::size_t n = std::min(header_.size() - header_have_, data.size());
        std::copy_n(data.begin(), n, header_.begin() + static_cast<std::ptrdiff_t>(header_have_));
        header_have_ += n;
        data = data.subspan(n);
        if (header_have_ == header_.size()) {
          const auto header = decode(header_);
          handler.on_message(header);
          content_left_ = header.content_size;
          content_offset_ = 0;
          if (content_left_ == 0) header_have_ = 0;
        }
        continue;
      }
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(content_left_, data.size()));
      handler.on_content(data.first(n), content_offset_);
      content_offset_ += n;
      content_left_ -= n;
      data = data.subspan(n);
      if (content_left_ == 0) header_have_ = 0;
    }
  }

  // True when every message fed so far is complete (a valid end of a 1004 payload).
  bool at_message_boundary() const noexcept { return header_have_ == 0 && content_left_ == 0; }

 private:
  static constexpr std::size_t header_size =
      V2 ? protocol::v2::pulled_message_header_size : protocol::pulled_message_header_size;
  // Both kinds as the v1 header (a v2 entry's flags are dropped: the load generator has no use
  // for them).
  static protocol::pulled_message_header decode(protocol::bytes_view bytes) {
    if constexpr (V2) {
      const auto h = protocol::v2::decode_pulled_message_header(bytes);
      return {h.from, h.message_id, h.type, h.content_size};
    } else {
      return protocol::decode_pulled_message_header(bytes);
    }
  }
  std::array<std::uint8_t, header_size> header_{};
  std::size_t header_have_ = 0;
  std::uint64_t content_left_ = 0;
  std::uint64_t content_offset_ = 0;
};

using pulled_message_parser = basic_pulled_message_parser<false>;
using pulled_message_parser_v2 = basic_pulled_message_parser<true>;

}  // namespace letterbox::bench

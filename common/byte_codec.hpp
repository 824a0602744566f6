// Bounds-checked little-endian primitives: a reader that consumes a span and reports
// truncation, and a writer that appends byte by byte. No I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace letterbox::protocol {

// The one error type of the codec layer: malformed, truncated or out-of-range input.
// The server translates it into a 9000 response at the session boundary.
class protocol_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using bytes_view = std::span<const std::uint8_t>;
using byte_buffer = std::vector<std::uint8_t>;

// Reads little-endian integers and byte ranges from a span. Every read checks the
// remaining length first and throws protocol_error on truncation; it never reads past
// the end. The span must outlive the reader and every view it returned.
class byte_reader {
 public:
  explicit byte_reader(bytes_view input) noexcept : input_(input) {}

  std::uint8_t u8() { return take(1)[0]; }
  std::uint16_t u16() {
    auto b = take(2);
    return static_cast<std::uint16_t>(b[0] | (b[1] << 8));
  }
  std::uint32_t u32() {
    auto b = take(4);
    return static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8) |
           (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  }
  // Returns a view of the next n bytes.
  bytes_view bytes(std::size_t n) { return take(n); }
  // Copies the next out.size() bytes into a fixed-size array.
  template <typename Array>
  void copy_into(Array& out) {
    auto b = take(out.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = b[i];
  }

  std::size_t remaining() const noexcept { return input_.size() - offset_; }
  bool empty() const noexcept { return remaining() == 0; }
  // Throws protocol_error unless every byte was consumed.
  void expect_end() const {
    if (!empty()) throw protocol_error("unexpected trailing bytes");
  }

 private:
  bytes_view take(std::size_t n) {
    if (n > remaining()) throw protocol_error("truncated input");
    auto view = input_.subspan(offset_, n);
    offset_ += n;
    return view;
  }
  bytes_view input_;
  std::size_t offset_ = 0;
};

// Appends little-endian integers and byte ranges to a buffer it does not own.
class byte_writer {
 public:
  explicit byte_writer(byte_buffer& out) noexcept : out_(out) {}

  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    out_.push_back(static_cast<std::uint8_t>(v));
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
  }
  void u32(std::uint32_t v) {
    for (int shift = 0; shift < 32; shift += 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  void bytes(bytes_view b) { out_.insert(out_.end(), b.begin(), b.end()); }

 private:
  byte_buffer& out_;
};

// Little-endian helpers for fixed positions (headers written in place).
inline void store_u32(std::uint8_t* at, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) at[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

}  // namespace letterbox::protocol

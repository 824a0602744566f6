// Tests of the bounds-checked little-endian primitives (common/byte_codec.hpp).
#include <doctest/doctest.h>

#include <array>

#include "byte_codec.hpp"

using namespace letterbox::protocol;

TEST_CASE("byte_reader: empty input throws on any read") {
  byte_reader in(bytes_view{});
  CHECK(in.empty());
  CHECK_THROWS_AS(in.u8(), protocol_error);
  CHECK_THROWS_AS(in.u32(), protocol_error);
  CHECK_NOTHROW(in.bytes(0));
  CHECK_NOTHROW(in.expect_end());
}

TEST_CASE("byte_reader: truncated integer throws and does not consume") {
  const std::array<std::uint8_t, 3> data{1, 2, 3};
  byte_reader in(data);
  CHECK_THROWS_AS(in.u32(), protocol_error);
  CHECK(in.remaining() == 3);
  CHECK(in.u16() == 0x0201);
  CHECK_THROWS_AS(in.u16(), protocol_error);
  CHECK(in.u8() == 3);
}

TEST_CASE("byte_reader: little-endian decoding") {
  const std::array<std::uint8_t, 7> data{0x78, 0x56, 0x34, 0x12, 0xFF, 0xEE, 0x01};
  byte_reader in(data);
  CHECK(in.u32() == 0x12345678u);
  CHECK(in.u16() == 0xEEFF);
  CHECK_THROWS_AS(in.expect_end(), protocol_error);
  CHECK(in.u8() == 1);
  CHECK_NOTHROW(in.expect_end());
}

TEST_CASE("byte_reader: bytes beyond the end throws") {
  const std::array<std::uint8_t, 4> data{};
  byte_reader in(data);
  CHECK_THROWS_AS(in.bytes(5), protocol_error);
  CHECK(in.bytes(4).size() == 4);
}

TEST_CASE("byte_writer: writes little-endian byte by byte") {
  byte_buffer out;
  byte_writer w(out);
  w.u8(0xAB);
  w.u16(0x1234);
  w.u32(0xDEADBEEF);
  CHECK(out == byte_buffer{0xAB, 0x34, 0x12, 0xEF, 0xBE, 0xAD, 0xDE});
}

TEST_CASE("byte_writer and byte_reader round trip the extremes") {
  byte_buffer out;
  byte_writer w(out);
  w.u32(0);
  w.u32(0xFFFFFFFFu);
  w.u16(0xFFFF);
  byte_reader in(out);
  CHECK(in.u32() == 0);
  CHECK(in.u32() == 0xFFFFFFFFu);
  CHECK(in.u16() == 0xFFFF);
  CHECK(in.empty());
}

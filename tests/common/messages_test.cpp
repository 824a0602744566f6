// Tests of the protocol v1 payload codec (common/messages.hpp): edge cases first, then
// golden byte arrays that pin the wire format.
#include <doctest/doctest.h>

#include <sys/mman.h>

#include <string>

#include "messages.hpp"

using namespace letterbox::protocol;

namespace {
client_id make_id(std::uint8_t seed) {
  client_id id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(seed + i);
  return id;
}
public_key make_key(std::uint8_t seed) {
  public_key key{};
  for (std::size_t i = 0; i < key.size(); ++i) key[i] = static_cast<std::uint8_t>(seed ^ i);
  return key;
}
}  // namespace

// --- Edge cases --------------------------------------------------------------------------

TEST_CASE("request header: empty and truncated input are rejected") {
  CHECK_THROWS_AS(decode_request_header(bytes_view{}), protocol_error);
  byte_buffer short_header(request_header_size - 1, 0);
  CHECK_THROWS_AS(decode_request_header(short_header), protocol_error);
  byte_buffer long_header(request_header_size + 1, 0);
  CHECK_THROWS_AS(decode_request_header(long_header), protocol_error);
}

TEST_CASE("request frame: empty payload is the header alone, announcing 0") {
  const auto frame = encode_request(make_id(0x10), 2, 101, {});
  REQUIRE(frame.size() == request_header_size);
  CHECK(decode_request_header(frame) == request_header{make_id(0x10), 2, 101, 0});
  CHECK(encode_request_front(make_id(0x10), 2, 101, 0, {}) == frame);
}

TEST_CASE("request frame: a payload over the u32 size field is refused before a byte is read") {
  // 4 GiB of address space that faults on any access: the size alone must be refused.
  const std::size_t oversize = max_payload_size + 1;
  void* reserved = ::mmap(nullptr, oversize, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  REQUIRE(reserved != MAP_FAILED);
  const bytes_view huge(static_cast<const std::uint8_t*>(reserved), oversize);
  CHECK_THROWS_AS(encode_request(make_id(1), 2, 103, huge), protocol_error);
  ::munmap(reserved, oversize);
  CHECK_THROWS_AS(encode_request_front(make_id(1), 2, 103, max_payload_size + 1, {}), protocol_error);
  CHECK_THROWS_AS(encode_request_front(make_id(1), 2, 103, ~std::uint64_t{0}, {}), protocol_error);
}

TEST_CASE("request frame front: a prefix longer than the announced payload is refused") {
  const byte_buffer prefix(21, 0xAB);
  CHECK_THROWS_AS(encode_request_front(make_id(1), 2, 103, 20, prefix), protocol_error);
  CHECK_THROWS_AS(encode_request_front(make_id(1), 2, 101, 0, byte_buffer(1, 0)), protocol_error);
  CHECK(encode_request_front(make_id(1), 2, 103, 21, prefix).size() == request_header_size + 21);
}

TEST_CASE("unknown request codes are not known and have no fixed size") {
  for (int code : {0, 99, 105, 200, 255}) {
    CHECK_FALSE(is_known_request(static_cast<std::uint8_t>(code)));
    CHECK_FALSE(fixed_payload_size(static_cast<std::uint8_t>(code)).has_value());
  }
  CHECK(fixed_payload_size(100) == 415u);
  CHECK(fixed_payload_size(101) == 0u);
  CHECK(fixed_payload_size(102) == 16u);
  CHECK_FALSE(fixed_payload_size(103).has_value());
  CHECK(fixed_payload_size(104) == 0u);
}

TEST_CASE("register payload: empty, truncated and oversize are rejected") {
  CHECK_THROWS_AS(decode_register_request(bytes_view{}), protocol_error);
  byte_buffer payload = encode_register_request({"alice", make_key(1)});
  REQUIRE(payload.size() == register_payload_size);
  byte_buffer truncated(payload.begin(), payload.end() - 1);
  CHECK_THROWS_AS(decode_register_request(truncated), protocol_error);
  byte_buffer oversize = payload;
  oversize.push_back(0);
  CHECK_THROWS_AS(decode_register_request(oversize), protocol_error);
}

TEST_CASE("name field without NUL is invalid") {
  byte_buffer field(name_field_size, 'a');
  CHECK_THROWS_AS(decode_name(field), protocol_error);
  field.back() = 0;  // 254 'a' + NUL: the longest valid name
  CHECK(decode_name(field) == std::string(max_name_length, 'a'));
}

TEST_CASE("names: empty, too long, control characters and bad UTF-8 are invalid") {
  CHECK_THROWS_AS(validate_name(""), protocol_error);
  CHECK_THROWS_AS(validate_name(std::string(255, 'x')), protocol_error);
  CHECK_NOTHROW(validate_name(std::string(254, 'x')));
  CHECK_THROWS_AS(validate_name("tab\there"), protocol_error);
  CHECK_THROWS_AS(validate_name(std::string("nul\0in", 6)), protocol_error);
  CHECK_THROWS_AS(validate_name("\xC3"), protocol_error);          // truncated sequence
  CHECK_THROWS_AS(validate_name("\xC0\xAF"), protocol_error);      // overlong '/'
  CHECK_THROWS_AS(validate_name("\xED\xA0\x80"), protocol_error);  // surrogate
  CHECK_THROWS_AS(validate_name("\xF4\x90\x80\x80"), protocol_error);  // > U+10FFFF
  CHECK_NOTHROW(validate_name("Zoë ✓ 😀"));
  byte_buffer empty_name(name_field_size, 0);
  CHECK_THROWS_AS(decode_name(empty_name), protocol_error);
}

TEST_CASE("name field: bytes after the NUL are ignored") {
  byte_buffer field(name_field_size, 0xEE);
  field[0] = 'b';
  field[1] = 'o';
  field[2] = 'b';
  field[3] = 0;
  CHECK(decode_name(field) == "bob");
}

TEST_CASE("get public key payload must be exactly 16 bytes") {
  CHECK_THROWS_AS(decode_get_public_key_request(bytes_view{}), protocol_error);
  byte_buffer p15(15), p17(17), p16(16, 7);
  CHECK_THROWS_AS(decode_get_public_key_request(p15), protocol_error);
  CHECK_THROWS_AS(decode_get_public_key_request(p17), protocol_error);
  CHECK(decode_get_public_key_request(p16).target[15] == 7);
}

TEST_CASE("send message: each rule of 103 is enforced") {
  send_message_prefix prefix{make_id(1), 3, 10};
  CHECK_NOTHROW(validate_send_message(prefix, 31));
  SUBCASE("size mismatch") {
    CHECK_THROWS_AS(validate_send_message(prefix, 30), protocol_error);
    CHECK_THROWS_AS(validate_send_message(prefix, 32), protocol_error);
  }
  SUBCASE("payload shorter than prefix") { CHECK_THROWS_AS(validate_send_message(prefix, 20), protocol_error); }
  SUBCASE("content size overflowing u32 with the prefix") {
    prefix.content_size = 0xFFFFFFFFu;
    CHECK_THROWS_AS(validate_send_message(prefix, 0xFFFFFFFFu), protocol_error);
    CHECK_THROWS_AS(validate_send_message(prefix, 20), protocol_error);  // 21 + size wraps to 20
  }
  SUBCASE("largest content that fits") {
    prefix.content_size = 0xFFFFFFFFu - 21;
    CHECK_NOTHROW(validate_send_message(prefix, 0xFFFFFFFFu));
  }
  SUBCASE("type out of range") {
    for (std::uint8_t type : {0, 5, 255}) {
      prefix.type = type;
      CHECK_THROWS_AS(validate_send_message(prefix, 31), protocol_error);
    }
  }
  SUBCASE("type 1 with content") {
    prefix.type = 1;
    CHECK_THROWS_AS(validate_send_message(prefix, 31), protocol_error);
    prefix.content_size = 0;
    CHECK_NOTHROW(validate_send_message(prefix, 21));
  }
  SUBCASE("types 2, 3, 4 may carry content; 4 may be empty") {
    for (std::uint8_t type : {2, 3, 4}) {
      prefix.type = type;
      CHECK_NOTHROW(validate_send_message(prefix, 31));
    }
    prefix.content_size = 0;
    CHECK_NOTHROW(validate_send_message(prefix, 21));
  }
  CHECK_THROWS_AS(decode_send_message_prefix(bytes_view{}), protocol_error);
}

TEST_CASE("client list payload: size must be a multiple of 271; empty list is fine") {
  CHECK(decode_client_list_payload(bytes_view{}).empty());
  byte_buffer odd(client_list_entry_size + 1, 0);
  CHECK_THROWS_AS(decode_client_list_payload(odd), protocol_error);
}

TEST_CASE("response payload decoders reject wrong sizes") {
  byte_buffer wrong(5);
  CHECK_THROWS_AS(decode_registered_payload(wrong), protocol_error);
  CHECK_THROWS_AS(decode_public_key_payload(wrong), protocol_error);
  CHECK_THROWS_AS(decode_message_sent_payload(wrong), protocol_error);
  CHECK_THROWS_AS(decode_pulled_message_header(wrong), protocol_error);
  CHECK_THROWS_AS(decode_response_header(wrong), protocol_error);
}

TEST_CASE("hex bytes: odd length and non-hex digits are refused; empty is empty") {
  CHECK(from_hex("") == byte_buffer{});
  CHECK(from_hex("00ff7A") == byte_buffer{0x00, 0xFF, 0x7A});
  CHECK_FALSE(from_hex("0").has_value());
  CHECK_FALSE(from_hex("0g").has_value());
  CHECK_FALSE(from_hex("zz").has_value());
}

TEST_CASE("names: C1 control characters (U+0080..U+009F) are invalid, U+00A0 is fine") {
  CHECK_THROWS_AS(validate_name("a\xC2\x80" "b"), protocol_error);
  CHECK_THROWS_AS(validate_name("\xC2\x9B[2J"), protocol_error);  // CSI: would drive a terminal
  CHECK_NOTHROW(validate_name("a\xC2\xA0" "b"));
}

TEST_CASE("hex client IDs") {
  auto id = make_id(0xF0);
  CHECK(to_hex(id) == "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  CHECK(client_id_from_hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF") == id);
  CHECK_FALSE(client_id_from_hex("").has_value());
  CHECK_FALSE(client_id_from_hex("f0f1").has_value());
  CHECK_FALSE(client_id_from_hex("g0f1f2f3f4f5f6f7f8f9fafbfcfdfeff").has_value());
  CHECK_FALSE(client_id_from_hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0").has_value());
}

// --- Golden byte arrays ----------------------------------------------------------------------

TEST_CASE("golden: request header") {
  request_header header{make_id(0x10), 2, 103, 0x01020304};
  auto bytes = encode_request_header(header);
  const request_header_bytes golden{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A,
                                    0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x02, 0x67, 0x04, 0x03, 0x02, 0x01};
  CHECK(bytes == golden);
  CHECK(decode_request_header(golden) == header);
}

TEST_CASE("golden: whole request frame (102 with its 16-byte payload)") {
  const auto frame = encode_request(make_id(0x10), 2, 102, encode_get_public_key_request({make_id(0xA0)}));
  const byte_buffer golden{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C,
                           0x1D, 0x1E, 0x1F,                                   // client ID
                           0x02,                                               // version
                           0x66,                                               // code 102
                           0x10, 0x00, 0x00, 0x00,                             // payload size 16
                           0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC,
                           0xAD, 0xAE, 0xAF};                                  // target ID
  CHECK(frame == golden);
}

TEST_CASE("golden: request frame front (103 header announcing the whole payload, then its prefix)") {
  const auto prefix = encode_send_message_prefix({make_id(0x20), 4, 1000});
  const auto frame = encode_request_front(make_id(0x10), 1, 103, send_message_prefix_size + 1000, prefix);
  const byte_buffer golden{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C,
                           0x1D, 0x1E, 0x1F,                                   // client ID
                           0x01,                                               // version, as given
                           0x67,                                               // code 103
                           0xFD, 0x03, 0x00, 0x00,                             // payload size 1021
                           0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2A, 0x2B, 0x2C,
                           0x2D, 0x2E, 0x2F,                                   // to
                           0x04,                                               // type: file
                           0xE8, 0x03, 0x00, 0x00};                            // content size 1000
  CHECK(frame == golden);
  // The largest size the field holds is announced as is.
  const auto largest = encode_request_front(make_id(0x10), 2, 103, max_payload_size, {});
  CHECK(byte_buffer(largest.begin() + 18, largest.end()) == byte_buffer{0xFF, 0xFF, 0xFF, 0xFF});
}

TEST_CASE("golden: response headers") {
  CHECK(encode_error_response() == byte_buffer{0x02, 0x28, 0x23, 0, 0, 0, 0});  // 9000 = 0x2328
  const response_header_bytes golden{0x02, 0xEC, 0x03, 0x10, 0x00, 0x00, 0x00};  // 1004, 16
  CHECK(encode_response_header({2, 1004, 16}) == golden);
  CHECK(decode_response_header(golden) == response_header{2, 1004, 16});
}

TEST_CASE("golden: register request payload") {
  auto payload = encode_register_request({"Al", make_key(0)});
  REQUIRE(payload.size() == 415);
  CHECK(payload[0] == 'A');
  CHECK(payload[1] == 'l');
  for (std::size_t i = 2; i < name_field_size; ++i) REQUIRE(payload[i] == 0);  // NUL-padded
  CHECK(payload[255] == 0x00);  // key[0] = 0 ^ 0
  CHECK(payload[256] == 0x01);
  CHECK(payload[414] == static_cast<std::uint8_t>(159));
  auto decoded = decode_register_request(payload);
  CHECK(decoded.name == "Al");
  CHECK(decoded.key == make_key(0));
}

TEST_CASE("golden: send message prefix") {
  auto bytes = encode_send_message_prefix({make_id(0), 4, 0x00000100});
  byte_buffer golden{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x04, 0x00, 0x01, 0x00, 0x00};
  CHECK(bytes == golden);
  auto prefix = decode_send_message_prefix(golden);
  CHECK(prefix.to == make_id(0));
  CHECK(prefix.type == 4);
  CHECK(prefix.content_size == 256);
}

TEST_CASE("golden: 1000 registered response") {
  auto bytes = encode_registered_response(make_id(0x20));
  REQUIRE(bytes.size() == 7 + 16);
  CHECK(byte_buffer(bytes.begin(), bytes.begin() + 7) == byte_buffer{0x02, 0xE8, 0x03, 16, 0, 0, 0});
  CHECK(decode_registered_payload(bytes_view(bytes).subspan(7)) == make_id(0x20));
}

TEST_CASE("golden: 1001 client list response") {
  auto bytes = encode_client_list_response({{make_id(1), "bob"}, {make_id(2), "carol"}});
  REQUIRE(bytes.size() == 7 + 2 * 271);
  CHECK(byte_buffer(bytes.begin(), bytes.begin() + 7) == byte_buffer{0x02, 0xE9, 0x03, 0x1E, 0x02, 0, 0});
  CHECK(bytes[7] == 1);          // first ID byte
  CHECK(bytes[7 + 16] == 'b');   // name follows the ID
  CHECK(bytes[7 + 19] == 0);     // NUL terminator
  auto list = decode_client_list_payload(bytes_view(bytes).subspan(7));
  REQUIRE(list.size() == 2);
  CHECK(list[1] == client_entry{make_id(2), "carol"});
  auto empty = encode_client_list_response({});
  CHECK(empty == byte_buffer{0x02, 0xE9, 0x03, 0, 0, 0, 0});
}

TEST_CASE("golden: 1002 public key response") {
  auto bytes = encode_public_key_response({make_id(3), make_key(9)});
  REQUIRE(bytes.size() == 7 + 176);
  CHECK(byte_buffer(bytes.begin(), bytes.begin() + 7) == byte_buffer{0x02, 0xEA, 0x03, 176, 0, 0, 0});
  auto decoded = decode_public_key_payload(bytes_view(bytes).subspan(7));
  CHECK(decoded.id == make_id(3));
  CHECK(decoded.key == make_key(9));
}

TEST_CASE("golden: 1003 message sent response") {
  auto bytes = encode_message_sent_response({make_id(0), 0x0A0B0C0D});
  byte_buffer golden{0x02, 0xEB, 0x03, 20, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                     0x0D, 0x0C, 0x0B, 0x0A};
  CHECK(bytes == golden);
  CHECK(decode_message_sent_payload(bytes_view(golden).subspan(7)) == message_sent{make_id(0), 0x0A0B0C0D});
}

TEST_CASE("golden: 1004 pulled message header") {
  pulled_message_header header{make_id(0), 7, 3, 32};
  auto bytes = encode_pulled_message_header(header);
  const std::array<std::uint8_t, 25> golden{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                            7, 0, 0, 0, 3, 32, 0, 0, 0};
  CHECK(bytes == golden);
  CHECK(decode_pulled_message_header(golden) == header);
}

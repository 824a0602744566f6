// Typed request/response payloads of protocol v1 and their strict encoders/decoders.
// Pure functions over byte spans: no sockets, no files. Every decoder enforces the rules of
// PROTOCOL.md that can be checked from the bytes alone and throws protocol_error otherwise.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "byte_codec.hpp"
#include "protocol_constants.hpp"

namespace letterbox::protocol {

using client_id = std::array<std::uint8_t, client_id_size>;
using public_key = std::array<std::uint8_t, public_key_size>;
using request_header_bytes = std::array<std::uint8_t, request_header_size>;
using response_header_bytes = std::array<std::uint8_t, response_header_size>;

// --- Headers -------------------------------------------------------------------------------
struct request_header {
  client_id client{};
  std::uint8_t version = client_version;
  std::uint8_t code = 0;  // raw: unknown codes must be representable to be rejected
  std::uint32_t payload_size = 0;
  bool operator==(const request_header&) const = default;
};

struct response_header {
  std::uint8_t version = server_version;
  std::uint16_t code = 0;
  std::uint32_t payload_size = 0;
  bool operator==(const response_header&) const = default;
};

request_header_bytes encode_request_header(const request_header& header);
request_header decode_request_header(bytes_view bytes);  // needs exactly 22 bytes
response_header_bytes encode_response_header(const response_header& header);
response_header decode_response_header(bytes_view bytes);  // needs exactly 7 bytes

// --- Request frames --------------------------------------------------------------------------
// The one place a request is framed (client, test harness and load generator use these).
// A whole request: the header announcing payload.size(), then the payload. Throws
// protocol_error when the payload does not fit the u32 size field.
byte_buffer encode_request(const client_id& client, std::uint8_t version, std::uint8_t code,
                           bytes_view payload);
// The front of a request whose payload the caller streams: the header announcing payload_size,
// then payload_prefix, the first bytes of that payload (the other payload_size -
// payload_prefix.size() bytes are the caller's to send). Throws protocol_error when
// payload_size does not fit the u32 size field or the prefix is longer than payload_size.
byte_buffer encode_request_front(const client_id& client, std::uint8_t version, std::uint8_t code,
                                 std::uint64_t payload_size, bytes_view payload_prefix);

// True for the five request codes of v1.
bool is_known_request(std::uint8_t code) noexcept;
// The exact payload size of a fixed-size request (100, 101, 102, 104); nullopt for 103
// (variable) and unknown codes.
std::optional<std::uint32_t> fixed_payload_size(std::uint8_t code) noexcept;

// --- Names ---------------------------------------------------------------------------------
// Encodes a name into its 255-byte NUL-terminated, NUL-padded field. Throws protocol_error
// when the name is invalid (see validate_name).
std::array<std::uint8_t, name_field_size> encode_name(std::string_view name);
// Decodes a name field: the text up to the first NUL. Throws protocol_error when the field has
// no NUL, or the text is invalid (see validate_name). Bytes after the NUL are ignored.
std::string decode_name(bytes_view field);
// A valid name is 1..254 bytes of well-formed UTF-8 without NUL or other control characters.
// Throws protocol_error with the reason otherwise.
void validate_name(std::string_view name);

// --- Requests ------------------------------------------------------------------------------
struct register_request {
  std::string name;
  public_key key{};
};
byte_buffer encode_register_request(const register_request& request);
register_request decode_register_request(bytes_view payload);  // payload must be 415 bytes

struct get_public_key_request {
  client_id target{};
};
byte_buffer encode_get_public_key_request(const get_public_key_request& request);
get_public_key_request decode_get_public_key_request(bytes_view payload);  // 16 bytes

// The fixed 21-byte front of a 103 payload; the content follows it on the wire.
struct send_message_prefix {
  client_id to{};
  std::uint8_t type = 0;  // raw, validated by validate_send_message
  std::uint32_t content_size = 0;
};
byte_buffer encode_send_message_prefix(const send_message_prefix& prefix);
send_message_prefix decode_send_message_prefix(bytes_view bytes);  // 21 bytes
// Checks the 103 rules that need no storage: payload size == 21 + content size, type in 1..4,
// type 1 has empty content. Throws protocol_error naming the broken rule.
void validate_send_message(const send_message_prefix& prefix, std::uint32_t payload_size);

// --- Responses -----------------------------------------------------------------------------
struct client_entry {
  client_id id{};
  std::string name;
  bool operator==(const client_entry&) const = default;
};

struct message_sent {
  client_id to{};
  std::uint32_t message_id = 0;
  bool operator==(const message_sent&) const = default;
};

struct public_key_response {
  client_id id{};
  public_key key{};
};

// The 25-byte header of each message inside a 1004 payload; content follows it.
struct pulled_message_header {
  client_id from{};
  std::uint32_t message_id = 0;
  std::uint8_t type = 0;
  std::uint32_t content_size = 0;
  bool operator==(const pulled_message_header&) const = default;
};

// Whole responses (header + payload) for the small, fixed-shape answers.
byte_buffer encode_error_response();
byte_buffer encode_registered_response(const client_id& id);
byte_buffer encode_client_list_response(const std::vector<client_entry>& clients);
// The same in pieces, for a long list streamed as it is encoded: the 7-byte header of a 1001
// carrying `count` entries (throws protocol_error when they do not fit a u32 payload), then
// each 271-byte entry appended to `out`.
response_header_bytes encode_client_list_header(std::uint64_t count);
void append_client_list_entry(byte_buffer& out, const client_entry& client);
byte_buffer encode_public_key_response(const public_key_response& response);
byte_buffer encode_message_sent_response(const message_sent& sent);

// Payload decoders for the client side. Each throws protocol_error on a wrong size.
client_id decode_registered_payload(bytes_view payload);
std::vector<client_entry> decode_client_list_payload(bytes_view payload);
public_key_response decode_public_key_payload(bytes_view payload);
message_sent decode_message_sent_payload(bytes_view payload);

// 1004 is streamed: its payload is a sequence of (pulled_message_header, content).
std::array<std::uint8_t, pulled_message_header_size> encode_pulled_message_header(
    const pulled_message_header& header);
pulled_message_header decode_pulled_message_header(bytes_view bytes);  // 25 bytes

// --- Client IDs as text (me.info, logs) ----------------------------------------------------
std::string to_hex(bytes_view bytes);                         // lowercase hex
std::optional<byte_buffer> from_hex(std::string_view hex);    // nullopt unless pairs of hex digits
std::optional<client_id> client_id_from_hex(std::string_view hex);  // exactly 32 hex chars

}  // namespace letterbox::protocol

// Protocol v2 (docs/PROTOCOL.md Part II, §12–§18): constants and strict encoders/decoders of
// every v2 payload. Pure functions over byte spans: no sockets, no files, no cryptography
// (signatures are opaque 64-byte fields here; crypto/identity.hpp makes and checks them).
//
// Request  = zero client_id[16] version[1] = 3 code[1] = 200..207 payload_size[4] payload
// Response = version[1] = 3 code[2] = 2000..2007 | 9000 payload_size[4] payload
// 9000 (v2) = 03 28 23 02 00 00 00 reason[2]
// All integers are unsigned little-endian. Every decoder throws protocol_error on a wrong size
// or a field the bytes alone show to be invalid (reason `malformed` on the server).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "messages.hpp"

namespace letterbox::protocol::v2 {

// --- Versions and fixed values --------------------------------------------------------------
inline constexpr std::uint8_t wire_version = 3;       // header version byte of v2 requests and responses
inline constexpr std::uint8_t protocol_version = 2;   // the version HELLO negotiates
inline constexpr std::array<std::uint8_t, 4> hello_magic{'L', 'B', 'X', '2'};

// --- Field sizes ----------------------------------------------------------------------------
inline constexpr std::size_t challenge_size = 32;      // from the server's OS RNG, per connection
inline constexpr std::size_t identity_key_size = 32;   // Ed25519 public key
inline constexpr std::size_t agreement_key_size = 32;  // X25519 public key
inline constexpr std::size_t signature_size = 64;      // Ed25519 signature
inline constexpr std::size_t legacy_key_size = public_key_size;  // RSA-1024 X.509 DER, 160
inline constexpr std::size_t reason_size = 2;          // u16 of a v2 9000

using challenge = std::array<std::uint8_t, challenge_size>;
using identity_key = std::array<std::uint8_t, identity_key_size>;
using agreement_key = std::array<std::uint8_t, agreement_key_size>;
using signature = std::array<std::uint8_t, signature_size>;
using legacy_key = public_key;
using name_field = std::array<std::uint8_t, name_field_size>;

// --- Payload sizes --------------------------------------------------------------------------
inline constexpr std::size_t hello_payload_size = 4 + 1 + 1;                       // magic min max = 6
inline constexpr std::size_t hello_response_size = 1 + challenge_size;             // 33
inline constexpr std::size_t register_payload_size =
    name_field_size + identity_key_size + agreement_key_size + legacy_key_size + 2 * signature_size;  // 607
inline constexpr std::size_t registered_response_size = client_id_size;          // 16
inline constexpr std::size_t auth_payload_size = client_id_size + signature_size;  // 80
inline constexpr std::size_t auth_response_size = 0;
inline constexpr std::size_t list_payload_size = 0;
inline constexpr std::size_t client_list_entry_size = client_id_size + name_field_size + 1;  // 272
inline constexpr std::size_t keys_payload_size = client_id_size;                  // 16
inline constexpr std::size_t keys_response_size = client_id_size + 1 + name_field_size + identity_key_size +
                                                  agreement_key_size + legacy_key_size + signature_size;  // 560
inline constexpr std::size_t send_message_prefix_size = protocol::send_message_prefix_size;  // 21, as 103
inline constexpr std::size_t message_sent_response_size = protocol::message_sent_response_size;  // 20
inline constexpr std::size_t pull_payload_size = 0;
inline constexpr std::size_t pulled_message_header_size =
    client_id_size + message_id_size + 1 + 1 + 4;  // from[16] id[4] type[1] flags[1] size[4] = 26
inline constexpr std::size_t max_ack_ids = 65'536;
inline constexpr std::size_t max_ack_payload_size = max_ack_ids * message_id_size;  // 262,144
inline constexpr std::size_t ack_response_size = 4;                                // u32 removed
inline constexpr std::size_t error_payload_size = reason_size;                     // 2

// The largest content a SEND may carry so that it still fits one 2006 entry (u32 payload).
inline constexpr std::uint64_t max_content_size = max_payload_size - pulled_message_header_size;

// --- Codes ----------------------------------------------------------------------------------
enum class request_code : std::uint8_t {
  hello = 200,
  register_client = 201,
  auth = 202,
  list_clients = 203,
  get_keys = 204,
  send_message = 205,
  pull_messages = 206,
  ack = 207,
};
inline constexpr std::uint8_t min_request_code = 200;
inline constexpr std::uint8_t max_request_code = 207;

enum class response_code : std::uint16_t {
  hello = 2000,
  registered = 2001,
  authenticated = 2002,
  client_list = 2003,
  keys = 2004,
  message_sent = 2005,
  messages = 2006,
  acknowledged = 2007,
  error = 9000,
};

// The reason carried by a v2 9000 (§18).
enum class reason : std::uint16_t {
  malformed = 1,
  bad_state = 2,
  authentication_failed = 3,
  name_taken = 4,
  key_taken = 5,
  unknown_client = 6,
  type_not_accepted = 7,
  too_large = 8,
  mailbox_full = 9,
  disk_full = 10,
  rate_limited = 11,
  storage_failure = 12,
  too_many_subscriptions = 20,  // Part III, §21: a SUBSCRIBE beyond --max-subscriptions
};
inline constexpr std::uint16_t max_reason = 12;
// The reason's name as in §18 ("malformed", ...); "unknown" for other values.
const char* reason_name(std::uint16_t value) noexcept;

// Sealed envelope types (§16); v1 types 1–4 stay in protocol::message_type.
enum class message_type : std::uint8_t {
  sealed_text = 16,
  sealed_file = 17,
};

// Flags of a LIST / KEYS entry: bit 0 = a v2 client (it has an identity key).
inline constexpr std::uint8_t client_flag_v2 = 0x01;
// Flags of a PULL entry: bit 0 = the sender is a legacy v1 client (unauthenticated).
inline constexpr std::uint8_t message_flag_legacy_sender = 0x01;

// True for 200..207.
bool is_v2_request(std::uint8_t code) noexcept;
// The exact payload size of a fixed-size v2 request (200, 201, 202, 203, 204, 206); nullopt for
// SEND and ACK (variable) and other codes.
std::optional<std::uint32_t> fixed_payload_size(std::uint8_t code) noexcept;

// --- Request frames ---------------------------------------------------------------------------
// A whole v2 request: zero client ID, version 3, code, payload (see protocol::encode_request).
byte_buffer encode_request(request_code code, bytes_view payload);
// The front of a v2 request whose payload the caller streams (see protocol::encode_request_front).
byte_buffer encode_request_front(request_code code, std::uint64_t payload_size, bytes_view payload_prefix);

// --- Names ----------------------------------------------------------------------------------
// Decodes a name field that must be canonical: a valid name (protocol::decode_name), and every
// byte after the first NUL is 0. Throws protocol_error otherwise.
std::string decode_canonical_name(bytes_view field);

// --- Requests -------------------------------------------------------------------------------
struct hello_request {
  std::uint8_t min_version = protocol_version;
  std::uint8_t max_version = protocol_version;
  bool operator==(const hello_request&) const = default;
};
byte_buffer encode_hello_request(const hello_request& request = {});
// 6 bytes; the magic must be "LBX2" and min ≤ max. Whether the range includes 2 is the server's
// business (supports_v2).
hello_request decode_hello_request(bytes_view payload);
inline bool supports_v2(const hello_request& r) noexcept {
  return r.min_version <= protocol_version && protocol_version <= r.max_version;
}

struct register_request {
  std::string name;
  identity_key identity{};
  agreement_key agreement{};
  legacy_key legacy{};
  signature key_signature{};  // Sign(identity, keys label, name[255] ‖ agreement ‖ legacy)
  signature proof{};          // Sign(identity, register label, challenge ‖ identity)
  bool operator==(const register_request&) const = default;
};
byte_buffer encode_register_request(const register_request& request);  // throws on an invalid name
register_request decode_register_request(bytes_view payload);           // 607 bytes, canonical name

struct auth_request {
  client_id client{};
  signature proof{};  // Sign(identity, auth label, challenge ‖ client ID)
  bool operator==(const auth_request&) const = default;
};
byte_buffer encode_auth_request(const auth_request& request);
auth_request decode_auth_request(bytes_view payload);  // 80 bytes

struct keys_request {
  client_id target{};
};
byte_buffer encode_keys_request(const keys_request& request);
keys_request decode_keys_request(bytes_view payload);  // 16 bytes

// SEND has the 21-byte prefix of 103 (protocol::send_message_prefix and its codec).
using protocol::decode_send_message_prefix;
using protocol::encode_send_message_prefix;
using protocol::send_message_prefix;
// The SEND checks of §15 that need no storage, in their order (the flow maps them to reasons):
// payload size == 21 + content size (validate_send_framing throws protocol_error otherwise),
// the type is one SEND can carry at all (is_sendable_type: 1–4, 16, 17), a type 1 is empty
// (is_empty_when_required). After the recipient is known: type_fits_recipient.
void validate_send_framing(const send_message_prefix& prefix, std::uint32_t payload_size);
bool is_sendable_type(std::uint8_t type) noexcept;
bool is_empty_when_required(const send_message_prefix& prefix) noexcept;
// Types 16 and 17 only to v2 recipients, types 1–4 only to legacy ones.
bool type_fits_recipient(std::uint8_t type, bool recipient_is_v2) noexcept;

struct ack_request {
  std::vector<std::uint32_t> message_ids;
  bool operator==(const ack_request&) const = default;
};
byte_buffer encode_ack_request(const ack_request& request);  // throws unless 1 ≤ n ≤ 65,536
ack_request decode_ack_request(bytes_view payload);          // n × 4 bytes, 1 ≤ n ≤ 65,536
// Whether an ACK payload size is acceptable before it is read (a multiple of 4, 4..262,144).
bool is_valid_ack_payload_size(std::uint32_t payload_size) noexcept;

// --- Responses ------------------------------------------------------------------------------
// A v2 response header (version 3).
response_header_bytes encode_response_header(response_code code, std::uint32_t payload_size);

struct hello_response {
  std::uint8_t version = protocol_version;
  challenge nonce{};
  bool operator==(const hello_response&) const = default;
};
byte_buffer encode_hello_response(const hello_response& response);  // whole response (2000)
hello_response decode_hello_payload(bytes_view payload);            // 33 bytes

byte_buffer encode_registered_response(const client_id& id);  // 2001
client_id decode_registered_payload(bytes_view payload);      // 16 bytes
byte_buffer encode_authenticated_response();                  // 2002, empty

struct client_entry {
  client_id id{};
  std::string name;
  std::uint8_t flags = 0;  // client_flag_v2
  bool operator==(const client_entry&) const = default;
};
// 2003 in pieces (streamed like 1001): the header for `count` entries (throws protocol_error when
// they do not fit a u32 payload), then each 272-byte entry appended to `out`.
response_header_bytes encode_client_list_header(std::uint64_t count);
void append_client_list_entry(byte_buffer& out, const client_entry& client);
byte_buffer encode_client_list_response(const std::vector<client_entry>& clients);
std::vector<client_entry> decode_client_list_payload(bytes_view payload);  // n × 272

struct keys_response {
  client_id id{};
  std::uint8_t flags = 0;
  std::string name;
  identity_key identity{};   // zeros for a legacy client
  agreement_key agreement{};  // zeros for a legacy client
  legacy_key legacy{};
  signature key_signature{};  // zeros for a legacy client
  bool operator==(const keys_response&) const = default;
};
byte_buffer encode_keys_response(const keys_response& response);  // 2004
keys_response decode_keys_payload(bytes_view payload);            // 560 bytes

byte_buffer encode_message_sent_response(const message_sent& sent);  // 2005
using protocol::decode_message_sent_payload;                          // 20 bytes, as 1003

// The 26-byte header of each entry of a 2006 payload; content follows it.
struct pulled_message_header {
  client_id from{};
  std::uint32_t message_id = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;  // message_flag_legacy_sender
  std::uint32_t content_size = 0;
  bool operator==(const pulled_message_header&) const = default;
};
std::array<std::uint8_t, pulled_message_header_size> encode_pulled_message_header(const pulled_message_header& header);
pulled_message_header decode_pulled_message_header(bytes_view bytes);  // 26 bytes

byte_buffer encode_acknowledged_response(std::uint32_t removed);  // 2007
std::uint32_t decode_acknowledged_payload(bytes_view payload);    // 4 bytes

// A v2 9000: version 3, payload the reason (9 bytes in all).
byte_buffer encode_error_response(reason why);
// The reason of a v2 9000 payload (2 bytes); any u16 is returned as it is.
std::uint16_t decode_error_payload(bytes_view payload);

}  // namespace letterbox::protocol::v2

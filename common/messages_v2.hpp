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
  // Part IV (groups)
  unknown_group = 13,
  not_a_member = 14,
  not_admin = 15,
  banned = 16,
  not_invited = 17,
  group_full = 18,
  too_many_groups = 19,
  too_many_subscriptions = 20,  // Part V, §28: a SUBSCRIBE beyond --max-subscriptions
};
inline constexpr std::uint16_t max_reason = 20;
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


// --- Groups (docs/PROTOCOL.md Part IV, §21–§26) ----------------------------------------------
// Requests 220..230 on an authenticated v2 connection (same framing as 200..207: zero client
// ID, version 3), responses 2020..2030 or a v2 9000 with one of the reasons 13..19.
inline constexpr std::size_t group_id_size = 16;
// The most members one group envelope is sealed for (§16a: a u16 count, at most 1,024); a group
// larger than this could not be written to, so it also bounds --max-group-members.
inline constexpr std::size_t max_group_envelope_members = 1024;
using group_id = std::array<std::uint8_t, group_id_size>;

enum class group_request_code : std::uint8_t {
  create = 220,    // name[255] flags[1]               → 2020 group ID[16]
  invite = 221,    // group[16] client[16]              → 2021 empty
  join = 222,      // group[16]                         → 2022 empty
  leave = 223,     // group[16]                         → 2023 empty
  kick = 224,      // group[16] client[16]              → 2024 empty
  ban = 225,       // group[16] client[16]              → 2025 empty
  unban = 226,     // group[16] client[16]              → 2026 empty
  handover = 227,  // group[16] client[16]              → 2027 empty
  members = 228,   // group[16]                         → 2028 n × member entry[17]
  list = 229,      // empty                             → 2029 n × group entry[276]
  send = 230,      // group[16] type[1] size[4] content → 2030 group[16] delivered[4] skipped[4]
};
inline constexpr std::uint8_t min_group_request_code = 220;
inline constexpr std::uint8_t max_group_request_code = 230;

enum class group_response_code : std::uint16_t {
  created = 2020,
  invited = 2021,
  joined = 2022,
  left = 2023,
  kicked = 2024,
  banned = 2025,
  unbanned = 2026,
  handed_over = 2027,
  members = 2028,
  list = 2029,
  sent = 2030,
};
// The success code of a group request code (220 → 2020, ...).
inline constexpr std::uint16_t group_response_for(std::uint8_t request) noexcept {
  return static_cast<std::uint16_t>(2020 + (request - min_group_request_code));
}

// Reasons of Part IV: reason::unknown_group .. reason::too_many_groups (13..19).

// Group envelope types (the sealed group envelopes of the client, Part IV §25).
inline constexpr std::uint8_t group_text_type = 18;
inline constexpr std::uint8_t group_file_type = 19;
// Flags of a PULL entry: bit 1 = a group message; its content starts with the group ID[16].
inline constexpr std::uint8_t message_flag_group = 0x02;
// CREATE flags: bit 0 = open (anyone may JOIN). Other bits must be 0.
inline constexpr std::uint8_t group_flag_open = 0x01;
// GROUPS entry flags.
inline constexpr std::uint8_t group_entry_open = 0x01;     // anyone may join
inline constexpr std::uint8_t group_entry_member = 0x02;   // the requester is a member
inline constexpr std::uint8_t group_entry_admin = 0x04;    // the requester is the admin
inline constexpr std::uint8_t group_entry_invited = 0x08;  // the requester is invited (not yet a member)
// MEMBERS entry flags: bit 0 = the admin.
inline constexpr std::uint8_t member_flag_admin = 0x01;

inline constexpr std::size_t group_create_payload_size = name_field_size + 1;             // 256
inline constexpr std::size_t group_payload_size = group_id_size;                          // 16: join, leave, members
inline constexpr std::size_t group_target_payload_size = group_id_size + client_id_size;  // 32: invite, kick, ban, unban, handover
inline constexpr std::size_t groups_payload_size = 0;
inline constexpr std::size_t group_send_prefix_size = send_message_prefix_size;           // 21: group[16] type[1] size[4]
inline constexpr std::size_t group_member_entry_size = client_id_size + 1;                // 17
inline constexpr std::size_t group_entry_size = group_id_size + name_field_size + 1 + 4;  // 276
inline constexpr std::size_t group_sent_response_size = group_id_size + 4 + 4;            // 24
// A group message is stored as group ID[16] ‖ content, so its content may be 16 bytes shorter
// than a direct one and still fit one 2006 entry.
inline constexpr std::uint64_t max_group_content_size = max_content_size - group_id_size;

// True for 220..230.
bool is_group_request(std::uint8_t code) noexcept;
// The exact payload size of a group request other than SEND (230); nullopt for 230 and other codes.
std::optional<std::uint32_t> group_fixed_payload_size(std::uint8_t code) noexcept;
// A whole group request frame (zero client ID, version 3).
byte_buffer encode_group_request(group_request_code code, bytes_view payload);

struct group_create_request {
  std::string name;  // the name rules of §3, canonical field
  bool open = false;
  bool operator==(const group_create_request&) const = default;
};
byte_buffer encode_group_create_request(const group_create_request& request);  // throws on an invalid name
group_create_request decode_group_create_request(bytes_view payload);           // 256 bytes; flags ⊆ {open}

// INVITE, KICK, BAN, UNBAN, HANDOVER: the group and the client concerned.
struct group_target_request {
  group_id group{};
  client_id client{};
  bool operator==(const group_target_request&) const = default;
};
byte_buffer encode_group_target_request(const group_target_request& request);
group_target_request decode_group_target_request(bytes_view payload);  // 32 bytes
// JOIN, LEAVE, MEMBERS: the group.
byte_buffer encode_group_payload(const group_id& group);
group_id decode_group_payload(bytes_view payload);  // 16 bytes
// GROUP SEND: the prefix of SEND with the group in place of the recipient (send_message_prefix::to).
// The type must be 18 or 19 (is_group_message_type).
bool is_group_message_type(std::uint8_t type) noexcept;

byte_buffer encode_group_created_response(const group_id& group);  // 2020
group_id decode_group_created_payload(bytes_view payload);         // 16 bytes
byte_buffer encode_group_empty_response(group_response_code code);  // 2021..2027

struct group_member_entry {
  client_id id{};
  std::uint8_t flags = 0;  // member_flag_admin
  bool operator==(const group_member_entry&) const = default;
};
byte_buffer encode_group_members_response(const std::vector<group_member_entry>& members);  // 2028
std::vector<group_member_entry> decode_group_members_payload(bytes_view payload);           // n × 17

struct group_entry {
  group_id id{};
  std::string name;
  std::uint8_t flags = 0;  // group_entry_*
  std::uint32_t members = 0;
  bool operator==(const group_entry&) const = default;
};
byte_buffer encode_group_list_response(const std::vector<group_entry>& groups);  // 2029
std::vector<group_entry> decode_group_list_payload(bytes_view payload);          // n × 276

struct group_sent {
  group_id group{};
  std::uint32_t delivered = 0;  // members whose mailbox got it (the sender not counted)
  std::uint32_t skipped = 0;    // members whose mailbox was full
  bool operator==(const group_sent&) const = default;
};
byte_buffer encode_group_sent_response(const group_sent& sent);  // 2030
group_sent decode_group_sent_payload(bytes_view payload);        // 24 bytes

}  // namespace letterbox::protocol::v2

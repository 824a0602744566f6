// Typed protocol v2 operations over a raw_connection (docs/PROTOCOL.md Part II), for the
// integration tests and the load generator: identities with real Ed25519 keys
// (crypto/identity.hpp), HELLO + REGISTER / AUTH, and the mail requests. Requests are built
// with common/messages_v2.hpp. Like protocol_helpers.hpp, each helper expects the success
// response and throws unexpected_response otherwise; v2_request returns any answer.
#pragma once

#include <string>
#include <vector>

#include "identity.hpp"
#include "messages_v2.hpp"
#include "protocol_helpers.hpp"

namespace letterbox::test {

namespace v2 = letterbox::protocol::v2;

// A v2 client's keys: a fresh Ed25519 identity (its ID derived from it), an agreement key and a
// legacy key of arbitrary bytes (the server never parses them).
struct v2_identity {
  std::string name;
  crypto::identity_secret secret{};
  crypto::identity_key key{};
  protocol::client_id id{};
  v2::agreement_key agreement{};
  protocol::public_key legacy{};
};
v2_identity make_v2_identity(std::string name);

// Sends a v2 request (zero client ID, version 3) and reads the answer.
response v2_request(raw_connection& connection, v2::request_code code, protocol::bytes_view payload);
// The reason of a v2 9000 (version 3, 2-byte payload); throws unexpected_response for any other answer.
std::uint16_t v2_error_reason(const response& answer);

// 200 → 2000: the connection's challenge.
v2::challenge v2_hello(raw_connection& connection);
// The REGISTER payload for `who` signed over `challenge`.
v2::register_request make_v2_register_request(const v2_identity& who, const v2::challenge& challenge);
// The AUTH payload for `who` signed over `challenge`.
v2::auth_request make_v2_auth_request(const v2_identity& who, const v2::challenge& challenge);
// HELLO + REGISTER → 2001; returns the ID (the connection is then authenticated).
protocol::client_id v2_register(raw_connection& connection, const v2_identity& who);
// HELLO + AUTH → 2002.
void v2_authenticate(raw_connection& connection, const v2_identity& who);

std::vector<v2::client_entry> v2_list(raw_connection& connection);                  // 203 → 2003
v2::keys_response v2_keys(raw_connection& connection, const protocol::client_id& target);  // 204 → 2004
protocol::message_sent v2_send(raw_connection& connection, const protocol::client_id& to, std::uint8_t type,
                               protocol::bytes_view content);  // 205 → 2005

struct v2_pulled_message {
  v2::pulled_message_header header;
  protocol::byte_buffer content;
};
std::vector<v2_pulled_message> v2_pull(raw_connection& connection);  // 206 → 2006
std::vector<v2_pulled_message> parse_v2_pull_payload(protocol::bytes_view payload);
std::uint32_t v2_ack(raw_connection& connection, const std::vector<std::uint32_t>& ids);  // 207 → 2007

// --- Groups (docs/PROTOCOL.md Part IV) ---
// Sends a group request (220..230) and reads the answer.
response v2_group_request(raw_connection& connection, v2::group_request_code code, protocol::bytes_view payload);
v2::group_id v2_group_create(raw_connection& connection, const std::string& name, bool open);  // 220 → 2020
// 221 INVITE, 224 KICK, 225 BAN, 226 UNBAN, 227 HANDOVER → their empty success.
void v2_group_target(raw_connection& connection, v2::group_request_code code, const v2::group_id& group,
                     const protocol::client_id& client);
// 222 JOIN, 223 LEAVE → their empty success.
void v2_group_only(raw_connection& connection, v2::group_request_code code, const v2::group_id& group);
std::vector<v2::group_member_entry> v2_group_members(raw_connection& connection, const v2::group_id& group);  // 228
std::vector<v2::group_entry> v2_groups(raw_connection& connection);                                           // 229
v2::group_sent v2_group_send(raw_connection& connection, const v2::group_id& group, std::uint8_t type,
                             protocol::bytes_view content);  // 230 → 2030
// The reason of the v2 9000 a group request gets (throws unexpected_response on a success).
std::uint16_t v2_group_refusal(raw_connection& connection, v2::group_request_code code, protocol::bytes_view payload);

}  // namespace letterbox::test

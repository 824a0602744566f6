// Typed protocol v2 operations for tests (see v2_helpers.hpp).
#include "v2_helpers.hpp"

namespace letterbox::test {
namespace {

response expect_v2(response answer, v2::response_code code, const char* what) {
  if (answer.header.version != v2::wire_version || answer.code() != static_cast<std::uint16_t>(code)) {
    std::string detail = std::string(what) + ": expected v2 response " + std::to_string(static_cast<int>(code)) +
                         ", got version " + std::to_string(answer.header.version) + " code " +
                         std::to_string(answer.code());
    if (answer.header.version == v2::wire_version && answer.code() == 9000 && answer.payload.size() == 2)
      detail += std::string(" (") + v2::reason_name(v2::decode_error_payload(answer.payload)) + ")";
    throw unexpected_response(detail, answer.code());
  }
  return answer;
}

}  // namespace

v2_identity make_v2_identity(std::string name) {
  v2_identity who;
  who.name = std::move(name);
  who.secret = crypto::generate_identity();
  who.key = crypto::public_key_of(who.secret);
  who.id = crypto::derive_client_id(who.key);
  for (std::size_t i = 0; i < who.agreement.size(); ++i) who.agreement[i] = static_cast<std::uint8_t>(who.key[i] ^ 0x5A);
  who.legacy = make_test_key(static_cast<std::uint32_t>(who.key[0]) << 8 | who.key[1]);
  return who;
}

response v2_request(raw_connection& connection, v2::request_code code, protocol::bytes_view payload) {
  connection.send_bytes(v2::encode_request(code, payload));
  return connection.read_response();
}

std::uint16_t v2_error_reason(const response& answer) {
  if (answer.header.version != v2::wire_version || answer.code() != 9000 || answer.payload.size() != 2)
    throw unexpected_response("expected a v2 9000, got version " + std::to_string(answer.header.version) + " code " +
                                  std::to_string(answer.code()) + " with " + std::to_string(answer.payload.size()) +
                                  " payload bytes",
                              answer.code());
  return v2::decode_error_payload(answer.payload);
}

v2::challenge v2_hello(raw_connection& connection) {
  const auto answer =
      expect_v2(v2_request(connection, v2::request_code::hello, v2::encode_hello_request()), v2::response_code::hello, "hello");
  const auto hello = v2::decode_hello_payload(answer.payload);
  if (hello.version != v2::protocol_version) throw connection_error("hello: server chose version " + std::to_string(hello.version));
  return hello.nonce;
}

v2::register_request make_v2_register_request(const v2_identity& who, const v2::challenge& challenge) {
  v2::register_request request;
  request.name = who.name;
  request.identity = who.key;
  request.agreement = who.agreement;
  request.legacy = who.legacy;
  const auto name_field = protocol::encode_name(who.name);
  request.key_signature = crypto::sign(who.secret, crypto::labels::keys, {name_field, who.agreement, who.legacy});
  request.proof = crypto::sign(who.secret, crypto::labels::register_proof, {challenge, who.key});
  return request;
}

v2::auth_request make_v2_auth_request(const v2_identity& who, const v2::challenge& challenge) {
  return {who.id, crypto::sign(who.secret, crypto::labels::auth_proof, {challenge, who.id})};
}

protocol::client_id v2_register(raw_connection& connection, const v2_identity& who) {
  const auto challenge = v2_hello(connection);
  const auto answer = expect_v2(v2_request(connection, v2::request_code::register_client,
                                           v2::encode_register_request(make_v2_register_request(who, challenge))),
                                v2::response_code::registered, "register");
  return v2::decode_registered_payload(answer.payload);
}

void v2_authenticate(raw_connection& connection, const v2_identity& who) {
  const auto challenge = v2_hello(connection);
  expect_v2(v2_request(connection, v2::request_code::auth, v2::encode_auth_request(make_v2_auth_request(who, challenge))),
            v2::response_code::authenticated, "auth");
}

std::vector<v2::client_entry> v2_list(raw_connection& connection) {
  const auto answer = expect_v2(v2_request(connection, v2::request_code::list_clients, {}), v2::response_code::client_list, "list");
  return v2::decode_client_list_payload(answer.payload);
}

v2::keys_response v2_keys(raw_connection& connection, const protocol::client_id& target) {
  const auto answer = expect_v2(v2_request(connection, v2::request_code::get_keys, v2::encode_keys_request({target})),
                                v2::response_code::keys, "keys");
  return v2::decode_keys_payload(answer.payload);
}

protocol::message_sent v2_send(raw_connection& connection, const protocol::client_id& to, std::uint8_t type,
                               protocol::bytes_view content) {
  auto payload = v2::encode_send_message_prefix({to, type, static_cast<std::uint32_t>(content.size())});
  payload.insert(payload.end(), content.begin(), content.end());
  const auto answer = expect_v2(v2_request(connection, v2::request_code::send_message, payload),
                                v2::response_code::message_sent, "send");
  return v2::decode_message_sent_payload(answer.payload);
}

std::vector<v2_pulled_message> parse_v2_pull_payload(protocol::bytes_view payload) {
  std::vector<v2_pulled_message> messages;
  protocol::byte_reader in(payload);
  while (!in.empty()) {
    if (in.remaining() < v2::pulled_message_header_size) throw connection_error("2006 payload ends inside an entry header");
    v2_pulled_message message;
    message.header = v2::decode_pulled_message_header(in.bytes(v2::pulled_message_header_size));
    if (message.header.content_size > in.remaining()) throw connection_error("2006 content runs past the payload");
    const auto content = in.bytes(message.header.content_size);
    message.content.assign(content.begin(), content.end());
    messages.push_back(std::move(message));
  }
  return messages;
}

std::vector<v2_pulled_message> v2_pull(raw_connection& connection) {
  const auto answer = expect_v2(v2_request(connection, v2::request_code::pull_messages, {}), v2::response_code::messages, "pull");
  return parse_v2_pull_payload(answer.payload);
}

std::uint32_t v2_ack(raw_connection& connection, const std::vector<std::uint32_t>& ids) {
  const auto answer = expect_v2(v2_request(connection, v2::request_code::ack, v2::encode_ack_request({ids})),
                                v2::response_code::acknowledged, "ack");
  return v2::decode_acknowledged_payload(answer.payload);
}

// --- Groups ---------------------------------------------------------------------------------

namespace {
response expect_group(response answer, v2::group_request_code code, const char* what) {
  return expect_v2(std::move(answer), static_cast<v2::response_code>(v2::group_response_for(static_cast<std::uint8_t>(code))),
                   what);
}
}  // namespace

response v2_group_request(raw_connection& connection, v2::group_request_code code, protocol::bytes_view payload) {
  connection.send_bytes(v2::encode_group_request(code, payload));
  return connection.read_response();
}

v2::group_id v2_group_create(raw_connection& connection, const std::string& name, bool open) {
  const auto answer = expect_group(v2_group_request(connection, v2::group_request_code::create,
                                                    v2::encode_group_create_request({name, open})),
                                   v2::group_request_code::create, "group create");
  return v2::decode_group_created_payload(answer.payload);
}

void v2_group_target(raw_connection& connection, v2::group_request_code code, const v2::group_id& group,
                     const protocol::client_id& client) {
  const auto answer = expect_group(
      v2_group_request(connection, code, v2::encode_group_target_request({group, client})), code, "group request");
  if (!answer.payload.empty()) throw connection_error("group request: a payload on an empty success");
}

void v2_group_only(raw_connection& connection, v2::group_request_code code, const v2::group_id& group) {
  const auto answer = expect_group(v2_group_request(connection, code, v2::encode_group_payload(group)), code, "group request");
  if (!answer.payload.empty()) throw connection_error("group request: a payload on an empty success");
}

std::vector<v2::group_member_entry> v2_group_members(raw_connection& connection, const v2::group_id& group) {
  const auto answer = expect_group(v2_group_request(connection, v2::group_request_code::members, v2::encode_group_payload(group)),
                                   v2::group_request_code::members, "group members");
  return v2::decode_group_members_payload(answer.payload);
}

std::vector<v2::group_entry> v2_groups(raw_connection& connection) {
  const auto answer = expect_group(v2_group_request(connection, v2::group_request_code::list, {}),
                                   v2::group_request_code::list, "groups");
  return v2::decode_group_list_payload(answer.payload);
}

v2::group_sent v2_group_send(raw_connection& connection, const v2::group_id& group, std::uint8_t type,
                             protocol::bytes_view content) {
  auto payload = v2::encode_send_message_prefix({group, type, static_cast<std::uint32_t>(content.size())});
  payload.insert(payload.end(), content.begin(), content.end());
  const auto answer = expect_group(v2_group_request(connection, v2::group_request_code::send, payload),
                                   v2::group_request_code::send, "group send");
  return v2::decode_group_sent_payload(answer.payload);
}

std::uint16_t v2_group_refusal(raw_connection& connection, v2::group_request_code code, protocol::bytes_view payload) {
  return v2_error_reason(v2_group_request(connection, code, payload));
}

}  // namespace letterbox::test

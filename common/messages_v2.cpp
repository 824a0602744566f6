// Strict encoders/decoders of the protocol v2 payloads (see messages_v2.hpp for the contracts).
#include "messages_v2.hpp"

#include <algorithm>

namespace letterbox::protocol::v2 {
namespace {

void expect_size(bytes_view bytes, std::size_t expected, const char* what) {
  if (bytes.size() != expected)
    throw protocol_error(std::string(what) + ": expected " + std::to_string(expected) + " bytes, got " +
                         std::to_string(bytes.size()));
}

constexpr client_id zero_client{};

template <typename Payload>
byte_buffer with_header(response_code code, const Payload& payload) {
  const auto header = encode_response_header(code, static_cast<std::uint32_t>(payload.size()));
  // Built from the header, then grown (inserting it into a reserved empty buffer trips g++ 12's
  // -Wstringop-overflow at -O3, a false positive).
  byte_buffer out(header.begin(), header.end());
  out.reserve(header.size() + payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

}  // namespace

const char* reason_name(std::uint16_t value) noexcept {
  switch (static_cast<reason>(value)) {
    case reason::malformed: return "malformed";
    case reason::bad_state: return "bad_state";
    case reason::authentication_failed: return "authentication_failed";
    case reason::name_taken: return "name_taken";
    case reason::key_taken: return "key_taken";
    case reason::unknown_client: return "unknown_client";
    case reason::type_not_accepted: return "type_not_accepted";
    case reason::too_large: return "too_large";
    case reason::mailbox_full: return "mailbox_full";
    case reason::disk_full: return "disk_full";
    case reason::rate_limited: return "rate_limited";
    case reason::storage_failure: return "storage_failure";
    case reason::unknown_group: return "unknown_group";
    case reason::not_a_member: return "not_a_member";
    case reason::not_admin: return "not_admin";
    case reason::banned: return "banned";
    case reason::not_invited: return "not_invited";
    case reason::group_full: return "group_full";
    case reason::too_many_groups: return "too_many_groups";
    case reason::too_many_subscriptions: return "too_many_subscriptions";
  }

  return "unknown";
}

bool is_v2_request(std::uint8_t code) noexcept { return code >= min_request_code && code <= max_request_code; }

std::optional<std::uint32_t> fixed_payload_size(std::uint8_t code) noexcept {
  if (!is_v2_request(code)) return std::nullopt;
  switch (static_cast<request_code>(code)) {
    case request_code::hello: return hello_payload_size;
    case request_code::register_client: return register_payload_size;
    case request_code::auth: return auth_payload_size;
    case request_code::list_clients: return list_payload_size;
    case request_code::get_keys: return keys_payload_size;
    case request_code::pull_messages: return pull_payload_size;
    case request_code::send_message:
    case request_code::ack: return std::nullopt;
  }
  return std::nullopt;
}

byte_buffer encode_request(request_code code, bytes_view payload) {
  return protocol::encode_request(zero_client, wire_version, static_cast<std::uint8_t>(code), payload);
}

byte_buffer encode_request_front(request_code code, std::uint64_t payload_size, bytes_view payload_prefix) {
  return protocol::encode_request_front(zero_client, wire_version, static_cast<std::uint8_t>(code), payload_size,
                                        payload_prefix);
}

std::string decode_canonical_name(bytes_view field) {
  std::string name = decode_name(field);  // checks the size, the NUL and the name
  if (std::any_of(field.begin() + static_cast<std::ptrdiff_t>(name.size()), field.end(),
                  [](std::uint8_t b) { return b != 0; }))
    throw protocol_error("name field is not canonical: bytes after the first NUL are not 0");
  return name;
}

// --- Requests -------------------------------------------------------------------------------

byte_buffer encode_hello_request(const hello_request& request) {
  byte_buffer out;
  out.reserve(hello_payload_size);
  byte_writer w(out);
  w.bytes(hello_magic);
  w.u8(request.min_version);
  w.u8(request.max_version);
  return out;
}

hello_request decode_hello_request(bytes_view payload) {
  expect_size(payload, hello_payload_size, "hello payload");
  byte_reader in(payload);
  if (!std::equal(hello_magic.begin(), hello_magic.end(), in.bytes(hello_magic.size()).begin()))
    throw protocol_error("hello payload does not start with LBX2");
  hello_request request;
  request.min_version = in.u8();
  request.max_version = in.u8();
  if (request.min_version > request.max_version) throw protocol_error("hello: min version above max version");
  return request;
}

byte_buffer encode_register_request(const register_request& request) {
  byte_buffer out;
  out.reserve(register_payload_size);
  byte_writer w(out);
  w.bytes(encode_name(request.name));
  w.bytes(request.identity);
  w.bytes(request.agreement);
  w.bytes(request.legacy);
  w.bytes(request.key_signature);
  w.bytes(request.proof);
  return out;
}

register_request decode_register_request(bytes_view payload) {
  expect_size(payload, register_payload_size, "register payload");
  byte_reader in(payload);
  register_request request;
  request.name = decode_canonical_name(in.bytes(name_field_size));
  in.copy_into(request.identity);
  in.copy_into(request.agreement);
  in.copy_into(request.legacy);
  in.copy_into(request.key_signature);
  in.copy_into(request.proof);
  return request;
}

byte_buffer encode_auth_request(const auth_request& request) {
  byte_buffer out;
  out.reserve(auth_payload_size);
  byte_writer w(out);
  w.bytes(request.client);
  w.bytes(request.proof);
  return out;
}

auth_request decode_auth_request(bytes_view payload) {
  expect_size(payload, auth_payload_size, "auth payload");
  byte_reader in(payload);
  auth_request request;
  in.copy_into(request.client);
  in.copy_into(request.proof);
  return request;
}

byte_buffer encode_keys_request(const keys_request& request) {
  return byte_buffer(request.target.begin(), request.target.end());
}

keys_request decode_keys_request(bytes_view payload) {
  expect_size(payload, keys_payload_size, "keys payload");
  keys_request request;
  byte_reader(payload).copy_into(request.target);
  return request;
}

void validate_send_framing(const send_message_prefix& prefix, std::uint32_t payload_size) {
  if (payload_size < send_message_prefix_size) throw protocol_error("send payload shorter than its 21-byte prefix");
  if (static_cast<std::uint64_t>(payload_size) != send_message_prefix_size + std::uint64_t{prefix.content_size})
    throw protocol_error("payload size is not 21 + content size");
}

bool is_sendable_type(std::uint8_t type) noexcept {
  return (type >= min_message_type && type <= max_message_type) ||
         type == static_cast<std::uint8_t>(message_type::sealed_text) ||
         type == static_cast<std::uint8_t>(message_type::sealed_file);
}

bool is_empty_when_required(const send_message_prefix& prefix) noexcept {
  return prefix.type != static_cast<std::uint8_t>(protocol::message_type::symmetric_key_request) ||
         prefix.content_size == 0;
}

bool type_fits_recipient(std::uint8_t type, bool recipient_is_v2) noexcept {
  const bool sealed = type == static_cast<std::uint8_t>(message_type::sealed_text) ||
                      type == static_cast<std::uint8_t>(message_type::sealed_file);
  const bool legacy = type >= min_message_type && type <= max_message_type;
  return recipient_is_v2 ? sealed : legacy;
}

bool is_valid_ack_payload_size(std::uint32_t payload_size) noexcept {
  return payload_size >= message_id_size && payload_size <= max_ack_payload_size &&
         payload_size % message_id_size == 0;
}

byte_buffer encode_ack_request(const ack_request& request) {
  if (request.message_ids.empty() || request.message_ids.size() > max_ack_ids)
    throw protocol_error("an ACK carries 1 to 65,536 message IDs");
  byte_buffer out;
  out.reserve(request.message_ids.size() * message_id_size);
  byte_writer w(out);
  for (const auto id : request.message_ids) w.u32(id);
  return out;
}

ack_request decode_ack_request(bytes_view payload) {
  if (payload.size() > max_ack_payload_size || !is_valid_ack_payload_size(static_cast<std::uint32_t>(payload.size())))
    throw protocol_error("ack payload must be 1 to 65,536 message IDs of 4 bytes, got " +
                         std::to_string(payload.size()) + " bytes");
  ack_request request;
  request.message_ids.reserve(payload.size() / message_id_size);
  byte_reader in(payload);
  while (!in.empty()) request.message_ids.push_back(in.u32());
  return request;
}

// --- Responses ------------------------------------------------------------------------------

response_header_bytes encode_response_header(response_code code, std::uint32_t payload_size) {
  return protocol::encode_response_header({wire_version, static_cast<std::uint16_t>(code), payload_size});
}

byte_buffer encode_hello_response(const hello_response& response) {
  std::array<std::uint8_t, hello_response_size> payload{};
  payload[0] = response.version;
  std::copy(response.nonce.begin(), response.nonce.end(), payload.begin() + 1);
  return with_header(response_code::hello, payload);
}

hello_response decode_hello_payload(bytes_view payload) {
  expect_size(payload, hello_response_size, "hello response payload");
  byte_reader in(payload);
  hello_response response;
  response.version = in.u8();
  in.copy_into(response.nonce);
  return response;
}

byte_buffer encode_registered_response(const client_id& id) { return with_header(response_code::registered, id); }

client_id decode_registered_payload(bytes_view payload) {
  expect_size(payload, registered_response_size, "registered payload");
  client_id id;
  byte_reader(payload).copy_into(id);
  return id;
}

byte_buffer encode_authenticated_response() {
  return with_header(response_code::authenticated, std::array<std::uint8_t, 0>{});
}

response_header_bytes encode_client_list_header(std::uint64_t count) {
  if (count > max_payload_size / client_list_entry_size)
    throw protocol_error("client list does not fit a u32 payload");
  return encode_response_header(response_code::client_list, static_cast<std::uint32_t>(count * client_list_entry_size));
}

void append_client_list_entry(byte_buffer& out, const client_entry& client) {
  byte_writer w(out);
  w.bytes(client.id);
  w.bytes(encode_name(client.name));
  w.u8(client.flags);
}

byte_buffer encode_client_list_response(const std::vector<client_entry>& clients) {
  const auto header = encode_client_list_header(clients.size());
  byte_buffer out;
  out.reserve(response_header_size + clients.size() * client_list_entry_size);
  out.insert(out.end(), header.begin(), header.end());
  for (const auto& client : clients) append_client_list_entry(out, client);
  return out;
}

std::vector<client_entry> decode_client_list_payload(bytes_view payload) {
  if (payload.size() % client_list_entry_size != 0)
    throw protocol_error("client list payload is not a multiple of 272 bytes");
  std::vector<client_entry> clients;
  clients.reserve(payload.size() / client_list_entry_size);
  byte_reader in(payload);
  while (!in.empty()) {
    client_entry entry;
    in.copy_into(entry.id);
    entry.name = decode_canonical_name(in.bytes(name_field_size));
    entry.flags = in.u8();
    clients.push_back(std::move(entry));
  }
  return clients;
}

byte_buffer encode_keys_response(const keys_response& response) {
  byte_buffer payload;
  payload.reserve(keys_response_size);
  byte_writer w(payload);
  w.bytes(response.id);
  w.u8(response.flags);
  w.bytes(encode_name(response.name));
  w.bytes(response.identity);
  w.bytes(response.agreement);
  w.bytes(response.legacy);
  w.bytes(response.key_signature);
  return with_header(response_code::keys, payload);
}

keys_response decode_keys_payload(bytes_view payload) {
  expect_size(payload, keys_response_size, "keys response payload");
  byte_reader in(payload);
  keys_response response;
  in.copy_into(response.id);
  response.flags = in.u8();
  response.name = decode_canonical_name(in.bytes(name_field_size));
  in.copy_into(response.identity);
  in.copy_into(response.agreement);
  in.copy_into(response.legacy);
  in.copy_into(response.key_signature);
  return response;
}

byte_buffer encode_message_sent_response(const message_sent& sent) {
  std::array<std::uint8_t, message_sent_response_size> payload{};
  std::copy(sent.to.begin(), sent.to.end(), payload.begin());
  store_u32(payload.data() + client_id_size, sent.message_id);
  return with_header(response_code::message_sent, payload);
}

std::array<std::uint8_t, pulled_message_header_size> encode_pulled_message_header(const pulled_message_header& header) {
  std::array<std::uint8_t, pulled_message_header_size> out{};
  std::copy(header.from.begin(), header.from.end(), out.begin());
  store_u32(out.data() + 16, header.message_id);
  out[20] = header.type;
  out[21] = header.flags;
  store_u32(out.data() + 22, header.content_size);
  return out;
}

pulled_message_header decode_pulled_message_header(bytes_view bytes) {
  expect_size(bytes, pulled_message_header_size, "pulled message header");
  byte_reader in(bytes);
  pulled_message_header header;
  in.copy_into(header.from);
  header.message_id = in.u32();
  header.type = in.u8();
  header.flags = in.u8();
  header.content_size = in.u32();
  return header;
}

byte_buffer encode_acknowledged_response(std::uint32_t removed) {
  std::array<std::uint8_t, ack_response_size> payload{};
  store_u32(payload.data(), removed);
  return with_header(response_code::acknowledged, payload);
}

std::uint32_t decode_acknowledged_payload(bytes_view payload) {
  expect_size(payload, ack_response_size, "acknowledged payload");
  return byte_reader(payload).u32();
}

byte_buffer encode_error_response(reason why) {
  std::array<std::uint8_t, error_payload_size> payload{static_cast<std::uint8_t>(static_cast<std::uint16_t>(why)),
                                                       static_cast<std::uint8_t>(static_cast<std::uint16_t>(why) >> 8)};
  return with_header(response_code::error, payload);
}

std::uint16_t decode_error_payload(bytes_view payload) {
  expect_size(payload, error_payload_size, "v2 error payload");
  return byte_reader(payload).u16();
}


// --- Groups ---------------------------------------------------------------------------------

bool is_group_request(std::uint8_t code) noexcept {
  return code >= min_group_request_code && code <= max_group_request_code;
}

std::optional<std::uint32_t> group_fixed_payload_size(std::uint8_t code) noexcept {
  switch (code) {
    case 220: return group_create_payload_size;
    case 221: case 224: case 225: case 226: case 227: return group_target_payload_size;
    case 222: case 223: case 228: return group_payload_size;
    case 229: return groups_payload_size;
    default: return std::nullopt;
  }
}

byte_buffer encode_group_request(group_request_code code, bytes_view payload) {
  return protocol::encode_request(zero_client, wire_version, static_cast<std::uint8_t>(code), payload);
}

byte_buffer encode_group_create_request(const group_create_request& request) {
  byte_buffer out;
  out.reserve(group_create_payload_size);
  byte_writer w(out);
  w.bytes(encode_name(request.name));
  w.u8(request.open ? group_flag_open : 0);
  return out;
}

group_create_request decode_group_create_request(bytes_view payload) {
  expect_size(payload, group_create_payload_size, "group create payload");
  byte_reader in(payload);
  group_create_request request;
  request.name = decode_canonical_name(in.bytes(name_field_size));
  const auto flags = in.u8();
  if ((flags & ~group_flag_open) != 0) throw protocol_error("group create: unknown flag bits");
  request.open = (flags & group_flag_open) != 0;
  return request;
}

byte_buffer encode_group_target_request(const group_target_request& request) {
  byte_buffer out;
  out.reserve(group_target_payload_size);
  byte_writer w(out);
  w.bytes(request.group);
  w.bytes(request.client);
  return out;
}

group_target_request decode_group_target_request(bytes_view payload) {
  expect_size(payload, group_target_payload_size, "group target payload");
  byte_reader in(payload);
  group_target_request request;
  in.copy_into(request.group);
  in.copy_into(request.client);
  return request;
}

byte_buffer encode_group_payload(const group_id& group) { return byte_buffer(group.begin(), group.end()); }

group_id decode_group_payload(bytes_view payload) {
  expect_size(payload, group_payload_size, "group payload");
  group_id group;
  byte_reader(payload).copy_into(group);
  return group;
}

bool is_group_message_type(std::uint8_t type) noexcept {
  return type == group_text_type || type == group_file_type;
}

byte_buffer encode_group_created_response(const group_id& group) {
  return with_header(static_cast<response_code>(group_response_code::created), group);
}

group_id decode_group_created_payload(bytes_view payload) {
  expect_size(payload, group_id_size, "group created payload");
  group_id group;
  byte_reader(payload).copy_into(group);
  return group;
}

byte_buffer encode_group_empty_response(group_response_code code) {
  return with_header(static_cast<response_code>(code), std::array<std::uint8_t, 0>{});
}

byte_buffer encode_group_members_response(const std::vector<group_member_entry>& members) {
  if (members.size() > max_payload_size / group_member_entry_size) throw protocol_error("member list does not fit a u32 payload");
  byte_buffer payload;
  payload.reserve(members.size() * group_member_entry_size);
  byte_writer w(payload);
  for (const auto& member : members) {
    w.bytes(member.id);
    w.u8(member.flags);
  }
  return with_header(static_cast<response_code>(group_response_code::members), payload);
}

std::vector<group_member_entry> decode_group_members_payload(bytes_view payload) {
  if (payload.size() % group_member_entry_size != 0) throw protocol_error("member list payload is not a multiple of 17 bytes");
  std::vector<group_member_entry> members;
  byte_reader in(payload);
  while (!in.empty()) {
    group_member_entry entry;
    in.copy_into(entry.id);
    entry.flags = in.u8();
    members.push_back(entry);
  }
  return members;
}

byte_buffer encode_group_list_response(const std::vector<group_entry>& groups) {
  if (groups.size() > max_payload_size / group_entry_size) throw protocol_error("group list does not fit a u32 payload");
  byte_buffer payload;
  payload.reserve(groups.size() * group_entry_size);
  byte_writer w(payload);
  for (const auto& group : groups) {
    w.bytes(group.id);
    w.bytes(encode_name(group.name));
    w.u8(group.flags);
    w.u32(group.members);
  }
  return with_header(static_cast<response_code>(group_response_code::list), payload);
}

std::vector<group_entry> decode_group_list_payload(bytes_view payload) {
  if (payload.size() % group_entry_size != 0) throw protocol_error("group list payload is not a multiple of 276 bytes");
  std::vector<group_entry> groups;
  byte_reader in(payload);
  while (!in.empty()) {
    group_entry entry;
    in.copy_into(entry.id);
    entry.name = decode_canonical_name(in.bytes(name_field_size));
    entry.flags = in.u8();
    entry.members = in.u32();
    groups.push_back(std::move(entry));
  }
  return groups;
}

byte_buffer encode_group_sent_response(const group_sent& sent) {
  std::array<std::uint8_t, group_sent_response_size> payload{};
  std::copy(sent.group.begin(), sent.group.end(), payload.begin());
  store_u32(payload.data() + group_id_size, sent.delivered);
  store_u32(payload.data() + group_id_size + 4, sent.skipped);
  return with_header(static_cast<response_code>(group_response_code::sent), payload);
}

group_sent decode_group_sent_payload(bytes_view payload) {
  expect_size(payload, group_sent_response_size, "group sent payload");
  byte_reader in(payload);
  group_sent sent;
  in.copy_into(sent.group);
  sent.delivered = in.u32();
  sent.skipped = in.u32();
  return sent;
}

}  // namespace letterbox::protocol::v2

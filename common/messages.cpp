// Strict encoders/decoders of the protocol v1 payloads (see messages.hpp for the contracts).
#include "messages.hpp"

#include <algorithm>

namespace letterbox::protocol {
namespace {

void expect_size(bytes_view bytes, std::size_t expected, const char* what) {
  if (bytes.size() != expected)
    throw protocol_error(std::string(what) + ": expected " + std::to_string(expected) +
                         " bytes, got " + std::to_string(bytes.size()));
}

// Accepts well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;  // truncated sequence
    for (std::size_t k = 1; k <= extra; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr std::uint32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += extra + 1;
  }
  return true;
}

template <std::size_t N>
byte_buffer with_response_header(response_code code, const std::array<std::uint8_t, N>& payload) {
  byte_buffer out;
  out.reserve(response_header_size + N);
  auto header = encode_response_header({server_version, static_cast<std::uint16_t>(code),
                                        static_cast<std::uint32_t>(N)});
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

}  // namespace

request_header_bytes encode_request_header(const request_header& header) {
  request_header_bytes out{};
  std::copy(header.client.begin(), header.client.end(), out.begin());
  out[16] = header.version;
  out[17] = header.code;
  store_u32(out.data() + 18, header.payload_size);
  return out;
}

request_header decode_request_header(bytes_view bytes) {
  expect_size(bytes, request_header_size, "request header");
  byte_reader in(bytes);
  request_header header;
  in.copy_into(header.client);
  header.version = in.u8();
  header.code = in.u8();
  header.payload_size = in.u32();
  return header;
}

response_header_bytes encode_response_header(const response_header& header) {
  response_header_bytes out{};
  out[0] = header.version;
  out[1] = static_cast<std::uint8_t>(header.code);
  out[2] = static_cast<std::uint8_t>(header.code >> 8);
  store_u32(out.data() + 3, header.payload_size);
  return out;
}

response_header decode_response_header(bytes_view bytes) {
  expect_size(bytes, response_header_size, "response header");
  byte_reader in(bytes);
  response_header header;
  header.version = in.u8();
  header.code = in.u16();
  header.payload_size = in.u32();
  return header;
}

byte_buffer encode_request(const client_id& client, std::uint8_t version, std::uint8_t code,
                           bytes_view payload) {
  return encode_request_front(client, version, code, payload.size(), payload);
}

byte_buffer encode_request_front(const client_id& client, std::uint8_t version, std::uint8_t code,
                                 std::uint64_t payload_size, bytes_view payload_prefix) {
  if (payload_size > max_payload_size)
    throw protocol_error("request payload of " + std::to_string(payload_size) +
                         " bytes does not fit the u32 size field");
  if (payload_prefix.size() > payload_size)
    throw protocol_error("payload prefix of " + std::to_string(payload_prefix.size()) +
                         " bytes is longer than the announced payload of " + std::to_string(payload_size));
  const auto header = encode_request_header({client, version, code, static_cast<std::uint32_t>(payload_size)});
  byte_buffer out;
  out.reserve(header.size() + payload_prefix.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), payload_prefix.begin(), payload_prefix.end());
  return out;
}

bool is_known_request(std::uint8_t code) noexcept {
  return code >= static_cast<std::uint8_t>(request_code::register_client) &&
         code <= static_cast<std::uint8_t>(request_code::pull_messages);
}

std::optional<std::uint32_t> fixed_payload_size(std::uint8_t code) noexcept {
  switch (static_cast<request_code>(code)) {
    case request_code::register_client: return register_payload_size;
    case request_code::list_clients: return 0;
    case request_code::get_public_key: return get_public_key_payload_size;
    case request_code::pull_messages: return 0;
    case request_code::send_message: return std::nullopt;
  }
  return std::nullopt;
}

void validate_name(std::string_view name) {
  if (name.empty()) throw protocol_error("name is empty");
  if (name.size() > max_name_length)
    throw protocol_error("name is longer than " + std::to_string(max_name_length) + " bytes");
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
      throw protocol_error("name contains a control character");
  if (!is_valid_utf8(name)) throw protocol_error("name is not valid UTF-8");
  // C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
  for (std::size_t i = 0; i + 1 < name.size(); ++i)
    if (static_cast<unsigned char>(name[i]) == 0xC2 && static_cast<unsigned char>(name[i + 1]) <= 0x9F)
      throw protocol_error("name contains a control character");
}

std::array<std::uint8_t, name_field_size> encode_name(std::string_view name) {
  validate_name(name);
  std::array<std::uint8_t, name_field_size> field{};
  std::copy(name.begin(), name.end(), field.begin());
  return field;
}

std::string decode_name(bytes_view field) {
  expect_size(field, name_field_size, "name field");
  auto nul = std::find(field.begin(), field.end(), std::uint8_t{0});
  if (nul == field.end()) throw protocol_error("name field has no NUL terminator");
  std::string name(field.begin(), nul);
  validate_name(name);
  return name;
}

byte_buffer encode_register_request(const register_request& request) {
  byte_buffer out;
  out.reserve(register_payload_size);
  byte_writer w(out);
  w.bytes(encode_name(request.name));
  w.bytes(request.key);
  return out;
}

register_request decode_register_request(bytes_view payload) {
  expect_size(payload, register_payload_size, "register payload");
  byte_reader in(payload);
  register_request request;
  request.name = decode_name(in.bytes(name_field_size));
  in.copy_into(request.key);
  return request;
}

byte_buffer encode_get_public_key_request(const get_public_key_request& request) {
  return byte_buffer(request.target.begin(), request.target.end());
}

get_public_key_request decode_get_public_key_request(bytes_view payload) {
  expect_size(payload, get_public_key_payload_size, "get public key payload");
  get_public_key_request request;
  byte_reader(payload).copy_into(request.target);
  return request;
}

byte_buffer encode_send_message_prefix(const send_message_prefix& prefix) {
  byte_buffer out;
  out.reserve(send_message_prefix_size);
  byte_writer w(out);
  w.bytes(prefix.to);
  w.u8(prefix.type);
  w.u32(prefix.content_size);
  return out;
}

send_message_prefix decode_send_message_prefix(bytes_view bytes) {
  expect_size(bytes, send_message_prefix_size, "send message prefix");
  byte_reader in(bytes);
  send_message_prefix prefix;
  in.copy_into(prefix.to);
  prefix.type = in.u8();
  prefix.content_size = in.u32();
  return prefix;
}

void validate_send_message(const send_message_prefix& prefix, std::uint32_t payload_size) {
  if (payload_size < send_message_prefix_size)
    throw protocol_error("send message payload shorter than its 21-byte prefix");
  if (static_cast<std::uint64_t>(payload_size) !=
      send_message_prefix_size + static_cast<std::uint64_t>(prefix.content_size))
    throw protocol_error("payload size is not 21 + content size");
  if (prefix.type < min_message_type || prefix.type > max_message_type)
    throw protocol_error("message type " + std::to_string(prefix.type) + " is not 1..4");
  if (prefix.type == static_cast<std::uint8_t>(message_type::symmetric_key_request) &&
      prefix.content_size != 0)
    throw protocol_error("a symmetric key request must have empty content");
}

byte_buffer encode_error_response() {
  auto header = encode_response_header({server_version, static_cast<std::uint16_t>(response_code::error), 0});
  return byte_buffer(header.begin(), header.end());
}

byte_buffer encode_registered_response(const client_id& id) {
  return with_response_header(response_code::registered, id);
}

response_header_bytes encode_client_list_header(std::uint64_t count) {
  const std::uint64_t payload = count * client_list_entry_size;
  if (count > max_payload_size / client_list_entry_size) throw protocol_error("client list does not fit a u32 payload");
  return encode_response_header({server_version, static_cast<std::uint16_t>(response_code::client_list),
                                 static_cast<std::uint32_t>(payload)});
}

void append_client_list_entry(byte_buffer& out, const client_entry& client) {
  byte_writer w(out);
  w.bytes(client.id);
  w.bytes(encode_name(client.name));
}

byte_buffer encode_client_list_response(const std::vector<client_entry>& clients) {
  const auto header = encode_client_list_header(clients.size());
  // Built from the header, then grown: inserting the header into a freshly reserved buffer
  // trips g++ 12's -Wstringop-overflow at -O3 (a false positive on an empty list).
  byte_buffer out(header.begin(), header.end());
  out.reserve(response_header_size + clients.size() * client_list_entry_size);
  for (const auto& client : clients) append_client_list_entry(out, client);
  return out;
}

byte_buffer encode_public_key_response(const public_key_response& response) {
  std::array<std::uint8_t, public_key_response_size> payload{};
  std::copy(response.id.begin(), response.id.end(), payload.begin());
  std::copy(response.key.begin(), response.key.end(), payload.begin() + client_id_size);
  return with_response_header(response_code::public_key, payload);
}

byte_buffer encode_message_sent_response(const message_sent& sent) {
  std::array<std::uint8_t, message_sent_response_size> payload{};
  std::copy(sent.to.begin(), sent.to.end(), payload.begin());
  store_u32(payload.data() + client_id_size, sent.message_id);
  return with_response_header(response_code::message_sent, payload);
}

client_id decode_registered_payload(bytes_view payload) {
  expect_size(payload, client_id_size, "registered payload");
  client_id id;
  byte_reader(payload).copy_into(id);
  return id;
}

std::vector<client_entry> decode_client_list_payload(bytes_view payload) {
  if (payload.size() % client_list_entry_size != 0)
    throw protocol_error("client list payload is not a multiple of 271 bytes");
  std::vector<client_entry> clients;
  clients.reserve(payload.size() / client_list_entry_size);
  byte_reader in(payload);
  while (!in.empty()) {
    client_entry entry;
    in.copy_into(entry.id);
    entry.name = decode_name(in.bytes(name_field_size));
    clients.push_back(std::move(entry));
  }
  return clients;
}

public_key_response decode_public_key_payload(bytes_view payload) {
  expect_size(payload, public_key_response_size, "public key payload");
  byte_reader in(payload);
  public_key_response response;
  in.copy_into(response.id);
  in.copy_into(response.key);
  return response;
}

message_sent decode_message_sent_payload(bytes_view payload) {
  expect_size(payload, message_sent_response_size, "message sent payload");
  byte_reader in(payload);
  message_sent sent;
  in.copy_into(sent.to);
  sent.message_id = in.u32();
  return sent;
}

std::array<std::uint8_t, pulled_message_header_size> encode_pulled_message_header(
    const pulled_message_header& header) {
  std::array<std::uint8_t, pulled_message_header_size> out{};
  std::copy(header.from.begin(), header.from.end(), out.begin());
  store_u32(out.data() + 16, header.message_id);
  out[20] = header.type;
  store_u32(out.data() + 21, header.content_size);
  return out;
}

pulled_message_header decode_pulled_message_header(bytes_view bytes) {
  expect_size(bytes, pulled_message_header_size, "pulled message header");
  byte_reader in(bytes);
  pulled_message_header header;
  in.copy_into(header.from);
  header.message_id = in.u32();
  header.type = in.u8();
  header.content_size = in.u32();
  return header;
}

std::string to_hex(bytes_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (auto b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0F]);
  }
  return out;
}

std::optional<byte_buffer> from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return std::nullopt;
  byte_buffer out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::optional<client_id> client_id_from_hex(std::string_view hex) {
  if (hex.size() != client_id_size * 2) return std::nullopt;
  const auto bytes = from_hex(hex);
  if (!bytes) return std::nullopt;
  client_id id{};
  std::copy(bytes->begin(), bytes->end(), id.begin());
  return id;
}

}  // namespace letterbox::protocol

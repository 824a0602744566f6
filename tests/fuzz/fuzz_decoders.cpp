// libFuzzer target: every decoder of common/messages.hpp and common/messages_v2.hpp on
// arbitrary bytes.
//
//   input = selector[1] bytes[...]
//
// selector % decoder_count picks the decoder; bytes are passed as they are, ending where the
// fuzzer's buffer ends, so ASan sees a read past them. Besides "no crash, no UB, nothing but
// protocol_error thrown", each case checks what a decoder promises: a decoded value encodes
// back to the same bytes (or, where bytes are ignored such as after a name's NUL, decodes the
// same again), and an accepting or refusing decision agrees with the rule written out here
// independently (send-message rules, hex digits, names: length, controls, UTF-8 by the
// table of well-formed byte sequences of Unicode 15 section 3.9).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "messages.hpp"
#include "messages_v2.hpp"

namespace {

using namespace letterbox::protocol;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "\nfuzz_decoders: invariant broken: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

void expect(bool condition, const char* what) {
  if (!condition) fail(what);
}

bool same(bytes_view a, bytes_view b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

template <std::size_t N>
bytes_view payload_of(const byte_buffer& response) {
  expect(response.size() == response_header_size + N, "encoded response has the wrong size");
  return bytes_view(response).subspan(response_header_size);
}

// Well-formed UTF-8 as the Unicode standard's table lists it (a different method from the
// codec's, which decodes code points and checks their ranges).
bool reference_utf8(std::string_view s) {
  std::size_t i = 0;
  auto in = [&](std::size_t k, unsigned lo, unsigned hi) {
    if (i + k >= s.size()) return false;
    const auto c = static_cast<unsigned char>(s[i + k]);
    return c >= lo && c <= hi;
  };
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t length = 0;
    if (c <= 0x7F) length = 1;
    else if (c >= 0xC2 && c <= 0xDF) length = in(1, 0x80, 0xBF) ? 2 : 0;
    else if (c == 0xE0) length = in(1, 0xA0, 0xBF) && in(2, 0x80, 0xBF) ? 3 : 0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) length = in(1, 0x80, 0xBF) && in(2, 0x80, 0xBF) ? 3 : 0;
    else if (c == 0xED) length = in(1, 0x80, 0x9F) && in(2, 0x80, 0xBF) ? 3 : 0;
    else if (c == 0xF0) length = in(1, 0x90, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
    else if (c >= 0xF1 && c <= 0xF3) length = in(1, 0x80, 0xBF) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
    else if (c == 0xF4) length = in(1, 0x80, 0x8F) && in(2, 0x80, 0xBF) && in(3, 0x80, 0xBF) ? 4 : 0;
    if (length == 0) return false;
    i += length;
  }
  return true;
}

// The name rule of PROTOCOL.md, written out: 1..254 bytes of well-formed UTF-8 without C0, DEL
// or C1 control characters (C1 = U+0080..U+009F, encoded C2 80..C2 9F).
bool reference_name(std::string_view s) {
  if (s.empty() || s.size() > max_name_length || !reference_utf8(s)) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return false;
    if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9F) return false;
  }
  return true;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

void request_header_case(bytes_view in) {
  const auto header = decode_request_header(in);
  const auto bytes = encode_request_header(header);
  expect(same(bytes, in), "request header does not encode back to its bytes");
  const auto front = encode_request_front(header.client, header.version, header.code, header.payload_size, {});
  expect(same(front, in), "encode_request_front differs from the header");
}

void response_header_case(bytes_view in) {
  expect(same(encode_response_header(decode_response_header(in)), in), "response header does not encode back");
}

void register_case(bytes_view in) {
  const auto request = decode_register_request(in);
  expect(reference_name(request.name), "register accepted a name the rule refuses");
  expect(same(request.key, in.subspan(name_field_size)), "register key is not the last 160 bytes");
  const auto again = encode_register_request(request);
  expect(again.size() == register_payload_size, "register payload re-encodes to the wrong size");
  expect(same(bytes_view(again).first(request.name.size() + 1), in.first(request.name.size() + 1)),
         "register name re-encodes differently");
  const auto decoded = decode_register_request(again);
  expect(decoded.name == request.name && decoded.key == request.key, "register does not decode the same again");
}

void get_public_key_case(bytes_view in) {
  expect(same(encode_get_public_key_request(decode_get_public_key_request(in)), in), "102 payload does not encode back");
}

// bytes = payload_size[4] prefix[21]
void send_message_case(bytes_view in) {
  byte_reader reader(in);
  const std::uint32_t payload_size = reader.u32();
  const auto prefix_bytes = reader.bytes(reader.remaining());
  const auto prefix = decode_send_message_prefix(prefix_bytes);
  expect(same(encode_send_message_prefix(prefix), prefix_bytes), "103 prefix does not encode back");
  const bool rule = payload_size >= send_message_prefix_size &&
                    std::uint64_t{payload_size} == send_message_prefix_size + std::uint64_t{prefix.content_size} &&
                    prefix.type >= 1 && prefix.type <= 4 && (prefix.type != 1 || prefix.content_size == 0);
  bool accepted = true;
  try {
    validate_send_message(prefix, payload_size);
  } catch (const protocol_error&) {
    accepted = false;
  }
  expect(accepted == rule, "validate_send_message disagrees with the 103 rules");
}

void pulled_header_case(bytes_view in) {
  expect(same(encode_pulled_message_header(decode_pulled_message_header(in)), in), "1004 message header does not encode back");
}

void registered_case(bytes_view in) {
  expect(same(payload_of<client_id_size>(encode_registered_response(decode_registered_payload(in))), in),
         "1000 payload does not encode back");
}

void client_list_case(bytes_view in) {
  const auto clients = decode_client_list_payload(in);
  expect(clients.size() * client_list_entry_size == in.size(), "1001 entry count does not match the size");
  for (const auto& c : clients) expect(reference_name(c.name), "1001 accepted a name the rule refuses");
  const auto again = encode_client_list_response(clients);
  expect(decode_client_list_payload(bytes_view(again).subspan(response_header_size)) == clients,
         "1001 does not decode the same again");
}

void public_key_case(bytes_view in) {
  expect(same(payload_of<public_key_response_size>(encode_public_key_response(decode_public_key_payload(in))), in),
         "1002 payload does not encode back");
}

void message_sent_case(bytes_view in) {
  expect(same(payload_of<message_sent_response_size>(encode_message_sent_response(decode_message_sent_payload(in))), in),
         "1003 payload does not encode back");
}

std::string_view text_of(bytes_view in) { return {reinterpret_cast<const char*>(in.data()), in.size()}; }

void hex_case(bytes_view in) {
  const auto text = text_of(in);
  bool rule = text.size() % 2 == 0;
  for (char c : text) rule = rule && hex_digit(c) >= 0;
  const auto bytes = from_hex(text);
  expect(bytes.has_value() == rule, "from_hex disagrees with 'pairs of hex digits'");
  if (bytes) expect(to_hex(*bytes) == lowercase(text), "to_hex(from_hex(x)) is not x in lowercase");
}

void client_id_hex_case(bytes_view in) {
  const auto text = text_of(in);
  const auto id = client_id_from_hex(text);
  const auto bytes = from_hex(text);
  expect(id.has_value() == (text.size() == 2 * client_id_size && bytes.has_value()),
         "client_id_from_hex disagrees with 32 hex digits");
  if (id) expect(same(*id, *bytes), "client_id_from_hex differs from from_hex");
}

void name_case(bytes_view in) {
  const auto text = text_of(in);
  bool accepted = true;
  try {
    validate_name(text);
  } catch (const protocol_error&) {
    accepted = false;
  }
  expect(accepted == reference_name(text), "validate_name disagrees with the name rule");
  if (!accepted) return;
  const auto field = encode_name(text);
  expect(decode_name(field) == text, "decode_name(encode_name(x)) is not x");
}

void name_field_case(bytes_view in) {
  const auto name = decode_name(in);
  const auto nul = std::find(in.begin(), in.end(), std::uint8_t{0});
  expect(name == std::string(in.begin(), nul), "decode_name is not the text up to the first NUL");
  expect(reference_name(name), "decode_name accepted a name the rule refuses");
}

// bytes = client[16] version[1] code[1] payload[...]
void request_frame_case(bytes_view in) {
  byte_reader reader(in);
  client_id client{};
  reader.copy_into(client);
  const std::uint8_t version = reader.u8(), code = reader.u8();
  const auto payload = reader.bytes(reader.remaining());
  const auto frame = encode_request(client, version, code, payload);
  const auto header = decode_request_header(bytes_view(frame).first(request_header_size));
  expect(header.client == client && header.version == version && header.code == code &&
             header.payload_size == payload.size(),
         "encode_request header does not decode to its fields");
  expect(same(bytes_view(frame).subspan(request_header_size), payload), "encode_request payload differs");
  const auto fixed = fixed_payload_size(code);
  expect(is_known_request(code) == (code >= 100 && code <= 104), "is_known_request is not 100..104");
  expect(fixed.has_value() == (is_known_request(code) && code != 103), "fixed_payload_size for the wrong codes");
}

// --- protocol v2 ----------------------------------------------------------------------------
void v2_hello_case(bytes_view in) {
  const auto hello = v2::decode_hello_request(in);
  expect(in.size() == 6 && in[0] == 'L' && in[1] == 'B' && in[2] == 'X' && in[3] == '2' && in[4] <= in[5],
         "HELLO accepted without LBX2 or with min > max");
  expect(same(v2::encode_hello_request(hello), in), "HELLO does not encode back");
}

void v2_register_case(bytes_view in) {
  const auto request = v2::decode_register_request(in);
  expect(reference_name(request.name), "REGISTER accepted a name the rule refuses");
  // Canonical: the field is the name, then zeros; so the payload encodes back exactly.
  expect(same(v2::encode_register_request(request), in), "REGISTER does not encode back (name field not canonical?)");
}

void v2_auth_case(bytes_view in) {
  expect(same(v2::encode_auth_request(v2::decode_auth_request(in)), in), "AUTH does not encode back");
}

void v2_client_list_case(bytes_view in) {
  const auto clients = v2::decode_client_list_payload(in);
  expect(clients.size() * v2::client_list_entry_size == in.size(), "2003 entry count does not match the size");
  const auto again = v2::encode_client_list_response(clients);
  expect(same(bytes_view(again).subspan(response_header_size), in), "2003 does not encode back (canonical names)");
}

void v2_keys_case(bytes_view in) {
  const auto keys = v2::decode_keys_payload(in);
  expect(same(bytes_view(v2::encode_keys_response(keys)).subspan(response_header_size), in), "2004 does not encode back");
}

void v2_pulled_header_case(bytes_view in) {
  expect(same(v2::encode_pulled_message_header(v2::decode_pulled_message_header(in)), in),
         "2006 entry header does not encode back");
}

void v2_ack_case(bytes_view in) {
  bool accepted = true;
  v2::ack_request request;
  try {
    request = v2::decode_ack_request(in);
  } catch (const protocol_error&) {
    accepted = false;
  }
  const bool rule = !in.empty() && in.size() % 4 == 0 && in.size() <= 4 * 65'536;
  expect(accepted == rule, "ACK decoding disagrees with 1..65,536 IDs of 4 bytes");
  expect(rule == v2::is_valid_ack_payload_size(static_cast<std::uint32_t>(in.size())), "is_valid_ack_payload_size disagrees");
  if (accepted) expect(same(v2::encode_ack_request(request), in), "ACK does not encode back");
}

// bytes = payload_size[4] prefix[21] recipient_is_v2[1]
void v2_send_case(bytes_view in) {
  byte_reader reader(in);
  const std::uint32_t payload_size = reader.u32();
  const auto prefix = v2::decode_send_message_prefix(reader.bytes(v2::send_message_prefix_size));
  const bool to_v2 = (reader.u8() & 1) != 0;
  bool framed = true;
  try {
    v2::validate_send_framing(prefix, payload_size);
  } catch (const protocol_error&) {
    framed = false;
  }
  expect(framed == (std::uint64_t{payload_size} == 21 + std::uint64_t{prefix.content_size}), "SEND framing rule");
  const bool sealed = prefix.type == 16 || prefix.type == 17, legacy = prefix.type >= 1 && prefix.type <= 4;
  expect(v2::is_sendable_type(prefix.type) == (sealed || legacy), "SEND sendable types are not 1-4, 16, 17");
  expect(v2::type_fits_recipient(prefix.type, to_v2) == (to_v2 ? sealed : legacy), "SEND type rule of §15");
  expect(v2::is_empty_when_required(prefix) == (prefix.type != 1 || prefix.content_size == 0), "SEND type 1 rule");
}

void v2_error_case(bytes_view in) {
  const auto reason = v2::decode_error_payload(in);
  if (reason >= 1 && reason <= v2::max_reason) {
    const auto response = v2::encode_error_response(static_cast<v2::reason>(reason));
    expect(response.size() == 9 && response[0] == 3 && same(bytes_view(response).subspan(7), in), "v2 9000 does not encode back");
    expect(std::string(v2::reason_name(reason)) != "unknown", "a §18 reason without its name");
  }
}

using decoder_case = void (*)(bytes_view);
constexpr decoder_case cases[] = {
    request_header_case, response_header_case, register_case,  get_public_key_case, send_message_case,
    pulled_header_case,  registered_case,      client_list_case, public_key_case,     message_sent_case,
    hex_case,            client_id_hex_case,   name_case,        name_field_case,     request_frame_case,
    v2_hello_case,       v2_register_case,     v2_auth_case,     v2_client_list_case, v2_keys_case,
    v2_pulled_header_case, v2_ack_case,        v2_send_case,     v2_error_case,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto pick = cases[data[0] % std::size(cases)];
  try {
    pick(bytes_view(data + 1, size - 1));
  } catch (const protocol_error&) {
    // refused: fine; any other exception escapes and libFuzzer reports it
  }
  return 0;
}

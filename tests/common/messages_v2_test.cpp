// Tests of the protocol v2 codec (common/messages_v2.hpp): sizes and edge cases first, then
// golden byte arrays that pin the v2 wire format of docs/PROTOCOL.md Part II.
#include <doctest/doctest.h>

#include <string>

#include "messages_v2.hpp"

using namespace letterbox::protocol;
namespace v2 = letterbox::protocol::v2;

namespace {
template <typename Array>
Array pattern(std::uint8_t seed) {
  Array a{};
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::uint8_t>(seed + i);
  return a;
}
byte_buffer concat(std::initializer_list<bytes_view> parts) {
  byte_buffer out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
byte_buffer name_bytes(std::string_view name) {
  byte_buffer field(name_field_size, 0);
  std::copy(name.begin(), name.end(), field.begin());
  return field;
}
}  // namespace

TEST_CASE("v2 sizes are those of PROTOCOL.md §12–§15") {
  CHECK(v2::hello_payload_size == 6);
  CHECK(v2::hello_response_size == 33);
  CHECK(v2::register_payload_size == 607);
  CHECK(v2::auth_payload_size == 80);
  CHECK(v2::client_list_entry_size == 272);
  CHECK(v2::keys_response_size == 560);
  CHECK(v2::send_message_prefix_size == 21);
  CHECK(v2::message_sent_response_size == 20);
  CHECK(v2::pulled_message_header_size == 26);
  CHECK(v2::max_ack_payload_size == 262'144);
  CHECK(v2::max_content_size == 0xFFFF'FFFFull - 26);
  CHECK(v2::fixed_payload_size(200) == 6u);
  CHECK(v2::fixed_payload_size(201) == 607u);
  CHECK(v2::fixed_payload_size(202) == 80u);
  CHECK(v2::fixed_payload_size(203) == 0u);
  CHECK(v2::fixed_payload_size(204) == 16u);
  CHECK(v2::fixed_payload_size(206) == 0u);
  CHECK_FALSE(v2::fixed_payload_size(205).has_value());
  CHECK_FALSE(v2::fixed_payload_size(207).has_value());
  CHECK_FALSE(v2::fixed_payload_size(104).has_value());
  CHECK_FALSE(v2::fixed_payload_size(208).has_value());
  CHECK(v2::is_v2_request(200));
  CHECK(v2::is_v2_request(207));
  CHECK_FALSE(v2::is_v2_request(199));
  CHECK_FALSE(v2::is_v2_request(208));
  CHECK(std::string(v2::reason_name(3)) == "authentication_failed");
  CHECK(std::string(v2::reason_name(12)) == "storage_failure");
  CHECK(std::string(v2::reason_name(0)) == "unknown");
  CHECK(std::string(v2::reason_name(21)) == "unknown");
}

TEST_CASE("v2 request frame: zero client ID, version 3") {
  const auto frame = v2::encode_request(v2::request_code::hello, v2::encode_hello_request());
  const byte_buffer expected = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  // client ID
                                0x03, 0xC8, 0x06, 0x00, 0x00, 0x00,            // v3, 200, size 6
                                'L', 'B', 'X', '2', 0x02, 0x02};
  CHECK(frame == expected);
  const auto front = v2::encode_request_front(v2::request_code::send_message, 21 + 5, byte_buffer(21, 0xAA));
  CHECK(front.size() == 22 + 21);
  CHECK(decode_request_header(bytes_view(front).first(22)) == request_header{client_id{}, 3, 205, 26});
  CHECK_THROWS_AS(v2::encode_request_front(v2::request_code::send_message, 20, byte_buffer(21, 0)), protocol_error);
}

TEST_CASE("v2 hello: magic, versions, edge cases") {
  CHECK(v2::decode_hello_request(v2::encode_hello_request()) == v2::hello_request{2, 2});
  CHECK(v2::supports_v2({2, 2}));
  CHECK(v2::supports_v2({1, 5}));
  CHECK_FALSE(v2::supports_v2({3, 4}));
  CHECK_FALSE(v2::supports_v2({0, 1}));
  CHECK_THROWS_AS(v2::decode_hello_request(bytes_view{}), protocol_error);
  CHECK_THROWS_AS(v2::decode_hello_request(byte_buffer{'L', 'B', 'X', '2', 2}), protocol_error);
  CHECK_THROWS_AS(v2::decode_hello_request(byte_buffer{'L', 'B', 'X', '2', 2, 2, 0}), protocol_error);
  CHECK_THROWS_AS(v2::decode_hello_request(byte_buffer{'L', 'B', 'X', '1', 2, 2}), protocol_error);
  CHECK_THROWS_AS(v2::decode_hello_request(byte_buffer{'L', 'B', 'X', '2', 3, 2}), protocol_error);
}

TEST_CASE("v2 hello response: golden bytes") {
  const auto nonce = pattern<v2::challenge>(0x40);
  const auto response = v2::encode_hello_response({2, nonce});
  REQUIRE(response.size() == 7 + 33);
  const byte_buffer header = {0x03, 0xD0, 0x07, 0x21, 0x00, 0x00, 0x00};  // v3, 2000, 33
  CHECK(byte_buffer(response.begin(), response.begin() + 7) == header);
  CHECK(response[7] == 0x02);
  CHECK(byte_buffer(response.begin() + 8, response.end()) == byte_buffer(nonce.begin(), nonce.end()));
  CHECK(v2::decode_hello_payload(bytes_view(response).subspan(7)) == v2::hello_response{2, nonce});
  CHECK_THROWS_AS(v2::decode_hello_payload(bytes_view(response).subspan(8)), protocol_error);
}

TEST_CASE("v2 register: golden layout, round trip, canonical name") {
  v2::register_request request;
  request.name = "alice";
  request.identity = pattern<v2::identity_key>(0x10);
  request.agreement = pattern<v2::agreement_key>(0x30);
  request.legacy = pattern<v2::legacy_key>(0x50);
  request.key_signature = pattern<v2::signature>(0x70);
  request.proof = pattern<v2::signature>(0x90);
  const auto payload = v2::encode_register_request(request);
  const auto expected = concat({name_bytes("alice"), request.identity, request.agreement, request.legacy,
                                request.key_signature, request.proof});
  REQUIRE(expected.size() == 607);
  CHECK(payload == expected);
  CHECK(payload[255] == 0x10);  // identity at 255
  CHECK(payload[287] == 0x30);  // agreement at 287
  CHECK(payload[319] == 0x50);  // legacy at 319
  CHECK(payload[479] == 0x70);  // key signature at 479
  CHECK(payload[543] == 0x90);  // proof at 543
  CHECK(v2::decode_register_request(payload) == request);

  auto not_canonical = payload;
  not_canonical[100] = 'x';  // after the NUL that ends "alice"
  CHECK_THROWS_AS(v2::decode_register_request(not_canonical), protocol_error);
  auto no_nul = payload;
  std::fill(no_nul.begin(), no_nul.begin() + 255, 'a');
  CHECK_THROWS_AS(v2::decode_register_request(no_nul), protocol_error);
  auto empty_name = payload;
  std::fill(empty_name.begin(), empty_name.begin() + 255, 0);
  CHECK_THROWS_AS(v2::decode_register_request(empty_name), protocol_error);
  CHECK_THROWS_AS(v2::decode_register_request(bytes_view(payload).first(606)), protocol_error);
  request.name = "bad\x01";
  CHECK_THROWS_AS(v2::encode_register_request(request), protocol_error);
}

TEST_CASE("v2 auth and keys requests: golden bytes") {
  v2::auth_request auth{pattern<client_id>(0x01), pattern<v2::signature>(0xA0)};
  const auto payload = v2::encode_auth_request(auth);
  CHECK(payload == concat({auth.client, auth.proof}));
  CHECK(payload.size() == 80);
  CHECK(v2::decode_auth_request(payload) == auth);
  CHECK_THROWS_AS(v2::decode_auth_request(bytes_view(payload).first(79)), protocol_error);

  const auto target = pattern<client_id>(0x22);
  const auto keys = v2::encode_keys_request({target});
  CHECK(keys == byte_buffer(target.begin(), target.end()));
  CHECK(v2::decode_keys_request(keys).target == pattern<client_id>(0x22));
  CHECK_THROWS_AS(v2::decode_keys_request(byte_buffer(17, 0)), protocol_error);
}

TEST_CASE("v2 send: framing and type rules of §15") {
  const send_message_prefix prefix{pattern<client_id>(0x01), 16, 5};
  CHECK_NOTHROW(v2::validate_send_framing(prefix, 26));
  CHECK_THROWS_AS(v2::validate_send_framing(prefix, 25), protocol_error);
  CHECK_THROWS_AS(v2::validate_send_framing(prefix, 20), protocol_error);
  const send_message_prefix huge{pattern<client_id>(0x01), 16, 0xFFFF'FFFFu};
  CHECK_THROWS_AS(v2::validate_send_framing(huge, 0xFFFF'FFFFu), protocol_error);  // 21 + size overflows u32

  for (int t = 0; t < 256; ++t) {
    const auto type = static_cast<std::uint8_t>(t);
    const bool sendable = (t >= 1 && t <= 4) || t == 16 || t == 17;
    CHECK(v2::is_sendable_type(type) == sendable);
    CHECK(v2::type_fits_recipient(type, true) == (t == 16 || t == 17));
    CHECK(v2::type_fits_recipient(type, false) == (t >= 1 && t <= 4));
  }
  CHECK(v2::is_empty_when_required({client_id{}, 1, 0}));
  CHECK_FALSE(v2::is_empty_when_required({client_id{}, 1, 1}));
  CHECK(v2::is_empty_when_required({client_id{}, 16, 0}));
  CHECK(v2::is_empty_when_required({client_id{}, 3, 9}));
}

TEST_CASE("v2 ack request: 1..65,536 IDs, golden bytes") {
  const auto payload = v2::encode_ack_request({{1, 0x01020304}});
  CHECK(payload == byte_buffer{0x01, 0, 0, 0, 0x04, 0x03, 0x02, 0x01});
  CHECK(v2::decode_ack_request(payload).message_ids == std::vector<std::uint32_t>{1, 0x01020304});
  CHECK_THROWS_AS(v2::encode_ack_request({}), protocol_error);
  CHECK_THROWS_AS(v2::encode_ack_request({std::vector<std::uint32_t>(65'537, 1)}), protocol_error);
  CHECK(v2::encode_ack_request({std::vector<std::uint32_t>(65'536, 1)}).size() == 262'144);
  CHECK_THROWS_AS(v2::decode_ack_request(bytes_view{}), protocol_error);
  CHECK_THROWS_AS(v2::decode_ack_request(byte_buffer(7, 0)), protocol_error);
  CHECK_THROWS_AS(v2::decode_ack_request(byte_buffer(262'148, 0)), protocol_error);
  CHECK(v2::decode_ack_request(byte_buffer(262'144, 0)).message_ids.size() == 65'536);
  CHECK_FALSE(v2::is_valid_ack_payload_size(0));
  CHECK_FALSE(v2::is_valid_ack_payload_size(3));
  CHECK_FALSE(v2::is_valid_ack_payload_size(6));
  CHECK(v2::is_valid_ack_payload_size(4));
  CHECK(v2::is_valid_ack_payload_size(262'144));
  CHECK_FALSE(v2::is_valid_ack_payload_size(262'148));
  CHECK_FALSE(v2::is_valid_ack_payload_size(0xFFFF'FFFCu));
}

TEST_CASE("v2 responses: golden headers and payloads") {
  const auto id = pattern<client_id>(0x01);
  const auto registered = v2::encode_registered_response(id);
  CHECK(byte_buffer(registered.begin(), registered.begin() + 7) == byte_buffer{0x03, 0xD1, 0x07, 0x10, 0, 0, 0});
  CHECK(v2::decode_registered_payload(bytes_view(registered).subspan(7)) == id);

  CHECK(v2::encode_authenticated_response() == byte_buffer{0x03, 0xD2, 0x07, 0, 0, 0, 0});

  const auto sent = v2::encode_message_sent_response({id, 0x0A0B0C0D});
  byte_buffer expected_sent = {0x03, 0xD5, 0x07, 0x14, 0, 0, 0};
  expected_sent.insert(expected_sent.end(), id.begin(), id.end());
  expected_sent.insert(expected_sent.end(), {0x0D, 0x0C, 0x0B, 0x0A});
  CHECK(sent == expected_sent);
  CHECK(v2::decode_message_sent_payload(bytes_view(sent).subspan(7)) == message_sent{id, 0x0A0B0C0D});

  CHECK(v2::encode_acknowledged_response(3) == byte_buffer{0x03, 0xD7, 0x07, 0x04, 0, 0, 0, 0x03, 0, 0, 0});
  CHECK(v2::decode_acknowledged_payload(byte_buffer{0x03, 0, 0, 0x01}) == 0x01000003u);
  CHECK_THROWS_AS(v2::decode_acknowledged_payload(byte_buffer{1, 2, 3}), protocol_error);

  CHECK(v2::encode_response_header(v2::response_code::messages, 0) ==
        response_header_bytes{0x03, 0xD6, 0x07, 0, 0, 0, 0});
}

TEST_CASE("v2 error response: version 3, 9000, 2-byte reason") {
  CHECK(v2::encode_error_response(v2::reason::malformed) == byte_buffer{0x03, 0x28, 0x23, 0x02, 0, 0, 0, 0x01, 0x00});
  CHECK(v2::encode_error_response(v2::reason::storage_failure) ==
        byte_buffer{0x03, 0x28, 0x23, 0x02, 0, 0, 0, 0x0C, 0x00});
  CHECK(v2::decode_error_payload(byte_buffer{0x07, 0x00}) == 7);
  CHECK(v2::decode_error_payload(byte_buffer{0x01, 0x02}) == 0x0201);
  CHECK_THROWS_AS(v2::decode_error_payload(byte_buffer{0x07}), protocol_error);
  CHECK_THROWS_AS(v2::decode_error_payload(bytes_view{}), protocol_error);
}

TEST_CASE("v2 list: 272-byte entries with flags, streamed header") {
  const std::vector<v2::client_entry> clients = {{pattern<client_id>(0x01), "bob", v2::client_flag_v2},
                                                 {pattern<client_id>(0x11), "carol", 0}};
  const auto response = v2::encode_client_list_response(clients);
  REQUIRE(response.size() == 7 + 2 * 272);
  CHECK(byte_buffer(response.begin(), response.begin() + 7) == byte_buffer{0x03, 0xD3, 0x07, 0x20, 0x02, 0, 0});
  const auto entry0 = concat({pattern<client_id>(0x01), name_bytes("bob"), byte_buffer{0x01}});
  CHECK(byte_buffer(response.begin() + 7, response.begin() + 7 + 272) == entry0);
  CHECK(response[7 + 272 + 271] == 0x00);
  CHECK(v2::decode_client_list_payload(bytes_view(response).subspan(7)) == clients);
  CHECK(v2::decode_client_list_payload(bytes_view{}).empty());
  CHECK_THROWS_AS(v2::decode_client_list_payload(bytes_view(response).subspan(8)), protocol_error);
  CHECK(v2::encode_client_list_header(0) == response_header_bytes{0x03, 0xD3, 0x07, 0, 0, 0, 0});
  CHECK_THROWS_AS(v2::encode_client_list_header(0xFFFF'FFFFull / 272 + 1), protocol_error);
}

TEST_CASE("v2 keys response: golden layout at the offsets of §14") {
  v2::keys_response keys;
  keys.id = pattern<client_id>(0x01);
  keys.flags = v2::client_flag_v2;
  keys.name = "bob";
  keys.identity = pattern<v2::identity_key>(0x20);
  keys.agreement = pattern<v2::agreement_key>(0x40);
  keys.legacy = pattern<v2::legacy_key>(0x60);
  keys.key_signature = pattern<v2::signature>(0x80);
  const auto response = v2::encode_keys_response(keys);
  REQUIRE(response.size() == 7 + 560);
  CHECK(byte_buffer(response.begin(), response.begin() + 7) == byte_buffer{0x03, 0xD4, 0x07, 0x30, 0x02, 0, 0});
  const auto payload = bytes_view(response).subspan(7);
  CHECK(byte_buffer(payload.begin(), payload.end()) ==
        concat({keys.id, byte_buffer{0x01}, name_bytes("bob"), keys.identity, keys.agreement, keys.legacy,
                keys.key_signature}));
  CHECK(payload[16] == 0x01);
  CHECK(payload[272] == 0x20);
  CHECK(payload[304] == 0x40);
  CHECK(payload[336] == 0x60);
  CHECK(payload[496] == 0x80);
  CHECK(v2::decode_keys_payload(payload) == keys);
  CHECK_THROWS_AS(v2::decode_keys_payload(payload.first(559)), protocol_error);
}

TEST_CASE("v2 pulled entry header: 26 bytes with flags at 21") {
  const v2::pulled_message_header header{pattern<client_id>(0x01), 0x11223344, 16, v2::message_flag_legacy_sender,
                                         0x00000102};
  const auto bytes = v2::encode_pulled_message_header(header);
  const auto expected = concat({pattern<client_id>(0x01), byte_buffer{0x44, 0x33, 0x22, 0x11, 0x10, 0x01, 0x02, 0x01, 0, 0}});
  CHECK(byte_buffer(bytes.begin(), bytes.end()) == expected);
  CHECK(v2::decode_pulled_message_header(bytes) == header);
  CHECK_THROWS_AS(v2::decode_pulled_message_header(bytes_view(bytes).first(25)), protocol_error);
}

// --- Part IV (groups) ---------------------------------------------------------------------------

TEST_CASE("group codec: codes, sizes and reasons of Part IV") {
  CHECK(v2::is_group_request(220));
  CHECK(v2::is_group_request(230));
  CHECK_FALSE(v2::is_group_request(219));
  CHECK_FALSE(v2::is_group_request(231));
  CHECK_FALSE(v2::is_v2_request(220));  // 200..207 stay Part II's
  CHECK(v2::group_fixed_payload_size(220) == 256u);
  CHECK(v2::group_fixed_payload_size(221) == 32u);
  CHECK(v2::group_fixed_payload_size(222) == 16u);
  CHECK(v2::group_fixed_payload_size(228) == 16u);
  CHECK(v2::group_fixed_payload_size(229) == 0u);
  CHECK_FALSE(v2::group_fixed_payload_size(230).has_value());
  CHECK(v2::group_response_for(220) == 2020);
  CHECK(v2::group_response_for(230) == 2030);
  CHECK(std::string(v2::reason_name(13)) == "unknown_group");
  CHECK(std::string(v2::reason_name(19)) == "too_many_groups");
  CHECK(std::string(v2::reason_name(20)) == "too_many_subscriptions");  // Part V
  CHECK(std::string(v2::reason_name(21)) == "unknown");
  CHECK(v2::max_group_content_size == 0xFFFFFFFFull - 26 - 16);
}

TEST_CASE("group codec: CREATE is name[255] flags[1]; unknown flag bits and a non-canonical name are malformed") {
  const auto payload = v2::encode_group_create_request({"room", true});
  CHECK(payload == concat({name_bytes("room"), byte_buffer{0x01}}));
  CHECK(v2::decode_group_create_request(payload) == v2::group_create_request{"room", true});
  auto bad = payload;
  bad[255] = 0x02;
  CHECK_THROWS_AS(v2::decode_group_create_request(bad), protocol_error);
  bad = payload;
  bad[200] = 'x';  // after the NUL
  CHECK_THROWS_AS(v2::decode_group_create_request(bad), protocol_error);
  CHECK_THROWS_AS(v2::decode_group_create_request(bytes_view(payload).first(255)), protocol_error);
}

TEST_CASE("group codec: target and group payloads, golden responses") {
  const v2::group_target_request target{pattern<v2::group_id>(0x10), pattern<client_id>(0x40)};
  const auto payload = v2::encode_group_target_request(target);
  CHECK(payload == concat({target.group, target.client}));
  CHECK(v2::decode_group_target_request(payload) == target);
  CHECK(v2::decode_group_payload(v2::encode_group_payload(target.group)) == target.group);
  CHECK_THROWS_AS(v2::decode_group_payload(payload), protocol_error);

  const auto created = v2::encode_group_created_response(target.group);
  CHECK(byte_buffer(created.begin(), created.begin() + 7) == byte_buffer{0x03, 0xE4, 0x07, 0x10, 0, 0, 0});
  CHECK(v2::decode_group_created_payload(bytes_view(created).subspan(7)) == target.group);
  CHECK(v2::encode_group_empty_response(v2::group_response_code::joined) == byte_buffer{0x03, 0xE6, 0x07, 0, 0, 0, 0});

  const std::vector<v2::group_member_entry> members{{pattern<client_id>(1), v2::member_flag_admin}, {pattern<client_id>(2), 0}};
  const auto list = v2::encode_group_members_response(members);
  REQUIRE(list.size() == 7 + 34);
  CHECK(list[1] == 0xEC);  // 2028
  CHECK(list[7 + 16] == 0x01);
  CHECK(v2::decode_group_members_payload(bytes_view(list).subspan(7)) == members);

  const std::vector<v2::group_entry> groups{{pattern<v2::group_id>(3), "chat", v2::group_entry_open | v2::group_entry_member, 0x01020304}};
  const auto glist = v2::encode_group_list_response(groups);
  REQUIRE(glist.size() == 7 + 276);
  CHECK(byte_buffer(glist.begin() + 7 + 271, glist.end()) == byte_buffer{0x03, 0x04, 0x03, 0x02, 0x01});
  CHECK(v2::decode_group_list_payload(bytes_view(glist).subspan(7)) == groups);

  const v2::group_sent sent{pattern<v2::group_id>(5), 99, 1};
  const auto s = v2::encode_group_sent_response(sent);
  REQUIRE(s.size() == 7 + 24);
  CHECK(byte_buffer(s.begin(), s.begin() + 7) == byte_buffer{0x03, 0xEE, 0x07, 0x18, 0, 0, 0});
  CHECK(byte_buffer(s.begin() + 23, s.end()) == byte_buffer{99, 0, 0, 0, 1, 0, 0, 0});
  CHECK(v2::decode_group_sent_payload(bytes_view(s).subspan(7)) == sent);
  CHECK(v2::is_group_message_type(18));
  CHECK(v2::is_group_message_type(19));
  CHECK_FALSE(v2::is_group_message_type(17));
}

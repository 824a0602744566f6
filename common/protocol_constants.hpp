// Wire protocol v1 constants: every size, code and limit of docs/PROTOCOL.md, named once.
//
// Request  = client_id[16] version[1] code[1] payload_size[4] payload[payload_size]
// Response = version[1] code[2] payload_size[4] payload[payload_size]
// All integers are unsigned little-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace letterbox::protocol {

// --- Field sizes -------------------------------------------------------------------------
inline constexpr std::size_t client_id_size = 16;         // server-generated random ID (v4 UUID)
inline constexpr std::size_t name_field_size = 255;       // NUL-terminated, NUL-padded
inline constexpr std::size_t max_name_length = 254;       // text bytes before the NUL
inline constexpr std::size_t public_key_size = 160;       // RSA-1024, e=17, X.509 DER
inline constexpr std::size_t message_id_size = 4;         // u32
inline constexpr std::size_t request_header_size = 22;    // id[16] version[1] code[1] size[4]
inline constexpr std::size_t response_header_size = 7;    // version[1] code[2] size[4]

// --- Payload sizes -----------------------------------------------------------------------
inline constexpr std::size_t register_payload_size = name_field_size + public_key_size;  // 415
inline constexpr std::size_t get_public_key_payload_size = client_id_size;               // 16
inline constexpr std::size_t send_message_prefix_size = client_id_size + 1 + 4;         // 21
inline constexpr std::size_t client_list_entry_size = client_id_size + name_field_size;  // 271
inline constexpr std::size_t public_key_response_size = client_id_size + public_key_size;  // 176
inline constexpr std::size_t message_sent_response_size = client_id_size + message_id_size;  // 20
inline constexpr std::size_t pulled_message_header_size =
    client_id_size + message_id_size + 1 + 4;  // from[16] id[4] type[1] size[4] = 25
inline constexpr std::uint64_t max_payload_size = 0xFFFF'FFFFull;  // u32 size field

// --- Versions ----------------------------------------------------------------------------
inline constexpr std::uint8_t server_version = 2;         // "persistent storage"
inline constexpr std::uint8_t client_version = 2;         // clients that send files

// --- Codes -------------------------------------------------------------------------------
enum class request_code : std::uint8_t {
  register_client = 100,
  list_clients = 101,
  get_public_key = 102,
  send_message = 103,
  pull_messages = 104,
};

enum class response_code : std::uint16_t {
  registered = 1000,
  client_list = 1001,
  public_key = 1002,
  message_sent = 1003,
  messages = 1004,
  error = 9000,
};

enum class message_type : std::uint8_t {
  symmetric_key_request = 1,  // empty content
  symmetric_key = 2,          // RSA-OAEP(SHA-1) of the 16-byte AES key: 128 bytes
  text = 3,                   // AES-128-CBC ciphertext of UTF-8 text
  file = 4,                   // AES-128-CBC ciphertext of a file, up to u32 bytes
};
inline constexpr std::uint8_t min_message_type = 1;
inline constexpr std::uint8_t max_message_type = 4;

// --- Crypto sizes (client side; the server never looks inside content) --------------------
inline constexpr std::size_t symmetric_key_size = 16;            // AES-128
inline constexpr std::size_t encrypted_symmetric_key_size = 128;  // RSA-1024 OAEP block
inline constexpr std::size_t aes_block_size = 16;

}  // namespace letterbox::protocol

// Protocol v2 group envelopes, types 18 (group text) and 19 (group file)
// (docs/PROTOCOL.md §16a). One fresh content key per message, wrapped for every current member:
//
//   header[136 + 64 m] = format[1]=1 type[1] sender[16] group[16] ephemeral[32]
//                        chunk size[4]=65536 member count m[2] (u16 LE, 1..1024)
//                        m x { member ID[16] wrapped content key[48] }
//                        signature[64] = Sign(sender identity, "letterbox/v2/group-envelope",
//                                             bytes 0 .. 72 + 64 m - 1)
//   wrap key_j  = HKDF-SHA256(X25519(ephemeral, member j's agreement key), no salt,
//                             "letterbox/v2/group-wrap" || 0x00 || header[0..72) || member ID_j)
//   wrapped_j   = ChaCha20-Poly1305(wrap key_j, nonce = 12 zero bytes, no AD, content key[32])
//   chunk key   = HKDF-SHA256(content key, no salt,
//                             "letterbox/v2/group-content-key" || 0x00 || header[136 + 64 m])
//   chunks      = as in §16 (metadata chunk 0 of 289 bytes, body chunks of 65,536) under chunk key
//   end[64]     = Sign(sender identity, "letterbox/v2/group-envelope-end",
//                      header[136 + 64 m] || SHA-512(chunk 0 || ... || chunk n))
//
// Streaming on both sides in constant memory: the writer keeps one chunk, the reader one chunk
// and the header (at most 136 + 64 x 1024 bytes). No I/O. As for §16: plaintext handed out
// before the reader's finish() returned true is not yet authenticated to the sender.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agreement.hpp"
#include "envelope.hpp"
#include "identity.hpp"
#include "messages_v2.hpp"  // max_group_envelope_members

namespace letterbox::crypto {

enum class group_envelope_type : std::uint8_t { text = 18, file = 19 };

inline constexpr std::size_t group_id_size = 16;
using group_id = std::array<std::uint8_t, group_id_size>;

inline constexpr std::size_t group_header_prefix_size = 72;  // bytes 0-71, before the list
inline constexpr std::size_t group_wrapped_key_size = 48;    // 32-byte key + 16-byte tag
inline constexpr std::size_t group_member_entry_size = 16 + group_wrapped_key_size;  // 64
inline constexpr std::size_t group_max_members = protocol::v2::max_group_envelope_members;  // per envelope (u16 field)

// 72 + 64 m + 64.
std::size_t group_header_size(std::size_t members) noexcept;
// Exact content size: 136 + 64 m + 305 + body + 16 n + 64 (saturates instead of wrapping).
std::uint64_t group_envelope_content_size(std::size_t members, std::uint64_t body_size) noexcept;
// The largest body whose group envelope for m members fits a u32 content size.
std::uint64_t group_envelope_max_body_size(std::size_t members) noexcept;

struct group_member_entry {
  client_id member{};
  std::array<std::uint8_t, group_wrapped_key_size> wrapped{};
};

// The header, parsed but not verified.
struct group_envelope_header {
  std::uint8_t format = 0;
  std::uint8_t type = 0;
  client_id sender{};
  group_id group{};
  agreement_key ephemeral{};
  std::uint32_t chunk_size = 0;
  std::vector<group_member_entry> members;  // in header order
  signature sig{};
  bool addressed_to(const client_id& id) const noexcept;
};

// Member count of a header prefix (>= 72 bytes), or nothing for fewer bytes.
std::optional<std::uint16_t> group_header_member_count(bytes_view prefix) noexcept;
// Empty unless bytes holds a whole header (only its first group_header_size(m) bytes are read).
std::optional<group_envelope_header> parse_group_envelope_header(bytes_view bytes);

struct group_recipient {
  client_id member{};          // a checked member ID
  agreement_key key{};         // its checked agreement key
};

struct group_seal_request {
  client_id sender{};
  group_id group{};
  std::vector<group_recipient> members;  // 1..1024, distinct IDs (the sender may be one of them)
  group_envelope_type type = group_envelope_type::text;
  std::string name;                      // file base name; empty for a text
  std::uint64_t body_size = 0;
  std::optional<std::uint64_t> sent_at_ms;
};

// Fixed randomness, for tests only.
struct group_seal_randomness {
  agreement_secret ephemeral_secret{};
  std::array<std::uint8_t, 32> content_key{};
  replay_id replay{};
};

// Same use as envelope_writer: construct, content_size(), begin(), seal()..., finish().
// The constructor throws std::invalid_argument on a bad request (no member, more than 1024,
// a member ID twice, a member key giving an all-zero shared secret, a bad name or type).
class group_envelope_writer {
 public:
  group_envelope_writer(const identity_secret& sender_secret, const group_seal_request& request);
  group_envelope_writer(const identity_secret& sender_secret, const group_seal_request& request,
                        const group_seal_randomness& fixed);
  group_envelope_writer(group_envelope_writer&&) noexcept;
  group_envelope_writer& operator=(group_envelope_writer&&) noexcept;
  ~group_envelope_writer();

  std::uint64_t content_size() const noexcept;
  const replay_id& replay() const noexcept;
  const group_envelope_header& header() const noexcept;

  void begin(byte_sink& out);                       // header and chunk 0
  void seal(bytes_view body_piece, byte_sink& out);  // body bytes, any piece sizes
  void finish(byte_sink& out);                      // end signature; throws unless complete

 private:
  struct state;
  std::unique_ptr<state> state_;
};

std::vector<std::uint8_t> seal_group_text(const identity_secret& sender_secret,
                                          const client_id& sender, const group_id& group,
                                          const std::vector<group_recipient>& members,
                                          std::string_view text,
                                          std::optional<std::uint64_t> sent_at_ms = std::nullopt);

enum class group_open_error : std::uint8_t {
  none = 0,
  truncated,
  bad_format,
  wrong_type,
  wrong_sender,
  wrong_group,          // the header's group is not the one expected
  bad_chunk_size,
  bad_member_list,      // member count 0 or over 1024, or a member ID twice
  not_addressed,        // our ID is not in the member list: "not addressed to you"
  unknown_sender,
  sender_key_mismatch,
  bad_signature,
  bad_ephemeral_key,
  bad_wrapped_key,      // our wrapped content key does not open
  bad_chunk,
  bad_metadata,
  size_mismatch,
  trailing_data,
  invalid_text,
  handler_failed,
  bad_end_signature,
};
std::string_view to_string(group_open_error error) noexcept;

struct group_envelope_expectations {
  group_envelope_type type = group_envelope_type::text;  // the entry's message type
  client_id sender{};                                    // the entry's `from`
  client_id self{};                                      // our own ID
  std::optional<group_id> group;                         // when the entry names the group
  std::optional<std::uint64_t> content_size;
};

class group_envelope_handler {
 public:
  virtual ~group_envelope_handler() = default;
  // The header passed the plain checks (format, type, sender, group, chunk size, member list,
  // our ID in the list). Return the sender's checked identity key and our agreement secret.
  virtual std::optional<envelope_keys> keys(const group_envelope_header& header) = 0;
  virtual void metadata(const envelope_metadata& meta) { (void)meta; }
  virtual void body(bytes_view verified_piece) = 0;
};

class group_envelope_reader {
 public:
  group_envelope_reader(const group_envelope_expectations& expect, group_envelope_handler& handler);
  group_envelope_reader(group_envelope_reader&&) noexcept;
  group_envelope_reader& operator=(group_envelope_reader&&) noexcept;
  ~group_envelope_reader();

  bool feed(bytes_view bytes);
  bool finish();
  bool failed() const noexcept;
  bool complete() const noexcept;
  group_open_error error() const noexcept;
  const std::optional<group_envelope_header>& header() const noexcept;
  const std::optional<envelope_metadata>& metadata() const noexcept;
  std::uint64_t consumed() const noexcept;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

using group_key_lookup = std::function<std::optional<envelope_keys>(const group_envelope_header&)>;

struct opened_group_text {
  group_open_error error = group_open_error::none;
  group_id group{};
  envelope_metadata metadata;
  std::string text;
  bool ok() const noexcept { return error == group_open_error::none; }
};

opened_group_text open_group_text(bytes_view content, const client_id& sender,
                                  const client_id& self, const group_key_lookup& lookup);

}  // namespace letterbox::crypto

// Protocol v2 sealed envelopes, types 16 (text) and 17 (file) (docs/PROTOCOL.md §16).
//
//   header[134] = format[1]=1 type[1] sender[16] recipient[16] ephemeral[32] chunk size[4]=65536
//                 signature[64] = Sign(sender identity, "letterbox/v2/envelope", bytes 0-69)
//   key         = HKDF-SHA256(X25519(ephemeral, recipient agreement key), no salt,
//                             "letterbox/v2/content-key" || 0x00 || header[134])
//   chunk i     = ChaCha20-Poly1305(key, nonce = i u64 BE || 00 00 00 || last, no AD)
//   chunk 0     = metadata (fixed 289 bytes: replay ID, sent at, body size, name size, name padded
//                 with zeros to 255), then body chunks of 65,536 bytes (the last one 1..65,536).
//   end[64]     = Sign(sender identity, "letterbox/v2/envelope-end",
//                      header[134] || SHA-512(chunk 0 || ... || chunk n, ciphertexts with tags))
//
// Streaming on both sides with constant memory: the writer keeps at most one chunk, the reader
// buffers at most one chunk (65,552 bytes) whatever the body size. No I/O here: bytes go to a
// byte_sink and verified plaintext to an envelope_handler, both supplied by the caller.
// Plaintext handed out before the reader's finish() returned true is not yet authenticated to
// the sender (only to someone who knows the content key: the sender, or the recipient).
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
#include "identity.hpp"

namespace letterbox::crypto {

enum class envelope_type : std::uint8_t { text = 16, file = 17 };

inline constexpr std::uint8_t envelope_format = 1;
inline constexpr std::size_t envelope_signed_size = 70;    // header bytes 0-69 are signed
inline constexpr std::size_t envelope_header_size = 134;   // ... followed by the signature
inline constexpr std::uint32_t envelope_chunk_size = 65536;  // body bytes per full chunk
inline constexpr std::size_t envelope_tag_size = 16;       // Poly1305 tag after every chunk
inline constexpr std::size_t replay_id_size = 16;
inline constexpr std::size_t max_name_size = 255;
// replay ID[16] sent at[8] body size[8] name size[2] name[255, zero padded]
inline constexpr std::size_t envelope_metadata_size = 16 + 8 + 8 + 2 + max_name_size;      // 289
inline constexpr std::size_t envelope_metadata_chunk_size = envelope_metadata_size + 16;   // 305
inline constexpr std::size_t envelope_max_chunk_size = envelope_chunk_size + envelope_tag_size;
inline constexpr std::size_t envelope_end_size = 64;     // the end signature after the last chunk

using replay_id = std::array<std::uint8_t, replay_id_size>;

// The largest body whose envelope fits SEND's u32 content size (2^32 - 1 bytes): writers refuse
// more, readers refuse a chunk 0 announcing more.
inline constexpr std::uint64_t envelope_max_body_size = 4293918472;

// Number of body chunks n = ceil(body size / 65,536) (0 for an empty body).
std::uint64_t envelope_body_chunks(std::uint64_t body_size) noexcept;
// The exact content size of an envelope: 134 + 305 + body size + 16 n + 64. This is the value of
// SEND's content size field; it is known before a single body byte is read.
std::uint64_t envelope_content_size(std::uint64_t body_size) noexcept;

// Unix time in milliseconds (system clock), the default "sent at".
std::uint64_t unix_millis_now();

// The 134 header bytes, parsed but not verified: nothing in it is trusted until the reader
// has checked the signature with the sender's checked identity key.
struct envelope_header {
  std::uint8_t format = 0;
  std::uint8_t type = 0;  // as on the wire (16, 17, or anything an attacker wrote)
  client_id sender{};
  client_id recipient{};
  agreement_key ephemeral{};
  std::uint32_t chunk_size = 0;
  signature sig{};
};
// Empty unless bytes.size() >= 134 (only the first 134 bytes are read).
std::optional<envelope_header> parse_envelope_header(bytes_view bytes);

// Chunk 0, after it verified.
struct envelope_metadata {
  replay_id replay{};
  std::uint64_t sent_at_ms = 0;
  std::uint64_t body_size = 0;
  // The name as the sender wrote it (empty for a text): well-formed UTF-8 without NUL, <= 255
  // bytes, but not necessarily a safe base name: sanitise it before any use as a path.
  std::string name;
};

// Where sealed bytes go (a socket, a file, a vector). Exceptions propagate to the caller.
class byte_sink {
 public:
  virtual ~byte_sink() = default;
  virtual void write(bytes_view bytes) = 0;
};

class vector_sink final : public byte_sink {
 public:
  std::vector<std::uint8_t> bytes;
  void write(bytes_view data) override { bytes.insert(bytes.end(), data.begin(), data.end()); }
};

// ---------------------------------------------------------------------------------- sealing

struct seal_request {
  client_id sender{};                // our own ID (derived from the identity key)
  client_id recipient{};             // the recipient's checked ID
  agreement_key recipient_key{};     // the recipient's checked agreement key
  envelope_type type = envelope_type::text;
  std::string name;                  // file base name: UTF-8, no NUL, <= 255 bytes; empty for a text
  std::uint64_t body_size = 0;       // exact number of body bytes that will follow
  std::optional<std::uint64_t> sent_at_ms;  // empty: unix_millis_now()
};

// Fixed randomness, for tests and golden vectors only. Production code uses the constructor
// without it (ephemeral secret and replay ID from the OS RNG).
struct seal_randomness {
  agreement_secret ephemeral_secret{};
  replay_id replay{};
};

// Seals one envelope as a stream:
//   envelope_writer w(secret, request);      // signs the header, derives the key
//   send_wire_header(w.content_size());
//   w.begin(sink);                           // header + chunk 0: 439 bytes
//   while (...) w.seal(piece, sink);         // body bytes, any piece sizes, body_size in total
//   w.finish(sink);                          // the 64-byte end signature; throws unless exactly
//                                            // body_size bytes came
// Without finish(sink) the envelope is incomplete: receivers refuse it (truncated).
// Constructor throws std::invalid_argument on a bad request (text with a name, name > 255
// bytes, not UTF-8 or with a NUL, a recipient key giving an all-zero shared secret). The
// streaming writer does not check a text body's UTF-8 (seal_text does; receivers refuse it). The
// writer keeps a copy of the identity secret for the end signature, wiped as soon as finish()
// signed (or a call failed) and on destruction; the content key is wiped on destruction.
class envelope_writer {
 public:
  envelope_writer(const identity_secret& sender_secret, const seal_request& request);
  envelope_writer(const identity_secret& sender_secret, const seal_request& request,
                  const seal_randomness& fixed);
  envelope_writer(envelope_writer&&) noexcept;
  envelope_writer& operator=(envelope_writer&&) noexcept;
  ~envelope_writer();

  std::uint64_t content_size() const noexcept;  // == envelope_content_size(body_size)
  const replay_id& replay() const noexcept;
  const envelope_header& header() const noexcept;

  // Writes the 134-byte header and sealed chunk 0 (439 bytes). Once, before seal().
  // With body_size 0 only finish() follows.
  void begin(byte_sink& out);
  // The next body bytes, any number (also 0). Every chunk is sealed and written as soon as it
  // is complete; the final chunk as soon as the body_size-th byte arrives. Throws
  // std::logic_error before begin() or when more than body_size bytes in total are given.
  void seal(bytes_view body_piece, byte_sink& out);
  // Writes the end signature (64 bytes) over the header and every chunk written. Throws
  // std::logic_error unless begin() ran and exactly body_size body bytes were sealed, or when
  // called twice; then the sink has received exactly content_size() bytes.
  // When begin(), seal() or finish() throws (the sink's exception), the envelope is lost: every
  // later call throws std::logic_error; start a new writer (a new ephemeral key) to send again.
  void finish(byte_sink& out);

 private:
  void begin_unguarded(byte_sink& out);
  void seal_unguarded(bytes_view body_piece, byte_sink& out);
  void finish_unguarded(byte_sink& out);
  struct state;
  std::unique_ptr<state> state_;
};

// A whole text envelope at once (type 16, empty name). Throws std::invalid_argument for a
// text that is not well-formed UTF-8 or contains a NUL.
std::vector<std::uint8_t> seal_text(const identity_secret& sender_secret, const client_id& sender,
                                    const client_id& recipient, const agreement_key& recipient_key,
                                    std::string_view text,
                                    std::optional<std::uint64_t> sent_at_ms = std::nullopt);

// ---------------------------------------------------------------------------------- opening

// Why an envelope could not be verified. Every one of them means: show nothing, keep nothing.
enum class open_error : std::uint8_t {
  none = 0,
  truncated,            // the content ended before the end signature (or before the final chunk)
  bad_format,           // format byte is not 1
  wrong_type,           // header type is not the message's type (16/17)
  wrong_sender,         // header sender is not the entry's sender
  wrong_recipient,      // header recipient is not our own ID
  bad_chunk_size,       // chunk size field is not 65,536
  unknown_sender,       // no checked identity key for the sender (the lookup gave none)
  sender_key_mismatch,  // the identity key given does not derive to the sender ID
  bad_signature,        // the header signature does not verify
  bad_ephemeral_key,    // the ephemeral key gives an all-zero shared secret (low order)
  bad_chunk,            // a chunk failed authentication: altered, reordered, spliced, wrong key
  bad_metadata,         // chunk 0 verified but is malformed (name size, padding, NUL, text name)
  size_mismatch,        // the sizes in chunk 0 do not add up to the message's content size
  trailing_data,        // bytes after the end signature
  invalid_text,         // a text that is not well-formed UTF-8 or contains a NUL
  handler_failed,       // the handler threw (its exception is rethrown from feed())
  bad_end_signature,    // the end signature does not verify: content not sealed by the sender
};
std::string_view to_string(open_error error) noexcept;

// What the receiver knows from the PULL entry, checked against the header.
struct envelope_expectations {
  envelope_type type = envelope_type::text;   // the entry's message type
  client_id sender{};                         // the entry's `from`
  client_id recipient{};                      // our own ID
  std::optional<std::uint64_t> content_size;  // the entry's content size (checked early)
};

struct envelope_keys {
  identity_key sender_key{};      // the sender's checked (pinned) identity key
  agreement_secret own_secret{};  // our agreement secret (copied, then wiped by the reader)
};

// The receiving side's callbacks, in this order: keys() once, metadata() once, body() for
// every body chunk. Nothing passed to metadata() or body() is final before finish() is true:
// until the end signature verified it may come from the recipient's own key (or a thief of it)
// rather than the sender. Write it provisionally (a .part file, a buffer), discard it on failure.
class envelope_handler {
 public:
  virtual ~envelope_handler() = default;
  // The header passed the plain checks (format, type, IDs, chunk size). Return the keys to
  // verify and open it, or nothing when the sender's identity key is not known (unknown_sender).
  virtual std::optional<envelope_keys> keys(const envelope_header& header) = 0;
  // Chunk 0 verified and its sizes are consistent.
  virtual void metadata(const envelope_metadata& meta) { (void)meta; }
  // The plaintext of the next body chunk, after its tag verified (<= 65,536 bytes).
  virtual void body(bytes_view verified_piece) = 0;
};

// Opens one envelope as a stream: feed() the content bytes as they arrive (any sizes, even
// one byte at a time), then finish() at the end of the content. At most one chunk is buffered.
class envelope_reader {
 public:
  envelope_reader(const envelope_expectations& expect, envelope_handler& handler);
  envelope_reader(envelope_reader&&) noexcept;
  envelope_reader& operator=(envelope_reader&&) noexcept;
  ~envelope_reader();

  // false once the envelope failed (error() says why); later calls do nothing and return
  // false. An exception from the handler fails the envelope (handler_failed) and propagates.
  bool feed(bytes_view bytes);
  // The content ended. true iff every chunk verified in order, the last flag was on the final
  // chunk and only there, exactly 64 bytes followed it and they are the sender's end signature
  // (checked with the identity key keys() gave), no byte followed that, the total matched the
  // sizes in chunk 0 exactly (and the expected content size, if given), and a text was
  // well-formed UTF-8.
  bool finish();

  bool failed() const noexcept;
  bool complete() const noexcept;  // finish() returned true
  open_error error() const noexcept;
  const std::optional<envelope_header>& header() const noexcept;      // once parsed
  const std::optional<envelope_metadata>& metadata() const noexcept;  // once chunk 0 verified
  std::uint64_t consumed() const noexcept;  // content bytes accepted so far

 private:
  struct state;
  std::unique_ptr<state> state_;
};

using key_lookup = std::function<std::optional<envelope_keys>(const envelope_header&)>;

struct opened_text {
  open_error error = open_error::none;
  envelope_metadata metadata;  // valid when ok()
  std::string text;            // the verified UTF-8 text when ok(), else empty
  bool ok() const noexcept { return error == open_error::none; }
};

// A whole text envelope at once, for an entry of type 16 from `sender` to `recipient` (our ID).
opened_text open_text(bytes_view content, const client_id& sender, const client_id& recipient,
                      const key_lookup& lookup);

}  // namespace letterbox::crypto

// wire_transcript: records what a server sends back for scripted request sequences as
// deterministic text, the golden v1 wire transcript of wire_transcript_test.cpp.
//
// A transcript is a list of lines. Each request a scenario writes is one line: what the
// scenario says it sends, then its bytes (header and payload). Each response is rendered from
// every byte received: the 7 header bytes, then the payload (one line per 1001 entry and per
// 1004 message). Bytes are hex; runs of four or more equal bytes read "00*252"; anything that
// would not fit a short line (keys, large contents) reads "<N bytes fnv1a64 ...>". A close by
// the server (with how many bytes came before it), a timeout, and a close by the client are
// lines too.
//
// Client IDs are random, so each distinct ID a 1000 answer hands out is replaced by {Cn},
// numbered by first appearance, wherever its 16 bytes occur in the scenario's requests and
// responses (1000, 1001, 1002, 1003, 1004 sender fields); the 1000 line also says whether the
// ID is a well-formed v4 UUID, the one property the placeholder hides. Message IDs are not
// replaced: on a fresh database they are deterministic.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "raw_connection.hpp"

namespace letterbox::test::wire {

// The client IDs of one scenario, numbered 1, 2, ... in the order they were learned.
class id_table {
 public:
  // Number of `id`; a new ID gets the next number.
  int learn(const protocol::client_id& id);
  // Number of the known ID the bytes start with, or 0 (also when fewer than 16 bytes remain).
  int match(protocol::bytes_view bytes) const noexcept;

 private:
  std::vector<protocol::client_id> ids_;
  std::array<bool, 256> first_bytes_{};  // cheap filter: does any known ID start with this byte?
};

// Hex tokens separated by spaces: known IDs as {Cn}, runs of 4+ equal bytes as "xx*N".
std::string render_bytes(protocol::bytes_view bytes, const id_table& ids);
// render_bytes() when the bytes are few and the result short (at most summary_width
// characters), else "<N bytes fnv1a64 H>" with H computed over the same normalised bytes
// (each known ID counts as its placeholder), so it is deterministic too. Empty bytes: "-".
std::string summarise_bytes(protocol::bytes_view bytes, const id_table& ids);
inline constexpr std::size_t summary_width = 160;

// The first line two transcripts disagree on. Lines starting with '#' are comments (the
// provenance header of the golden file) and are skipped on both sides.
struct difference {
  std::size_t expected_line = 0;  // 1-based line numbers in each text; past the end if it ran out
  std::size_t actual_line = 0;
  std::string expected;           // "<end of transcript>" when that side ran out
  std::string actual;
  std::string scenario;           // the "=== ..." heading the difference falls under
};
std::optional<difference> first_difference(std::string_view expected, std::string_view actual);
// A few readable lines about `diff` for a test failure.
std::string describe(const difference& diff);

// Requests written in one go (pipelining): each frame still gets its own transcript line.
class pipeline {
 public:
  void add(std::string what, const protocol::client_id& from, std::uint8_t code, protocol::bytes_view payload,
           std::uint8_t version = protocol::client_version);
  std::size_t size() const noexcept { return frames_.size(); }

 private:
  friend class connection;
  struct frame {
    std::string what;
    protocol::byte_buffer bytes;
  };
  std::vector<frame> frames_;
};

// What receive() saw: a whole response, or not (closed, timed out).
struct received {
  bool complete = false;
  protocol::response_header header;
  protocol::byte_buffer payload;
};

class connection;

// One scenario's recording: its transcript lines and the ID table its connections share.
class recorder {
 public:
  explicit recorder(std::uint16_t port) : port_(port) {}

  // Opens connection number n (1, 2, ...) and records "cn connect".
  connection connect();
  // A line of explanation in the transcript.
  void note(std::string_view text);
  void line(std::string text) { lines_.push_back(std::move(text)); }

  std::uint16_t port() const noexcept { return port_; }
  id_table& ids() noexcept { return ids_; }
  const std::vector<std::string>& lines() const noexcept { return lines_; }

 private:
  std::uint16_t port_;
  int connections_ = 0;
  id_table ids_;
  std::vector<std::string> lines_;
};

// A recorded client connection: every write, response and close lands in the transcript.
// Reads wait at most receive_timeout; a server that neither answers nor closes by then is
// recorded as such (the test then fails on that line instead of hanging).
class connection {
 public:
  static constexpr std::chrono::milliseconds receive_timeout{5000};
  // Largest response payload read; a larger announced one is recorded and the connection dropped.
  static constexpr std::size_t max_payload = 64 * 1024 * 1024;

  connection(recorder& owner, int number);

  // --- Writing: each call is one write (send_content: header+prefix, then 1 MiB pieces) ---
  void send_request(std::string_view what, const protocol::client_id& from, std::uint8_t code,
                    protocol::bytes_view payload, std::uint8_t version = protocol::client_version);
  // Only the 22-byte header, announcing payload_size bytes that may never follow.
  void send_header(std::string_view what, const protocol::client_id& from, std::uint8_t code,
                   std::uint32_t payload_size, std::uint8_t version = protocol::client_version);
  // Any bytes (a header cut short, a prefix after send_header(), one byte at a time, ...).
  void send_raw(std::string_view what, protocol::bytes_view bytes);
  void send_pipeline(const pipeline& requests);
  // One request written in pieces of piece_sizes[i] bytes, one write each. When the pieces
  // add up to less than the whole request, the rest is never written (a request cut short).
  void send_in_pieces(std::string_view what, const protocol::client_id& from, std::uint8_t code,
                      protocol::bytes_view payload, const std::vector<std::size_t>& piece_sizes,
                      std::uint8_t version = protocol::client_version);
  // A 103 whose content is content_pattern(seed): header and prefix in one write, then the
  // first `sent_bytes` bytes of the content (all of it by default) in 1 MiB writes.
  void send_content(std::string_view what, const protocol::client_id& from, const protocol::client_id& to,
                    std::uint8_t type, std::uint32_t content_size, std::uint64_t seed,
                    std::optional<std::uint32_t> sent_bytes = std::nullopt);

  // --- Reading ---------------------------------------------------------------------------
  // Reads one response (the header, then the payload it announces) and records it.
  received receive();
  // send_request() + receive().
  received request(std::string_view what, const protocol::client_id& from, std::uint8_t code,
                   protocol::bytes_view payload, std::uint8_t version = protocol::client_version);
  // 100 with a valid name and make_test_key(key_seed): the ID of the 1000 answer, or the
  // all-0xEE ID when the answer was something else (the transcript shows what).
  protocol::client_id register_client(std::string_view name, std::uint32_t key_seed);
  // Waits (up to receive_timeout) for the server to close and records the outcome.
  void expect_close();

  // --- Ending ----------------------------------------------------------------------------
  void shutdown_send();  // half-close: the server reads EOF
  void close();          // the client closes (mid-request or not)

 private:
  void record(const std::string& text);
  void write(protocol::bytes_view bytes);
  std::string request_line(std::string_view what, protocol::bytes_view frame) const;
  void record_response(const protocol::response_header& header, protocol::bytes_view payload);

  recorder& owner_;
  std::string prefix_;  // "c3"
  raw_connection socket_;
  bool open_ = true;
};

}  // namespace letterbox::test::wire

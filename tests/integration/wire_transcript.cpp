// wire_transcript: the recorder (connections that log every byte) and the text rendering.
#include "wire_transcript.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "protocol_helpers.hpp"

namespace letterbox::test::wire {
namespace {

constexpr std::size_t min_run = 4;                // equal bytes shown as "xx*N" from this many on
constexpr std::size_t max_rendered_bytes = 4096;  // larger byte ranges are always summarised
constexpr std::size_t content_chunk = 1024 * 1024;

std::string hex_byte(std::uint8_t byte) {
  static constexpr char digits[] = "0123456789abcdef";
  return {digits[byte >> 4], digits[byte & 0x0f]};
}

std::string placeholder(int number) { return "{C" + std::to_string(number) + "}"; }

// Walks bytes as the transcript sees them: known IDs as placeholders, runs, single bytes.
template <typename OnId, typename OnRun>
void walk(protocol::bytes_view bytes, const id_table& ids, OnId on_id, OnRun on_run) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (const int id = ids.match(bytes.subspan(i)); id != 0) {
      on_id(id);
      i += protocol::client_id_size;
      continue;
    }
    std::size_t run = 1;
    while (i + run < bytes.size() && bytes[i + run] == bytes[i] && ids.match(bytes.subspan(i + run)) == 0) ++run;
    on_run(bytes[i], run);
    i += run;
  }
}

std::uint64_t fnv1a64(protocol::bytes_view bytes, const id_table& ids) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  auto feed = [&hash](std::uint8_t byte) { hash = (hash ^ byte) * 0x100000001b3ull; };
  walk(
      bytes, ids,
      [&](int id) {
        for (const char c : placeholder(id)) feed(static_cast<std::uint8_t>(c));
      },
      [&](std::uint8_t byte, std::size_t run) {
        for (std::size_t k = 0; k < run; ++k) feed(byte);
      });
  return hash;
}

// Text (a name) for a comment: escaped, bytes before the first NUL, long ones shortened.
std::string quoted(protocol::bytes_view text) {
  constexpr std::size_t shown = 24;
  const auto end = std::find(text.begin(), text.end(), std::uint8_t{0});
  const auto length = static_cast<std::size_t>(end - text.begin());
  std::string out = "\"";
  for (const auto byte : text.first(std::min(length, shown))) {
    if (byte == '"' || byte == '\\') {
      out += '\\';
      out += static_cast<char>(byte);
    } else if (byte >= 0x20 && byte < 0x7f) {
      out += static_cast<char>(byte);
    } else {
      out += "\\x" + hex_byte(byte);
    }
  }
  if (length > shown) out += "...";
  out += "\"";
  if (length > shown) out += " (" + std::to_string(length) + " bytes)";
  return out;
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// A request or response payload; the key of a 100 and of a 1002 is shown apart (as its own
// length + hash), so a registration and the key answers for it can be matched by eye.
std::string payload_summary(std::uint16_t code, protocol::bytes_view payload, const id_table& ids) {
  if (code == code_of(protocol::request_code::register_client) && payload.size() == protocol::register_payload_size)
    return summarise_bytes(payload.first(protocol::name_field_size), ids) + " | key " +
           summarise_bytes(payload.subspan(protocol::name_field_size), ids);
  if (code == code_of(protocol::response_code::public_key) && payload.size() == protocol::public_key_response_size)
    return summarise_bytes(payload.first(protocol::client_id_size), ids) + " | key " +
           summarise_bytes(payload.subspan(protocol::client_id_size), ids);
  return summarise_bytes(payload, ids);
}

bool is_v4_uuid(const protocol::client_id& id) { return (id[6] >> 4) == 4 && (id[8] & 0xc0) == 0x80; }

std::vector<std::string_view> transcript_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const auto end = text.find('\n');
    lines.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

}  // namespace

// --- id_table --------------------------------------------------------------------------------

int id_table::learn(const protocol::client_id& id) {
  const auto found = std::find(ids_.begin(), ids_.end(), id);
  if (found != ids_.end()) return static_cast<int>(found - ids_.begin()) + 1;
  ids_.push_back(id);
  first_bytes_[id[0]] = true;
  return static_cast<int>(ids_.size());
}

int id_table::match(protocol::bytes_view bytes) const noexcept {
  if (bytes.size() < protocol::client_id_size || !first_bytes_[bytes[0]]) return 0;
  for (std::size_t k = 0; k < ids_.size(); ++k) {
    if (std::equal(ids_[k].begin(), ids_[k].end(), bytes.begin())) return static_cast<int>(k) + 1;
  }
  return 0;
}

// --- Rendering -------------------------------------------------------------------------------

std::string render_bytes(protocol::bytes_view bytes, const id_table& ids) {
  std::string text;
  auto separate = [&text] {
    if (!text.empty()) text += ' ';
  };
  walk(
      bytes, ids,
      [&](int id) {
        separate();
        text += placeholder(id);
      },
      [&](std::uint8_t byte, std::size_t run) {
        if (run >= min_run) {
          separate();
          text += hex_byte(byte) + "*" + std::to_string(run);
          return;
        }
        for (std::size_t k = 0; k < run; ++k) {
          separate();
          text += hex_byte(byte);
        }
      });
  return text;
}

std::string summarise_bytes(protocol::bytes_view bytes, const id_table& ids) {
  if (bytes.empty()) return "-";
  if (bytes.size() <= max_rendered_bytes) {
    auto text = render_bytes(bytes, ids);
    if (text.size() <= summary_width) return text;
  }
  char summary[64];
  std::snprintf(summary, sizeof summary, "<%zu bytes fnv1a64 %016llx>", bytes.size(),
                static_cast<unsigned long long>(fnv1a64(bytes, ids)));
  return summary;
}

// --- Comparing -------------------------------------------------------------------------------

std::optional<difference> first_difference(std::string_view expected, std::string_view actual) {
  const auto expected_lines = transcript_lines(expected);
  const auto actual_lines = transcript_lines(actual);
  auto skip_comments = [](const std::vector<std::string_view>& lines, std::size_t i) {
    while (i < lines.size() && lines[i].starts_with('#')) ++i;
    return i;
  };
  std::string scenario;
  std::size_t e = 0, a = 0;
  while (true) {
    e = skip_comments(expected_lines, e);
    a = skip_comments(actual_lines, a);
    const bool expected_done = e >= expected_lines.size();
    const bool actual_done = a >= actual_lines.size();
    if (expected_done && actual_done) return std::nullopt;
    if (expected_done || actual_done || expected_lines[e] != actual_lines[a]) {
      difference diff;
      diff.expected_line = e + 1;
      diff.actual_line = a + 1;
      diff.expected = expected_done ? "<end of transcript>" : std::string(expected_lines[e]);
      diff.actual = actual_done ? "<end of transcript>" : std::string(actual_lines[a]);
      diff.scenario = scenario.empty() ? "<before the first scenario>" : scenario;
      return diff;
    }
    if (actual_lines[a].starts_with("===")) scenario = actual_lines[a];
    ++e;
    ++a;
  }
}

std::string describe(const difference& diff) {
  std::ostringstream text;
  text << "first difference in scenario: " << diff.scenario << "\n"
       << "  golden line " << diff.expected_line << ": " << diff.expected << "\n"
       << "  actual line " << diff.actual_line << ": " << diff.actual;
  return text.str();
}

// --- pipeline --------------------------------------------------------------------------------

void pipeline::add(std::string what, const protocol::client_id& from, std::uint8_t code, protocol::bytes_view payload,
                   std::uint8_t version) {
  const auto header =
      protocol::encode_request_header({from, version, code, static_cast<std::uint32_t>(payload.size())});
  frame f{std::move(what), protocol::byte_buffer(header.size() + payload.size())};
  std::copy(payload.begin(), payload.end(), std::copy(header.begin(), header.end(), f.bytes.begin()));
  frames_.push_back(std::move(f));
}

// --- recorder --------------------------------------------------------------------------------

connection recorder::connect() { return connection(*this, ++connections_); }

void recorder::note(std::string_view text) { line("  # " + std::string(text)); }

// --- connection ------------------------------------------------------------------------------

connection::connection(recorder& owner, int number)
    : owner_(owner), prefix_(std::string("c") + std::to_string(number)), socket_(owner.port(), receive_timeout) {
  record("connect");
}

void connection::record(const std::string& text) { owner_.line(prefix_ + " " + text); }

void connection::write(protocol::bytes_view bytes) {
  if (!open_) return;
  try {
    socket_.send_bytes(bytes);
  } catch (const connection_error& e) {
    record("x write failed: " + std::string(e.what()));
    socket_.close();
    open_ = false;
  }
}

std::string connection::request_line(std::string_view what, protocol::bytes_view frame) const {
  std::string text = "> " + std::string(what) + " | hdr " +
                     render_bytes(frame.first(std::min(frame.size(), protocol::request_header_size)), owner_.ids());
  if (frame.size() > protocol::request_header_size)
    text += " | " + payload_summary(frame[17], frame.subspan(protocol::request_header_size), owner_.ids());
  return text;
}

void connection::send_request(std::string_view what, const protocol::client_id& from, std::uint8_t code,
                              protocol::bytes_view payload, std::uint8_t version) {
  pipeline one;
  one.add(std::string(what), from, code, payload, version);
  send_pipeline(one);
}

void connection::send_header(std::string_view what, const protocol::client_id& from, std::uint8_t code,
                             std::uint32_t payload_size, std::uint8_t version) {
  const auto header = protocol::encode_request_header({from, version, code, payload_size});
  record(request_line(what, header) + " | (header only)");
  write(header);
}

void connection::send_raw(std::string_view what, protocol::bytes_view bytes) {
  record("> " + std::string(what) + " | raw " + summarise_bytes(bytes, owner_.ids()));
  write(bytes);
}

void connection::send_pipeline(const pipeline& requests) {
  protocol::byte_buffer bytes;
  std::size_t index = 0;
  for (const auto& frame : requests.frames_) {
    const auto label = requests.size() > 1 ? std::string("[") + std::to_string(++index) + "/" +
                                                 std::to_string(requests.size()) + "] " + frame.what
                                           : frame.what;
    record(request_line(label, frame.bytes));
    bytes.insert(bytes.end(), frame.bytes.begin(), frame.bytes.end());
  }
  write(bytes);
}

void connection::send_in_pieces(std::string_view what, const protocol::client_id& from, std::uint8_t code,
                                protocol::bytes_view payload, const std::vector<std::size_t>& piece_sizes,
                                std::uint8_t version) {
  pipeline one;
  one.add(std::string(what), from, code, payload, version);
  const protocol::bytes_view frame = one.frames_.front().bytes;
  std::string sizes;
  std::size_t total = 0;
  for (const auto size : piece_sizes) {
    if (!sizes.empty()) sizes += '+';
    sizes += std::to_string(size);
    total += size;
  }
  if (total > frame.size()) throw std::invalid_argument("send_in_pieces: pieces larger than the request");
  std::string text = request_line(what, frame) + " | written in " + plural(piece_sizes.size(), "piece", "pieces");
  text += total < frame.size() ? ", only " + std::to_string(total) + " of " + std::to_string(frame.size()) + " bytes"
                               : ": " + sizes;
  record(text);
  std::size_t at = 0;
  for (const auto size : piece_sizes) {
    write(frame.subspan(at, size));
    at += size;
  }
}

void connection::send_content(std::string_view what, const protocol::client_id& from, const protocol::client_id& to,
                              std::uint8_t type, std::uint32_t content_size, std::uint64_t seed,
                              std::optional<std::uint32_t> sent_bytes) {
  const std::uint32_t payload_size = static_cast<std::uint32_t>(protocol::send_message_prefix_size + content_size);
  const auto header = protocol::encode_request_header(
      {from, protocol::client_version, code_of(protocol::request_code::send_message), payload_size});
  const auto prefix = protocol::encode_send_message_prefix({to, type, content_size});
  protocol::byte_buffer front(header.begin(), header.end());
  front.insert(front.end(), prefix.begin(), prefix.end());
  const std::uint32_t to_send = std::min(sent_bytes.value_or(content_size), content_size);
  std::string text = request_line(what, front) + " | content " + std::to_string(content_size) + " bytes of pattern " +
                     std::to_string(seed);
  if (to_send < content_size) text += ", only " + std::to_string(to_send) + " sent";
  record(text);
  write(front);
  content_pattern pattern(seed);
  protocol::byte_buffer chunk(std::min<std::size_t>(to_send, content_chunk));
  for (std::uint32_t left = to_send; left > 0 && open_;) {
    const auto n = std::min<std::size_t>(left, chunk.size());
    std::span<std::uint8_t> part(chunk.data(), n);
    pattern.fill(part);
    write(part);
    left -= static_cast<std::uint32_t>(n);
  }
}

received connection::receive() {
  received result;
  if (!open_) {
    record("< (not read: the connection is closed)");
    return result;
  }
  protocol::response_header_bytes header_bytes{};
  std::size_t got = 0;
  try {
    got = socket_.read_or_close(header_bytes);
    if (got < header_bytes.size()) {
      record(got == 0 ? std::string("< closed by server")
                      : "< closed by server after " + std::to_string(got) + " header bytes: " +
                            render_bytes(std::span(header_bytes).first(got), owner_.ids()));
      socket_.close();
      open_ = false;
      return result;
    }
    result.header = protocol::decode_response_header(header_bytes);
    if (result.header.payload_size > max_payload) {
      record("< " + std::to_string(result.header.code) + " | " + render_bytes(header_bytes, owner_.ids()) +
             " | payload too large to record, connection dropped");
      socket_.close();
      open_ = false;
      return result;
    }
    result.payload.resize(result.header.payload_size);
    got = socket_.read_or_close(result.payload);
  } catch (const operation_timeout&) {
    record("< nothing more within " + std::to_string(receive_timeout.count()) + " ms (connection dropped)");
    open_ = false;
    return result;
  }
  if (got < result.payload.size()) {
    record("< " + std::to_string(result.header.code) + " | " + render_bytes(header_bytes, owner_.ids()) +
           " | closed by server after " + std::to_string(got) + " payload bytes: " +
           summarise_bytes(std::span(result.payload).first(got), owner_.ids()));
    socket_.close();
    open_ = false;
    return result;
  }
  result.complete = true;
  record_response(result.header, result.payload);
  return result;
}

void connection::record_response(const protocol::response_header& header, protocol::bytes_view payload) {
  auto& ids = owner_.ids();
  const auto header_bytes = protocol::encode_response_header(header);
  std::string text = "< " + std::to_string(header.code) + " | " + render_bytes(header_bytes, ids);
  std::vector<std::string> details;
  if (header.code == code_of(protocol::response_code::registered) && payload.size() == protocol::client_id_size) {
    protocol::client_id id{};
    std::copy(payload.begin(), payload.end(), id.begin());
    ids.learn(id);
    text += " | " + render_bytes(payload, ids) + (is_v4_uuid(id) ? " (v4 UUID)" : " (not a v4 UUID)");
  } else if (header.code == code_of(protocol::response_code::client_list) && !payload.empty() &&
             payload.size() % protocol::client_list_entry_size == 0) {
    text += " | " + plural(payload.size() / protocol::client_list_entry_size, "entry", "entries");
    for (std::size_t at = 0; at < payload.size(); at += protocol::client_list_entry_size) {
      const auto entry = payload.subspan(at, protocol::client_list_entry_size);
      details.push_back(summarise_bytes(entry, ids) + "  " +
                        quoted(entry.subspan(protocol::client_id_size)));
    }
  } else if (header.code == code_of(protocol::response_code::messages) && !payload.empty()) {
    std::size_t at = 0, count = 0;
    while (at + protocol::pulled_message_header_size <= payload.size()) {
      const auto message = protocol::decode_pulled_message_header(
          payload.subspan(at, protocol::pulled_message_header_size));
      if (message.content_size > payload.size() - at - protocol::pulled_message_header_size) break;
      details.push_back(render_bytes(payload.subspan(at, protocol::pulled_message_header_size), ids) + " | " +
                        summarise_bytes(payload.subspan(at + protocol::pulled_message_header_size,
                                                        message.content_size),
                                        ids));
      at += protocol::pulled_message_header_size + message.content_size;
      ++count;
    }
    text += " | " + plural(count, "message", "messages");
    if (at < payload.size()) details.push_back("unparsed rest: " + summarise_bytes(payload.subspan(at), ids));
  } else if (!payload.empty()) {
    text += " | " + payload_summary(header.code, payload, ids);
  }
  record(text);
  for (const auto& detail : details) record("<   " + detail);
}

received connection::request(std::string_view what, const protocol::client_id& from, std::uint8_t code,
                             protocol::bytes_view payload, std::uint8_t version) {
  send_request(what, from, code, payload, version);
  return receive();
}

protocol::client_id connection::register_client(std::string_view name, std::uint32_t key_seed) {
  const auto payload = protocol::encode_register_request({std::string(name), make_test_key(key_seed)});
  const auto reply = request("100 register " + quoted(payload) + " key " + std::to_string(key_seed), {},
                             code_of(protocol::request_code::register_client), payload);
  protocol::client_id id{};
  if (reply.complete && reply.header.code == code_of(protocol::response_code::registered) &&
      reply.payload.size() == id.size()) {
    std::copy(reply.payload.begin(), reply.payload.end(), id.begin());
  } else {
    id.fill(0xEE);
  }
  return id;
}

void connection::expect_close() {
  if (!open_) {
    record("< (already closed)");
    return;
  }
  std::uint8_t byte = 0;
  try {
    if (socket_.read_or_close(std::span(&byte, 1)) == 0) {
      record("< closed by server");
    } else {
      record("< data instead of a close, first byte " + hex_byte(byte));
    }
  } catch (const operation_timeout&) {
    record("< still open after " + std::to_string(receive_timeout.count()) + " ms (connection dropped)");
  }
  socket_.close();
  open_ = false;
}

void connection::shutdown_send() {
  record("half-close (client sends EOF)");
  try {
    socket_.shutdown_send();
  } catch (const connection_error& e) {
    record("x shutdown failed: " + std::string(e.what()));
  }
}

void connection::close() {
  record("closed by client");
  socket_.close();
  open_ = false;
}

}  // namespace letterbox::test::wire

// Escaping of network text for the terminal (see terminal_text.hpp).
#include "terminal_text.hpp"

#include <cstdint>
#include <cstdio>

namespace letterbox::client {
namespace {

// Length of the well-formed UTF-8 sequence at text[at] and its code point, or 0 when the
// bytes there are not one (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF).
std::size_t utf8_sequence(std::string_view text, std::size_t at, char32_t& code_point) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[at + i]); };
  const auto lead = byte(0);
  std::size_t length = 0;
  char32_t value = 0, minimum = 0;
  if (lead < 0x80) {
    code_point = lead;
    return 1;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, value = lead & 0x1F, minimum = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, value = lead & 0x0F, minimum = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, value = lead & 0x07, minimum = 0x10000;
  } else {
    return 0;
  }
  if (at + length > text.size()) return 0;
  for (std::size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xC0) != 0x80) return 0;
    value = (value << 6) | (byte(i) & 0x3F);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) return 0;
  code_point = value;
  return length;
}

bool reorders_display(char32_t c) { return (c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069); }

void append_byte_escape(std::string& out, std::uint8_t byte) {
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "\\x%02x", byte);
  out += buffer;
}

}  // namespace

std::string escape_for_terminal(std::string_view text, line_breaks breaks) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t at = 0; at < text.size();) {
    char32_t c = 0;
    const auto length = utf8_sequence(text, at, c);
    if (length == 0) {  // not UTF-8: show the byte, resynchronise on the next one
      append_byte_escape(out, static_cast<std::uint8_t>(text[at]));
      ++at;
      continue;
    }
    if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c == 0x7F) {
      if (breaks == line_breaks::keep && (c == '\n' || c == '\t')) out += static_cast<char>(c);
      else append_byte_escape(out, static_cast<std::uint8_t>(c));
    } else if ((c >= 0x80 && c <= 0x9F) || reorders_display(c)) {
      char buffer[16];
      std::snprintf(buffer, sizeof buffer, "\\u{%04x}", static_cast<unsigned>(c));
      out += buffer;
    } else {
      out.append(text.substr(at, length));
    }
    at += length;
  }
  return out;
}

std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // a continuation byte
  return text.substr(0, cut);
}

std::size_t utf8_sequence_length(std::string_view text, std::size_t at) {
  char32_t ignored = 0;
  return utf8_sequence(text, at, ignored);
}

bool is_valid_utf8(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    char32_t c = 0;
    const auto length = utf8_sequence(text, at, c);
    if (length == 0) return false;
    at += length;
  }
  return true;
}

}  // namespace letterbox::client

// Output hygiene: text that came from the network (names, texts, file names) made safe to
// write to a terminal. Nothing a peer or the server sends reaches the terminal raw.
#pragma once

#include <string>
#include <string_view>

namespace letterbox::client {

enum class line_breaks { keep, escape };

// text with everything a terminal could act on replaced by a visible escape:
// - C0 controls (0x00-0x1F) and DEL as \xNN (with line_breaks::keep, newline and tab stay),
//   so ESC sequences, carriage returns and backspaces cannot rewrite the screen;
// - C1 controls (U+0080-U+009F) and the bidirectional overrides and isolates (U+202A-U+202E,
//   U+2066-U+2069), which reorder what is displayed, as \u{XXXX};
// - every byte that is not part of well-formed UTF-8 (overlong forms, surrogates, code
//   points above U+10FFFF, truncated sequences) as \xNN;
// - a backslash as \\, so that an escape in the output always means an escape was made.
// Everything else, including any printable non-ASCII character, is kept as is.
std::string escape_for_terminal(std::string_view text, line_breaks breaks = line_breaks::escape);

// True when text is well-formed UTF-8 (the same rules as escape_for_terminal).
bool is_valid_utf8(std::string_view text);

// text cut to at most max_bytes, never inside a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes);

// The length of the well-formed UTF-8 sequence starting at text[at] (1-4), or 0 when the bytes
// there are not one. at must be < text.size().
std::size_t utf8_sequence_length(std::string_view text, std::size_t at);

}  // namespace letterbox::client

// Small text helpers shared by the client's file parsers and its menu.
#pragma once

#include <string_view>

namespace letterbox::client {

// text without leading and trailing blanks (space, tab, CR, LF). The view points into text.
inline std::string_view trim_blanks(std::string_view text) {
  constexpr std::string_view blanks = " \t\r\n";
  const auto first = text.find_first_not_of(blanks);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(blanks) - first + 1);
}

}  // namespace letterbox::client

// The interactive numbered menu over any pair of streams (stdin/stdout, or a script's pipe).
#pragma once

#include <iosfwd>
#include <optional>
#include <string_view>

#include "operations.hpp"

namespace letterbox::client {

enum class menu_option {
  exit_client = 0,
  register_user = 1,
  list_clients = 2,
  request_public_key = 3,
  pull_messages = 4,
  send_text = 5,
  send_file = 50,
  request_symmetric_key = 51,
  send_symmetric_key = 52,
  show_safety_number = 6,   // protocol v2
  trust_changed_key = 7,    // protocol v2
  who_am_i = 8,
  live_chat = 10,           // protocol v2, live delivery (Part V)
  // Groups (protocol v2, group_commands.hpp): 60-69.
  group_create = 60,
  group_invite = 61,
  group_join = 62,
  group_leave = 63,
  group_kick = 64,
  group_ban = 65,
  group_members = 66,
  group_list = 67,
  group_send_text = 68,
  group_send_file = 69,
};

// Parses one input line: a menu number with optional surrounding blanks. Returns nullopt for
// anything else (empty, not a number, a number that is not on the menu).
std::optional<menu_option> parse_menu_choice(std::string_view line);

// What one received message looks like on screen: "From:", "Content:", content, end marker.
// Everything from the network goes through escape_for_terminal (a text keeps its newlines and
// tabs): control characters and invalid UTF-8 are shown as visible escapes such as \x1b.
void print_message(std::ostream& out, const received_message& message);

// The sender line of a message: its name, escaped, with "(legacy, unauthenticated)" for a v1
// sender reached through a v2 mailbox.
std::string sender_label(const received_message& message);

// Runs the menu until "0" or end of input. Never throws for a failed operation: each error
// is printed and the menu continues, except a refused downgrade to v1, which ends it with
// status 3. Returns the process exit status (0 at "0" or end of input).
int run_menu(client_operations& client, std::istream& in, std::ostream& out);

}  // namespace letterbox::client

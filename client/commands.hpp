// The scriptable subcommands (client register|list|send|send-file|pull|verify|trust|whoami):
// one operation each, stable output lines (or JSON lines), and exit codes a script can test.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

#include "operations.hpp"

namespace letterbox::client {

// Exit codes of every subcommand (and of the menu's start-up).
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int error = 1;           // the operation failed (network, server refusal, file, ...)
inline constexpr int usage = 2;           // bad command line
inline constexpr int downgrade = 3;       // a v2 server answered as v1-only: fallback refused
inline constexpr int key_refused = 4;     // a peer's keys failed the checks or differ from the pin
}  // namespace exit_code

// The exit code for an error of that kind.
int exit_code_for(const client_error& e);

struct command_output {
  std::ostream& out;   // results
  std::ostream& err;   // errors and notes
  bool json = false;   // one JSON object a line instead of "event key=value ..."
};

// One result line: `event key=value key=value ...`, each value escaped for the terminal with
// spaces as \x20 (so a value never holds a space); or, with json, {"event":..,"key":"value"}.
// A trailing free-text part (rest) follows the fields after one space, escaped but with its
// spaces kept; in JSON it is the field "text".
void emit(const command_output& output, std::string_view event,
          std::initializer_list<std::pair<std::string_view, std::string>> fields, std::optional<std::string> rest = {});

// Each subcommand returns its exit code; errors are reported on output.err, never thrown.
int command_register(client_operations& client, const std::string& name, const command_output& output);
int command_list(client_operations& client, const command_output& output);
// text == nullopt or "-": the text is read from input (all of it, at most max_text_in_memory).
int command_send(client_operations& client, const std::string& name, const std::optional<std::string>& text,
                 std::istream& input, const command_output& output);
int command_send_file(client_operations& client, const std::string& name, const std::filesystem::path& path,
                      const command_output& output);
int command_pull(client_operations& client, const command_output& output);
// Live chat with NAME (Part V): 'chat with=NAME state=subscribed', then a 'message' line per
// message that arrives (as pull prints them), a 'sent' line per line of input sent (after its
// 2005), and 'chat ... state=ended' at the end of input.
// NAME "#GROUP" (a group name or ID after '#', as send takes it): command_group_chat.
int command_chat(client_operations& client, const std::string& name, std::istream& input, const command_output& output);
// Live chat in a group we are a member of: 'chat group=G state=subscribed', 'message' lines as
// above, a 'group-sent' line (as `send '#G'` prints it) per line of input sent, then
// 'chat group=G state=ended'.
int command_group_chat(client_operations& client, const std::string& group, std::istream& input,
                       const command_output& output);
int command_verify(client_operations& client, const std::string& name, const command_output& output);
// Without yes, asks on output.err and reads "yes" from input.
int command_trust(client_operations& client, const std::string& name, bool yes, std::istream& input,
                  const command_output& output);
int command_whoami(client_operations& client, const command_output& output);

}  // namespace letterbox::client

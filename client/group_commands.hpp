// The scriptable group subcommands (client group create|invite|join|leave|kick|ban|unban|
// handover|members|list, and send/send-file to #GROUP), and the menu's group options 60-69.
// Output lines and exit codes as commands.hpp says.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

#include "commands.hpp"

namespace letterbox::client {

int command_group_create(client_operations& client, const std::string& name, bool open, const command_output& output);
// action: invite, kick, ban, unban, handover.
int command_group_target(client_operations& client, const std::string& action, const std::string& group,
                         const std::string& user, const command_output& output);
// action: join, leave.
int command_group_self(client_operations& client, const std::string& action, const std::string& group,
                       const command_output& output);
int command_group_members(client_operations& client, const std::string& group, const command_output& output);
int command_group_list(client_operations& client, const command_output& output);
// group: "#name" or "#ID" as given to send; text nullopt or "-": read from input.
int command_group_send(client_operations& client, const std::string& group, const std::optional<std::string>& text,
                       std::istream& input, const command_output& output);
int command_group_send_file(client_operations& client, const std::string& group, const std::filesystem::path& path,
                            const command_output& output);

// True for a send target naming a group ("#room").
inline bool is_group_target(const std::string& name) { return !name.empty() && name.front() == '#'; }

// The line a group text is shown as: "#group <sender>: text", every part escaped for the terminal.
std::string group_text_line(const received_message& message);

// Menu options 60-69 (menu.cpp calls it for them). Returns false if input ended while asking.
bool run_group_option(int option, client_operations& client, std::istream& in, std::ostream& out);
// The menu lines of the group options.
extern const char* const group_menu_text;

}  // namespace letterbox::client

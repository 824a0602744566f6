// The group subcommands and menu options (see group_commands.hpp).
#include "group_commands.hpp"

#include <istream>
#include <ostream>

#include "groups.hpp"
#include "progress.hpp"
#include "terminal_text.hpp"
#include "text.hpp"

namespace letterbox::client {
namespace {

namespace proto = letterbox::protocol;

template <typename Body>
int guarded(const command_output& output, Body&& body) {
  try {
    return body();
  } catch (const client_error& e) {
    output.err << "client: " << escape_for_terminal(e.what()) << "\n";
    return exit_code_for(e);
  } catch (const std::exception& e) {
    output.err << "client: " << escape_for_terminal(e.what()) << "\n";
    return exit_code::error;
  }
}

const char* yes_no(bool b) { return b ? "yes" : "no"; }

std::string read_all(std::istream& input) {
  std::string body;
  char buffer[64 * 1024];
  while (input.read(buffer, sizeof buffer) || input.gcount() > 0) {
    body.append(buffer, static_cast<std::size_t>(input.gcount()));
    if (body.size() > max_text_in_memory)
      throw client_error(client_error::kind::invalid_input, "the text on stdin is too long: send it as a file (send-file)");
  }
  if (!body.empty() && body.back() == '\n') body.pop_back();  // the line end that ended it
  if (!body.empty() && body.back() == '\r') body.pop_back();
  return body;
}

std::string strip_hash(const std::string& group) { return is_group_target(group) ? group.substr(1) : group; }

}  // namespace

const char* const group_menu_text =
    "60) Create a group\n"
    "61) Invite a user to a group\n"
    "62) Join a group\n"
    "63) Leave a group\n"
    "64) Kick a member (admin)\n"
    "65) Ban a user (admin)\n"
    "66) Show the members of a group\n"
    "67) List groups\n"
    "68) Send a text to a group\n"
    "69) Send a file to a group\n";

std::string group_text_line(const received_message& m) {
  // Appended piece by piece: "#" + std::string + ... trips g++ 12's -Wrestrict at -O3 (a false
  // positive in operator+ on a short literal).
  std::string line = "#";
  line += escape_for_terminal(m.group);
  line += " <";
  line += escape_for_terminal(m.sender);
  line += ">: ";
  line += escape_for_terminal(m.text, line_breaks::keep);
  return line;
}

int command_group_create(client_operations& client, const std::string& name, bool open, const command_output& output) {
  return guarded(output, [&] {
    group_operations groups(client);
    const auto id = groups.create(name, open);
    emit(output, "group-created", {{"id", proto::to_hex(id)}, {"name", name}, {"open", yes_no(open)}});
    return exit_code::ok;
  });
}

int command_group_target(client_operations& client, const std::string& action, const std::string& group,
                         const std::string& user, const command_output& output) {
  return guarded(output, [&] {
    group_operations groups(client);
    const auto g = strip_hash(group);
    std::string event;
    if (action == "invite") groups.invite(g, user), event = "group-invited";
    else if (action == "kick") groups.kick(g, user), event = "group-kicked";
    else if (action == "ban") groups.ban(g, user), event = "group-banned";
    else if (action == "unban") groups.unban(g, user), event = "group-unbanned";
    else if (action == "handover") groups.handover(g, user), event = "group-handed-over";
    else throw client_error(client_error::kind::invalid_input, "unknown group action " + action);
    emit(output, event, {{"group", g}, {"user", user}});
    return exit_code::ok;
  });
}

int command_group_self(client_operations& client, const std::string& action, const std::string& group,
                       const command_output& output) {
  return guarded(output, [&] {
    group_operations groups(client);
    const auto g = strip_hash(group);
    if (action == "join") groups.join(g);
    else if (action == "leave") groups.leave(g);
    else throw client_error(client_error::kind::invalid_input, "unknown group action " + action);
    emit(output, action == "join" ? "group-joined" : "group-left", {{"group", g}});
    return exit_code::ok;
  });
}

int command_group_members(client_operations& client, const std::string& group, const command_output& output) {
  return guarded(output, [&] {
    group_operations groups(client);
    const auto g = strip_hash(group);
    for (const auto& m : groups.members(g))
      emit(output, "member", {{"group", g}, {"id", proto::to_hex(m.id)}, {"name", m.name}, {"admin", yes_no(m.admin)}});
    return exit_code::ok;
  });
}

int command_group_list(client_operations& client, const command_output& output) {
  return guarded(output, [&] {
    group_operations groups(client);
    for (const auto& g : groups.list())
      emit(output, "group", {{"id", proto::to_hex(g.id)}, {"name", g.name}, {"open", yes_no(g.open)},
                             {"member", yes_no(g.member)}, {"admin", yes_no(g.admin)}, {"invited", yes_no(g.invited)},
                             {"members", std::to_string(g.members)}});
    return exit_code::ok;
  });
}

int command_group_send(client_operations& client, const std::string& group, const std::optional<std::string>& text,
                       std::istream& input, const command_output& output) {
  return guarded(output, [&] {
    const std::string body = (!text || *text == "-") ? read_all(input) : *text;
    group_operations groups(client);
    const auto r = groups.send_text(strip_hash(group), body);
    emit(output, "group-sent", {{"group", strip_hash(group)}, {"id", proto::to_hex(r.group)},
                                {"delivered", std::to_string(r.delivered)}, {"skipped", std::to_string(r.skipped)},
                                {"sealed-for", std::to_string(r.sealed_for)}});
    return exit_code::ok;
  });
}

int command_group_send_file(client_operations& client, const std::string& group, const std::filesystem::path& path,
                            const command_output& output) {
  return guarded(output, [&] {
    group_operations groups(client);
    const auto r = groups.send_file(strip_hash(group), path, make_terminal_progress("sending file"));
    emit(output, "group-sent", {{"group", strip_hash(group)}, {"id", proto::to_hex(r.group)},
                                {"delivered", std::to_string(r.delivered)}, {"skipped", std::to_string(r.skipped)},
                                {"sealed-for", std::to_string(r.sealed_for)}});
    return exit_code::ok;
  });
}

bool run_group_option(int option, client_operations& client, std::istream& in, std::ostream& out) {
  const auto ask = [&](std::string_view prompt) -> std::optional<std::string> {
    out << prompt << std::flush;
    std::string line;
    if (!std::getline(in, line)) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return std::string(trim_blanks(line));
  };
  group_operations groups(client);
  switch (option) {
    case 60: {
      const auto name = ask("Enter group name: ");
      if (!name) return false;
      const auto open = ask("Open to everyone (a chat room)? yes/no: ");
      if (!open) return false;
      const auto id = groups.create(*name, *open == "yes");
      out << "Group " << escape_for_terminal(*name) << " created (ID " << proto::to_hex(id) << "); you are its admin.\n";
      return true;
    }
    case 61: case 64: case 65: {
      const auto group = ask("Enter group: ");
      if (!group) return false;
      const auto user = ask("Enter user name: ");
      if (!user) return false;
      const auto g = strip_hash(*group);
      if (option == 61) groups.invite(g, *user), out << "Invited ";
      if (option == 64) groups.kick(g, *user), out << "Kicked ";
      if (option == 65) groups.ban(g, *user), out << "Banned ";
      out << escape_for_terminal(*user) << " (#" << escape_for_terminal(g) << ").\n";
      return true;
    }
    case 62: case 63: {
      const auto group = ask("Enter group: ");
      if (!group) return false;
      const auto g = strip_hash(*group);
      if (option == 62) groups.join(g), out << "Joined #" << escape_for_terminal(g) << ".\n";
      else groups.leave(g), out << "Left #" << escape_for_terminal(g) << ".\n";
      return true;
    }
    case 66: {
      const auto group = ask("Enter group: ");
      if (!group) return false;
      for (const auto& m : groups.members(strip_hash(*group)))
        out << escape_for_terminal(m.name) << (m.admin ? " (admin)" : "") << "\n";
      return true;
    }
    case 67: {
      const auto all = groups.list();
      if (all.empty()) out << "No groups.\n";
      for (const auto& g : all)
        out << "#" << escape_for_terminal(g.name) << " " << proto::to_hex(g.id) << " members " << g.members
            << (g.open ? " open" : "") << (g.admin ? " admin" : g.member ? " member" : g.invited ? " invited" : "") << "\n";
      return true;
    }
    case 68: {
      const auto group = ask("Enter group: ");
      if (!group) return false;
      const auto text = ask("Enter message: ");
      if (!text) return false;
      const auto r = groups.send_text(strip_hash(*group), *text);
      out << "Message sent to #" << escape_for_terminal(strip_hash(*group)) << " (" << r.delivered << " delivered, "
          << r.skipped << " skipped).\n";
      return true;
    }
    case 69: {
      const auto group = ask("Enter group: ");
      if (!group) return false;
      const auto path = ask("Enter file path: ");
      if (!path) return false;
      const auto r = groups.send_file(strip_hash(*group), *path, make_terminal_progress("sending file"));
      out << "File sent to #" << escape_for_terminal(strip_hash(*group)) << " (" << r.delivered << " delivered, "
          << r.skipped << " skipped).\n";
      return true;
    }
    default: return true;
  }
}

}  // namespace letterbox::client

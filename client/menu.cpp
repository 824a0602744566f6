// The numbered menu: reads choices and arguments line by line, calls client operations,
// prints results and errors (see menu.hpp).
#include "menu.hpp"

#include <charconv>
#include <cstdint>
#include <ctime>
#include <istream>
#include <ostream>
#include <string>

#include "group_commands.hpp"
#include "groups.hpp"
#include "progress.hpp"
#include "terminal_text.hpp"
#include "text.hpp"

namespace letterbox::client {
namespace {

constexpr std::string_view menu_text =
    "MessageU client at your service.\n"
    "\n"
    "1) Register\n"
    "2) Request for clients list\n"
    "3) Request for public key\n"
    "4) Request for waiting messages\n"
    "5) Send a text message\n"
    "50) Send a file\n"
    "51) Send a request for symmetric key\n"
    "52) Send your symmetric key\n"
    "6) Show the safety number of a user\n"
    "7) Accept a user's changed key\n"
    "8) Who am I\n"
    "10) Live chat with a user, or in a #group (typed lines are sent; the end of input ends it)\n";

// Pulls are repeated while they return messages (the server may split a large mailbox),
// at most this many times per menu choice.
constexpr int max_pulls_per_choice = 64;

// Prompts and reads one line; nullopt at end of input.
std::optional<std::string> ask(std::istream& in, std::ostream& out, std::string_view prompt) {
  out << prompt << std::flush;
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

void print_error(std::ostream& out, const client_error& e) {
  switch (e.error_kind()) {
    case client_error::kind::server_error: out << escape_for_terminal(e.what()) << "\n"; break;  // "server responded with an error..."
    case client_error::kind::file_not_found: out << "file not found\n"; break;
    default: out << "error: " << escape_for_terminal(e.what()) << "\n"; break;  // may quote names from the network
  }
}

std::string not_needed_note(const std::string& name) {
  return "Not needed: " + escape_for_terminal(name) +
         " is a v2 peer; messages to it are sealed automatically, no key exchange.\n";
}

// A v2 peer's presence in the list (Part V §30): "(online)", "(offline, last seen 2026-12-01
// 14:50:09 UTC)", or "(offline)" when the server has not seen it since it started.
std::string presence_text(bool online, std::uint64_t last_seen) {
  if (online) return "(online)";
  if (last_seen == 0) return "(offline)";
  const auto seconds = static_cast<std::time_t>(last_seen);
  std::tm utc{};
  char when[32] = "?";
  if (::gmtime_r(&seconds, &utc) != nullptr) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &utc);
  return std::string("(offline, last seen ") + when + " UTC)";
}

// Runs one chosen option; returns false if input ended while asking for its arguments.
bool run_option(menu_option option, client_operations& client, std::istream& in, std::ostream& out) {
  const auto ask_user = [&] {
    auto name = ask(in, out, "Enter user name: ");
    if (name) *name = std::string(trim_blanks(*name));
    return name;
  };
  switch (option) {
    case menu_option::exit_client: return true;
    case menu_option::register_user: {
      const auto name = ask(in, out, "Enter your name: ");
      if (!name) return false;
      client.register_user(std::string(trim_blanks(*name)));
      out << "Registered as " << client.my_name() << ".\n";
      return true;
    }
    case menu_option::list_clients: {
      const auto clients = client.list_clients();
      if (clients.empty()) out << "No other clients are registered.\n";
      for (const auto& c : clients) {
        out << escape_for_terminal(c.name) << (c.kind == peer_kind::legacy ? " (legacy, unauthenticated)" : "");
        if (c.online) out << " " << presence_text(*c.online, c.last_seen);  // a v2 peer, the server has presence
        out << "\n";
      }
      return true;
    }
    case menu_option::request_public_key: {
      const auto name = ask_user();
      if (!name) return false;
      client.request_public_key(*name);
      if (client.kind_of(*name) == peer_kind::v2)
        out << "Keys of " << escape_for_terminal(*name)
            << " checked and pinned (a v2 peer: no key exchange is needed, messages are sealed automatically).\n";
      else
        out << "Public key of " << escape_for_terminal(*name) << " received.\n";
      return true;
    }
    case menu_option::pull_messages: {
      std::size_t total = 0;
      const auto show = [&](const received_message& m) { print_message(out, m); };
      for (int round = 0; round < max_pulls_per_choice; ++round) {
        const auto got = client.pull_messages(show, make_terminal_progress("receiving file"));
        total += got;
        if (got == 0) break;
      }
      if (total == 0) out << "No waiting messages.\n";
      return true;
    }
    case menu_option::send_text: {
      const auto name = ask_user();
      if (!name) return false;
      const auto text = ask(in, out, "Enter message: ");
      if (!text) return false;
      client.send_text(*name, *text);
      out << "Message sent.\n";
      return true;
    }
    case menu_option::send_file: {
      const auto name = ask_user();
      if (!name) return false;
      const auto path = ask(in, out, "Enter file path: ");
      if (!path) return false;
      client.send_file(*name, std::string(trim_blanks(*path)), make_terminal_progress("sending file"));
      out << "File sent.\n";
      return true;
    }
    case menu_option::request_symmetric_key: {
      const auto name = ask_user();
      if (!name) return false;
      if (client.kind_of(*name) == peer_kind::v2) {
        out << not_needed_note(*name);
        return true;
      }
      client.request_symmetric_key(*name);
      out << "Request for symmetric key sent.\n";
      return true;
    }
    case menu_option::send_symmetric_key: {
      const auto name = ask_user();
      if (!name) return false;
      if (client.kind_of(*name) == peer_kind::v2) {
        out << not_needed_note(*name);
        return true;
      }
      client.send_symmetric_key(*name);
      out << "Symmetric key sent.\n";
      return true;
    }
    case menu_option::show_safety_number: {
      const auto name = ask_user();
      if (!name) return false;
      out << "Safety number of you and " << escape_for_terminal(*name) << ":\n" << client.safety_number(*name)
          << "\nCompare it with theirs over another channel; equal digits mean no key was replaced.\n";
      return true;
    }
    case menu_option::trust_changed_key: {
      const auto name = ask_user();
      if (!name) return false;
      const auto change = client.inspect_keys(*name);
      if (change.pinned && *change.pinned == change.current) {
        out << "The key of " << escape_for_terminal(*name) << " has not changed.\n";
        return true;
      }
      if (change.pinned) out << "Pinned safety number: " << change.old_number << "\n";
      out << "New safety number:    " << change.new_number << "\n";
      const auto answer = ask(in, out, "Accept the new key of " + escape_for_terminal(*name) + "? Type yes to accept: ");
      if (!answer) return false;
      if (trim_blanks(*answer) != "yes") {
        out << "Not accepted; the pinned key stays.\n";
        return true;
      }
      client.trust(change);
      out << "The new key of " << escape_for_terminal(*name) << " is pinned.\n";
      return true;
    }
    case menu_option::group_create: case menu_option::group_invite: case menu_option::group_join:
    case menu_option::group_leave: case menu_option::group_kick: case menu_option::group_ban:
    case menu_option::group_members: case menu_option::group_list: case menu_option::group_send_text:
    case menu_option::group_send_file:
      return run_group_option(static_cast<int>(option), client, in, out);
    case menu_option::live_chat: {
      auto name = ask(in, out, "Enter user name or #group: ");
      if (name) *name = std::string(trim_blanks(*name));
      if (!name) return false;
      bool subscribed = false;
      const auto on_subscribed = [&] {
        subscribed = true;
        out << "Chat " << (is_group_target(*name) ? "in " : "with ") << escape_for_terminal(*name)
            << ": type lines to send them; the end of input ends the chat.\n" << std::flush;
      };
      const auto on_message = [&](const received_message& m) { print_message(out, m); };
      const auto on_send_failed = [&](const std::string&, const client_error& e) { print_error(out, e); };
      try {
      if (is_group_target(*name)) {
        group_operations::chat_events events;
        events.on_subscribed = on_subscribed;
        events.on_message = on_message;
        events.on_sent = [&](const group_send_result& r, const std::string&) {
          out << "(sent to " << r.delivered << " member" << (r.delivered == 1 ? "" : "s") << ")\n" << std::flush;
        };
        events.on_send_failed = on_send_failed;
        group_operations(client).chat(name->substr(1), in, events);
      } else {
        client_operations::chat_events events;
        events.on_subscribed = on_subscribed;
        events.on_message = on_message;
        events.on_sent = [&](std::uint32_t id, const std::string&) { out << "(sent, message " << id << ")\n" << std::flush; };
        events.on_send_failed = on_send_failed;
        client.chat(*name, in, events);
      }
      } catch (const client_error& e) {
        if (!subscribed) throw;  // refused before the chat began: the menu goes on
        // The chat's reader thread owns the menu's input from the subscription on: the menu
        // cannot read another choice from it, so a failure in the chat ends the menu too.
        print_error(out, e);
      }
      out << "Chat ended.\n";
      return false;  // its input has ended
    }
    case menu_option::who_am_i: {
      if (!client.registered()) {
        out << "Not registered yet.\n";
        return true;
      }
      out << "Name: " << escape_for_terminal(client.my_name()) << "\nClient ID: " << letterbox::protocol::to_hex(client.my_id())
          << "\nIdentity: " << (client.has_v2_identity() ? "protocol v2" : "protocol v1 (legacy)") << "\n";
      return true;
    }
  }
  return true;
}

}  // namespace

std::optional<menu_option> parse_menu_choice(std::string_view line) {
  const auto text = trim_blanks(line);
  int number = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  switch (number) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 50: case 51: case 52: case 6: case 7: case 8: case 10:
    case 60: case 61: case 62: case 63: case 64: case 65: case 66: case 67: case 68: case 69:
      return static_cast<menu_option>(number);
    default:
      return std::nullopt;
  }
}

std::string sender_label(const received_message& message) {
  return escape_for_terminal(message.sender) + (message.legacy_sender ? " (legacy, unauthenticated)" : "");
}

void print_message(std::ostream& out, const received_message& message) {
  if (message.group_message && message.what == received_message::kind::text) {
    out << group_text_line(message) << "\n" << std::flush;
    return;
  }
  if (message.group_message) out << "Group: #" << escape_for_terminal(message.group) << "\n";
  out << "From: " << sender_label(message) << "\nContent:\n";
  switch (message.what) {
    case received_message::kind::key_request: out << "Request for symmetric key"; break;
    case received_message::kind::key_received: out << "symmetric key received"; break;
    case received_message::kind::text: out << escape_for_terminal(message.text, line_breaks::keep); break;
    case received_message::kind::file: out << escape_for_terminal(message.file_path.string()); break;
    case received_message::kind::undecryptable: out << "can't decrypt message"; break;
    case received_message::kind::too_large:
      out << "message too large to show (" << message.content_size << " bytes)";
      break;
    case received_message::kind::save_failed: out << escape_for_terminal(message.text); break;
    case received_message::kind::unverified:
      out << "message " << message.message_id << " could not be verified (" << escape_for_terminal(message.problem)
          << "); nothing of it is shown or kept";
      break;
    case received_message::kind::duplicate:
      out << "message " << message.message_id << " dropped: " << escape_for_terminal(message.problem);
      break;
  }
  out << "\n-----<EOM>-----\n\n" << std::flush;
}

int run_menu(client_operations& client, std::istream& in, std::ostream& out) {
  while (true) {
    out << "\n" << menu_text << group_menu_text << "0) Exit client\n?\n" << std::flush;
    std::string line;
    if (!std::getline(in, line)) return 0;  // end of input: exit cleanly
    const auto choice = parse_menu_choice(line);
    if (!choice) {
      out << "Unknown option \"" << trim_blanks(line) << "\": choose one of the numbers above.\n";
      continue;
    }
    if (*choice == menu_option::exit_client) return 0;
    try {
      if (!run_option(*choice, client, in, out)) return 0;
    } catch (const client_error& e) {
      print_error(out, e);
      if (e.error_kind() == client_error::kind::downgrade) return 3;  // never continue after a downgrade
    } catch (const std::exception& e) {  // not expected from the operations, but never fatal
      out << "error: " << escape_for_terminal(e.what()) << "\n";
    }
  }
}

}  // namespace letterbox::client

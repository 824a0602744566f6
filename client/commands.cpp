// The scriptable subcommands (see commands.hpp).
#include "commands.hpp"

#include <istream>
#include <iterator>
#include <ostream>

#include "group_commands.hpp"
#include "groups.hpp"
#include "progress.hpp"
#include "terminal_text.hpp"
#include "text.hpp"

namespace letterbox::client {
namespace {

namespace proto = letterbox::protocol;

// Pulls are repeated while they return messages, at most this many times.
constexpr int max_pull_rounds = 64;

std::string field_value(std::string_view value) {
  std::string out;
  for (char c : escape_for_terminal(value)) {
    if (c == ' ') out += "\\x20";
    else out += c;
  }
  return out;
}

// A JSON string of already escaped (valid UTF-8, control-free) text.
std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char c : escape_for_terminal(text)) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

const char* kind_name(peer_kind kind) {
  switch (kind) {
    case peer_kind::v2: return "v2";
    case peer_kind::legacy: return "legacy";
    case peer_kind::unknown: break;
  }
  return "v1";
}

// Runs body; client_error and anything unforeseen become an error line and an exit code.
template <typename Body>
int guarded(const command_output& output, Body&& body) {
  try {
    return body();
  } catch (const client_error& e) {  // messages may quote names from the network: escaped
    output.err << "client: " << escape_for_terminal(e.what()) << "\n";
    return exit_code_for(e);
  } catch (const std::exception& e) {
    output.err << "client: " << escape_for_terminal(e.what()) << "\n";
    return exit_code::error;
  }
}

const char* message_kind(received_message::kind kind) {
  switch (kind) {
    case received_message::kind::key_request: return "key-request";
    case received_message::kind::key_received: return "key-received";
    case received_message::kind::text: return "text";
    case received_message::kind::file: return "file";
    case received_message::kind::undecryptable: return "undecryptable";
    case received_message::kind::too_large: return "too-large";
    case received_message::kind::save_failed: return "save-failed";
    case received_message::kind::unverified: return "unverified";
    case received_message::kind::duplicate: return "duplicate";
  }
  return "unknown";
}

}  // namespace

int exit_code_for(const client_error& e) {
  switch (e.error_kind()) {
    case client_error::kind::downgrade: return exit_code::downgrade;
    case client_error::kind::key_refused: return exit_code::key_refused;
    default: return exit_code::error;
  }
}

void emit(const command_output& output, std::string_view event,
          std::initializer_list<std::pair<std::string_view, std::string>> fields, std::optional<std::string> rest) {
  if (output.json) {
    output.out << "{\"event\":" << json_string(event);
    for (const auto& [key, value] : fields) output.out << "," << json_string(key) << ":" << json_string(value);
    if (rest) output.out << ",\"text\":" << json_string(*rest);
    output.out << "}\n";
  } else {
    output.out << event;
    for (const auto& [key, value] : fields) output.out << " " << key << "=" << field_value(value);
    if (rest) output.out << " " << escape_for_terminal(*rest);
    output.out << "\n";
  }
  output.out.flush();
}

int command_register(client_operations& client, const std::string& name, const command_output& output) {
  return guarded(output, [&] {
    client.register_user(name);
    emit(output, "registered",
         {{"name", client.my_name()}, {"id", proto::to_hex(client.my_id())}, {"protocol", client.has_v2_identity() ? "v2" : "v1"}});
    return exit_code::ok;
  });
}

int command_list(client_operations& client, const command_output& output) {
  return guarded(output, [&] {
    for (const auto& entry : client.list_clients()) {
      if (entry.online)  // a v2 peer on a server with presence (Part V)
        emit(output, "client", {{"id", proto::to_hex(entry.id)}, {"kind", kind_name(entry.kind)}, {"name", entry.name},
                                {"online", *entry.online ? "yes" : "no"}, {"last_seen", std::to_string(entry.last_seen)}});
      else
        emit(output, "client", {{"id", proto::to_hex(entry.id)}, {"kind", kind_name(entry.kind)}, {"name", entry.name}});
    }
    return exit_code::ok;
  });
}

int command_send(client_operations& client, const std::string& name, const std::optional<std::string>& text,
                 std::istream& input, const command_output& output) {
  return guarded(output, [&] {
    std::string body;
    if (!text || *text == "-") {
      char buffer[64 * 1024];
      while (input.read(buffer, sizeof buffer) || input.gcount() > 0) {
        body.append(buffer, static_cast<std::size_t>(input.gcount()));
        if (body.size() > max_text_in_memory)
          throw client_error(client_error::kind::invalid_input, "the text on stdin is over " +
                                                                    std::to_string(max_text_in_memory >> 20) +
                                                                    " MiB: send it as a file (send-file)");
      }
      // One line end at the end is the line's, not the message's (`echo hi | client send bob`).
      if (body.ends_with("\r\n")) body.resize(body.size() - 2);
      else if (body.ends_with('\n')) body.pop_back();
    } else {
      body = *text;
    }
    const auto kind = client.kind_of(name);
    const auto id = client.send_text(name, body);
    emit(output, "sent", {{"id", std::to_string(id)}, {"to", name}, {"sealed", kind == peer_kind::v2 ? "yes" : "no"}});
    return exit_code::ok;
  });
}

int command_send_file(client_operations& client, const std::string& name, const std::filesystem::path& path,
                      const command_output& output) {
  return guarded(output, [&] {
    const auto kind = client.kind_of(name);
    const auto id = client.send_file(name, path, make_terminal_progress("sending file"));
    emit(output, "sent", {{"id", std::to_string(id)}, {"to", name}, {"sealed", kind == peer_kind::v2 ? "yes" : "no"}});
    return exit_code::ok;
  });
}

// One received message as a 'message' line (pull and chat).
void show_received(const command_output& output, const received_message& m) {
  const std::string authenticated = m.authenticated ? "yes" : "no";
  const std::string legacy = m.legacy_sender ? "yes" : "no";
  const auto id = std::to_string(m.message_id);
  if (m.group_message) {  // group messages (§16a): "#group <sender>: text"
    if (m.what == received_message::kind::text) {
      emit(output, "group-message", {{"id", id}, {"group", m.group}, {"from", m.sender}, {"kind", "text"},
                                     {"authenticated", authenticated}},
           "#" + m.group + " <" + m.sender + ">: " + m.text);  // emit escapes it
    } else if (m.what == received_message::kind::file) {
      emit(output, "group-message", {{"id", id}, {"group", m.group}, {"from", m.sender}, {"kind", "file"},
                                     {"authenticated", authenticated}, {"path", m.file_path.string()},
                                     {"name", m.file_name}});
    } else {
      emit(output, "group-message", {{"id", id}, {"group", m.group}, {"from", m.sender}, {"kind", message_kind(m.what)}},
           m.what == received_message::kind::duplicate ? "dropped: " + m.problem
           : m.problem.empty()                          ? m.text
                                                        : "could not be verified: " + m.problem);
    }
    return;
  }
  switch (m.what) {
    case received_message::kind::text:
      emit(output, "message", {{"id", id}, {"from", m.sender}, {"kind", "text"}, {"authenticated", authenticated},
                               {"legacy", legacy}}, m.text);
      break;
    case received_message::kind::file:
      emit(output, "message", {{"id", id}, {"from", m.sender}, {"kind", "file"}, {"authenticated", authenticated},
                               {"legacy", legacy}, {"path", m.file_path.string()}, {"name", m.file_name}});
      break;
    case received_message::kind::unverified:
      emit(output, "message", {{"id", id}, {"from", m.sender}, {"kind", "unverified"}},
           "could not be verified: " + m.problem);
      break;
    case received_message::kind::duplicate:
      emit(output, "message", {{"id", id}, {"from", m.sender}, {"kind", "duplicate"}}, "dropped: " + m.problem);
      break;
    case received_message::kind::save_failed:
      emit(output, "message", {{"id", id}, {"from", m.sender}, {"kind", "save-failed"}}, m.text);
      break;
    default:
      emit(output, "message", {{"id", id}, {"from", m.sender}, {"kind", message_kind(m.what)},
                               {"authenticated", authenticated}, {"legacy", legacy}});
      break;
  }
}

int command_pull(client_operations& client, const command_output& output) {
  return guarded(output, [&] {
    std::size_t total = 0;
    const auto show = [&](const received_message& m) { show_received(output, m); };
    for (int round = 0; round < max_pull_rounds; ++round) {
      const auto got = client.pull_messages(show, make_terminal_progress("receiving file"));
      total += got;
      if (got == 0) break;
    }
    emit(output, "pulled", {{"count", std::to_string(total)}});
    return exit_code::ok;
  });
}

int command_chat(client_operations& client, const std::string& name, std::istream& input, const command_output& output) {
  if (is_group_target(name)) return command_group_chat(client, name, input, output);
  return guarded(output, [&] {
    client_operations::chat_events events;
    events.on_message = [&](const received_message& m) { show_received(output, m); };
    events.on_sent = [&](std::uint32_t id, const std::string&) {
      emit(output, "sent", {{"id", std::to_string(id)}, {"to", name}, {"sealed", "yes"}});
    };
    events.on_send_failed = [&](const std::string&, const client_error& e) {
      emit(output, "send-failed", {{"to", name}}, e.what());
    };
    events.on_subscribed = [&] { emit(output, "chat", {{"with", name}, {"state", "subscribed"}}); };
    client.chat(name, input, events);
    emit(output, "chat", {{"with", name}, {"state", "ended"}});
    return exit_code::ok;
  });
}

int command_group_chat(client_operations& client, const std::string& group, std::istream& input,
                       const command_output& output) {
  return guarded(output, [&] {
    const std::string g = group.substr(1);  // without its '#'
    group_operations::chat_events events;
    events.on_message = [&](const received_message& m) { show_received(output, m); };
    events.on_sent = [&](const group_send_result& r, const std::string&) {
      emit(output, "group-sent", {{"group", g}, {"id", proto::to_hex(r.group)}, {"delivered", std::to_string(r.delivered)},
                                  {"skipped", std::to_string(r.skipped)}, {"sealed-for", std::to_string(r.sealed_for)}});
    };
    events.on_send_failed = [&](const std::string&, const client_error& e) {
      emit(output, "send-failed", {{"group", g}}, e.what());
    };
    events.on_subscribed = [&] { emit(output, "chat", {{"group", g}, {"state", "subscribed"}}); };
    group_operations groups(client);
    groups.chat(g, input, events);
    emit(output, "chat", {{"group", g}, {"state", "ended"}});
    return exit_code::ok;
  });
}

int command_verify(client_operations& client, const std::string& name, const command_output& output) {
  return guarded(output, [&] {
    const auto number = client.safety_number(name);
    emit(output, "safety-number", {{"name", name}}, number);
    return exit_code::ok;
  });
}

int command_trust(client_operations& client, const std::string& name, bool yes, std::istream& input,
                  const command_output& output) {
  return guarded(output, [&] {
    const auto change = client.inspect_keys(name);
    const auto id = proto::to_hex(change.current.id);
    if (change.pinned && *change.pinned == change.current) {
      emit(output, "trusted", {{"name", name}, {"id", id}, {"changed", "no"}});
      return exit_code::ok;
    }
    if (!yes) {
      if (change.pinned) output.err << "pinned safety number: " << change.old_number << "\n";
      output.err << "new safety number:    " << change.new_number << "\n"
                 << "Accept the new key of " << escape_for_terminal(name) << "? Type yes to accept: " << std::flush;
      std::string answer;
      std::getline(input, answer);
      if (trim_blanks(answer) != "yes") {
        output.err << "client: not accepted; the pinned key stays\n";
        return exit_code::key_refused;
      }
    }
    client.trust(change);
    emit(output, "trusted", {{"name", name}, {"id", id}, {"changed", change.pinned ? "yes" : "first-use"}},
         change.new_number);
    return exit_code::ok;
  });
}

int command_whoami(client_operations& client, const command_output& output) {
  return guarded(output, [&] {
    emit(output, "me", {{"name", client.my_name()}, {"id", proto::to_hex(client.my_id())},
                        {"identity", client.has_v2_identity() ? "v2" : "v1"}});
    return exit_code::ok;
  });
}

}  // namespace letterbox::client

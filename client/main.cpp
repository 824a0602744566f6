// Entry point of the Letterbox console client: `client` runs the menu, `client test` the
// self-test, `client register|list|send|send-file|pull|verify|trust|whoami` one operation each.
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "group_commands.hpp"
#include "terminal_text.hpp"
#include "menu.hpp"
#include "self_test.hpp"

int main(int argc, char** argv) {
  namespace lb = letterbox::client;
  std::signal(SIGPIPE, SIG_IGN);  // a closed socket is an error to report, not a reason to die

  CLI::App app{"Letterbox client: end-to-end encrypted messages and files through a Letterbox server.\n"
               "Without a subcommand it runs the numbered menu on stdin/stdout.\n"
               "Exit codes: 0 ok, 1 error, 2 usage, 3 downgrade to v1 refused, 4 a peer's keys refused."};
  std::string directory = ".";
  std::string download_directory;
  int timeout_seconds = static_cast<int>(lb::default_io_timeout.count());
  bool allow_v1 = false, json = false, only_v1 = false;
  app.add_option("--dir", directory, "Directory holding server.info, me.info, me.v2, keyring.info, servers.v2, seen.v2")
      ->capture_default_str();
  app.add_option("--download-dir", download_directory, "Where received files go (default DIR/downloads, mode 0700)");
  app.add_option("--timeout", timeout_seconds, "Seconds any single network read/write may take")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_flag("--allow-v1", allow_v1, "Fall back to v1 even with a server that has spoken v2 before (servers.v2)");
  app.add_flag("--v1", only_v1, "Speak only protocol v1, as the original design's client (never sends HELLO)")
      ->excludes("--allow-v1");
  app.add_flag("--json", json, "Subcommands print one JSON object a line instead of 'event key=value' lines");
  app.require_subcommand(0, 1);
  app.fallthrough();  // inherited by the subcommands: `client pull --json` as well as `client --json pull`

  auto* test = app.add_subcommand("test", "Self-test against the server in server.info, with throwaway identities");
  std::uint64_t file_mib = 64;
  test->add_option("--file-size-mib", file_mib, "Size of the file transfer check in MiB")
      ->check(CLI::Range(1, 4000))
      ->capture_default_str();
  std::string name, path;
  std::optional<std::string> text;
  bool yes = false;
  auto* reg = app.add_subcommand("register", "Register NAME (a v2 identity with a v2 server)");
  reg->add_option("NAME", name, "Your user name")->required();
  auto* list = app.add_subcommand("list", "List the other users (kind v2, legacy, or v1 on a v1 server)");
  auto* send = app.add_subcommand("send", "Send a text to NAME (TEXT absent or '-': read from stdin)");
  send->add_option("NAME", name, "Recipient")->required();
  send->add_option("TEXT", text, "The text");
  auto* send_file = app.add_subcommand("send-file", "Send the file PATH to NAME");
  send_file->add_option("NAME", name, "Recipient")->required();
  send_file->add_option("PATH", path, "The file")->required();
  auto* chat = app.add_subcommand("chat", "Live chat with NAME or in #GROUP: messages shown as they arrive, each line of stdin sent; ends at the end of stdin");
  chat->add_option("NAME", name, "The other user (a v2 client), or #GROUP (a group you are a member of)")->required();
  auto* pull = app.add_subcommand("pull", "Receive waiting messages: print texts, save files");
  auto* verify = app.add_subcommand("verify", "Print the safety number of you and NAME (compare it out of band)");
  verify->add_option("NAME", name, "The other user")->required();
  auto* trust = app.add_subcommand("trust", "Accept the changed key of NAME, after confirmation");
  trust->add_option("NAME", name, "The other user")->required();
  trust->add_flag("--yes", yes, "Accept without asking");
  auto* whoami = app.add_subcommand("whoami", "Print your name, client ID and identity kind");
  // Groups (protocol v2, docs/PROTOCOL.md Part IV and §16a). GROUP: a name or the ID in hex.
  auto* group = app.add_subcommand("group", "Groups: create|invite|join|leave|kick|ban|unban|handover|members|list");
  group->require_subcommand(1, 1);
  std::string group_name, group_user;
  bool group_open = false;
  auto* group_create = group->add_subcommand("create", "Create group NAME (you are its admin)");
  group_create->add_option("NAME", group_name, "Group name")->required();
  group_create->add_flag("--open", group_open, "Anyone may join (a chat room)");
  std::vector<std::pair<std::string, CLI::App*>> group_targets, group_selves;
  for (const char* action : {"invite", "kick", "ban", "unban", "handover"}) {
    auto* sub = group->add_subcommand(action, std::string(action) + " USER in GROUP (admin)");
    sub->add_option("GROUP", group_name, "Group")->required();
    sub->add_option("USER", group_user, "User name")->required();
    group_targets.emplace_back(action, sub);
  }
  for (const char* action : {"join", "leave"}) {
    auto* sub = group->add_subcommand(action, std::string(action) + " GROUP");
    sub->add_option("GROUP", group_name, "Group")->required();
    group_selves.emplace_back(action, sub);
  }
  auto* group_members = group->add_subcommand("members", "The members of GROUP");
  group_members->add_option("GROUP", group_name, "Group")->required();
  auto* group_list = group->add_subcommand("list", "The groups you are in or invited to, and the open ones");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int printed = app.exit(e);  // help and version: 0; every other parse error: usage
    return printed == 0 ? lb::exit_code::ok : lb::exit_code::usage;
  }

  try {
    if (*test) {
      lb::self_test_options options;
      options.config_directory = directory;
      options.file_size = file_mib << 20;
      options.io_timeout = std::chrono::seconds(timeout_seconds);
      return lb::run_self_test(options, std::cout);
    }
    lb::client_options options;
    options.directory = directory;
    options.download_directory = download_directory;
    options.io_timeout = std::chrono::seconds(timeout_seconds);
    options.allow_v1 = allow_v1;
    if (only_v1) options.protocol = lb::client_options::protocol_choice::v1;
    options.notice = [](const std::string& note) { std::cerr << "client: " << lb::escape_for_terminal(note) << "\n"; };
    lb::client_operations client(options);
    const lb::command_output output{std::cout, std::cerr, json};
    if (*reg) return lb::command_register(client, name, output);
    if (*list) return lb::command_list(client, output);
    if (*send && lb::is_group_target(name)) return lb::command_group_send(client, name, text, std::cin, output);
    if (*send_file && lb::is_group_target(name)) return lb::command_group_send_file(client, name, path, output);
    if (*group) {
      if (*group_create) return lb::command_group_create(client, group_name, group_open, output);
      for (const auto& [action, sub] : group_targets)
        if (*sub) return lb::command_group_target(client, action, group_name, group_user, output);
      for (const auto& [action, sub] : group_selves)
        if (*sub) return lb::command_group_self(client, action, group_name, output);
      if (*group_members) return lb::command_group_members(client, group_name, output);
      if (*group_list) return lb::command_group_list(client, output);
    }
    if (*send) return lb::command_send(client, name, text, std::cin, output);
    if (*send_file) return lb::command_send_file(client, name, path, output);
    if (*pull) return lb::command_pull(client, output);
    if (*chat) return lb::command_chat(client, name, std::cin, output);
    if (*verify) return lb::command_verify(client, name, output);
    if (*trust) return lb::command_trust(client, name, yes, std::cin, output);
    if (*whoami) return lb::command_whoami(client, output);
    return lb::run_menu(client, std::cin, std::cout);
  } catch (const lb::client_error& e) {  // from start-up (a malformed keyring.info, ...)
    std::cerr << "client: " << lb::escape_for_terminal(e.what()) << "\n";
    return lb::exit_code_for(e);
  } catch (const std::exception& e) {  // anything unforeseen
    std::cerr << "client: " << lb::escape_for_terminal(e.what()) << "\n";
    return lb::exit_code::error;
  }
}

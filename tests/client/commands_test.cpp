// Tests of the subcommands' output lines and JSON, and of their exit codes.
#include <doctest/doctest.h>

#include <sstream>

#include "commands.hpp"
#include "test_directory.hpp"

using namespace letterbox::client;

TEST_CASE("emit: key=value lines never hold a raw space, control byte or bad UTF-8 in a value") {
  std::ostringstream out, err;
  const command_output lines{out, err, false};
  emit(lines, "client", {{"id", "00ff"}, {"name", "bob the\x1b[2J builder\n\xff"}});
  emit(lines, "message", {{"from", "alice"}}, "free text keeps spaces\nbut not newlines\x07");
  CHECK(out.str() ==
        "client id=00ff name=bob\\x20the\\x1b[2J\\x20builder\\x0a\\xff\n"
        "message from=alice free text keeps spaces\\x0abut not newlines\\x07\n");
}

TEST_CASE("emit --json: one object a line, strings escaped for JSON after the terminal escapes") {
  std::ostringstream out, err;
  const command_output json{out, err, true};
  emit(json, "message", {{"from", "a \"quoted\" name"}, {"path", "C:\\x"}}, "line 1\nline 2");
  CHECK(out.str() ==
        "{\"event\":\"message\",\"from\":\"a \\\"quoted\\\" name\",\"path\":\"C:\\\\\\\\x\",\"text\":\"line 1\\\\x0aline 2\"}\n");
}

TEST_CASE("exit codes: downgrade 3, refused keys 4, other failures 1") {
  CHECK(exit_code_for(client_error(client_error::kind::downgrade, "")) == exit_code::downgrade);
  CHECK(exit_code_for(client_error(client_error::kind::key_refused, "")) == exit_code::key_refused);
  CHECK(exit_code_for(client_error(client_error::kind::network, "")) == exit_code::error);
  CHECK(exit_code_for(client_error(client_error::kind::server_error, "")) == exit_code::error);
}

TEST_CASE("subcommands report errors on stderr with a status, never by throwing") {
  test_directory dir;  // no server.info, no me.info
  client_options options;
  options.directory = dir.path;
  client_operations client(options);
  std::ostringstream out, err;
  const command_output output{out, err, false};
  std::istringstream no_input;
  CHECK(command_whoami(client, output) == exit_code::error);
  CHECK(err.str().find("not registered yet") != std::string::npos);
  CHECK(command_list(client, output) == exit_code::error);
  CHECK(command_send(client, "bob", std::nullopt, no_input, output) == exit_code::error);
  CHECK(command_register(client, "alice", output) == exit_code::error);
  CHECK(err.str().find("server.info: file not found") != std::string::npos);
  CHECK(out.str().empty());
}

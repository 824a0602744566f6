// Tests of the server configuration (server/config.hpp): port.info parsing and the command
// line. Edge cases first: empty, junk, out-of-range and whitespace ports, bad flags, --help.
#include <doctest/doctest.h>

#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "config.hpp"
#include "server_test_support.hpp"

using namespace letterbox::server;
using namespace letterbox::server::test;
using namespace std::chrono_literals;

namespace {

// parse_command_line over a list of arguments (argv[0] = "server" is added).
parsed_config parse(std::vector<std::string> args) {
  args.insert(args.begin(), "server");
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  return parse_command_line(static_cast<int>(args.size()), argv.data());
}

// Runs the test body in a fresh working directory and restores the previous one afterwards
// (parse_command_line reads port.info from the working directory).
class working_directory {
 public:
  working_directory() : previous_(std::filesystem::current_path()) { std::filesystem::current_path(dir_.path()); }
  ~working_directory() {
    std::error_code ec;
    std::filesystem::current_path(previous_, ec);
  }
  void write_port_file(const std::string& text) const { std::ofstream(dir_ / port_file_name) << text; }

 private:
  temp_dir dir_;
  std::filesystem::path previous_;
};

}  // namespace

// --- parse_port --------------------------------------------------------------------------

TEST_CASE("config: parse_port rejects empty, blank, zero, out-of-range and junk text") {
  for (const std::string text : {"", " ", " \t\r\n", "0", "00", "65536", "70000", "4294967297",
                                 "99999999999999999999", "-1", "+80", "80x", "x80", "8 0", "0x50", "1.5",
                                 "1357\n1358", "port=1357"}) {
    CAPTURE(text);
    CHECK_FALSE(parse_port(text).has_value());
  }
}

TEST_CASE("config: parse_port accepts 1..65535 with surrounding whitespace") {
  CHECK(parse_port("1") == std::uint16_t{1});
  CHECK(parse_port("65535") == std::uint16_t{65535});
  CHECK(parse_port("1357") == std::uint16_t{1357});
  CHECK(parse_port("8080\n") == std::uint16_t{8080});
  CHECK(parse_port("  443  ") == std::uint16_t{443});
  CHECK(parse_port("\t1234\r\n") == std::uint16_t{1234});
}

// --- parse_command_line: edge cases -------------------------------------------------------

TEST_CASE("config: --help returns exit status 0 without a config") {
  working_directory cwd;
  const auto parsed = parse({"--help"});
  CHECK_FALSE(parsed.config.has_value());
  CHECK(parsed.exit_status == 0);
}

TEST_CASE("config: unknown flags and invalid values are usage errors (no config, nonzero status)") {
  working_directory cwd;
  const std::vector<std::vector<std::string>> bad = {
      {"--no-such-flag"},   {"--port", "65536"},    {"--port", "-1"},         {"--port", "http"},
      {"--port"},           {"--timeout", "0"},     {"--timeout", "-3"},      {"--timeout", "soon"},
      {"--log-level", "loud"}, {"--max-batch", "0"}, {"--lease-timeout", "0"}, {"--max-connections", "0"}, {"stray-positional"}};
  for (const auto& args : bad) {
    CAPTURE(args.front());
    CAPTURE(args.size() > 1 ? args[1] : std::string("(none)"));
    const auto parsed = parse(args);
    CHECK_FALSE(parsed.config.has_value());
    CHECK(parsed.exit_status != 0);
  }
}

TEST_CASE("config: --max-group-members is bounded by what one group envelope is sealed for (1,024)") {
  working_directory cwd;
  const auto largest = parse({"--max-group-members", "1024"});
  REQUIRE(largest.config.has_value());
  CHECK(largest.config->limits.max_group_members == 1024);
  // A group of 1,025 could be joined but never written to: a group envelope holds at most 1,024.
  const auto beyond = parse({"--max-group-members", "1025"});
  CHECK_FALSE(beyond.config.has_value());
  CHECK(beyond.exit_status != 0);
}

TEST_CASE("config: a huge --timeout is refused or kept positive, never turned into a negative timeout") {
  working_directory cwd;
  const auto parsed = parse({"--port", "1", "--timeout", "1e20"});
  if (parsed.config) {
    CHECK(parsed.config->limits.io_timeout > 0ms);
  } else {
    CHECK(parsed.exit_status != 0);
  }
}

// --- parse_command_line: values ----------------------------------------------------------

TEST_CASE("config: defaults with no flags and no port.info") {
  working_directory cwd;
  const auto parsed = parse({});
  REQUIRE(parsed.config.has_value());
  const auto& config = *parsed.config;
  CHECK(config.port == fallback_port);
  CHECK(config.bind_address == "0.0.0.0");
  CHECK(config.db_path == std::filesystem::path(default_db_name));
  CHECK(config.ready_file.empty());
  CHECK(config.limits.io_timeout == default_io_timeout);
  CHECK(config.limits.max_batch == default_max_batch);
  CHECK(config.limits.max_messages_per_pull == default_max_messages_per_pull);
  CHECK(config.limits.inline_content_limit == default_inline_content_limit);
  CHECK(config.limits.max_message_size == default_max_message_size);
  CHECK(config.limits.max_connections == default_max_connections);
  CHECK(config.limits.lease_timeout == std::chrono::seconds(120));
}

TEST_CASE("config: --port, --db and --timeout are taken as given") {
  working_directory cwd;
  const auto parsed = parse({"--port", "4242", "--db", "/tmp/somewhere/letters.db", "--timeout", "2.5"});
  REQUIRE(parsed.config.has_value());
  CHECK(parsed.exit_status == 0);
  CHECK(parsed.config->port == 4242);
  CHECK(parsed.config->db_path == std::filesystem::path("/tmp/somewhere/letters.db"));
  CHECK(parsed.config->limits.io_timeout == 2500ms);

  const auto ephemeral = parse({"--port", "0", "--timeout", "0.001"});
  REQUIRE(ephemeral.config.has_value());
  CHECK(ephemeral.config->port == 0);  // any free port
  CHECK(ephemeral.config->limits.io_timeout == 1ms);
}

TEST_CASE("config: the other flags reach the config") {
  working_directory cwd;
  const auto parsed = parse({"--port", "1", "--bind", "127.0.0.1", "--ready-file", "ready", "--log-level", "warn",
                             "--max-message-size", "1000", "--max-connections", "10", "--inline-limit", "512",
                             "--max-pull-messages", "7", "--max-batch", "3", "--lease-timeout", "2.5"});
  REQUIRE(parsed.config.has_value());
  const auto& config = *parsed.config;
  CHECK(config.bind_address == "127.0.0.1");
  CHECK(config.ready_file == std::filesystem::path("ready"));
  CHECK(config.log_level == "warn");
  CHECK(config.limits.max_message_size == 1000);
  CHECK(config.limits.max_connections == 10);
  CHECK(config.limits.inline_content_limit == 512);
  CHECK(config.limits.max_messages_per_pull == 7);
  CHECK(config.limits.max_batch == 3);
  CHECK(config.limits.lease_timeout == std::chrono::milliseconds(2500));
  parse({"--port", "1", "--log-level", "info"});  // restore the global spdlog level
}

TEST_CASE("config: the abuse limits and quotas reach the config, with their documented defaults") {
  working_directory cwd;
  const auto defaults = parse({"--port", "1"});
  REQUIRE(defaults.config.has_value());
  CHECK(defaults.config->limits.request_grace == std::chrono::seconds(10));
  CHECK(defaults.config->limits.min_rate == 4096);
  CHECK(defaults.config->limits.max_connections_per_ip == 256);
  CHECK(defaults.config->limits.registration_rate == 60);
  CHECK(defaults.config->limits.max_pull_memory == 64ull << 20);
  CHECK(defaults.config->limits.max_mailbox_messages == 1'000'000);
  CHECK(defaults.config->limits.max_mailbox_bytes == 64ull << 30);
  CHECK(defaults.config->limits.min_free_disk == 64ull << 20);
  const auto parsed = parse({"--port", "1", "--request-grace", "2.5", "--min-rate", "0", "--max-connections-per-ip", "3",
                             "--registration-rate", "1000", "--max-pull-memory", "2000000", "--max-mailbox-messages", "9",
                             "--max-mailbox-bytes", "123456", "--min-free-disk", "0"});
  REQUIRE(parsed.config.has_value());
  const auto& limits = parsed.config->limits;
  CHECK(limits.request_grace == std::chrono::milliseconds(2500));
  CHECK(limits.min_rate == 0);
  CHECK(limits.max_connections_per_ip == 3);
  CHECK(limits.registration_rate == 1000);
  CHECK(limits.max_pull_memory == 2'000'000);
  CHECK(limits.max_mailbox_messages == 9);
  CHECK(limits.max_mailbox_bytes == 123456);
  CHECK(limits.min_free_disk == 0);
  for (const auto& bad : std::vector<std::vector<std::string>>{{"--max-connections-per-ip", "0"},
                                                               {"--registration-rate", "0"},
                                                               {"--max-pull-memory", "1000"},
                                                               {"--request-grace", "0"}}) {
    std::vector<std::string> args{"--port", "1"};
    args.insert(args.end(), bad.begin(), bad.end());
    CAPTURE(bad[0]);
    CHECK_FALSE(parse(args).config.has_value());
  }
}

TEST_CASE("config: without --port the port comes from port.info in the working directory") {
  working_directory cwd;
  SUBCASE("a valid port.info") {
    cwd.write_port_file("4321\n");
    const auto parsed = parse({});
    REQUIRE(parsed.config.has_value());
    CHECK(parsed.config->port == 4321);
  }
  SUBCASE("port.info with whitespace around the number") {
    cwd.write_port_file("  5000 \r\n");
    const auto parsed = parse({});
    REQUIRE(parsed.config.has_value());
    CHECK(parsed.config->port == 5000);
  }
  SUBCASE("junk, empty or out-of-range port.info falls back to 1357") {
    for (const std::string text : {"junk", "", "0", "65536", "-5"}) {
      CAPTURE(text);
      cwd.write_port_file(text);
      const auto parsed = parse({});
      REQUIRE(parsed.config.has_value());
      CHECK(parsed.config->port == fallback_port);
    }
  }
  SUBCASE("--port wins over port.info") {
    cwd.write_port_file("4321\n");
    const auto parsed = parse({"--port", "6000"});
    REQUIRE(parsed.config.has_value());
    CHECK(parsed.config->port == 6000);
  }
}

TEST_CASE("config: the working directory is restored after the port.info tests") {
  const auto before = std::filesystem::current_path();
  { working_directory cwd; CHECK(std::filesystem::current_path() != before); }
  CHECK(std::filesystem::current_path() == before);
}

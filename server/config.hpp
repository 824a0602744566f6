// Server configuration: defaults, port.info, and command-line flags (which win).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "limits.hpp"

namespace letterbox::server {

inline constexpr std::uint16_t fallback_port = 1357;
inline constexpr const char* port_file_name = "port.info";
inline constexpr const char* default_db_name = "server.db";

struct server_config {
  std::uint16_t port = fallback_port;
  std::string bind_address = "0.0.0.0";
  std::filesystem::path db_path = default_db_name;
  std::filesystem::path ready_file;  // empty: none
  std::string log_level = "info";
  std::size_t file_threads = 2;
  server_limits limits;
};

// Reads a port number (1..65535) from port.info-style text; nullopt when it is not one.
std::optional<std::uint16_t> parse_port(const std::string& text);

// Result of parsing the command line: a config to run with, or an exit status (after --help
// or a usage error, whose message was already printed).
struct parsed_config {
  std::optional<server_config> config;
  int exit_status = 0;
};
parsed_config parse_command_line(int argc, char** argv);

}  // namespace letterbox::server

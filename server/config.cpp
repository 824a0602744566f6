// Command line and port.info handling (see config.hpp).
#include "config.hpp"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <charconv>
#include <fstream>
#include <sstream>

namespace letterbox::server {
namespace {
constexpr double max_timeout_seconds = 7 * 24 * 3600;  // a week: keeps the milliseconds finite
}  // namespace

std::optional<std::uint16_t> parse_port(const std::string& text) {
  auto begin = text.find_first_not_of(" \t\r\n");
  auto end = text.find_last_not_of(" \t\r\n");
  if (begin == std::string::npos) return std::nullopt;
  const std::string_view digits(text.data() + begin, end - begin + 1);
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || ptr != digits.data() + digits.size() || value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

parsed_config parse_command_line(int argc, char** argv) {
  server_config config;
  CLI::App app{"Letterbox server: stores end-to-end encrypted messages until their recipients pull them.\n"
               "Reads its port from port.info in the working directory (fallback 1357) and keeps\n"
               "server.db (and server.db.spool/ for large contents) there, unless flags say otherwise."};
  std::optional<unsigned> port;
  double timeout_seconds = std::chrono::duration<double>(config.limits.io_timeout).count();
  app.add_option("--port", port, "TCP port (overrides port.info; 0 = any free port)")->check(CLI::Range(0, 65535));
  app.add_option("--bind", config.bind_address, "address to listen on")->capture_default_str();
  app.add_option("--db", config.db_path, "SQLite database file (its spool directory is <db>.spool)")
      ->capture_default_str();
  app.add_option("--ready-file", config.ready_file, "once listening, write the bound port to this file");
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn, error, critical or off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--timeout", timeout_seconds, "seconds each read or write step may take (waiting for the next request, a header, a fixed-size payload, the next bytes of a message content, a response write) before the connection closes")
      ->capture_default_str()
      ->check(CLI::Range(0.001, max_timeout_seconds));
  app.add_option("--max-message-size", config.limits.max_message_size, "largest message content in bytes")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{0}, default_max_message_size));
  double grace_seconds = std::chrono::duration<double>(config.limits.request_grace).count();
  app.add_option("--request-grace", grace_seconds,
                 "seconds a whole request may take before its size counts (see --min-rate)")
      ->capture_default_str()
      ->check(CLI::Range(0.001, max_timeout_seconds));
  app.add_option("--min-rate", config.limits.min_rate,
                 "bytes per second a request must move after --request-grace, request and response counted "
                 "(storage waits not); slower ones are closed. 0: no such deadline")
      ->capture_default_str();
  app.add_option("--max-connections", config.limits.max_connections,
                 "connections served at once; when full, a new one is served and the one idle or slow longest is closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-connections-per-ip", config.limits.max_connections_per_ip,
                 "connections from one IP address at once; more are closed")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--registration-rate", config.limits.registration_rate,
                 "registrations (100) per minute from one IP address; more are answered 9000")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--auth-failure-rate", config.limits.auth_failure_rate,
                 "failed v2 AUTHs (202) per minute from one IP address; beyond it every AUTH from there, right "
                 "or wrong, is refused (rate_limited) without checking its signature, until the budget refills")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-pull-memory", config.limits.max_pull_memory,
                 "bytes of inline content all pulls in progress may hold together")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1} << 20, std::uint64_t{1} << 40));
  app.add_option("--max-mailbox-messages", config.limits.max_mailbox_messages,
                 "pending messages one mailbox may hold; more sends to it are answered 9000")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-mailbox-bytes", config.limits.max_mailbox_bytes,
                 "bytes of pending content one mailbox may hold; more sends to it are answered 9000")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--min-free-disk", config.limits.min_free_disk,
                 "a send is answered 9000 when it would leave less free space than this on the database's disk")
      ->capture_default_str();
  app.add_option("--inline-limit", config.limits.inline_content_limit,
                 "contents up to this many bytes are kept inside server.db, larger ones in spool files")
      ->capture_default_str()
      ->check(CLI::Range(std::uint32_t{0}, std::uint32_t{16u << 20}));
  app.add_option("--max-pull-messages", config.limits.max_messages_per_pull, "messages returned by one pull at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  double lease_seconds = std::chrono::duration<double>(config.limits.lease_timeout).count();
  app.add_option("--lease-timeout", lease_seconds,
                 "seconds a v2 pull leases its messages to its connection; not acknowledged by then, they come again")
      ->capture_default_str()
      ->check(CLI::Range(0.001, max_timeout_seconds));
  app.add_option("--max-groups-per-user", config.limits.max_groups_per_user,
                 "groups one v2 client may be a member of (CREATE, JOIN beyond: too_many_groups); 0: no groups")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 20));
  app.add_option("--max-group-members", config.limits.max_group_members,
                 "members of one group (a JOIN beyond: group_full); also bounds the mailboxes one GROUP SEND fills")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, max_group_members_limit));
  app.add_option("--max-batch", config.limits.max_batch, "storage jobs committed in one transaction at most")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  // Live delivery (docs/PROTOCOL.md Part V).
  app.add_option("--max-subscriptions", config.limits.max_subscriptions,
                 "subscribed (live delivery) connections per v2 client at most; one more is refused (too_many_subscriptions)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--push-window-messages", config.limits.push_window_messages,
                 "messages pushed to a subscriber and not yet acknowledged at most; the rest waits in the mailbox")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--push-window-bytes", config.limits.push_window_bytes,
                 "content bytes pushed to a subscriber and not yet acknowledged at most (one larger message when none is)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  double heartbeat_seconds = std::chrono::duration<double>(config.limits.heartbeat_timeout).count();
  app.add_option("--heartbeat-timeout", heartbeat_seconds,
                 "seconds a subscribed connection may stay silent before it is dropped (pinged after a third of it)")
      ->capture_default_str()
      ->check(CLI::Range(0.003, max_timeout_seconds));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return {std::nullopt, app.exit(e)};
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  config.limits.io_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(timeout_seconds * 1000.0 + 0.5));
  config.limits.request_grace = std::chrono::milliseconds(static_cast<std::int64_t>(grace_seconds * 1000.0 + 0.5));
  config.limits.lease_timeout = std::chrono::milliseconds(static_cast<std::int64_t>(lease_seconds * 1000.0 + 0.5));
  config.limits.heartbeat_timeout =
      std::chrono::milliseconds(static_cast<std::int64_t>(heartbeat_seconds * 1000.0 + 0.5));
  if (port) {
    config.port = static_cast<std::uint16_t>(*port);
  } else {
    std::ifstream file(port_file_name);
    if (!file) {
      spdlog::warn("{} not found in the working directory; using port {}", port_file_name, fallback_port);
    } else {
      std::stringstream text;
      text << file.rdbuf();
      if (auto parsed = parse_port(text.str()))
        config.port = *parsed;
      else
        spdlog::warn("{} does not hold a port number (1-65535); using port {}", port_file_name, fallback_port);
    }
  }
  return {config, 0};
}

}  // namespace letterbox::server

// me.v2, servers.v2 and seen.v2 (see client_state.hpp).
#include "client_state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "downloads.hpp"
#include "text.hpp"

namespace letterbox::client {
namespace {

constexpr std::string_view me_v2_header = "# Letterbox v2 identity: secret keys, keep this file private and backed up";
constexpr std::string_view seen_header = "# Letterbox seen.v2: m <message ID> | r <replay ID hex>, one handled message a line";

// The lines of path, or nullopt when it does not exist; throws config_error if unreadable.
std::optional<std::vector<std::string>> read_lines_if_present(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    if (std::filesystem::exists(path)) throw config_error(path.string() + ": cannot be read");
    return std::nullopt;
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

template <std::size_t N>
std::optional<std::array<std::uint8_t, N>> fixed_hex(std::string_view text) {
  const auto bytes = protocol::from_hex(text);
  if (!bytes || bytes->size() != N) return std::nullopt;
  std::array<std::uint8_t, N> out{};
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

// A crash inside seen_store::add can leave the file ending in part of a record (its message was
// not acknowledged, so it comes again): cut the file back to its last complete line, durably,
// so that the record is not misread ("m 12" of "m 123") and the next append stays readable.
void drop_torn_tail(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return;  // missing, or unreadable: load reports it
  const off_t size = ::lseek(fd, 0, SEEK_END);
  off_t keep = size;
  char byte = 0;
  while (keep > 0 && ::pread(fd, &byte, 1, keep - 1) == 1 && byte != '\n') --keep;
  const bool cut = keep < size && ::ftruncate(fd, keep) == 0 && ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (keep < size && !cut) throw config_error(path.string() + ": cannot drop its torn last line: " + std::strerror(saved));
}

}  // namespace

std::optional<v2_secrets> read_me_v2(const std::filesystem::path& dir) {
  const auto path = dir / me_v2_file;
  const auto lines = read_lines_if_present(path);
  if (!lines) return std::nullopt;
  std::optional<secret_32> identity, agreement;
  for (std::size_t i = 0; i < lines->size(); ++i) {
    const auto line = trim_blanks((*lines)[i]);
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.find(' ');
    const auto field = line.substr(0, space);
    const auto value = space == std::string_view::npos ? std::string_view{} : trim_blanks(line.substr(space + 1));
    auto& slot = field == "identity" ? identity : agreement;
    if (field != "identity" && field != "agreement")
      throw config_error(path.string() + ": line " + std::to_string(i + 1) + ": expected \"identity\" or \"agreement\"");
    slot = fixed_hex<32>(value);
    if (!slot) throw config_error(path.string() + ": line " + std::to_string(i + 1) + ": not 64 hex characters");
  }
  if (!identity || !agreement) throw config_error(path.string() + ": needs an identity and an agreement line");
  return v2_secrets{*identity, *agreement};
}

void write_me_v2(const std::filesystem::path& dir, const v2_secrets& secrets) {
  std::string text(me_v2_header);
  text += "\nidentity " + protocol::to_hex(secrets.identity) + "\nagreement " + protocol::to_hex(secrets.agreement) + "\n";
  write_private_file(dir / me_v2_file, text, false);
}

std::string server_key(const server_address& server) {
  const bool ipv6 = server.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + server.host + "]" : server.host) + ":" + std::to_string(server.port);
}

bool is_known_v2_server(const std::filesystem::path& dir, const server_address& server) {
  const auto lines = read_lines_if_present(dir / servers_v2_file);
  if (!lines) return false;
  const auto key = server_key(server);
  for (const auto& line : *lines)
    if (trim_blanks(line) == key) return true;
  return false;
}

void remember_v2_server(const std::filesystem::path& dir, const server_address& server) {
  if (is_known_v2_server(dir, server)) return;
  const auto lines = read_lines_if_present(dir / servers_v2_file);
  std::string text = "# Letterbox servers.v2: servers that have spoken protocol v2 (no fallback to v1 for them)\n";
  if (lines)
    for (const auto& line : *lines)
      if (!trim_blanks(line).empty() && line.front() != '#') text += line + "\n";
  text += server_key(server) + "\n";
  write_private_file(dir / servers_v2_file, text, true);
}

seen_store seen_store::load(const std::filesystem::path& dir) {
  seen_store store;
  store.path_ = dir / seen_v2_file;
  drop_torn_tail(store.path_);
  const auto lines = read_lines_if_present(store.path_);
  if (!lines) return store;
  for (std::size_t i = 0; i < lines->size(); ++i) {
    const auto line = trim_blanks((*lines)[i]);
    if (line.empty() || line.front() == '#') continue;
    const auto bad = [&] { return config_error(store.path_.string() + ": line " + std::to_string(i + 1) + " is malformed"); };
    if (line.size() < 3 || line[1] != ' ') throw bad();
    const auto value = line.substr(2);
    if (line[0] == 'm') {
      std::uint64_t id = 0;
      for (char c : value) {
        if (c < '0' || c > '9' || id > 0xFFFF'FFFFu) throw bad();
        id = id * 10 + static_cast<unsigned>(c - '0');
      }
      if (id > 0xFFFF'FFFFu) throw bad();
      store.messages_.insert(static_cast<std::uint32_t>(id));
    } else if (line[0] == 'r') {
      const auto replay = fixed_hex<16>(value);
      if (!replay) throw bad();
      store.replays_.insert(*replay);
    } else {
      throw bad();
    }
  }
  return store;
}

void seen_store::add(std::uint32_t message_id, const std::optional<replay_id>& replay) {
  const bool fresh = !std::filesystem::exists(path_);
  std::string text;
  if (fresh) text = std::string(seen_header) + "\n";
  text += "m " + std::to_string(message_id) + "\n";
  if (replay) text += "r " + protocol::to_hex(*replay) + "\n";
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) throw config_error(path_.string() + ": cannot be opened: " + std::strerror(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const int saved = errno;
  const bool synced = done == text.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) throw config_error(path_.string() + ": cannot be written: " + std::strerror(saved));
  messages_.insert(message_id);
  if (replay) replays_.insert(*replay);
  if (fresh) {
    try {
      sync_directory(path_.parent_path().empty() ? std::filesystem::path(".") : path_.parent_path());
    } catch (const config_error&) {  // the records themselves are fsync'd; the entry is best effort
    }
  }
}

}  // namespace letterbox::client

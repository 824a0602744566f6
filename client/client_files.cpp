// server.info / me.info parsing and the owner-only atomic file writer (see client_files.hpp).
#include "client_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "text.hpp"

namespace letterbox::client {
namespace {

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    if (!std::filesystem::exists(path)) throw config_error(path.string() + ": file not found");
    throw config_error(path.string() + ": cannot be read");
  }
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

[[noreturn]] void fail_errno(const std::filesystem::path& path, const char* step) {
  throw config_error(path.string() + ": " + step + " failed: " + std::strerror(errno));
}

}  // namespace

server_address parse_server_address(std::string_view text) {
  const auto line = std::string(trim_blanks(text));
  const auto colon = line.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw config_error("expected host:port, got \"" + line + "\"");
  std::string host = line.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const auto port_text = std::string_view(line).substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
    throw config_error("port \"" + std::string(port_text) + "\" is not a number in 1..65535");
  if (host.empty()) throw config_error("host is empty");
  return {host, static_cast<std::uint16_t>(port)};
}

server_address read_server_info(const std::filesystem::path& dir) {
  const auto path = dir / server_info_file;
  const auto lines = read_lines(path);
  if (lines.empty() || trim_blanks(lines[0]).empty()) throw config_error(path.string() + ": file is empty, expected host:port");
  try {
    return parse_server_address(lines[0]);
  } catch (const config_error& e) {
    throw config_error(path.string() + ": " + e.what());
  }
}

identity read_me_info(const std::filesystem::path& dir) {
  const auto path = dir / me_info_file;
  const auto lines = read_lines(path);
  const auto bad = [&](const std::string& what) { return config_error(path.string() + ": " + what); };
  if (lines.size() < 3)
    throw bad("expected 3 lines (name, client ID, private key), found " + std::to_string(lines.size()));
  const auto& name = lines[0];
  try {
    protocol::validate_name(name);
  } catch (const protocol::protocol_error& e) {
    throw bad(std::string("line 1 is not a valid user name: ") + e.what());
  }
  const auto id = protocol::client_id_from_hex(trim_blanks(lines[1]));
  if (!id) throw bad("line 2 is not a client ID of 32 hex characters");
  std::string key_text;
  for (std::size_t i = 2; i < lines.size(); ++i) key_text += lines[i];
  try {
    return identity{name, *id, private_key::from_pkcs8(base64_decode(key_text))};
  } catch (const crypto_error& e) {
    throw bad(std::string("line 3 is not a Base64 PKCS#8 RSA private key: ") + e.what());
  }
}

void write_me_info(const std::filesystem::path& dir, const identity& me) {
  const auto path = dir / me_info_file;
  if (std::filesystem::exists(path)) throw config_error(path.string() + ": already exists; refusing to overwrite it");
  write_private_file(path,
                     me.name + "\n" + protocol::to_hex(me.id) + "\n" + base64_encode(me.key.to_pkcs8()) + "\n",
                     false);
}

void write_private_file(const std::filesystem::path& path, std::string_view content, bool replace) {
  const auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::string temp_name = path.filename().string();
  temp_name.insert(0, 1, '.');  // (not "." + name: g++ 12 -Wrestrict false positive)
  temp_name += ".XXXXXX";
  std::string temp = (dir / temp_name).string();
  const int fd = ::mkstemp(temp.data());  // creates the file with mode 0600
  if (fd < 0) fail_errno(temp, "creating a temp file");
  const auto cleanup = [&] {
    ::close(fd);
    ::unlink(temp.c_str());
  };
  for (std::size_t done = 0; done < content.size();) {
    const auto n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      cleanup();
      errno = saved;
      fail_errno(temp, "write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    cleanup();
    errno = saved;
    fail_errno(temp, "fsync");
  }
  ::close(fd);
  // link() refuses an existing target, which rename() would silently replace.
  const int rc = replace ? ::rename(temp.c_str(), path.c_str()) : ::link(temp.c_str(), path.c_str());
  const int saved = errno;
  if (!replace || rc != 0) ::unlink(temp.c_str());
  if (rc != 0) {
    errno = saved;
    if (!replace && saved == EEXIST) throw config_error(path.string() + ": already exists; refusing to overwrite it");
    fail_errno(path, replace ? "rename" : "link");
  }
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dir_fd >= 0) {
    ::fsync(dir_fd);  // make the new directory entry durable; best effort
    ::close(dir_fd);
  }
}

}  // namespace letterbox::client

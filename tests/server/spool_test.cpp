// Tests of spool_directory (server/spool.hpp): edge cases first (missing files, empty and
// abandoned uploads, sweeping an empty directory), then the write/finish/keep life cycle.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "server_test_support.hpp"
#include "spool.hpp"
#include "store_types.hpp"

using namespace letterbox::server;
using namespace letterbox::server::test;
using letterbox::protocol::byte_buffer;

namespace {
byte_buffer read_whole(const spool_directory& spool, const std::string& name) {
  const int fd = spool.open_for_read(name);
  byte_buffer out;
  std::uint8_t chunk[4096];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    REQUIRE(n >= 0);
    if (n == 0) break;
    out.insert(out.end(), chunk, chunk + n);
  }
  ::close(fd);
  return out;
}
}  // namespace

// --- Edge cases --------------------------------------------------------------------------

TEST_CASE("spool: open_for_read of a missing file throws storage_error") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  CHECK_THROWS_AS(spool.open_for_read("no-such-file"), storage_error);
  CHECK_THROWS_AS(spool.open_for_read("0123456789abcdef0123456789abcdef"), storage_error);
}

TEST_CASE("spool: removing a missing file is silently ignored") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  CHECK_NOTHROW(spool.remove("no-such-file"));
}

TEST_CASE("spool: the directory is created (owner-only), also nested, and reused when it exists") {
  temp_dir dir;
  const auto path = dir / "a" / "b" / "spool";
  {
    spool_directory spool(path);
    CHECK(spool.path() == path);
    CHECK(std::filesystem::is_directory(path));
    const auto perms = std::filesystem::status(path).permissions();
    CHECK((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
          std::filesystem::perms::none);
  }
  { std::ofstream(path / "existing") << "x"; }
  spool_directory again(path);
  CHECK(std::filesystem::exists(path / "existing"));
}

TEST_CASE("spool: a directory that cannot be created throws storage_error") {
  temp_dir dir;
  { std::ofstream(dir / "plain-file") << "x"; }
  CHECK_THROWS_AS(spool_directory(dir / "plain-file" / "spool"), storage_error);
}

TEST_CASE("spool: an upload destroyed without keep() leaves no file, written or not") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  std::string empty_name, written_name, finished_name;
  {
    auto empty = spool.create();
    empty_name = empty.name();
    CHECK(std::filesystem::exists(spool.path() / empty_name));
  }
  {
    auto written = spool.create();
    written_name = written.name();
    written.write(make_content(10'000, 1));
  }
  {
    auto finished = spool.create();
    finished_name = finished.name();
    finished.write(make_content(100, 2));
    finished.finish();
  }
  CHECK_FALSE(std::filesystem::exists(spool.path() / empty_name));
  CHECK_FALSE(std::filesystem::exists(spool.path() / written_name));
  CHECK_FALSE(std::filesystem::exists(spool.path() / finished_name));
  CHECK(count_files(spool.path()) == 0);
}

TEST_CASE("spool: a moved-from upload does not delete the file its new owner holds") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  std::string name;
  {
    auto first = spool.create();
    name = first.name();
    first.write(make_content(3, 1));
    {
      spool_directory::upload second(std::move(first));
      CHECK(second.name() == name);
      CHECK(second.size() == 3);
      second.finish();
      second.keep();
    }
  }
  CHECK(read_whole(spool, name) == make_content(3, 1));
}

TEST_CASE("spool: sweep of an empty directory removes nothing") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  CHECK(spool.sweep({}) == 0);
}

// --- Life cycle --------------------------------------------------------------------------

TEST_CASE("spool: create/write/finish/keep keeps the exact bytes under a unique name") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  const auto content = make_content(9 << 20, 3);  // crosses the 8 MiB write-back interval
  std::string name;
  {
    auto upload = spool.create();
    name = upload.name();
    CHECK_FALSE(name.empty());
    CHECK(upload.size() == 0);
    const std::size_t half = content.size() / 2;
    upload.write(std::span<const std::uint8_t>(content.data(), half));
    upload.write(std::span<const std::uint8_t>(content.data() + half, content.size() - half));
    upload.write({});  // empty write: no change
    CHECK(upload.size() == content.size());
    upload.finish();
    upload.keep();
  }
  REQUIRE(std::filesystem::exists(spool.path() / name));
  CHECK(std::filesystem::file_size(spool.path() / name) == content.size());
  CHECK(read_whole(spool, name) == content);
  struct stat info {};
  REQUIRE(::stat((spool.path() / name).c_str(), &info) == 0);
  CHECK((info.st_mode & 077) == 0);  // owner-only file

  auto other = spool.create();
  CHECK(other.name() != name);
  CHECK(other.name().find('/') == std::string::npos);
}

TEST_CASE("spool: an empty upload can be kept and read back as empty") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  std::string name;
  {
    auto upload = spool.create();
    name = upload.name();
    upload.finish();
    upload.keep();
  }
  CHECK(read_whole(spool, name).empty());
}

TEST_CASE("spool: sweep deletes every file not in the keep set and counts them") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  std::vector<std::string> names;
  for (int i = 0; i < 4; ++i) {
    auto upload = spool.create();
    upload.write(make_content(10, static_cast<std::uint8_t>(i)));
    upload.keep();
    names.push_back(upload.name());
  }
  CHECK(spool.sweep({names[0], names[2], "not-there"}) == 2);
  CHECK(std::filesystem::exists(spool.path() / names[0]));
  CHECK_FALSE(std::filesystem::exists(spool.path() / names[1]));
  CHECK(std::filesystem::exists(spool.path() / names[2]));
  CHECK_FALSE(std::filesystem::exists(spool.path() / names[3]));
  CHECK(spool.sweep({names[0], names[2]}) == 0);
  spool.remove(names[0]);
  CHECK_FALSE(std::filesystem::exists(spool.path() / names[0]));
  CHECK_NOTHROW(spool.sync_directory());
}

TEST_CASE("spool: remove while a sendfile of the file still sits in a TCP send queue: the peer gets every byte intact") {
  // What a pull leaves behind: its last sendfile returned (the bytes are queued as references
  // to the file's pages), the messages are removed, the spool file is deleted; the peer reads
  // only afterwards. An unlink keeps those pages intact. Shrinking the file first (to free its
  // blocks in steps) does not: a cut inside a large folio zeroes the rest of it in place, and
  // here even cuts at 256 KiB multiples made 255 KiB arrive changed.
  temp_dir dir;
  spool_directory spool(dir / "spool");
  auto upload = spool.create();
  const auto content = make_content((1 << 20) + 1000, 21);  // not a whole number of pages
  upload.write(content);
  upload.finish();
  upload.keep();

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(listener >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  REQUIRE(::listen(listener, 1) == 0);
  REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
  const int sender = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(sender, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  const int receiver = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  REQUIRE(receiver >= 0);
  const int buffer_size = 4 << 20;  // the whole content fits in the queues: sendfile returns at once
  ::setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &buffer_size, sizeof buffer_size);
  ::setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &buffer_size, sizeof buffer_size);

  const int file = spool.open_for_read(upload.name());
  off_t offset = 0;
  while (offset < static_cast<off_t>(content.size()))
    REQUIRE(::sendfile(sender, file, &offset, content.size() - static_cast<std::size_t>(offset)) > 0);
  ::close(file);
  spool.remove(upload.name());
  CHECK_FALSE(std::filesystem::exists(spool.path() / upload.name()));
  ::shutdown(sender, SHUT_WR);

  byte_buffer received;
  std::uint8_t chunk[65536];
  for (ssize_t n; (n = ::read(receiver, chunk, sizeof chunk)) > 0;) received.insert(received.end(), chunk, chunk + n);
  for (int fd : {sender, receiver, listener}) ::close(fd);
  REQUIRE(received.size() == content.size());
  std::size_t first = 0, differing = 0;
  for (std::size_t i = 0; i < content.size(); ++i)
    if (received[i] != content[i] && differing++ == 0) first = i;
  INFO("first differing byte at " << first << ", " << differing << " differ");
  CHECK(differing == 0);
}

TEST_CASE("spool: receive_from_socket moves what is waiting, stops when nothing is, reports end of stream") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  int ends[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
  REQUIRE(::fcntl(ends[0], F_SETFL, ::fcntl(ends[0], F_GETFL) | O_NONBLOCK) == 0);
  byte_buffer sent(100'000);
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<std::uint8_t>(i * 7 + 3);

  auto upload = spool.create();
  const auto nothing = upload.receive_from_socket(ends[0], 1 << 20);  // nothing written yet
  CHECK(nothing.bytes == 0);
  CHECK_FALSE(nothing.end_of_stream);
  CHECK(nothing.socket_error == 0);

  REQUIRE(::write(ends[1], sent.data(), 60'000) == 60'000);
  const auto first = upload.receive_from_socket(ends[0], 50'000);  // stops at max
  CHECK(first.bytes == 50'000);
  const auto second = upload.receive_from_socket(ends[0], 1 << 20);  // the rest that waits
  CHECK(second.bytes == 10'000);
  CHECK_FALSE(second.end_of_stream);

  REQUIRE(::write(ends[1], sent.data() + 60'000, 40'000) == 40'000);
  ::close(ends[1]);
  const auto last = upload.receive_from_socket(ends[0], 1 << 20);
  CHECK(last.bytes == 40'000);
  CHECK(last.end_of_stream);
  ::close(ends[0]);

  CHECK(upload.size() == sent.size());
  upload.finish();
  upload.keep();
  CHECK(read_whole(spool, upload.name()) == sent);
}

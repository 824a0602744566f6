// Tests of spool_directory (server/spool.hpp): edge cases first (missing files, empty and
// abandoned uploads, sweeping an empty directory), then the write/finish/keep life cycle.
#include <doctest/doctest.h>

#include <fcntl.h>
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

TEST_CASE("spool: remove deletes a large file (shrunk in steps first), and through a symbolic link only the link") {
  temp_dir dir;
  spool_directory spool(dir / "spool");
  auto upload = spool.create();
  const auto chunk = make_content(1 << 20, 9);
  for (int i = 0; i < 3; ++i) upload.write(chunk);
  upload.write(make_content(1000, 10));  // 3 MiB + 1000: not a whole number of steps
  upload.finish();
  upload.keep();
  const auto name = upload.name();
  REQUIRE(std::filesystem::file_size(spool.path() / name) == (3u << 20) + 1000);
  spool.remove(name);
  CHECK_FALSE(std::filesystem::exists(spool.path() / name));

  // A link in the spool directory (put there by hand) is unlinked; its target keeps every byte.
  const auto outside = dir / "outside";
  {
    std::ofstream out(outside, std::ios::binary);
    const std::vector<char> bytes(1 << 20, 'x');
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::filesystem::create_symlink(outside, spool.path() / "link");
  spool.remove("link");
  CHECK_FALSE(std::filesystem::is_symlink(spool.path() / "link"));
  CHECK(std::filesystem::file_size(outside) == (1u << 20));
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

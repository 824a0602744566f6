// Tests of server.info / me.info parsing and the owner-only atomic writer.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <fstream>
#include <functional>

#include "client_files.hpp"
#include "test_directory.hpp"

using namespace letterbox::client;
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

unsigned mode_of(const fs::path& path) {
  struct stat info {};
  REQUIRE(::stat(path.c_str(), &info) == 0);
  return info.st_mode & 0777;
}

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const config_error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("server address parsing") {
  CHECK(parse_server_address("127.0.0.1:1234") == server_address{"127.0.0.1", 1234});
  CHECK(parse_server_address("  example.org:1357 \r\n") == server_address{"example.org", 1357});
  CHECK(parse_server_address("[::1]:80") == server_address{"::1", 80});
  CHECK_THROWS_AS(parse_server_address("127.0.0.1"), config_error);
  CHECK_THROWS_AS(parse_server_address("127.0.0.1:"), config_error);
  CHECK_THROWS_AS(parse_server_address("127.0.0.1:0"), config_error);
  CHECK_THROWS_AS(parse_server_address("127.0.0.1:65536"), config_error);
  CHECK_THROWS_AS(parse_server_address("127.0.0.1:12ab"), config_error);
  CHECK_THROWS_AS(parse_server_address(":1234"), config_error);
}

TEST_CASE("server.info: missing or empty files are named in the error") {
  test_directory dir;
  CHECK(error_of([&] { read_server_info(dir.path); }).find("server.info: file not found") != std::string::npos);
  write_text(dir.path / "server.info", "\n");
  CHECK(error_of([&] { read_server_info(dir.path); }).find("server.info: file is empty") != std::string::npos);
  write_text(dir.path / "server.info", "localhost:99999\n");
  CHECK(error_of([&] { read_server_info(dir.path); }).find("server.info: port") != std::string::npos);
  write_text(dir.path / "server.info", "localhost:4242\n");
  CHECK(read_server_info(dir.path) == server_address{"localhost", 4242});
}

TEST_CASE("me.info round trip, owner-only, never overwritten") {
  test_directory dir;
  letterbox::protocol::client_id id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(i * 17);
  const identity me{"Grüße user", id, private_key::generate()};
  write_me_info(dir.path, me);
  CHECK(mode_of(dir.path / "me.info") == 0600);

  const auto loaded = read_me_info(dir.path);
  CHECK(loaded.name == me.name);
  CHECK(loaded.id == id);
  CHECK(loaded.key.public_key() == me.key.public_key());

  std::ifstream in(dir.path / "me.info");
  std::string line1, line2, line3, extra;
  std::getline(in, line1), std::getline(in, line2), std::getline(in, line3);
  CHECK(line1 == "Grüße user");
  CHECK(line2 == "00112233445566778899aabbccddeeff");
  CHECK(base64_decode(line3) == me.key.to_pkcs8());
  CHECK(!std::getline(in, extra));

  CHECK(error_of([&] { write_me_info(dir.path, me); }).find("already exists") != std::string::npos);
  CHECK(read_me_info(dir.path).key.public_key() == me.key.public_key());  // untouched
  int leftovers = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) leftovers += entry.path().filename() != "me.info";
  CHECK(leftovers == 0);  // no temp file left behind
}

TEST_CASE("me.info with the key Base64 split over several lines (legacy writers) is accepted") {
  test_directory dir;
  const auto key = private_key::generate();
  auto text = base64_encode(key.to_pkcs8());
  std::string wrapped;
  for (std::size_t i = 0; i < text.size(); i += 64) wrapped += text.substr(i, 64) + "\n";
  write_text(dir.path / "me.info", "bob\n000102030405060708090a0b0c0d0e0f\n" + wrapped);
  CHECK(read_me_info(dir.path).key.public_key() == key.public_key());
}

TEST_CASE("bad me.info files: the error names the file and the line") {
  test_directory dir;
  const auto key64 = base64_encode(private_key::generate().to_pkcs8());
  const auto path = dir.path / "me.info";
  CHECK(error_of([&] { read_me_info(dir.path); }).find("me.info: file not found") != std::string::npos);
  write_text(path, "alice\n");
  CHECK(error_of([&] { read_me_info(dir.path); }).find("expected 3 lines") != std::string::npos);
  write_text(path, "alice\nxyz\n" + key64 + "\n");
  CHECK(error_of([&] { read_me_info(dir.path); }).find("line 2") != std::string::npos);
  write_text(path, "\n000102030405060708090a0b0c0d0e0f\n" + key64 + "\n");
  CHECK(error_of([&] { read_me_info(dir.path); }).find("line 1") != std::string::npos);
  write_text(path, "alice\n000102030405060708090a0b0c0d0e0f\nnot base64!\n");
  CHECK(error_of([&] { read_me_info(dir.path); }).find("line 3") != std::string::npos);
  write_text(path, "alice\n000102030405060708090a0b0c0d0e0f\nTWFu\n");
  CHECK(error_of([&] { read_me_info(dir.path); }).find("line 3") != std::string::npos);
}

TEST_CASE("write_private_file replaces atomically when asked") {
  test_directory dir;
  const auto path = dir.path / "file.txt";
  write_private_file(path, "one", true);
  write_private_file(path, "two", true);
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  CHECK(content == "two");
  CHECK(mode_of(path) == 0600);
  CHECK_THROWS_AS(write_private_file(path, "three", false), config_error);
  CHECK_THROWS_AS(write_private_file(dir.path / "missing-dir" / "x", "x", true), config_error);
}

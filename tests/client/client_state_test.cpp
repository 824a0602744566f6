// Tests of the v2 state files: me.v2, servers.v2, seen.v2 (client_state.hpp).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>

#include "client_state.hpp"
#include "test_directory.hpp"

using namespace letterbox::client;

TEST_CASE("me.v2 round trip, owner-only, never overwritten; malformed files are named") {
  test_directory dir;
  CHECK(!read_me_v2(dir.path));
  v2_secrets secrets;
  secrets.identity.fill(0x11);
  secrets.agreement.fill(0x22);
  write_me_v2(dir.path, secrets);
  const auto back = read_me_v2(dir.path);
  REQUIRE(back);
  CHECK(back->identity == secrets.identity);
  CHECK(back->agreement == secrets.agreement);
  struct stat info {};
  REQUIRE(::stat((dir.path / me_v2_file).c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  CHECK_THROWS_AS(write_me_v2(dir.path, secrets), config_error);
  std::ofstream(dir.path / me_v2_file) << "identity 1234\n";
  CHECK_THROWS_WITH_AS(read_me_v2(dir.path), doctest::Contains("me.v2: line 1"), config_error);
}

TEST_CASE("servers.v2 remembers servers by host:port") {
  test_directory dir;
  const server_address a{"127.0.0.1", 1357}, b{"::1", 1357}, c{"127.0.0.1", 1358};
  CHECK(!is_known_v2_server(dir.path, a));
  remember_v2_server(dir.path, a);
  remember_v2_server(dir.path, b);
  remember_v2_server(dir.path, a);
  CHECK(is_known_v2_server(dir.path, a));
  CHECK(is_known_v2_server(dir.path, b));
  CHECK(!is_known_v2_server(dir.path, c));
  std::ifstream in(dir.path / servers_v2_file);
  std::string all((std::istreambuf_iterator<char>(in)), {});
  CHECK(all.find("127.0.0.1:1357\n[::1]:1357\n") != std::string::npos);
  CHECK(all.find("127.0.0.1:1357", all.find("127.0.0.1:1357") + 1) == std::string::npos);  // once
}

TEST_CASE("seen.v2 survives a restart; malformed lines are refused") {
  test_directory dir;
  replay_id replay{};
  replay.fill(0xAB);
  {
    auto seen = seen_store::load(dir.path);
    CHECK(!seen.has_message(7));
    seen.add(7, replay);
    seen.add(4294967295u, std::nullopt);
    CHECK(seen.has_message(7));
  }
  auto seen = seen_store::load(dir.path);
  CHECK(seen.has_message(7));
  CHECK(seen.has_message(4294967295u));
  CHECK(!seen.has_message(8));
  CHECK(seen.has_replay(replay));
  replay.fill(0xAC);
  CHECK(!seen.has_replay(replay));
  std::ofstream(dir.path / seen_v2_file, std::ios::app) << "m 4294967296\n";
  CHECK_THROWS_AS(seen_store::load(dir.path), config_error);
}

TEST_CASE("attack: seen.v2 cut inside its last record (a crash during add) loads, and the next add stays readable") {
  test_directory dir;
  replay_id replay{};
  replay.fill(0xAB);
  seen_store::load(dir.path).add(123, replay);
  // add() writes "m 124\nr <hex>\n" and fsyncs before the ACK: a crash can leave any prefix.
  std::ofstream(dir.path / seen_v2_file, std::ios::app) << "m 124\nr abab";
  {
    auto seen = seen_store::load(dir.path);  // was: config_error, every later pull refused
    CHECK(seen.has_message(123));
    CHECK(seen.has_message(124));  // its line was complete
    CHECK(seen.has_replay(replay));
    seen.add(125, std::nullopt);
  }
  std::ofstream(dir.path / seen_v2_file, std::ios::app) << "m 12";  // the prefix of "m 126"
  auto seen = seen_store::load(dir.path);
  CHECK(seen.has_message(125));
  CHECK(!seen.has_message(12));  // a torn record is not a record
}

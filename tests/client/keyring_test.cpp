// Tests of the keyring file: round trip across "restarts", permissions, malformed lines.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <fstream>

#include "keyring.hpp"
#include "test_directory.hpp"

using namespace letterbox::client;
namespace proto = letterbox::protocol;

namespace {

proto::client_id id_of(std::uint8_t seed) {
  proto::client_id id{};
  for (std::size_t i = 0; i < id.size(); ++i) id[i] = static_cast<std::uint8_t>(seed + i);
  return id;
}

}  // namespace

TEST_CASE("a missing keyring file is an empty keyring") {
  test_directory dir;
  CHECK(keyring::load(dir.path).peers().empty());
}

TEST_CASE("keyring survives a restart: IDs, names with spaces, public and symmetric keys") {
  test_directory dir;
  const auto public_key = private_key::generate().public_key();
  const auto shared = generate_symmetric_key();
  {
    auto ring = keyring::load(dir.path);
    ring.set_name(id_of(1), "alice smith");
    ring.upsert(id_of(1)).public_key = public_key;
    ring.upsert(id_of(1)).shared_key = shared;
    ring.upsert(id_of(2)).shared_key = generate_symmetric_key();  // name not known yet
    ring.set_name(id_of(3), "Грета");
    ring.save();
  }
  struct stat info {};
  REQUIRE(::stat((dir.path / "keyring.info").c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);

  auto ring = keyring::load(dir.path);
  REQUIRE(ring.peers().size() == 3);
  const auto* alice = ring.find_by_name("alice smith");
  REQUIRE(alice);
  CHECK(alice->id == id_of(1));
  CHECK(alice->public_key == public_key);
  CHECK(alice->shared_key == shared);
  CHECK(ring.find(id_of(2))->name.empty());
  CHECK(ring.find(id_of(2))->shared_key.has_value());
  CHECK(!ring.find(id_of(3))->public_key.has_value());
  CHECK(ring.find_by_name("") == nullptr);
  CHECK(ring.find_by_name("nobody") == nullptr);
}

TEST_CASE("a name moves to the new ID when a user re-registers") {
  keyring ring;
  ring.set_name(id_of(1), "bob");
  ring.set_name(id_of(9), "bob");
  CHECK(ring.find_by_name("bob")->id == id_of(9));
  CHECK(ring.find(id_of(1))->name.empty());
}

TEST_CASE("malformed keyring lines are reported with their line number") {
  const auto error_of = [](const std::string& text) {
    try {
      keyring::parse(text);
    } catch (const config_error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string id = "000102030405060708090a0b0c0d0e0f";
  CHECK(keyring::parse("# comment\n\n" + id + " - - carol\n").size() == 1);
  CHECK(error_of("# c\n" + id + " - -\n").find("line 2") != std::string::npos);
  CHECK(error_of("zz " + std::string("- - x\n")).find("line 1: client ID") != std::string::npos);
  CHECK(error_of(id + " TWFu - x\n").find("public key") != std::string::npos);
  CHECK(error_of(id + " - 0011 x\n").find("symmetric key") != std::string::npos);
  CHECK(error_of(id + " - - a\n" + id + " - - b\n").find("twice") != std::string::npos);
}

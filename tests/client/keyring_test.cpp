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
  CHECK(keyring::parse("# comment\n\n" + id + " - - carol\n").peers.size() == 1);
  CHECK(error_of("# c\n" + id + " - -\n").find("line 2") != std::string::npos);
  CHECK(error_of("zz " + std::string("- - x\n")).find("line 1: client ID") != std::string::npos);
  CHECK(error_of(id + " TWFu - x\n").find("public key") != std::string::npos);
  CHECK(error_of(id + " - 0011 x\n").find("symmetric key") != std::string::npos);
  CHECK(error_of(id + " - - a\n" + id + " - - b\n").find("twice") != std::string::npos);
}

TEST_CASE("pins: saved and loaded with the peers; a pin is replaced by name or by ID") {
  test_directory dir;
  const auto legacy = private_key::generate().public_key();
  pin bob;
  bob.name = "bob the builder";
  bob.id = id_of(5);
  bob.identity_key.fill(0x51);
  bob.agreement_key.fill(0x52);
  bob.legacy_key = legacy;
  {
    auto ring = keyring::load(dir.path);
    ring.set_name(id_of(5), "bob the builder");
    ring.replace_pin(bob);
    ring.save();
  }
  auto ring = keyring::load(dir.path);
  REQUIRE(ring.find_pin("bob the builder"));
  CHECK(*ring.find_pin("bob the builder") == bob);
  CHECK(ring.find_pin(id_of(5)) == ring.find_pin("bob the builder"));
  CHECK(ring.find_by_name("bob the builder")->id == id_of(5));
  pin changed = bob;
  changed.id = id_of(6);
  changed.identity_key.fill(0x61);
  ring.replace_pin(changed);  // the user trusted bob's new key
  CHECK(ring.pins().size() == 1);
  CHECK(ring.find_pin(id_of(5)) == nullptr);
  CHECK(ring.find_pin("bob the builder")->identity_key == changed.identity_key);
}

TEST_CASE("a keyring file written before pins existed still loads") {
  test_directory dir;
  const auto key = private_key::generate().public_key();
  std::ofstream(dir.path / "keyring.info")
      << "# Letterbox keyring v1: <client ID hex> <public key Base64|-> <symmetric key hex|-> <name>\n"
      << letterbox::protocol::to_hex(id_of(1)) << " " << base64_encode(key) << " "
      << letterbox::protocol::to_hex(generate_symmetric_key()) << " alice\n"
      << letterbox::protocol::to_hex(id_of(2)) << " - - \n";
  auto ring = keyring::load(dir.path);
  CHECK(ring.peers().size() == 2);
  CHECK(ring.pins().empty());
  CHECK(ring.find_by_name("alice")->public_key == key);
  ring.save();
  CHECK(keyring::load(dir.path).peers() == ring.peers());
}

TEST_CASE("malformed pin lines are refused with their line number") {
  const auto id = letterbox::protocol::to_hex(id_of(1));
  const std::string k(64, 'a');
  CHECK_THROWS_WITH(keyring::parse("pin " + id + " " + k + " " + k + "\n"), doctest::Contains("line 1"));
  CHECK_THROWS_WITH(keyring::parse("# x\npin " + id + " abcd " + k + " AAAA bob\n"), doctest::Contains("line 2: pin: identity key"));
  const auto legacy = base64_encode(private_key::generate().public_key());
  const auto good = "pin " + id + " " + k + " " + k + " " + legacy + " bob\n";
  CHECK(keyring::parse(good).pins.size() == 1);
  CHECK_THROWS_WITH(keyring::parse(good + good), doctest::Contains("pinned twice"));
}

// The self-test: each check is a named lambda run under one try/catch, so a failure is a
// line of output, never an abort (see self_test.hpp).
#include "self_test.hpp"

#include <stdlib.h>

#include <fstream>
#include <functional>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "envelope.hpp"
#include "operations.hpp"
#include "session_v2.hpp"

namespace letterbox::client {
namespace {

namespace proto = letterbox::protocol;

struct check_failed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void expect(bool condition, const std::string& what) {
  if (!condition) throw check_failed(what);
}

// Runs body and expects it to fail with client_error of the given kind.
template <typename Body>
void expect_refused(Body&& body, client_error::kind expected, const std::string& what) {
  try {
    body();
  } catch (const client_error& e) {
    if (e.error_kind() == expected) return;
    throw check_failed(what + ", but failed differently: " + e.what());
  }
  throw check_failed(what + ", but it succeeded");
}

std::string random_hex(std::size_t bytes) {
  std::vector<std::uint8_t> raw(bytes);
  random_fill(raw.data(), raw.size());
  return proto::to_hex(raw);
}

// Pulls until the mailbox is empty (bounded), returning everything in arrival order.
std::vector<received_message> pull_all(client_operations& client) {
  std::vector<received_message> all;
  for (int round = 0; round < 16; ++round)
    if (client.pull_messages([&](const received_message& m) { all.push_back(m); }) == 0) break;
  return all;
}

std::string file_sha256(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  sha256 hash;
  std::vector<std::uint8_t> chunk(1 << 20);
  while (in) {
    in.read(reinterpret_cast<char*>(chunk.data()), static_cast<std::streamsize>(chunk.size()));
    hash.update(std::span(chunk.data(), static_cast<std::size_t>(in.gcount())));
  }
  return hash.hex_digest();
}

// Writes size pseudo-random bytes to path; returns their SHA-256.
std::string write_random_file(const std::filesystem::path& path, std::uint64_t size) {
  std::mt19937_64 generator(std::random_device{}());
  std::ofstream out(path, std::ios::binary);
  sha256 hash;
  std::vector<std::uint64_t> chunk((1 << 20) / sizeof(std::uint64_t));
  for (std::uint64_t left = size; left > 0;) {
    for (auto& word : chunk) word = generator();
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size() * sizeof(std::uint64_t)));
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(chunk.data());
    out.write(reinterpret_cast<const char*>(bytes), static_cast<std::streamsize>(n));
    hash.update(std::span(bytes, n));
    left -= n;
  }
  if (!out.flush()) throw check_failed("cannot write the test file " + path.string());
  return hash.hex_digest();
}

// A throwaway client directory holding a copy of the server address.
std::filesystem::path make_directory(const std::filesystem::path& root, const std::string& name,
                                     const server_address& server) {
  const auto dir = root / name;
  std::filesystem::create_directories(dir);
  write_private_file(dir / server_info_file, server.host + ":" + std::to_string(server.port) + "\n", true);
  return dir;
}

// notices (if given) counts the client's notes (the v1 fallback is said once per client).
std::unique_ptr<client_operations> make_client(const std::filesystem::path& root, const std::string& name,
                                               const server_address& server, const self_test_options& test,
                                               std::shared_ptr<int> notices = {}) {
  const auto dir = make_directory(root, name, server);
  client_options options;
  options.directory = dir;
  options.download_directory = root / "downloads";
  options.io_timeout = test.io_timeout;
  if (notices) options.notice = [notices](const std::string&) { ++*notices; };
  return std::make_unique<client_operations>(options);
}

// A text message's envelope sealed by `from` for `to` with one byte flipped at `at`.
std::vector<std::uint8_t> tampered_text(const std::filesystem::path& from_dir, const pin& to, std::string_view text,
                                        std::size_t at) {
  const auto secrets = read_me_v2(from_dir);
  if (!secrets) throw check_failed("no me.v2 in " + from_dir.string());
  auto sealed = crypto::seal_text(secrets->identity, read_me_info(from_dir).id, to.id, to.agreement_key, text);
  sealed.at(at) ^= 0x01;
  return sealed;
}

// Removes the temporary directory however the test ends.
struct temp_directory {
  std::filesystem::path path;
  ~temp_directory() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

}  // namespace

int run_self_test(const self_test_options& options, std::ostream& out) {
  server_address server;
  temp_directory root;
  try {
    server = read_server_info(options.config_directory);
    const auto parent = options.temp_parent.empty() ? std::filesystem::temp_directory_path() : options.temp_parent;
    std::string pattern = (parent / "letterbox-selftest-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw config_error(pattern + ": cannot create a temporary directory");
    root.path = pattern;
  } catch (const std::exception& e) {
    out << "cannot start the self-test: " << e.what() << "\n";
    return 2;
  }
  out << "Self-test against " << server.host << ":" << server.port << " (temporary identities in "
      << root.path.string() << ")\n";

  int passed = 0, failed = 0;
  const auto check = [&](const std::string& name, const std::function<void()>& body) {
    try {
      body();
      ++passed;
      out << "ok    " << name << "\n" << std::flush;
    } catch (const std::exception& e) {
      ++failed;
      out << "FAIL  " << name << ": " << e.what() << "\n" << std::flush;
    }
  };

  const std::string tag = "selftest-" + random_hex(6);
  const std::string alice_name = tag + "-alice", bob_name = tag + "-bob";
  std::unique_ptr<client_operations> alice, bob;
  const auto alice_notices = std::make_shared<int>(0);
  try {
    alice = make_client(root.path, "alice", server, options, alice_notices);
    bob = make_client(root.path, "bob", server, options);
  } catch (const std::exception& e) {
    out << "cannot start the self-test: " << e.what() << "\n";
    return 2;
  }

  check("register " + alice_name, [&] { alice->register_user(alice_name); });
  check("register " + bob_name, [&] { bob->register_user(bob_name); });
  bool v2 = false;
  try {
    v2 = alice->speaks_v2() && bob->speaks_v2();
  } catch (const std::exception&) {  // the checks below report what fails
  }
  out << (v2 ? "protocol v2 (the v2 checks run; the v1 key exchange is not used between v2 peers)\n"
             : "protocol v1: the server speaks only v1 (fallback; the v2 checks are skipped)\n");
  if (!v2)
    check("fallback to v1 said once", [&] {
      expect(*alice_notices == 1, "the fallback was said " + std::to_string(*alice_notices) + " times, not once");
    });
  check("duplicate name refused by the server", [&] {
    auto copycat = make_client(root.path, "copycat", server, options);
    expect_refused([&] { copycat->register_user(alice_name); }, client_error::kind::server_error,
                   "registering an existing name should get 9000");
  });
  check("second registration refused locally (me.info exists)", [&] {
    expect_refused([&] { alice->register_user(alice_name + "-again"); }, client_error::kind::already_registered,
                   "registering twice should be refused");
  });
  check("unregistered client refused", [&] {
    const auto dir = make_directory(root.path, "stranger", server);
    proto::client_id fake{};
    random_fill(fake.data(), fake.size());
    write_me_info(dir, identity{tag + "-stranger", fake, private_key::generate()});
    auto stranger = make_client(root.path, "stranger", server, options);
    expect_refused([&] { stranger->list_clients(); }, client_error::kind::server_error,
                   "a list request from an unknown ID should get 9000");
  });
  check("clients list shows the other identity and not itself", [&] {
    const auto clients = alice->list_clients();
    const auto has = [&](const std::string& name) {
      return std::any_of(clients.begin(), clients.end(), [&](const auto& c) { return c.name == name; });
    };
    expect(has(bob_name), "bob is missing from alice's list");
    expect(!has(alice_name), "alice's list contains alice");
  });
  check("public key of the other identity matches its me.info", [&] {
    const auto key = alice->request_public_key(bob_name);
    expect(key == read_me_info(root.path / "bob").key.public_key(), "received key differs from bob's key");
  });
  if (v2)
    check("v2 peers: key exchange refused as not needed", [&] {
      expect_refused([&] { alice->request_symmetric_key(bob_name); }, client_error::kind::invalid_input,
                     "a key request to a v2 peer should be refused as not needed");
      expect_refused([&] { bob->send_symmetric_key(alice_name); }, client_error::kind::invalid_input,
                     "a key sent to a v2 peer should be refused as not needed");
    });
  if (!v2) check("request for symmetric key delivered", [&] {
    alice->request_symmetric_key(bob_name);
    const auto got = pull_all(*bob);
    expect(got.size() == 1, std::to_string(got.size()) + " messages instead of 1");
    expect(got[0].what == received_message::kind::key_request, "not a key request");
    expect(got[0].from == read_me_info(root.path / "alice").id, "the sender is not alice's ID");
  });
  if (!v2) check("symmetric key sent, received and stored", [&] {
    bob->send_symmetric_key(alice_name);
    const auto got = pull_all(*alice);
    expect(got.size() == 1 && got[0].what == received_message::kind::key_received, "no key received");
    const auto* at_alice = alice->keys().find_by_name(bob_name);
    const auto* at_bob = bob->keys().find_by_name(alice_name);
    expect(at_alice && at_bob && at_alice->shared_key && at_alice->shared_key == at_bob->shared_key,
           "the two keyrings hold different keys");
  });
  const auto text_round_trip = [&](const std::string& text) {
    alice->send_text(bob_name, text);
    const auto got = pull_all(*bob);
    expect(got.size() == 1 && got[0].what == received_message::kind::text, "no text received");
    expect(got[0].text == text, "received text differs (" + std::to_string(got[0].text.size()) + " bytes)");
    expect(got[0].authenticated == v2, v2 ? "a v2 text was not authenticated" : "a v1 text claims authentication");
  };
  check("empty text", [&] { text_round_trip(""); });
  check("non-ASCII text", [&] { text_round_trip("Grüße, 世界! Привет 🙂"); });
  check("1 MiB text", [&] {
    std::string text(1 << 20, ' ');
    std::mt19937 generator(std::random_device{}());
    for (auto& c : text) c = static_cast<char>('a' + generator() % 26);
    text_round_trip(text);
  });
  if (!v2) check("text without a key: can't decrypt message", [&] {
    auto* at_bob = bob->keys().find_by_name(alice_name);
    expect(at_bob && at_bob->shared_key, "bob has no key for alice");
    const auto saved = *at_bob->shared_key;
    at_bob->shared_key.reset();  // as if bob had lost his keyring
    alice->send_text(bob_name, "unreadable");
    const auto got = pull_all(*bob);
    bob->keys().find_by_name(alice_name)->shared_key = saved;
    expect(got.size() == 1, std::to_string(got.size()) + " messages instead of 1");
    expect(got[0].what == received_message::kind::undecryptable, "the text was not reported as undecryptable");
  });
  const auto mib = options.file_size >> 20;
  check(std::to_string(mib) + " MiB file, content check", [&] {
    const auto source = root.path / "outgoing.bin";
    const auto digest = write_random_file(source, options.file_size);
    bob->send_file(alice_name, source);
    std::filesystem::remove(source);
    const auto got = pull_all(*alice);
    expect(got.size() == 1 && got[0].what == received_message::kind::file, "no file received");
    const auto received = file_sha256(got[0].file_path);
    std::filesystem::remove(got[0].file_path);
    expect(received == digest, "SHA-256 differs: sent " + digest + ", received " + received);
  });
  check("pull returns messages in send order", [&] {
    constexpr int count = 5;
    for (int i = 0; i < count; ++i) alice->send_text(bob_name, "message " + std::to_string(i));
    const auto got = pull_all(*bob);
    expect(got.size() == count, std::to_string(got.size()) + " messages instead of " + std::to_string(count));
    for (int i = 0; i < count; ++i) expect(got[i].text == "message " + std::to_string(i), "out of order at " + std::to_string(i));
  });
  check("mailboxes empty after pull", [&] {
    expect(bob->pull_messages({}) == 0, "bob's mailbox is not empty");
    expect(alice->pull_messages({}) == 0, "alice's mailbox is not empty");
  });
  check("unknown target refused", [&] {
    proto::client_id ghost{};
    random_fill(ghost.data(), ghost.size());
    alice->keys().set_name(ghost, tag + "-ghost");
    alice->keys().upsert(ghost).shared_key = generate_symmetric_key();
    if (v2)  // a v2 client sends only to clients the directory lists: the raw SEND shows the server's refusal
      expect_refused([&] { alice->send_raw_v2(tag + "-ghost", 16, std::vector<std::uint8_t>(439, 0)); },
                     client_error::kind::server_error, "a message to an unregistered ID should get 9000");
    else
      expect_refused([&] { alice->send_text(tag + "-ghost", "hello?"); }, client_error::kind::server_error,
                     "a message to an unregistered ID should get 9000");
  });
  if (v2) {
    check("v2: authentication refused without the identity key", [&] {
      v2_session impostor(server, options.io_timeout);
      expect(impostor.hello() == v2_session::hello_result::v2, "the server stopped speaking v2");
      try {
        impostor.authenticate(read_me_info(root.path / "bob").id, crypto::generate_identity());
      } catch (const v2_server_error& e) {
        expect(e.reason() == static_cast<std::uint16_t>(proto::v2::reason::authentication_failed),
               std::string("refused for another reason: ") + e.what());
        return;
      }
      throw check_failed("AUTH as bob with another key was accepted");
    });
    check("v2: safety numbers equal on both sides", [&] {
      const auto at_alice = alice->safety_number(bob_name), at_bob = bob->safety_number(alice_name);
      expect(at_alice == at_bob, "alice sees " + at_alice + ", bob sees " + at_bob);
      expect(at_alice.size() == 71, "not 12 groups of 5 digits: " + at_alice);
    });
    check("v2: a flipped byte anywhere is reported as could not be verified, never shown", [&] {
      const pin to = *alice->keys().find_pin(bob_name);
      // in the header's IDs, the ephemeral key, the signature, chunk 0, the body, the last tag
      const std::size_t positions[] = {1, 20, 40, 100, 200, 439, 450, 439 + 16 + 5};
      for (const auto at : positions) alice->send_raw_v2(bob_name, 16, tampered_text(root.path / "alice", to, "Pay 100 dollars", at));
      const auto got = pull_all(*bob);
      expect(got.size() == std::size(positions), std::to_string(got.size()) + " messages instead of " +
                                                     std::to_string(std::size(positions)));
      for (const auto& m : got) {
        expect(m.what == received_message::kind::unverified, "a tampered envelope was not refused: kind " +
                                                                 std::to_string(static_cast<int>(m.what)));
        expect(m.text.empty() && !m.authenticated, "something of a tampered envelope was kept");
      }
      expect(bob->pull_messages({}) == 0, "the refused envelopes were not acknowledged");
    });
    check("v2: unacknowledged messages come back after reconnecting; the duplicate is dropped", [&] {
      alice->send_text(bob_name, "at least once");
      std::vector<received_message> first, second;
      bob->pull([&](const received_message& m) { first.push_back(m); }, {}, false);  // no ACK
      expect(first.size() == 1 && first[0].what == received_message::kind::text, "the text did not arrive");
      bob->disconnect();  // its leases end with the connection
      bob->pull([&](const received_message& m) { second.push_back(m); }, {}, true);
      expect(second.size() == 1, "the unacknowledged message did not come back (" + std::to_string(second.size()) + ")");
      expect(second[0].message_id == first[0].message_id, "another message came back");
      expect(second[0].what == received_message::kind::duplicate, "the redelivery was not dropped as a duplicate");
      expect(bob->pull_messages({}) == 0, "the acknowledged message came again");
    });
    check("v2: a replayed envelope is dropped", [&] {
      const pin to = *alice->keys().find_pin(bob_name);
      const auto secrets = read_me_v2(root.path / "alice");
      const auto sealed = crypto::seal_text(secrets->identity, read_me_info(root.path / "alice").id, to.id,
                                            to.agreement_key, "only once");
      alice->send_raw_v2(bob_name, 16, sealed);
      alice->send_raw_v2(bob_name, 16, sealed);  // the operator (or anyone) stores it again
      const auto got = pull_all(*bob);
      expect(got.size() == 2, std::to_string(got.size()) + " messages instead of 2");
      expect(got[0].what == received_message::kind::text && got[0].text == "only once", "the first copy was not shown");
      expect(got[1].what == received_message::kind::duplicate, "the replay was not dropped");
    });
    check("v2: a changed key is refused until trusted", [&] {
      {  // alice's pin of bob now holds another identity key, as if the server had swapped it since
        auto ring = keyring::load(root.path / "alice");
        pin forged = *ring.find_pin(bob_name);
        forged.identity_key = crypto::public_key_of(crypto::generate_identity());
        ring.replace_pin(forged);
        ring.save();
      }
      auto fresh = make_client(root.path, "alice", server, options);  // a new run reads the keyring
      expect_refused([&] { fresh->send_text(bob_name, "to the wrong key?"); }, client_error::kind::key_refused,
                     "sending with a changed key should be refused");
      const auto change = fresh->inspect_keys(bob_name);
      expect(change.pinned && change.pinned->identity_key != change.current.identity_key, "no change shown");
      fresh->trust(change);
      fresh->send_text(bob_name, "after trust");
      const auto got = pull_all(*bob);
      expect(got.size() == 1 && got[0].text == "after trust", "the text after trust did not arrive");
      alice = std::move(fresh);
    });
    check("v2: a file keeps its name; a second one is not overwritten", [&] {
      const auto source = root.path / "Grüße report (final).txt";
      write_random_file(source, 70'000);
      bob->send_file(alice_name, source);
      bob->send_file(alice_name, source);
      std::filesystem::remove(source);
      const auto got = pull_all(*alice);
      expect(got.size() == 2 && got[0].what == received_message::kind::file && got[1].what == received_message::kind::file,
             "no files received");
      expect(got[0].file_name == "Grüße report (final).txt", "the name sent is " + got[0].file_name);
      expect(got[0].file_path.filename() == "Grüße report (final).txt", "saved as " + got[0].file_path.string());
      expect(got[1].file_path.filename() == "Grüße report (final) (1).txt", "second saved as " + got[1].file_path.string());
      for (const auto& m : got) std::filesystem::remove(m.file_path);
    });
  }

  out << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace letterbox::client

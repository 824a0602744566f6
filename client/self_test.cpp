// The self-test: each check is a named lambda run under one try/catch, so a failure is a
// line of output, never an abort (see self_test.hpp).
#include "self_test.hpp"

#include <stdlib.h>

#include <fstream>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "operations.hpp"

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

std::unique_ptr<client_operations> make_client(const std::filesystem::path& root, const std::string& name,
                                               const server_address& server, const self_test_options& test) {
  const auto dir = make_directory(root, name, server);
  client_options options;
  options.directory = dir;
  options.download_directory = root / "downloads";
  options.io_timeout = test.io_timeout;
  return std::make_unique<client_operations>(options);
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
  try {
    alice = make_client(root.path, "alice", server, options);
    bob = make_client(root.path, "bob", server, options);
  } catch (const std::exception& e) {
    out << "cannot start the self-test: " << e.what() << "\n";
    return 2;
  }

  check("register " + alice_name, [&] { alice->register_user(alice_name); });
  check("register " + bob_name, [&] { bob->register_user(bob_name); });
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
  check("request for symmetric key delivered", [&] {
    alice->request_symmetric_key(bob_name);
    const auto got = pull_all(*bob);
    expect(got.size() == 1, std::to_string(got.size()) + " messages instead of 1");
    expect(got[0].what == received_message::kind::key_request, "not a key request");
    expect(got[0].from == read_me_info(root.path / "alice").id, "the sender is not alice's ID");
  });
  check("symmetric key sent, received and stored", [&] {
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
  };
  check("empty text", [&] { text_round_trip(""); });
  check("non-ASCII text", [&] { text_round_trip("Grüße, 世界! Привет 🙂"); });
  check("1 MiB text", [&] {
    std::string text(1 << 20, ' ');
    std::mt19937 generator(std::random_device{}());
    for (auto& c : text) c = static_cast<char>('a' + generator() % 26);
    text_round_trip(text);
  });
  check("text without a key: can't decrypt message", [&] {
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
    expect_refused([&] { alice->send_text(tag + "-ghost", "hello?"); }, client_error::kind::server_error,
                   "a message to an unregistered ID should get 9000");
  });

  out << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace letterbox::client

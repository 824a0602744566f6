// Tests of the client operations against a scripted in-process server: exact request bytes,
// pull stream parsing (bad and unknown messages are consumed, the rest still processed),
// 9000 translation and the per-operation timeout.
#include <utility>  // before Boost.Asio (Boost 1.74 + g++ 12 + C++20)

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <boost/asio.hpp>
#include <chrono>
#include <fstream>
#include <optional>
#include <thread>

#include "allocation_probe.hpp"
#include "operations.hpp"
#include "test_directory.hpp"

using namespace letterbox::client;
namespace proto = letterbox::protocol;
using boost::asio::ip::tcp;

namespace {

struct recorded_request {
  proto::request_header header;
  proto::byte_buffer payload;
};

// Accepts one connection per canned response, records the request, writes the response.
// An empty response means "never answer" (the connection stays silent until the client leaves).
class canned_server {
 public:
  explicit canned_server(std::vector<proto::byte_buffer> responses)
      : acceptor_(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)),
        thread_([this, responses = std::move(responses)] { serve(responses); }) {}
  ~canned_server() {
    if (!thread_.joinable()) return;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);  // unblocks accept() if a test failed early
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // Waits until every canned response was served; returns the recorded requests.
  const std::vector<recorded_request>& requests() {
    if (thread_.joinable()) thread_.join();
    return requests_;
  }

 private:
  void serve(const std::vector<proto::byte_buffer>& responses) {
    for (const auto& response : responses) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      proto::request_header_bytes head{};
      boost::asio::read(socket, boost::asio::buffer(head), ec);
      if (ec) continue;
      recorded_request request{proto::decode_request_header(head), {}};
      request.payload.resize(request.header.payload_size);
      boost::asio::read(socket, boost::asio::buffer(request.payload), ec);
      requests_.push_back(std::move(request));
      if (response.empty()) {  // stall until the client gives up
        std::array<std::uint8_t, 1> byte{};
        socket.read_some(boost::asio::buffer(byte), ec);
        continue;
      }
      boost::asio::write(socket, boost::asio::buffer(response), ec);
    }
  }

  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<recorded_request> requests_;
  std::thread thread_;
};

proto::byte_buffer response(proto::response_code code, const proto::byte_buffer& payload) {
  const auto head = proto::encode_response_header({2, static_cast<std::uint16_t>(code), static_cast<std::uint32_t>(payload.size())});
  proto::byte_buffer out(head.size() + payload.size());
  std::copy(head.begin(), head.end(), out.begin());
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(head.size()));
  return out;
}

// A response whose header claims claimed_size payload bytes but carries only body (the
// server then closes the connection): what a hostile or broken server can send.
proto::byte_buffer lying_response(proto::response_code code, std::uint32_t claimed_size, const proto::byte_buffer& body) {
  const auto head = proto::encode_response_header({2, static_cast<std::uint16_t>(code), claimed_size});
  proto::byte_buffer out(head.size() + body.size());
  std::copy(head.begin(), head.end(), out.begin());
  std::copy(body.begin(), body.end(), out.begin() + static_cast<std::ptrdiff_t>(head.size()));
  return out;
}

int files_named_letterbox(const std::filesystem::path& dir) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    files += entry.path().filename().string().rfind("letterbox-", 0) == 0;
  return files;
}

void append_message(proto::byte_buffer& payload, const proto::client_id& from, std::uint32_t id, std::uint8_t type,
                    const proto::byte_buffer& content) {
  const auto head = proto::encode_pulled_message_header({from, id, type, static_cast<std::uint32_t>(content.size())});
  payload.insert(payload.end(), head.begin(), head.end());
  payload.insert(payload.end(), content.begin(), content.end());
}

// The client_error body throws, or nullopt if it throws none.
template <typename Body>
std::optional<client_error> error_from(Body&& body) {
  try {
    body();
  } catch (const client_error& e) {
    return e;
  }
  return std::nullopt;
}

proto::client_id id_of(std::uint8_t seed) {
  proto::client_id id{};
  id.fill(seed);
  return id;
}

proto::byte_buffer bytes_of(std::string_view text) { return proto::byte_buffer(text.begin(), text.end()); }

// A registered client in a temp directory whose keyring knows "alice" (ID 0xAA.., shared key).
struct fixture {
  test_directory dir;
  symmetric_key alice_key = generate_symmetric_key();
  private_key my_key = private_key::generate();
  proto::client_id my_id = id_of(0x11);

  // download_directory: where received files go (default: the test directory).
  std::unique_ptr<client_operations> connect_to(std::uint16_t port, const std::filesystem::path& downloads = {}) {
    std::ofstream(dir.path / "server.info") << "127.0.0.1:" << port << "\n";
    if (!std::filesystem::exists(dir.path / "me.info"))
      write_me_info(dir.path, identity{"me", my_id, private_key::from_pkcs8(my_key.to_pkcs8())});
    auto ring = keyring::load(dir.path);
    ring.set_name(id_of(0xAA), "alice");
    ring.upsert(id_of(0xAA)).shared_key = alice_key;
    ring.save();
    client_options options;
    options.directory = dir.path;
    options.download_directory = downloads.empty() ? dir.path : downloads;
    options.io_timeout = std::chrono::seconds(1);
    options.protocol = client_options::protocol_choice::v1;  // the scripted server speaks v1 only
    return std::make_unique<client_operations>(options);
  }
};

}  // namespace

TEST_CASE("send_text writes the exact 103 request: header, prefix, AES(text + NUL)") {
  fixture f;
  const auto alice = id_of(0xAA);
  proto::byte_buffer sent(alice.begin(), alice.end());
  sent.resize(20);
  sent[16] = 7;  // message ID 7
  canned_server server({response(proto::response_code::message_sent, sent)});
  auto client = f.connect_to(server.port());
  CHECK(client->send_text("alice", "hi") == 7);
  const auto& requests = server.requests();
  REQUIRE(requests.size() == 1);
  const auto& r = requests[0];
  CHECK(r.header.client == f.my_id);
  CHECK(r.header.code == 103);
  const auto prefix = proto::decode_send_message_prefix(std::span(r.payload).first(21));
  CHECK(prefix.to == id_of(0xAA));
  CHECK(prefix.type == 3);
  CHECK(prefix.content_size == r.payload.size() - 21);
  CHECK(aes_decrypt(f.alice_key, std::span(r.payload).subspan(21)) == proto::byte_buffer{'h', 'i', 0});
}

TEST_CASE("send_text refuses a text receivers would not show, before connecting") {
  fixture f;
  auto client = f.connect_to(1);  // nothing listens on port 1: connecting would fail differently
  const std::string too_long(max_text_in_memory, 'x');
  const auto error = error_from([&] { client->send_text("alice", too_long); });
  REQUIRE(error);
  CHECK(error->error_kind() == client_error::kind::invalid_input);
}

TEST_CASE("send_file streams (n/16+1)*16 bytes of ciphertext that decrypt to the file") {
  fixture f;
  const auto path = f.dir.path / "payload.bin";
  proto::byte_buffer content(200'003);
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<std::uint8_t>(i * 7);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(content.data()), static_cast<std::streamsize>(content.size()));
  canned_server server({response(proto::response_code::message_sent, proto::byte_buffer(20, 0))});
  auto client = f.connect_to(server.port());
  std::uint64_t last_done = 0, last_total = 0;
  client->send_file("alice", path, [&](std::uint64_t done, std::uint64_t total) { last_done = done, last_total = total; });
  CHECK(last_done == content.size());
  CHECK(last_total == content.size());
  const auto& r = server.requests().at(0);
  CHECK(r.header.payload_size == 21 + aes_ciphertext_size(content.size()));
  CHECK(r.payload[16] == 4);
  CHECK(aes_decrypt(f.alice_key, std::span(r.payload).subspan(21)) == content);
  CHECK_THROWS_WITH_AS(client->send_file("alice", f.dir.path / "missing.bin"), "file not found", client_error);
}

TEST_CASE("pull: good, bad and unknown messages are all consumed, in order") {
  fixture f;
  proto::byte_buffer payload;
  append_message(payload, id_of(0xAA), 1, 3, aes_encrypt(f.alice_key, bytes_of(std::string("hello\0", 6))));
  append_message(payload, id_of(0xAA), 2, 4, proto::byte_buffer(20, 1));  // not a multiple of 16
  append_message(payload, id_of(0xAA), 3, 9, proto::byte_buffer(5, 2));   // unknown type
  append_message(payload, id_of(0xBB), 4, 3, proto::byte_buffer(16, 3));  // no key for this sender
  append_message(payload, id_of(0xBB), 5, 2, proto::byte_buffer(128, 4)); // garbage key
  append_message(payload, id_of(0xBB), 6, 1, {});
  append_message(payload, id_of(0xAA), 7, 4, aes_encrypt(f.alice_key, bytes_of("file body")));
  const auto sealed = rsa_encrypt(f.my_key.public_key(), proto::byte_buffer(16, 0x5A));
  append_message(payload, id_of(0xCC), 8, 2, sealed);
  // The first unknown sender (0xBB) makes the client ask for the list once; 0xCC is not on it.
  const auto bob_entry = proto::encode_client_list_response({{id_of(0xBB), "bob"}});
  canned_server server({response(proto::response_code::messages, payload), bob_entry});
  auto client = f.connect_to(server.port());
  std::vector<received_message> got;
  CHECK(client->pull_messages([&](const received_message& m) { got.push_back(m); }) == 8);
  using kind = received_message::kind;
  REQUIRE(got.size() == 8);
  CHECK(got[0].what == kind::text);
  CHECK(got[0].text == "hello");
  CHECK(got[0].sender == "alice");
  CHECK(got[1].what == kind::undecryptable);
  CHECK(got[2].what == kind::undecryptable);
  CHECK(got[3].what == kind::undecryptable);
  CHECK(got[3].sender == "bob");
  CHECK(got[4].what == kind::undecryptable);
  CHECK(got[5].what == kind::key_request);
  REQUIRE(got[6].what == kind::file);
  std::ifstream in(got[6].file_path);
  std::string body((std::istreambuf_iterator<char>(in)), {});
  CHECK(body == "file body");
  CHECK(got[7].what == kind::key_received);
  CHECK(got[7].sender == proto::to_hex(id_of(0xCC)));
  REQUIRE(server.requests().size() == 2);
  CHECK(server.requests()[1].header.code == 101);  // one list request, not one per unknown sender
  // The received key is in the keyring file at once.
  const auto ring = keyring::load(f.dir.path);
  REQUIRE(std::any_of(ring.peers().begin(), ring.peers().end(), [](const peer& p) { return p.id == id_of(0xCC); }));
  int files = 0;  // the undecryptable file left nothing behind; the good one is there
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path))
    files += entry.path().filename().string().rfind("letterbox-", 0) == 0;
  CHECK(files == 1);
}

TEST_CASE("pull: a content size overrunning the payload is a malformed response") {
  fixture f;
  proto::byte_buffer payload;
  append_message(payload, id_of(0xAA), 1, 3, proto::byte_buffer(16, 0));
  payload[21] = 200;  // content size 200, only 16 bytes follow
  canned_server server({response(proto::response_code::messages, payload)});
  auto client = f.connect_to(server.port());
  const auto error = error_from([&] { client->pull_messages({}); });
  REQUIRE(error);
  CHECK(error->error_kind() == client_error::kind::network);
  CHECK(std::string(error->what()).find("overruns") != std::string::npos);
}

TEST_CASE("9000 becomes server_error; a silent server becomes a timeout") {
  fixture f;
  canned_server server({response(proto::response_code::error, {}), {}});
  auto client = f.connect_to(server.port());
  const auto refused = error_from([&] { client->request_symmetric_key("alice"); });
  REQUIRE(refused);
  CHECK(refused->error_kind() == client_error::kind::server_error);
  const auto start = std::chrono::steady_clock::now();
  const auto silent = error_from([&] { client->request_symmetric_key("alice"); });
  REQUIRE(silent);
  CHECK(silent->error_kind() == client_error::kind::network);
  CHECK(std::string(silent->what()).find("timed out") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("pull: a download directory that cannot be written skips that file, not the rest of the pull") {
  fixture f;
  proto::byte_buffer payload;
  append_message(payload, id_of(0xAA), 1, 4, aes_encrypt(f.alice_key, bytes_of("file body")));
  append_message(payload, id_of(0xAA), 2, 3, aes_encrypt(f.alice_key, bytes_of("after the file")));
  canned_server server({response(proto::response_code::messages, payload)});
  std::ofstream(f.dir.path / "a-file") << "not a directory";
  auto client = f.connect_to(server.port(), f.dir.path / "a-file" / "no-such-directory");
  std::vector<received_message> got;
  CHECK(client->pull_messages([&](const received_message& m) { got.push_back(m); }) == 2);
  REQUIRE(got.size() == 2);
  CHECK(got[0].what == received_message::kind::save_failed);
  CHECK(got[0].text.find("no-such-directory") != std::string::npos);
  CHECK(got[1].what == received_message::kind::text);
  CHECK(got[1].text == "after the file");
}

// No allocation may follow a size field from the server: buffers are 64 KiB chunks, and even
// a text (up to max_text_in_memory) grows only with the bytes that actually arrived.
constexpr std::size_t streaming_allocation_bound = 1u << 20;

TEST_CASE("hostile sizes: a 4 GiB size field from the server drives no large allocation") {
  fixture f;
  constexpr std::uint32_t four_gib = 0xFFFF'FFFF;
  const auto message_header = [](const proto::client_id& from, std::uint8_t type, std::uint32_t size) {
    const auto head = proto::encode_pulled_message_header({from, 1, type, size});
    return proto::byte_buffer(head.begin(), head.end());
  };
  auto file_part = message_header(id_of(0xAA), 4, four_gib - 25);
  const auto some_ciphertext = aes_encrypt(f.alice_key, proto::byte_buffer(100'000, 7));
  file_part.insert(file_part.end(), some_ciphertext.begin(), some_ciphertext.end());
  canned_server server({
      lying_response(proto::response_code::client_list, four_gib, {}),
      lying_response(proto::response_code::client_list, 16u << 20, {}),  // within the list limit
      lying_response(proto::response_code::public_key, four_gib, {}),
      lying_response(proto::response_code::messages, four_gib, message_header(id_of(0xAA), 3, four_gib - 25)),
      lying_response(proto::response_code::messages, four_gib, message_header(id_of(0xAA), 3, max_text_in_memory)),
      lying_response(proto::response_code::messages, four_gib, message_header(id_of(0xAA), 2, four_gib - 25)),
      lying_response(proto::response_code::messages, four_gib, file_part),
  });
  auto client = f.connect_to(server.port());
  const auto expect_network_error = [](const auto& body) {
    allocation_probe probe;
    const auto error = error_from(body);
    CHECK(probe.largest() < streaming_allocation_bound);
    REQUIRE(error);
    CHECK(error->error_kind() == client_error::kind::network);
  };
  expect_network_error([&] { client->list_clients(); });                 // 1001 claiming 4 GiB
  expect_network_error([&] { client->list_clients(); });                 // 1001 claiming 16 MiB, sending none
  expect_network_error([&] { client->request_public_key("alice"); });    // 1002 claiming 4 GiB
  expect_network_error([&] { client->pull_messages({}); });              // a 4 GiB text
  expect_network_error([&] { client->pull_messages({}); });              // a 32 MiB text that never comes
  expect_network_error([&] { client->pull_messages({}); });              // a 4 GiB "symmetric key"
  expect_network_error([&] { client->pull_messages({}); });              // a 4 GiB file, cut short
  CHECK(files_named_letterbox(f.dir.path) == 0);  // the partial file was removed
}

TEST_CASE("files stream in bounded memory both ways (no buffer grows with the file)") {
  fixture f;
  const auto path = f.dir.path / "big.bin";
  proto::byte_buffer content(16u << 20);
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<std::uint8_t>(i * 31 + (i >> 12));
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(content.data()), static_cast<std::streamsize>(content.size()));
  proto::byte_buffer pulled;
  append_message(pulled, id_of(0xAA), 1, 4, aes_encrypt(f.alice_key, content));
  canned_server server({response(proto::response_code::message_sent, proto::byte_buffer(20, 0)),
                        response(proto::response_code::messages, pulled)});
  auto client = f.connect_to(server.port());
  {
    allocation_probe probe;
    client->send_file("alice", path);
    CHECK(probe.largest() < streaming_allocation_bound);
  }
  std::vector<received_message> got;
  {
    allocation_probe probe;
    client->pull_messages([&](const received_message& m) { got.push_back(m); });
    CHECK(probe.largest() < streaming_allocation_bound);
  }
  CHECK(aes_decrypt(f.alice_key, std::span(server.requests().at(0).payload).subspan(21)) == content);
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].what == received_message::kind::file);
  CHECK(std::filesystem::file_size(got[0].file_path) == content.size());
}

TEST_CASE("a received file stays inside the download directory whatever the sender's name") {
  fixture f;
  const auto sender = id_of(0xDD);
  const auto key = generate_symmetric_key();
  {
    auto ring = keyring::load(f.dir.path);
    ring.set_name(sender, "../../x/../..");
    ring.upsert(sender).shared_key = key;
    ring.save();
  }
  proto::byte_buffer payload;
  append_message(payload, sender, 9, 4, aes_encrypt(key, bytes_of("body")));
  canned_server server({response(proto::response_code::messages, payload)});
  const auto downloads = f.dir.path / "downloads";
  std::filesystem::create_directory(downloads);
  std::filesystem::permissions(downloads, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace);
  auto client = f.connect_to(server.port(), downloads);
  std::vector<received_message> got;
  client->pull_messages([&](const received_message& m) { got.push_back(m); });
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].what == received_message::kind::file);
  CHECK(got[0].sender == "../../x/../..");
  CHECK(got[0].file_path.parent_path() == std::filesystem::absolute(downloads));
  CHECK(got[0].file_path.filename().string().rfind("letterbox-", 0) == 0);
  struct stat info {};
  REQUIRE(::stat(got[0].file_path.c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
}

TEST_CASE("a file is received under a .part name and gets its final name only when complete") {
  fixture f;
  const proto::byte_buffer content(300'000, 0x42);
  proto::byte_buffer payload;
  append_message(payload, id_of(0xAA), 3, 4, aes_encrypt(f.alice_key, content));
  canned_server server({response(proto::response_code::messages, payload)});
  auto client = f.connect_to(server.port());
  const auto names = [&] {
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(f.dir.path))
      if (entry.path().filename().string().rfind("letterbox-", 0) == 0) found.push_back(entry.path().filename().string());
    return found;
  };
  std::vector<std::string> while_receiving;
  std::vector<received_message> got;
  client->pull_messages([&](const received_message& m) { got.push_back(m); },
                        [&](std::uint64_t, std::uint64_t) {
                          if (while_receiving.empty()) while_receiving = names();
                        });
  REQUIRE(while_receiving.size() == 1);
  CHECK(while_receiving[0].ends_with(".part"));
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].what == received_message::kind::file);
  const auto after = names();
  REQUIRE(after.size() == 1);
  CHECK(!after[0].ends_with(".part"));
  CHECK(got[0].file_path.filename() == after[0]);
  CHECK(while_receiving[0] == after[0] + ".part");
  CHECK(std::filesystem::file_size(got[0].file_path) == content.size());
}

TEST_CASE("a received key that cannot be saved is kept for the session; the pull goes on") {
  fixture f;
  const auto sealed = rsa_encrypt(f.my_key.public_key(), proto::byte_buffer(16, 0x5A));
  proto::byte_buffer payload;
  append_message(payload, id_of(0xAA), 1, 2, sealed);
  append_message(payload, id_of(0xAA), 2, 3, aes_encrypt(symmetric_key{0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A,
                                                                       0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A, 0x5A},
                                                         bytes_of("with the new key")));
  canned_server server({response(proto::response_code::messages, payload)});
  auto client = f.connect_to(server.port());
  // keyring.info becomes a non-empty directory: the atomic rename onto it fails.
  std::filesystem::remove(f.dir.path / "keyring.info");
  std::filesystem::create_directories(f.dir.path / "keyring.info" / "blocker");
  std::vector<received_message> got;
  CHECK(client->pull_messages([&](const received_message& m) { got.push_back(m); }) == 2);
  REQUIRE(got.size() == 2);
  CHECK(got[0].what == received_message::kind::save_failed);
  CHECK(got[0].text.find("symmetric key received, but not saved") != std::string::npos);
  CHECK(got[1].what == received_message::kind::text);  // decrypted with the key kept in memory
  CHECK(got[1].text == "with the new key");
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path))  // no temp file left
    CHECK(entry.path().filename().string().rfind(".keyring.info", 0) != 0);
}

TEST_CASE("HELLO: the v1 error means a v1-only server; 2000 with version 3 is v2; anything else is refused") {
  namespace v2 = letterbox::protocol::v2;
  const proto::byte_buffer v1_error{0x02, 0x28, 0x23, 0, 0, 0, 0};
  v2::hello_response hello;
  hello.nonce.fill(0x5C);
  const auto v2_hello = v2::encode_hello_response(hello);
  auto wrong_version = v2_hello;
  wrong_version[0] = 2;  // a 2000 in a v1 header
  const auto refused = v2::encode_error_response(v2::reason::rate_limited);
  canned_server server({v1_error, v2_hello, wrong_version, refused});
  const server_address address{"127.0.0.1", server.port()};
  {
    v2_session session(address, std::chrono::seconds(1));
    CHECK(session.hello() == v2_session::hello_result::v1_only);
  }
  {
    v2_session session(address, std::chrono::seconds(1));
    CHECK(session.hello() == v2_session::hello_result::v2);
  }
  {
    v2_session session(address, std::chrono::seconds(1));
    CHECK_THROWS_AS(session.hello(), proto::protocol_error);
  }
  {
    v2_session session(address, std::chrono::seconds(1));
    try {
      session.hello();
      FAIL("a v2 9000 was taken for a hello");
    } catch (const v2_server_error& e) {
      CHECK(e.reason() == static_cast<std::uint16_t>(v2::reason::rate_limited));
    }
  }
  const auto& requests = server.requests();
  REQUIRE(requests.size() == 4);
  for (const auto& request : requests) {  // HELLO: zero client ID, version 3, code 200, "LBX2" 2 2
    CHECK(request.header.client == proto::client_id{});
    CHECK(request.header.version == 3);
    CHECK(request.header.code == 200);
    CHECK(request.payload == proto::byte_buffer{'L', 'B', 'X', '2', 2, 2});
  }
}

TEST_CASE("negotiation: a fallback is said once; a server in servers.v2 answering v1 only is a downgrade") {
  const proto::byte_buffer v1_error{0x02, 0x28, 0x23, 0, 0, 0, 0};
  proto::byte_buffer empty_list = response(proto::response_code::client_list, {});
  canned_server server({v1_error, empty_list, empty_list, v1_error, v1_error});
  fixture f;
  auto first = f.connect_to(server.port());  // writes server.info and me.info
  client_options options;
  options.directory = f.dir.path;
  options.io_timeout = std::chrono::seconds(1);
  std::vector<std::string> notes;
  options.notice = [&](const std::string& note) { notes.push_back(note); };
  {
    client_operations client(options);
    CHECK(!client.speaks_v2());
    client.list_clients();  // v1 from now on, one connection a request
    client.list_clients();
    CHECK(notes.size() == 1);
    CHECK(notes.at(0).find("falling back to v1") != std::string::npos);
  }
  remember_v2_server(f.dir.path, {"127.0.0.1", server.port()});  // as if it had spoken v2 before
  client_operations refused(options);
  const auto error = error_from([&] { refused.list_clients(); });
  REQUIRE(error);
  CHECK(error->error_kind() == client_error::kind::downgrade);
  options.allow_v1 = true;
  client_operations allowed(options);
  CHECK(!allowed.speaks_v2());  // the last canned answer: the v1 error, accepted with --allow-v1
}

// The client against a malicious v2 server (docs/PROTOCOL.md §20, item 3): a scripted server
// that answers HELLO, AUTH, PULL and ACK as the operator likes, over loopback.
#include <utility>  // before Boost.Asio (Boost 1.74 + g++ 12 + C++20)

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <fstream>
#include <functional>
#include <thread>

#include "agreement.hpp"
#include "envelope.hpp"
#include "client_state.hpp"
#include "identity.hpp"
#include "messages_v2.hpp"
#include "operations.hpp"
#include "test_directory.hpp"

using namespace letterbox::client;
namespace proto = letterbox::protocol;
namespace v2 = letterbox::protocol::v2;
namespace lbcrypto = letterbox::crypto;
using boost::asio::ip::tcp;

namespace {

// A v2 server played by the test: every connection gets HELLO → 2000 and AUTH → 2002; every
// other request goes to `answer` (code, payload) → the whole response. ACKs are recorded.
class scripted_v2_server {
 public:
  using answer_fn = std::function<proto::byte_buffer(std::uint8_t, const proto::byte_buffer&)>;
  explicit scripted_v2_server(answer_fn answer)
      : answer_(std::move(answer)),
        acceptor_(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)),
        thread_([this] { serve(); }) {}
  ~scripted_v2_server() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::vector<std::uint32_t> acked() {
    std::lock_guard lock(mutex_);
    return acked_;
  }

 private:
  void serve() {
    for (;;) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      for (;;) {
        proto::request_header_bytes head{};
        boost::asio::read(socket, boost::asio::buffer(head), ec);
        if (ec) break;
        const auto header = proto::decode_request_header(head);
        proto::byte_buffer payload(header.payload_size);
        boost::asio::read(socket, boost::asio::buffer(payload), ec);
        if (ec) break;
        proto::byte_buffer out;
        if (header.code == 200) {
          v2::hello_response hello;
          hello.nonce.fill(0x42);
          out = v2::encode_hello_response(hello);
        } else if (header.code == 202) {
          out = v2::encode_authenticated_response();
        } else if (header.code == 207) {
          const auto ack = v2::decode_ack_request(payload);
          std::lock_guard lock(mutex_);
          acked_.insert(acked_.end(), ack.message_ids.begin(), ack.message_ids.end());
          out = v2::encode_acknowledged_response(static_cast<std::uint32_t>(ack.message_ids.size()));
        } else {
          out = answer_(header.code, payload);
        }
        boost::asio::write(socket, boost::asio::buffer(out), ec);
        if (ec) break;
      }
    }
  }

  answer_fn answer_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  std::mutex mutex_;
  std::vector<std::uint32_t> acked_;
  std::thread thread_;
};

proto::byte_buffer v2_response(v2::response_code code, const proto::byte_buffer& payload) {
  const auto head = v2::encode_response_header(code, static_cast<std::uint32_t>(payload.size()));
  // Sized once and copied into (g++ 12 -O3 warns -Warray-bounds, falsely, on the insert after a
  // 7-byte construction).
  proto::byte_buffer out(head.size() + payload.size());
  std::copy(head.begin(), head.end(), out.begin());
  std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(head.size()));
  return out;
}

void append_entry(proto::byte_buffer& payload, const v2::pulled_message_header& header, const proto::byte_buffer& content) {
  const auto head = v2::encode_pulled_message_header(header);
  payload.insert(payload.end(), head.begin(), head.end());
  payload.insert(payload.end(), content.begin(), content.end());
}

// A registered v2 client (me.info, me.v2) in a temp directory, talking to `port`.
struct v2_fixture {
  test_directory dir;
  v2_secrets secrets{lbcrypto::generate_identity(), lbcrypto::generate_agreement_secret()};
  private_key legacy = private_key::generate();
  proto::client_id my_id = lbcrypto::derive_client_id(lbcrypto::public_key_of(secrets.identity));

  std::unique_ptr<client_operations> connect_to(std::uint16_t port) {
    std::ofstream(dir.path / "server.info") << "127.0.0.1:" << port << "\n";
    if (!std::filesystem::exists(dir.path / "me.v2")) {
      write_me_v2(dir.path, secrets);
      write_me_info(dir.path, identity{"me", my_id, private_key::from_pkcs8(legacy.to_pkcs8())});
    }
    client_options options;
    options.directory = dir.path;
    options.download_directory = dir.path / "downloads";
    options.io_timeout = std::chrono::seconds(2);
    return std::make_unique<client_operations>(options);
  }
};

// A v2 peer "bob" pinned in dir's keyring.
pin pin_bob(const std::filesystem::path& dir) {
  const auto identity = lbcrypto::generate_identity();
  pin bob;
  bob.name = "bob";
  bob.identity_key = lbcrypto::public_key_of(identity);
  bob.id = lbcrypto::derive_client_id(bob.identity_key);
  bob.agreement_key = lbcrypto::agreement_public_of(lbcrypto::generate_agreement_secret());
  bob.legacy_key = private_key::generate().public_key();
  auto ring = keyring::load(dir);
  ring.replace_pin(bob);
  ring.set_name(bob.id, bob.name);
  ring.save();
  return bob;
}

}  // namespace

TEST_CASE("attack: a hostile server passes v1 contents off as from a pinned v2 peer: refused, no key stored") {
  v2_fixture f;
  auto ops = f.connect_to(1);  // writes me.info and me.v2 (nothing is connected yet)
  ops.reset();
  const pin bob = pin_bob(f.dir.path);
  // The operator RSA-encrypts a key of its own to our (public) legacy key, "from" bob, then a
  // text under that key, then a v1 file: as if bob had turned into a legacy sender. Flag bit 0
  // is clear for the first (a flag the operator controls), set for the others.
  const symmetric_key forged_key = generate_symmetric_key();
  const auto sealed_key = rsa_encrypt(f.legacy.public_key(), forged_key);
  std::string text = "bob: pay mallory";
  text.push_back('\0');
  const auto forged_text = aes_encrypt(forged_key, proto::bytes_view(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
  const auto forged_file = aes_encrypt(forged_key, proto::byte_buffer{'x', 'y'});
  int pulls = 0;
  scripted_v2_server server([&](std::uint8_t code, const proto::byte_buffer&) {
    REQUIRE(code == 206);
    proto::byte_buffer entries;
    if (pulls++ == 0) {
      append_entry(entries, {bob.id, 1, 2, 0, static_cast<std::uint32_t>(sealed_key.size())}, sealed_key);
      append_entry(entries, {bob.id, 2, 3, v2::message_flag_legacy_sender, static_cast<std::uint32_t>(forged_text.size())},
                   forged_text);
      append_entry(entries, {bob.id, 3, 4, v2::message_flag_legacy_sender, static_cast<std::uint32_t>(forged_file.size())},
                   forged_file);
    }
    return v2_response(v2::response_code::messages, entries);
  });
  auto client = f.connect_to(server.port());
  std::vector<received_message> got;
  client->pull_messages([&](const received_message& m) { got.push_back(m); }, {});
  REQUIRE(got.size() == 3);
  for (const auto& m : got) {
    CHECK(m.what == received_message::kind::unverified);
    CHECK(m.text.empty());
    CHECK(m.file_path.empty());
  }
  CHECK(!keyring::load(f.dir.path).find(bob.id)->shared_key);  // no key was taken "from" bob
  CHECK(server.acked() == std::vector<std::uint32_t>{1, 2, 3});  // consumed and acknowledged (§20 item 7)
  CHECK((!std::filesystem::exists(f.dir.path / "downloads") || std::filesystem::is_empty(f.dir.path / "downloads")));
}

namespace {

struct recorded_send {
  proto::client_id to{};
  std::uint8_t type = 0;
};

// A hostile directory: LIST gives `listed`, KEYS gives `keys` for any ID asked, SEND is taken
// (and recorded) whatever its type.
scripted_v2_server::answer_fn hostile_directory(std::vector<v2::client_entry> listed, v2::keys_response keys,
                                                std::vector<recorded_send>& sends, std::mutex& mutex) {
  return [listed = std::move(listed), keys, &sends, &mutex](std::uint8_t code, const proto::byte_buffer& payload) {
    if (code == 203) return v2::encode_client_list_response(listed);
    if (code == 204) return v2::encode_keys_response(keys);
    if (code == 205) {
      std::lock_guard lock(mutex);
      recorded_send sent;
      std::copy_n(payload.begin(), 16, sent.to.begin());
      sent.type = payload.at(16);
      sends.push_back(sent);
      proto::message_sent answer;
      answer.to = sent.to;
      answer.message_id = static_cast<std::uint32_t>(sends.size());
      return v2::encode_message_sent_response(answer);
    }
    if (code == 206) return v2_response(v2::response_code::messages, {});
    return v2::encode_error_response(v2::reason::malformed);
  };
}

}  // namespace

TEST_CASE("attack: a hostile directory turns a pinned v2 peer legacy (flag cleared): nothing goes out as v1") {
  v2_fixture f;
  f.connect_to(1).reset();
  const pin bob = pin_bob(f.dir.path);
  {
    auto ring = keyring::load(f.dir.path);
    ring.upsert(bob.id).public_key = bob.legacy_key;  // as checked_keys stores it
    ring.save();
  }
  std::vector<recorded_send> sends;
  std::mutex mutex;
  v2::keys_response legacy_bob;
  legacy_bob.id = bob.id;
  legacy_bob.flags = 0;  // "legacy" now
  legacy_bob.name = "bob";
  legacy_bob.legacy = bob.legacy_key;
  scripted_v2_server server(hostile_directory({{bob.id, "bob", 0}}, legacy_bob, sends, mutex));
  auto client = f.connect_to(server.port());
  client->list_clients();
  CHECK_THROWS_AS(client->send_symmetric_key("bob"), client_error);
  CHECK_THROWS_AS(client->send_text("bob", "for bob only"), client_error);
  std::lock_guard lock(mutex);
  CHECK(sends.empty());
}

TEST_CASE("attack: a hostile directory serves another, legacy ID under a pinned name: refused, no key sent to it") {
  v2_fixture f;
  f.connect_to(1).reset();
  const pin bob = pin_bob(f.dir.path);
  private_key mallory_key = private_key::generate();
  proto::client_id mallory{};
  mallory.fill(0x66);
  std::vector<recorded_send> sends;
  std::mutex mutex;
  v2::keys_response impostor;
  impostor.id = mallory;
  impostor.flags = 0;
  impostor.name = "bob";
  impostor.legacy = mallory_key.public_key();
  scripted_v2_server server(hostile_directory({{mallory, "bob", 0}}, impostor, sends, mutex));
  auto client = f.connect_to(server.port());
  client->list_clients();
  CHECK_THROWS_AS(client->send_symmetric_key("bob"), client_error);
  CHECK_THROWS_AS(client->send_text("bob", "for bob only"), client_error);
  CHECK_THROWS_AS(client->request_public_key("bob"), client_error);
  std::lock_guard lock(mutex);
  CHECK(sends.empty());
  CHECK(keyring::load(f.dir.path).find_pin("bob")->id == bob.id);
}

TEST_CASE("attack: a hostile server redelivers an envelope twice in one PULL and replays it under a new ID: shown once") {
  v2_fixture f;
  f.connect_to(1).reset();
  const auto bob_secret = lbcrypto::generate_identity();
  pin bob;
  bob.name = "bob";
  bob.identity_key = lbcrypto::public_key_of(bob_secret);
  bob.id = lbcrypto::derive_client_id(bob.identity_key);
  bob.agreement_key = lbcrypto::agreement_public_of(lbcrypto::generate_agreement_secret());
  bob.legacy_key = private_key::generate().public_key();
  {
    auto ring = keyring::load(f.dir.path);
    ring.replace_pin(bob);
    ring.set_name(bob.id, bob.name);
    ring.save();
  }
  const auto sealed = lbcrypto::seal_text(bob_secret, bob.id, f.my_id,
                                          lbcrypto::agreement_public_of(f.secrets.agreement), "hello once");
  const proto::byte_buffer envelope(sealed.begin(), sealed.end());
  const auto size = static_cast<std::uint32_t>(envelope.size());
  int pulls = 0;
  scripted_v2_server server([&](std::uint8_t code, const proto::byte_buffer&) {
    REQUIRE(code == 206);
    proto::byte_buffer entries;
    if (pulls++ < 2) {  // the same three entries on two pulls
      append_entry(entries, {bob.id, 1, 16, 0, size}, envelope);
      append_entry(entries, {bob.id, 1, 16, 0, size}, envelope);  // redelivered in the same answer
      append_entry(entries, {bob.id, 9, 16, 0, size}, envelope);  // replayed under a new message ID
    }
    return v2_response(v2::response_code::messages, entries);
  });
  auto client = f.connect_to(server.port());
  std::vector<received_message> got;
  client->pull_messages([&](const received_message& m) { got.push_back(m); }, {});
  client->pull_messages([&](const received_message& m) { got.push_back(m); }, {});
  REQUIRE(got.size() == 6);
  CHECK(got[0].what == received_message::kind::text);
  CHECK(got[0].text == "hello once");
  CHECK(got[0].authenticated);
  for (std::size_t i = 1; i < got.size(); ++i) {
    CAPTURE(i);
    CHECK(got[i].what == received_message::kind::duplicate);
    CHECK(got[i].text.empty());
  }
}

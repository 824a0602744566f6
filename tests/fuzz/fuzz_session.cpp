// libFuzzer target: the session's handling of arbitrary bytes. Each input runs against a fresh
// in-process server wired as server/main.cpp wires it (mailbox_store over memory_store, a
// spool directory, request_handler, storage_worker, a file pool of 2 threads, the pull
// registry, limiters, disk watermark and pull memory budget, server_context, start_session),
// reached over a real loopback TCP connection. The input's stream is sent
// (see session_input.hpp for the format), the client's side is shut down, every response is
// read until the server closes, and then checked against a model of what the server must
// answer. A broken invariant aborts, so libFuzzer saves the input:
//   - the session ends (or answers) within input_deadline;
//   - the server logs nothing at error level (no "session failed", no storage error);
//   - the response stream is a sequence of whole responses, every header decodes, version 2;
//   - every complete request gets exactly one response, in order (one more 9000 is allowed
//     only for a last, incomplete request announcing more than the discard limit);
//   - each response is the success code of its request or 9000, exactly as the model says
//     (registration, unique names, registered sender/requester/destination/target, sizes,
//     types), and its payload is right: the new ID is a v4 UUID, the client list is every
//     other client in registration order, the key is the target's, a 1003 names the
//     destination and an ID above every ID that mailbox gave before, a 1004 holds exactly
//     the requester's pending messages in send order with their sender, type and content;
//   - groups (codes 220-230): no group can exist (--max-groups-per-user 0), see expected_group;
//   - protocol v2 (version 3, codes 200-207, zero client ID): each answer is the model's
//     success code or its v2 9000 with the model's reason (§18), in version 3; the connection
//     state (HELLO, the challenge consumed by REGISTER/AUTH, the authenticated client) is
//     modelled, a failed REGISTER/AUTH must close the connection (nothing answered after it),
//     LIST/KEYS serve the clients with their flags and keys, a PULL delivers exactly the
//     mailbox's messages not leased to this connection (legacy-sender flags right) and leases
//     them, an ACK counts and removes what it names; v1 requests naming a v2 client are 9000
//     (the v1 lock). Every HELLO's challenge is fuzz_challenge(), so the corpus signs for real;
//   - and ASan, UBSan, LeakSanitizer and _GLIBCXX_ASSERTIONS find nothing.
// LETTERBOX_FUZZ_LOG=debug (or info, warn) prints the server's log lines to stderr.
#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "handler.hpp"
#include "agreement.hpp"
#include "identity.hpp"
#include "messages_v2.hpp"
#include "mailbox_store.hpp"
#include "memory_store.hpp"
#include "responses.hpp"
#include "session.hpp"
#include "session_input.hpp"
#include "spool.hpp"
#include "storage_worker.hpp"

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace letterbox;
using namespace letterbox::server;
using namespace letterbox::protocol;
using namespace letterbox::fuzz;
using namespace std::chrono_literals;

// The server's --timeout for this target: a server that waits for bytes that never come
// gives up quickly. Each input must be done (session ended, every response read) by the deadline.
constexpr std::chrono::milliseconds server_io_timeout = 1000ms;
constexpr auto input_deadline = 5s;
constexpr std::size_t max_response_bytes = 64 << 20;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "\nfuzz_session: invariant broken: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// Any error-level line of the server is a finding: with a memory store nothing legitimate
// logs one (a session that failed with an unexpected exception, a storage error, ...).
class error_trap final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (msg.level >= spdlog::level::err) fail("the server logged: " + std::string(msg.payload.begin(), msg.payload.end()));
  }
  void flush_() override {}
};

void set_up_logging() {
  auto logger = std::make_shared<spdlog::logger>("server", std::make_shared<error_trap>());
  logger->set_level(spdlog::level::err);
  if (const char* level = std::getenv("LETTERBOX_FUZZ_LOG")) {
    logger->sinks().push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_level(spdlog::level::from_str(level));
  }
  spdlog::set_default_logger(logger);
}

// The directory of this process's spool: /dev/shm when there is one (the spool's fsyncs cost
// nothing there), named by the process ID. A run that crashed cannot remove its own, so the
// directories of processes that no longer exist are removed here.
std::filesystem::path make_fixture_dir() {
  const std::filesystem::path base = std::filesystem::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0
                                         ? std::filesystem::path("/dev/shm")
                                         : std::filesystem::temp_directory_path();
  const std::string prefix = "letterbox-fuzz-";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) std::filesystem::remove_all(entry.path(), ec);
  }
  const auto dir = base / (prefix + std::to_string(::getpid()));
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directory(dir);
  return dir;
}

// What lives across inputs: the I/O context, the file pool, the listening socket and the
// spool directory.
struct fixture {
  std::filesystem::path dir;
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::thread_pool file_pool{2};
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  std::optional<spool_directory> spool;

  fixture() : dir(make_fixture_dir()) { spool.emplace(dir / "server.db.spool"); }
};

fixture* the_fixture = nullptr;

void remove_fixture_dir() {
  std::error_code ec;
  if (the_fixture != nullptr) std::filesystem::remove_all(the_fixture->dir, ec);
}

// --- The model: what the server must answer ----------------------------------------------
struct model_client {
  client_id id;
  std::string name;
  public_key key;           // the legacy (RSA) key
  std::optional<v2_keys> v2;  // a v2 client's
};

// The one connection's v2 state.
struct model_connection {
  bool hello = false;
  bool challenge = false;           // a fresh one, not yet taken by REGISTER/AUTH
  std::optional<client_id> client;  // authenticated as
  std::set<std::uint32_t> leased;   // messages of its mailbox delivered by PULL, not acknowledged
};
struct model_message {
  client_id to, from;
  std::uint8_t type = 0;
  byte_buffer content;
};

struct model {
  std::vector<model_client> clients;  // registration order
  // Each mailbox's pending messages by ID; IDs count per mailbox and increase in send order,
  // so this order is the send order.
  std::map<client_id, std::map<std::uint32_t, model_message>> mailboxes;
  std::map<client_id, std::uint32_t> last_id;  // the highest ID each mailbox has given
  std::size_t registrations = 0;               // 100s (and v2 REGISTERs) that reached the rate limit
  model_connection connection;

  bool is_v2(const client_id& id) const {
    const auto* c = find(id);
    return c != nullptr && c->v2.has_value();
  }
  const model_client* find(const client_id& id) const {
    for (const auto& c : clients)
      if (c.id == id) return &c;
    return nullptr;
  }
  bool name_taken(const std::string& name) const {
    for (const auto& c : clients)
      if (c.name == name) return true;
    return false;
  }
  // A message the server stored under `id` in its recipient's mailbox.
  void add_message(std::uint32_t id, model_message message) {
    auto& last = last_id[message.to];
    if (id <= last)
      fail("message ID " + std::to_string(id) + " given after ID " + std::to_string(last) +
           " in the same mailbox (IDs must increase and never be given twice)");
    last = id;
    mailboxes[message.to][id] = std::move(message);
  }
};

// --- The server of one input ---------------------------------------------------------------
server_limits fuzz_limits() {
  server_limits limits;
  limits.io_timeout = server_io_timeout;
  limits.inline_content_limit = fuzz_inline_limit;
  limits.min_free_disk = 0;  // the free-disk watermark depends on the machine, not on the input
  limits.max_groups_per_user = 0;  // no group can exist: the model of the group codes is exact (expected_group)
  return limits;
}

// Fresh storage, handler and worker, wired as in server/main.cpp, preloaded with the known
// clients and three pending messages (one of them in a spool file).
struct server_under_test {
  server_limits limits = fuzz_limits();
  memory_store records;
  mailbox_store store;  // sweeps what the previous input left in the spool
  request_handler handler{store, limits};
  std::optional<storage_worker> storage;
  pull_registry pulls;
  log_limiter errors;
  rate_limiter registrations{limits.registration_rate};
  rate_limiter auth_failures{limits.auth_failure_rate};
  disk_space disk;
  memory_budget pull_memory{limits.max_pull_memory};
  lease_registry leases{limits.lease_timeout};
  net::connection_registry sessions;
  std::optional<server_context> context;
  model expected;
  fixture& f;

  explicit server_under_test(fixture& fixture) : store(records, *fixture.spool), disk(fixture.dir, limits.min_free_disk), f(fixture) {
    const auto& known = known_clients();
    auto content = [](std::size_t size, std::uint8_t seed) {
      byte_buffer bytes(size);
      for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(seed + 7 * i);
      return bytes;
    };
    const byte_buffer text = content(48, 1), file = content(fuzz_inline_limit + 172, 2);
    auto upload = f.spool->create();
    upload.write(file);
    upload.finish();
    store.begin();
    for (const auto& c : known) {
      if (!store.add_client(c.id, c.name, c.key)) fail("preloading a known client failed");
      expected.clients.push_back({c.id, c.name, c.key, std::nullopt});
    }
    for (const auto& c : known_v2_clients()) {
      const v2_keys keys{c.key, c.agreement, c.key_signature};
      if (!store.add_client(c.id, c.name, c.legacy, keys)) fail("preloading a known v2 client failed");
      expected.clients.push_back({c.id, c.name, c.legacy, keys});
    }
    const new_message preloaded[] = {
        {known[0].id, known[1].id, static_cast<std::uint8_t>(message_type::text), 48, text, {}},
        {known[0].id, known[2].id, static_cast<std::uint8_t>(message_type::file), static_cast<std::uint32_t>(file.size()),
         {}, upload.name()},
        {known[1].id, known[0].id, static_cast<std::uint8_t>(message_type::symmetric_key_request), 0, {}, {}},
    };
    std::vector<std::uint32_t> ids;
    for (const auto& m : preloaded) ids.push_back(store.add_message(m));
    const auto& dave = known_v2_clients()[0];
    const auto& erin = known_v2_clients()[1];
    const byte_buffer sealed = content(60, 3);
    const new_message to_v2[] = {
        {dave.id, known[0].id, static_cast<std::uint8_t>(message_type::text), 48, text, {}},
        {dave.id, erin.id, static_cast<std::uint8_t>(v2::message_type::sealed_text), 60, sealed, {}},
    };
    for (const auto& m : to_v2) ids.push_back(store.add_message(m));
    store.commit();
    upload.keep();
    expected.add_message(ids[0], {known[0].id, known[1].id, preloaded[0].type, text});
    expected.add_message(ids[1], {known[0].id, known[2].id, preloaded[1].type, file});
    expected.add_message(ids[2], {known[1].id, known[0].id, preloaded[2].type, {}});
    expected.add_message(ids[3], {dave.id, known[0].id, to_v2[0].type, text});
    expected.add_message(ids[4], {dave.id, erin.id, to_v2[1].type, sealed});
    storage.emplace(store, limits.max_batch);
    context.emplace(server_context{*storage, handler, *f.spool, store.directory(), f.file_pool, pulls, errors,
                                   registrations, auth_failures, disk, pull_memory, leases, limits});
    context->new_challenge = &fuzz_challenge;
  }
  // Jobs nobody waits for (the last-seen touch of a 101) may still be queued when the session
  // has ended: the worker finishes them, and their completions run here, before anything
  // they refer to is gone.
  ~server_under_test() {
    storage->stop();
    f.io.poll();
  }
};

// --- The client side ---------------------------------------------------------------------
asio::awaitable<void> send_stream(tcp::socket& socket, std::span<const std::uint8_t> stream, std::size_t chunk,
                                  bool& done) {
  boost::system::error_code ec;
  for (std::size_t at = 0, chunks = 0; at < stream.size(); ++chunks) {
    const std::size_t n = chunk == 0 || chunks >= max_chunks ? stream.size() - at : std::min(chunk, stream.size() - at);
    co_await asio::async_write(socket, asio::buffer(stream.data() + at, n), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;  // the server closed; the checks say whether it was allowed to
    at += n;
    if (chunk != 0) co_await asio::post(socket.get_executor(), asio::use_awaitable);  // let the server read
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  done = true;
}

asio::awaitable<void> receive_all(tcp::socket& socket, byte_buffer& out, boost::system::error_code& end, bool& done) {
  std::array<std::uint8_t, 64 * 1024> buffer;
  for (;;) {
    const std::size_t n = co_await socket.async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, end));
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(n));
    if (end) break;
    if (out.size() > max_response_bytes) fail("more than 64 MiB of responses");
  }
  done = true;
}

// Connects (asynchronously: a blocking connect would fail with EINTR when libFuzzer's timeout
// alarm fires), then sends the stream while it reads every response.
asio::awaitable<void> run_client(tcp::socket& socket, tcp::endpoint server, std::span<const std::uint8_t> stream,
                                 std::size_t chunk, byte_buffer& responses, boost::system::error_code& end,
                                 bool& sent, bool& received) {
  boost::system::error_code ec;
  co_await socket.async_connect(server, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) fail("connect failed: " + ec.message());
  socket.set_option(tcp::no_delay(true));
  asio::co_spawn(socket.get_executor(), send_stream(socket, stream, chunk, sent), asio::detached);
  co_await receive_all(socket, responses, end, received);
}

// --- The checks ----------------------------------------------------------------------------
struct response {
  response_header header;
  bytes_view payload;
};

std::vector<response> split_responses(bytes_view stream) {
  std::vector<response> out;
  std::size_t at = 0;
  while (at < stream.size()) {
    if (stream.size() - at < response_header_size) fail("the stream ends inside a response header");
    const auto header = decode_response_header(stream.subspan(at, response_header_size));
    at += response_header_size;
    if (header.version != server_version && header.version != v2::wire_version)
      fail("response version " + std::to_string(header.version));
    if (header.payload_size > stream.size() - at)
      fail("the stream ends inside the payload of a " + std::to_string(header.code));
    out.push_back({header, stream.subspan(at, header.payload_size)});
    at += header.payload_size;
  }
  return out;
}

std::string describe(std::size_t index, const framed_request& r) {
  return "request #" + std::to_string(index) + " (code " + std::to_string(r.header.code) + ", payload " +
         std::to_string(r.header.payload_size) + ")";
}

// What the model expects of a complete request: its success code or 9000, or (or_error) either.
struct expectation {
  std::uint16_t code = static_cast<std::uint16_t>(response_code::error);
  bool or_error = false;
  bool v2 = false;                  // a version 3 answer (a v2 9000 carries `reason`)
  std::optional<v2::reason> reason;  // of the v2 9000 expected
  bool close_on_error = false;      // a 9000 ends the connection (failed REGISTER / AUTH)
};

bool is_v2_request(const framed_request& r) {
  return r.header.version == v2::wire_version &&
         (v2::is_v2_request(r.header.code) || v2::is_group_request(r.header.code)) && r.header.client == client_id{};
}

// Groups (Part IV, codes 220-230): the server under test runs with --max-groups-per-user 0
// (fuzz_limits), so no group can ever exist and every answer is exact without a model of group
// state: the authentication (bad_state), the payload size and fields (malformed), GROUP SEND's
// type and size rules, then too_many_groups for CREATE, an empty 2029 for GROUPS and
// unknown_group for everything else. Group state itself is covered by tests/server
// (group_handler_test, group_store_test) and tests/integration/groups_test.cpp.
template <typename Refuse, typename Answer>
expectation expected_group(const model& m, const framed_request& r, const server_limits& limits, Refuse refuse,
                           Answer answer) {
  const auto& h = r.header;
  if (!m.connection.client) return refuse(v2::reason::bad_state);
  if (h.code == static_cast<std::uint8_t>(v2::group_request_code::send)) {
    if (h.payload_size < v2::group_send_prefix_size) return refuse(v2::reason::malformed);
    const auto prefix = v2::decode_send_message_prefix(r.payload.first(v2::group_send_prefix_size));
    if (std::uint64_t{h.payload_size} != v2::group_send_prefix_size + std::uint64_t{prefix.content_size})
      return refuse(v2::reason::malformed);
    if (!v2::is_group_message_type(prefix.type)) return refuse(v2::reason::type_not_accepted);
    if (prefix.content_size > std::min(limits.max_message_size, v2::max_group_content_size))
      return refuse(v2::reason::too_large);
    return refuse(v2::reason::unknown_group);
  }
  if (h.payload_size != v2::group_fixed_payload_size(h.code)) return refuse(v2::reason::malformed);
  switch (static_cast<v2::group_request_code>(h.code)) {
    case v2::group_request_code::create:
      v2::decode_group_create_request(r.payload);  // protocol_error: malformed
      return refuse(v2::reason::too_many_groups);
    case v2::group_request_code::list: return answer(static_cast<v2::response_code>(v2::group_response_for(h.code)));
    default: return refuse(v2::reason::unknown_group);
  }
}

// The model's answer to a v2 request; updates the connection state that does not depend on
// the answer (the success is applied by check_v2_success).
expectation expected_v2(model& m, const framed_request& r, const server_limits& limits) {
  constexpr auto error = static_cast<std::uint16_t>(response_code::error);
  auto& c = m.connection;
  const auto& h = r.header;
  auto refuse = [](v2::reason why, bool close = false) { return expectation{error, false, true, why, close}; };
  auto answer = [](v2::response_code code, bool close_on_error = false) {
    return expectation{static_cast<std::uint16_t>(code), false, true, std::nullopt, close_on_error};
  };
  const auto code = static_cast<v2::request_code>(h.code);
  try {
    if (v2::is_group_request(h.code)) return expected_group(m, r, limits, refuse, answer);
    switch (code) {
      case v2::request_code::hello: {
        if (h.payload_size != v2::hello_payload_size) return refuse(v2::reason::malformed);
        if (!v2::supports_v2(v2::decode_hello_request(r.payload))) return refuse(v2::reason::malformed);
        if (c.hello) return refuse(v2::reason::bad_state);
        c.hello = c.challenge = true;
        return answer(v2::response_code::hello);
      }
      case v2::request_code::register_client: {
        if (h.payload_size != v2::register_payload_size) return refuse(v2::reason::malformed, true);
        if (c.client || !c.challenge) return refuse(v2::reason::bad_state, true);
        c.challenge = false;
        v2::register_request decoded;
        try {
          decoded = v2::decode_register_request(r.payload);
        } catch (const protocol_error&) {
          return refuse(v2::reason::malformed, true);
        }
        const auto challenge = fuzz_challenge();
        const auto name_field = r.payload.first(name_field_size);
        // The rate is taken before any signature is checked (every attempt counts).
        const bool within_rate = ++m.registrations <= limits.registration_rate;
        if (!within_rate) return {static_cast<std::uint16_t>(v2::response_code::registered), true, true, v2::reason::rate_limited, true};
        if (!crypto::valid_agreement_key(decoded.agreement)) return refuse(v2::reason::malformed, true);
        if (!crypto::verify(decoded.identity, crypto::labels::register_proof, {challenge, decoded.identity}, decoded.proof) ||
            !crypto::verify(decoded.identity, crypto::labels::keys, {name_field, decoded.agreement, decoded.legacy},
                            decoded.key_signature))
          return refuse(v2::reason::authentication_failed, true);
        if (m.name_taken(decoded.name)) return refuse(v2::reason::name_taken, true);
        if (m.find(crypto::derive_client_id(decoded.identity))) return refuse(v2::reason::key_taken, true);
        return answer(v2::response_code::registered, true);
      }
      case v2::request_code::auth: {
        if (h.payload_size != v2::auth_payload_size) return refuse(v2::reason::malformed, true);
        if (c.client || !c.challenge) return refuse(v2::reason::bad_state, true);
        c.challenge = false;
        const auto decoded = v2::decode_auth_request(r.payload);
        const auto* client = m.find(decoded.client);
        const auto challenge = fuzz_challenge();
        if (client == nullptr || !client->v2 ||
            !crypto::verify(client->v2->identity, crypto::labels::auth_proof, {challenge, decoded.client}, decoded.proof))
          return refuse(v2::reason::authentication_failed, true);
        return answer(v2::response_code::authenticated, true);
      }
      case v2::request_code::list_clients:
        if (!c.client) return refuse(v2::reason::bad_state);
        if (h.payload_size != 0) return refuse(v2::reason::malformed);
        return answer(v2::response_code::client_list);
      case v2::request_code::get_keys:
        if (!c.client) return refuse(v2::reason::bad_state);
        if (h.payload_size != v2::keys_payload_size) return refuse(v2::reason::malformed);
        if (!m.find(v2::decode_keys_request(r.payload).target)) return refuse(v2::reason::unknown_client);
        return answer(v2::response_code::keys);
      case v2::request_code::send_message: {
        if (!c.client) return refuse(v2::reason::bad_state);
        if (h.payload_size < v2::send_message_prefix_size) return refuse(v2::reason::malformed);
        const auto prefix = v2::decode_send_message_prefix(r.payload.first(v2::send_message_prefix_size));
        if (std::uint64_t{h.payload_size} != v2::send_message_prefix_size + std::uint64_t{prefix.content_size})
          return refuse(v2::reason::malformed);
        if (!v2::is_sendable_type(prefix.type)) return refuse(v2::reason::type_not_accepted);
        if (!v2::is_empty_when_required(prefix)) return refuse(v2::reason::malformed);
        if (prefix.content_size > std::min(limits.max_message_size, v2::max_content_size))
          return refuse(v2::reason::too_large);
        if (!m.find(prefix.to)) return refuse(v2::reason::unknown_client);
        if (!v2::type_fits_recipient(prefix.type, m.is_v2(prefix.to))) return refuse(v2::reason::type_not_accepted);
        return answer(v2::response_code::message_sent);
      }
      case v2::request_code::pull_messages:
        if (!c.client) return refuse(v2::reason::bad_state);
        if (h.payload_size != 0) return refuse(v2::reason::malformed);
        return answer(v2::response_code::messages);
      case v2::request_code::ack:
        if (!c.client) return refuse(v2::reason::bad_state);
        if (!v2::is_valid_ack_payload_size(h.payload_size)) return refuse(v2::reason::malformed);
        return answer(v2::response_code::acknowledged);
    }
  } catch (const protocol_error&) {
    return refuse(v2::reason::malformed, code == v2::request_code::register_client || code == v2::request_code::auth);
  }
  return refuse(v2::reason::malformed);
}

expectation expected_code(model& m, const framed_request& r, const server_limits& limits) {
  constexpr auto error = static_cast<std::uint16_t>(response_code::error);
  const auto& h = r.header;
  if (is_v2_request(r)) return expected_v2(m, r, limits);
  if (is_known_request(h.code) && m.is_v2(h.client)) return {error};  // the v1 lock
  try {
    switch (static_cast<request_code>(h.code)) {
      case request_code::register_client: {
        if (h.payload_size != register_payload_size) return {error};
        // The per-address rate (a full bucket to start with) is taken before the name is
        // decoded; past it, a refill during the run may or may not have made room.
        const bool within_rate = ++m.registrations <= limits.registration_rate;
        const auto decoded = decode_register_request(r.payload);
        if (m.name_taken(decoded.name)) return {error};
        return {static_cast<std::uint16_t>(response_code::registered), !within_rate};
      }
      case request_code::list_clients:
        return {h.payload_size == 0 && m.find(h.client) ? static_cast<std::uint16_t>(response_code::client_list) : error};
      case request_code::get_public_key:
        return {h.payload_size == get_public_key_payload_size && m.find(h.client) &&
                        m.find(decode_get_public_key_request(r.payload).target)
                    ? static_cast<std::uint16_t>(response_code::public_key)
                    : error};
      case request_code::send_message: {
        if (h.payload_size < send_message_prefix_size) return {error};
        const auto prefix = decode_send_message_prefix(r.payload.first(send_message_prefix_size));
        validate_send_message(prefix, h.payload_size);
        return {prefix.content_size <= limits.max_message_size && m.find(h.client) && m.find(prefix.to)
                    ? static_cast<std::uint16_t>(response_code::message_sent)
                    : error};
      }
      case request_code::pull_messages:
        return {h.payload_size == 0 && m.find(h.client) ? static_cast<std::uint16_t>(response_code::messages) : error};
    }
  } catch (const protocol_error&) {
    return {error};
  }
  return {error};
}

// Checks a success response's payload against the model and updates the model.
void check_success(model& m, std::size_t index, const framed_request& r, const response& answer) {
  const auto what = describe(index, r);
  try {
    switch (static_cast<request_code>(r.header.code)) {
      case request_code::register_client: {
        const auto id = decode_registered_payload(answer.payload);
        if ((id[6] & 0xF0) != 0x40 || (id[8] & 0xC0) != 0x80) fail(what + ": the new ID is not a v4 UUID");
        if (m.find(id)) fail(what + ": the new ID belongs to a registered client");
        const auto decoded = decode_register_request(r.payload);
        m.clients.push_back({id, decoded.name, decoded.key, std::nullopt});
        return;
      }
      case request_code::list_clients: {
        std::vector<client_entry> expected;
        for (const auto& c : m.clients)
          if (c.id != r.header.client) expected.push_back({c.id, c.name});
        if (decode_client_list_payload(answer.payload) != expected)
          fail(what + ": the list is not every other client in registration order");
        return;
      }
      case request_code::get_public_key: {
        const auto target = decode_get_public_key_request(r.payload).target;
        const auto got = decode_public_key_payload(answer.payload);
        if (got.id != target || got.key != m.find(target)->key) fail(what + ": not the target's ID and key");
        return;
      }
      case request_code::send_message: {
        const auto prefix = decode_send_message_prefix(r.payload.first(send_message_prefix_size));
        const auto sent = decode_message_sent_payload(answer.payload);
        if (sent.to != prefix.to) fail(what + ": the 1003 names another destination");
        const auto content = r.payload.subspan(send_message_prefix_size);
        m.add_message(sent.message_id, {prefix.to, r.header.client, prefix.type, byte_buffer(content.begin(), content.end())});
        return;
      }
      case request_code::pull_messages: {
        byte_reader in(answer.payload);
        auto& mailbox = m.mailboxes[r.header.client];
        auto next = mailbox.begin();
        while (!in.empty()) {
          if (in.remaining() < pulled_message_header_size) fail(what + ": 1004 payload ends inside a message header");
          const auto header = decode_pulled_message_header(in.bytes(pulled_message_header_size));
          if (header.content_size > in.remaining()) fail(what + ": 1004 payload ends inside a message content");
          const auto content = in.bytes(header.content_size);
          const auto where = what + ": pulled message " + std::to_string(header.message_id);
          if (next == mailbox.end() || next->first != header.message_id)
            fail(where + " is not the requester's next pending message (another mailbox's, delivered already, "
                         "or out of send order)");
          const auto& message = next->second;
          if (header.from != message.from || header.type != message.type ||
              !std::equal(content.begin(), content.end(), message.content.begin(), message.content.end()))
            fail(where + ": sender, type or content differ from what was sent");
          ++next;
        }
        if (next != mailbox.end())
          fail(what + ": " + std::to_string(std::distance(next, mailbox.end())) +
               " pending message(s) of the requester left out");
        mailbox.clear();
        return;
      }
    }
  } catch (const protocol_error& e) {
    fail(what + ": its response payload does not decode: " + e.what());
  }
}

// Checks a v2 success response's payload against the model and updates the model.
void check_v2_success(model& m, std::size_t index, const framed_request& r, const response& answer) {
  const auto what = describe(index, r);
  auto& c = m.connection;
  if (v2::is_group_request(r.header.code)) {  // only GROUPS succeeds, and no group exists (expected_group)
    if (!answer.payload.empty()) fail(what + ": a 2029 listing groups while none can exist");
    return;
  }
  try {
    switch (static_cast<v2::request_code>(r.header.code)) {
      case v2::request_code::hello: {
        const auto hello = v2::decode_hello_payload(answer.payload);
        if (hello.version != v2::protocol_version || hello.nonce != fuzz_challenge())
          fail(what + ": the 2000 is not version 2 with the connection's challenge");
        return;
      }
      case v2::request_code::register_client: {
        const auto id = v2::decode_registered_payload(answer.payload);
        const auto decoded = v2::decode_register_request(r.payload);
        if (id != crypto::derive_client_id(decoded.identity)) fail(what + ": the ID is not derived from the identity key");
        m.clients.push_back({id, decoded.name, decoded.legacy, v2_keys{decoded.identity, decoded.agreement, decoded.key_signature}});
        c.client = id;
        return;
      }
      case v2::request_code::auth:
        if (!answer.payload.empty()) fail(what + ": a 2002 with a payload");
        c.client = v2::decode_auth_request(r.payload).client;
        c.leased.clear();
        return;
      case v2::request_code::list_clients: {
        std::vector<v2::client_entry> expected;
        for (const auto& k : m.clients)
          if (k.id != *c.client) expected.push_back({k.id, k.name, k.v2 ? v2::client_flag_v2 : std::uint8_t{0}});
        if (v2::decode_client_list_payload(answer.payload) != expected)
          fail(what + ": the 2003 is not every other client with its flags, in registration order");
        return;
      }
      case v2::request_code::get_keys: {
        const auto target = v2::decode_keys_request(r.payload).target;
        const auto* k = m.find(target);
        v2::keys_response expected;
        expected.id = target;
        expected.name = k->name;
        expected.legacy = k->key;
        if (k->v2) {
          expected.flags = v2::client_flag_v2;
          expected.identity = k->v2->identity;
          expected.agreement = k->v2->agreement;
          expected.key_signature = k->v2->key_signature;
        }
        if (v2::decode_keys_payload(answer.payload) != expected) fail(what + ": the 2004 is not the target's keys");
        return;
      }
      case v2::request_code::send_message: {
        const auto prefix = v2::decode_send_message_prefix(r.payload.first(v2::send_message_prefix_size));
        const auto sent = v2::decode_message_sent_payload(answer.payload);
        if (sent.to != prefix.to) fail(what + ": the 2005 names another recipient");
        const auto content = r.payload.subspan(v2::send_message_prefix_size);
        m.add_message(sent.message_id, {prefix.to, *c.client, prefix.type, byte_buffer(content.begin(), content.end())});
        return;
      }
      case v2::request_code::pull_messages: {
        byte_reader in(answer.payload);
        auto& mailbox = m.mailboxes[*c.client];
        auto next = mailbox.begin();
        auto skip_leased = [&] {
          while (next != mailbox.end() && c.leased.count(next->first) != 0) ++next;
        };
        skip_leased();
        while (!in.empty()) {
          if (in.remaining() < v2::pulled_message_header_size) fail(what + ": 2006 payload ends inside an entry header");
          const auto header = v2::decode_pulled_message_header(in.bytes(v2::pulled_message_header_size));
          if (header.content_size > in.remaining()) fail(what + ": 2006 payload ends inside a content");
          const auto content = in.bytes(header.content_size);
          const auto where = what + ": pulled message " + std::to_string(header.message_id);
          if (next == mailbox.end() || next->first != header.message_id)
            fail(where + " is not the next pending message not leased to this connection");
          const auto& message = next->second;
          const std::uint8_t flags = m.is_v2(message.from) ? 0 : v2::message_flag_legacy_sender;
          if (header.from != message.from || header.type != message.type || header.flags != flags ||
              !std::equal(content.begin(), content.end(), message.content.begin(), message.content.end()))
            fail(where + ": sender, type, flags or content differ from what was sent");
          c.leased.insert(next->first);
          ++next;
          skip_leased();
        }
        if (next != mailbox.end()) fail(what + ": pending messages not leased to this connection were left out");
        return;
      }
      case v2::request_code::ack: {
        const auto ids = v2::decode_ack_request(r.payload).message_ids;
        auto& mailbox = m.mailboxes[*c.client];
        std::uint32_t removed = 0;
        for (const auto id : ids) {
          removed += static_cast<std::uint32_t>(mailbox.erase(id));
          c.leased.erase(id);
        }
        if (v2::decode_acknowledged_payload(answer.payload) != removed)
          fail(what + ": the 2007 counts " + std::to_string(v2::decode_acknowledged_payload(answer.payload)) +
               " removed, the model " + std::to_string(removed));
        return;
      }
    }
  } catch (const protocol_error& e) {
    fail(what + ": its response payload does not decode: " + e.what());
  }
}

void check_responses(model& m, const std::vector<framed_request>& requests, const std::vector<response>& answers,
                     const server_limits& limits) {
  constexpr auto error = static_cast<std::uint16_t>(response_code::error);
  std::size_t complete = 0;
  while (complete < requests.size() && requests[complete].complete) ++complete;
  std::size_t i = 0;
  for (; i < complete; ++i) {
    const auto& r = requests[i];
    if (i >= answers.size())
      fail(std::to_string(answers.size()) + " response(s) to " + std::to_string(complete) + " complete request(s)");
    const auto& answer = answers[i];
    const auto code = answer.header.code;
    const auto want = expected_code(m, r, limits);
    if (code != want.code && !(want.or_error && code == error))
      fail(describe(i, r) + ": answered " + std::to_string(code) + ", the model expects " + std::to_string(want.code) +
           (want.or_error ? " or 9000" : ""));
    const std::uint8_t version = want.v2 ? v2::wire_version : server_version;
    if (answer.header.version != version)
      fail(describe(i, r) + ": answered with version " + std::to_string(answer.header.version) + ", not " +
           std::to_string(version));
    if (code == error) {
      if (want.v2) {
        if (answer.payload.size() != v2::error_payload_size) fail(describe(i, r) + ": a v2 9000 without its 2-byte reason");
        const auto reason = v2::decode_error_payload(answer.payload);
        if (want.reason && reason != static_cast<std::uint16_t>(*want.reason))
          fail(describe(i, r) + ": v2 9000 reason " + v2::reason_name(reason) + ", the model expects " +
               v2::reason_name(static_cast<std::uint16_t>(*want.reason)));
      } else if (!answer.payload.empty()) {
        fail(describe(i, r) + ": a 9000 with a payload");
      }
      if (want.close_on_error) {
        if (answers.size() > i + 1) fail(describe(i, r) + ": answers after a failed REGISTER/AUTH, which must close");
        return;
      }
      continue;
    }
    if (want.v2)
      check_v2_success(m, i, r, answer);
    else
      check_success(m, i, r, answer);
  }
  // An incomplete last request is answered only by a 9000, and only when it announces more than
  // the server discards (it closes then), or when it is a v2 REGISTER/AUTH of the wrong size
  // (refused on its header, and the connection closed without reading the rest).
  auto refused_on_header = [](const framed_request& r) {
    if (!is_v2_request(r)) return false;
    const auto code = static_cast<v2::request_code>(r.header.code);
    return (code == v2::request_code::register_client && r.header.payload_size != v2::register_payload_size) ||
           (code == v2::request_code::auth && r.header.payload_size != v2::auth_payload_size);
  };
  const bool extra_allowed = complete < requests.size() && (requests[complete].header.payload_size > max_discard_size ||
                                                            refused_on_header(requests[complete]));
  if (answers.size() > complete + (extra_allowed ? 1 : 0))
    fail(std::to_string(answers.size()) + " response(s) to " + std::to_string(complete) +
         " complete request(s) and an incomplete one that must not be answered");
  if (answers.size() == complete + 1) {
    const auto& answer = answers[complete];
    if (answer.header.code != error) fail(describe(complete, requests[complete]) + ": an incomplete request answered " +
                                          std::to_string(answer.header.code));
    const bool v2_answer = answer.header.version == v2::wire_version;
    if (answer.payload.size() != (v2_answer ? v2::error_payload_size : 0))
      fail(describe(complete, requests[complete]) + ": a 9000 with the wrong payload");
  }
}

// --- One input -------------------------------------------------------------------------------
void run_input(fixture& f, std::span<const std::uint8_t> data) {
  const std::uint8_t control = data.empty() ? 0 : data[0];
  std::vector<std::uint8_t> stream(data.begin() + (data.empty() ? 0 : 1), data.end());
  if (control & alias_ids) apply_aliases(stream);
  const auto requests = frame_requests(stream);
  const std::size_t chunk = chunk_sizes[control & chunk_mask];

  server_under_test server(f);
  bool accepted = false, sent = false, received = false;
  tcp::socket client(f.io);
  f.acceptor.async_accept([&](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec) fail("accept failed: " + ec.message());
    boost::system::error_code ignored;
    const auto peer = socket.remote_endpoint(ignored);
    start_session(std::move(socket), peer, *server.context, server.sessions);
    accepted = true;
  });
  byte_buffer responses;
  boost::system::error_code end;
  asio::co_spawn(f.io, run_client(client, f.acceptor.local_endpoint(), stream, chunk, responses, end, sent, received),
                 asio::detached);

  const auto deadline = std::chrono::steady_clock::now() + input_deadline;
  while (!(accepted && sent && received && server.sessions.size() == 0)) {
    if (std::chrono::steady_clock::now() > deadline)
      fail("not done within 5 s: accepted=" + std::to_string(accepted) + " sent=" + std::to_string(sent) +
           " received=" + std::to_string(received) + " sessions=" + std::to_string(server.sessions.size()));
    f.io.run_one_for(100ms);
  }
  f.io.poll();
  client.set_option(asio::socket_base::linger(true, 0));  // no TIME_WAIT left behind
  client.close();
  if (end != asio::error::eof) fail("the connection ended with " + end.message() + " instead of a clean close");
  check_responses(server.expected, requests, split_responses(responses), server.limits);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::signal(SIGPIPE, SIG_IGN);  // as server/main.cpp: sendfile(2) to a closed peer must fail, not kill
  set_up_logging();
  the_fixture = new fixture;  // lives until exit (its threads too)
  std::atexit(remove_fixture_dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_input(*the_fixture, {data, size});
  return 0;
}

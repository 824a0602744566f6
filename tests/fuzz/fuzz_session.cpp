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
#include <string>
#include <vector>

#include "handler.hpp"
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
  public_key key;
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
  std::size_t registrations = 0;               // 100s that reached the rate limit

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
      expected.clients.push_back({c.id, c.name, c.key});
    }
    const new_message preloaded[] = {
        {known[0].id, known[1].id, static_cast<std::uint8_t>(message_type::text), 48, text, {}},
        {known[0].id, known[2].id, static_cast<std::uint8_t>(message_type::file), static_cast<std::uint32_t>(file.size()),
         {}, upload.name()},
        {known[1].id, known[0].id, static_cast<std::uint8_t>(message_type::symmetric_key_request), 0, {}, {}},
    };
    std::vector<std::uint32_t> ids;
    for (const auto& m : preloaded) ids.push_back(store.add_message(m));
    store.commit();
    upload.keep();
    expected.add_message(ids[0], {known[0].id, known[1].id, preloaded[0].type, text});
    expected.add_message(ids[1], {known[0].id, known[2].id, preloaded[1].type, file});
    expected.add_message(ids[2], {known[1].id, known[0].id, preloaded[2].type, {}});
    storage.emplace(store, limits.max_batch);
    context.emplace(server_context{*storage, handler, *f.spool, store.directory(), f.file_pool, pulls, errors,
                                   registrations, disk, pull_memory, leases, limits});
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
    if (header.version != server_version) fail("response version " + std::to_string(header.version));
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
};

expectation expected_code(model& m, const framed_request& r, const server_limits& limits) {
  constexpr auto error = static_cast<std::uint16_t>(response_code::error);
  const auto& h = r.header;
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
        m.clients.push_back({id, decoded.name, decoded.key});
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

void check_responses(model& m, const std::vector<framed_request>& requests, const std::vector<response>& answers,
                     const server_limits& limits) {
  constexpr auto error = static_cast<std::uint16_t>(response_code::error);
  std::size_t complete = 0;
  while (complete < requests.size() && requests[complete].complete) ++complete;
  const bool extra_allowed = complete < requests.size() && requests[complete].header.payload_size > max_discard_size;
  if (answers.size() < complete)
    fail(std::to_string(answers.size()) + " response(s) to " + std::to_string(complete) + " complete request(s)");
  if (answers.size() > complete + (extra_allowed ? 1 : 0))
    fail(std::to_string(answers.size()) + " response(s) to " + std::to_string(complete) +
         " complete request(s) and an incomplete one that must not be answered");
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& r = requests[i];
    const auto code = answers[i].header.code;
    const auto want = i < complete ? expected_code(m, r, limits) : expectation{error};
    if (code != want.code && !(want.or_error && code == error))
      fail(describe(i, r) + ": answered " + std::to_string(code) + ", the model expects " + std::to_string(want.code) +
           (want.or_error ? " or 9000" : ""));
    if (code == error) {
      if (!answers[i].payload.empty()) fail(describe(i, r) + ": a 9000 with a payload");
      continue;
    }
    check_success(m, i, r, answers[i]);
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

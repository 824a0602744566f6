// One server per database: a second server started on the same server.db refuses to start
// before it touches anything, so the first one's uploads in progress are not swept away.
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "integration_support.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;

namespace {

// Runs the server binary on `db` in the foreground (bounded by timeout(1)); returns its exit
// status and what it wrote to stderr.
std::pair<int, std::string> run_second_server(const std::filesystem::path& db, const std::filesystem::path& work) {
  const auto log = work / "second-server.log";
  const std::string command = "cd '" + work.string() + "' && timeout 10 '" + default_server_binary().string() +
                              "' --port 0 --bind 127.0.0.1 --db '" + db.string() + "' 2> '" + log.string() + "'";
  const int status = std::system(command.c_str());
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

}  // namespace

TEST_SUITE("single_instance") {

TEST_CASE("a second server on the same database refuses to start and leaves the first one's upload alone") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  constexpr std::uint32_t size = 2 * 1024 * 1024;  // spooled (above the 64 KiB inline limit)
  constexpr std::uint64_t seed = 77;

  // An upload in progress: header, prefix and the first half of the content.
  auto uploader = fixture.connect();
  auto payload = protocol::encode_send_message_prefix({fixture.bob, 4, size});
  uploader.send_bytes(protocol::encode_request_front(fixture.alice, protocol::client_version,
                                                     code_of(protocol::request_code::send_message),
                                                     payload.size() + size, payload));
  content_pattern pattern(seed);
  protocol::byte_buffer chunk(size / 2);
  pattern.fill(chunk);
  uploader.send_bytes(chunk);
  // Wait until the first server has created the spool file for it.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  auto spool_files = [&] {
    std::size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator(fixture.server.spool_directory())) n += entry.is_regular_file();
    return n;
  };
  while (spool_files() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  REQUIRE(spool_files() == 1);

  const auto [status, stderr_text] = run_second_server(fixture.server.db_path(), fixture.server.directory());
  INFO("second server's stderr: " << stderr_text);
  CHECK(status == 1);
  CHECK(stderr_text.find("another server") != std::string::npos);
  CHECK(spool_files() == 1);  // the upload in progress is still there

  // The first server finishes the upload and delivers it intact.
  pattern.fill(chunk);
  uploader.send_bytes(chunk);
  const auto reply = uploader.read_response();
  REQUIRE(reply.code() == code_of(protocol::response_code::message_sent));
  auto reader = fixture.connect();
  const auto sent = protocol::decode_message_sent_payload(reply.payload);
  const auto delivered = pull_all_streamed(reader, fixture.bob, {{sent.message_id, seed}});
  REQUIRE(delivered.size() == 1);
  CHECK(delivered[0].content_matches);
  check_server_still_serves(fixture.server);
}

TEST_CASE("the lock is released when the server ends, also after kill -9: a restart on the same database works") {
  server_with_clients fixture;
  LETTERBOX_ATTACH_SERVER_LOG(fixture.server);
  fixture.server.send_signal(SIGKILL);
  fixture.server.wait_exit(10s);
  fixture.server.restart();
  auto connection = fixture.connect();
  CHECK(list_clients(connection, fixture.alice).size() == 1);
}

}  // TEST_SUITE

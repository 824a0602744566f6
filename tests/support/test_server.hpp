// test_server: runs the real `server` binary in a fresh temporary directory for a test.
//
// Starts `server --port 0 --bind 127.0.0.1 --ready-file <dir>/port --db <dir>/server.db
// <extra args>` with <dir> as working directory and stdout/stderr appended to <dir>/server.log,
// waits (bounded) for the ready file and exposes the port, the pid and the memory figures the
// kernel reports for the process. No test framework dependency: failures are exceptions
// (test_server_error), so the client's end-to-end tests and the benchmarks can reuse it.
// The server gets PR_SET_PDEATHSIG=SIGKILL, tied to the thread that starts it: construct
// (and restart()) a test_server from a thread that outlives it, normally the main thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace letterbox::test {

// Thrown when the server cannot be started, does not become ready, or does not stop in time.
// The message includes the tail of the server log.
class test_server_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct test_server_options {
  std::vector<std::string> extra_args;                 // appended after the standard ones
  std::chrono::milliseconds ready_timeout{10'000};     // bound for the ready file to appear
  std::filesystem::path binary;                        // empty: default_server_binary()
};

// Path of the server binary: $LETTERBOX_SERVER if set, else the path compiled in from
// $<TARGET_FILE:server>.
std::filesystem::path default_server_binary();

class test_server {
 public:
  // Creates the temp directory and starts the server; throws test_server_error if the server
  // exits early or is not ready within options.ready_timeout (the process is killed then).
  explicit test_server(test_server_options options = {});
  explicit test_server(std::vector<std::string> extra_args);
  // Kills the server (SIGKILL) if still running and removes the directory, unless the
  // environment variable LETTERBOX_KEEP_TEST_DIRS is set. Prints the server log to stderr
  // when destroyed during stack unwinding (a failed REQUIRE, an unexpected exception).
  ~test_server();
  test_server(const test_server&) = delete;
  test_server& operator=(const test_server&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return pid_ > 0; }

  const std::filesystem::path& directory() const noexcept { return directory_; }
  std::filesystem::path db_path() const { return directory_ / "server.db"; }
  std::filesystem::path spool_directory() const { return directory_ / "server.db.spool"; }
  std::filesystem::path log_path() const { return directory_ / "server.log"; }

  // Peak resident set size (VmHWM) and current resident set size (VmRSS) of the running
  // server, in bytes, from /proc/<pid>/status. Throws test_server_error if not running.
  std::uint64_t peak_rss_bytes() const;
  std::uint64_t rss_bytes() const;

  // Sends SIGTERM and waits up to `timeout` for the process to exit. Returns the exit status
  // (0..255), or 128 + signal number if a signal ended it. On timeout the process is killed
  // with SIGKILL and test_server_error is thrown.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Sends `signal` without waiting (e.g. SIGKILL to simulate a crash); then wait_exit().
  void send_signal(int signal);
  // Waits up to `timeout` for the process to exit on its own; same results as stop().
  int wait_exit(std::chrono::milliseconds timeout);
  // Returns true (and reaps it) if the process has already exited; sets `status` then.
  bool has_exited(int* status = nullptr);

  // Starts the server again in the same directory (same DB and spool) after stop(); if it is
  // still running, stops it first (any exit status accepted). The port changes.
  void restart();

  // The whole server log, or its last `max_bytes` bytes.
  std::string log(std::size_t max_bytes = 64 * 1024) const;

 private:
  void spawn();
  void wait_ready();
  void kill_hard() noexcept;
  std::uint64_t proc_status_kib(const char* field) const;
  [[noreturn]] void fail(const std::string& what) const;

  test_server_options options_;
  std::filesystem::path directory_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  int starts_ = 0;
};

// Decodes a waitpid() status the way stop() reports it.
int decode_wait_status(int status) noexcept;

}  // namespace letterbox::test

// test_server: spawn, readiness, memory figures and shutdown of the real server binary.
#include "test_server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#ifndef LETTERBOX_SERVER_BINARY
#error "LETTERBOX_SERVER_BINARY must be defined (path of the server executable)"
#endif

namespace letterbox::test {
namespace {

using namespace std::chrono_literals;

constexpr auto poll_interval = 5ms;
constexpr std::size_t failure_log_tail_bytes = 8 * 1024;

std::filesystem::path make_temp_directory() {
  auto pattern = (std::filesystem::temp_directory_path() / "letterbox-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw test_server_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  return pattern;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::filesystem::path default_server_binary() {
  if (const char* from_env = std::getenv("LETTERBOX_SERVER"); from_env != nullptr && *from_env)
    return from_env;
  return LETTERBOX_SERVER_BINARY;
}

int decode_wait_status(int status) noexcept {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

test_server::test_server(std::vector<std::string> extra_args)
    : test_server(test_server_options{std::move(extra_args), std::chrono::seconds(10), {}}) {}

test_server::test_server(test_server_options options) : options_(std::move(options)) {
  if (options_.binary.empty()) options_.binary = default_server_binary();
  if (!std::filesystem::exists(options_.binary))
    throw test_server_error("server binary not found: " + options_.binary.string());
  directory_ = make_temp_directory();
  try {
    spawn();
    wait_ready();
  } catch (...) {
    kill_hard();
    std::error_code ignored;
    if (std::getenv("LETTERBOX_KEEP_TEST_DIRS") == nullptr)
      std::filesystem::remove_all(directory_, ignored);
    throw;
  }
}

test_server::~test_server() {
  if (std::uncaught_exceptions() > 0) {
    std::cerr << "--- server log " << log_path() << " (tail) ---\n"
              << log(failure_log_tail_bytes) << "\n--- end of server log ---\n";
  }
  kill_hard();
  if (std::getenv("LETTERBOX_KEEP_TEST_DIRS") == nullptr) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  } else {
    std::cerr << "keeping test directory " << directory_ << "\n";
  }
}

void test_server::spawn() {
  const auto ready_file = directory_ / "port";
  std::error_code ignored;
  std::filesystem::remove(ready_file, ignored);

  // Everything the child needs is prepared before fork(): after it only async-signal-safe calls.
  std::vector<std::string> args = {options_.binary.string(), "--port", "0", "--bind", "127.0.0.1",
                                   "--ready-file", ready_file.string(), "--db", db_path().string()};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string directory = directory_.string();
  const std::string log_file = log_path().string();
  const pid_t parent = ::getpid();

  const pid_t child = ::fork();
  if (child < 0) throw test_server_error("fork failed: " + std::string(std::strerror(errno)));
  if (child == 0) {
    // Die with the test process, so a test killed by a CTest timeout leaves no server behind.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    // Don't leak the test's sockets into the server: a client socket held open by the server
    // process would never deliver its FIN.
    ::close_range(3, ~0U, 0);
    const int null_fd = ::open("/dev/null", O_RDONLY);
    const int log_fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (null_fd < 0 || log_fd < 0 || ::chdir(directory.c_str()) != 0) ::_exit(125);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  pid_ = child;
  ++starts_;
}

void test_server::wait_ready() {
  const auto ready_file = directory_ / "port";
  const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (has_exited(&status))
      fail("server exited before it was ready, status " + std::to_string(decode_wait_status(status)));
    std::error_code error;
    if (std::filesystem::exists(ready_file, error)) {
      const auto text = read_file(ready_file);
      if (!text.empty() && text.back() == '\n') {
        unsigned long value = 0;
        try {
          value = std::stoul(text);
        } catch (const std::exception&) {
          fail("ready file holds no port number: '" + text + "'");
        }
        if (value == 0 || value > 65535) fail("ready file holds an invalid port: '" + text + "'");
        port_ = static_cast<std::uint16_t>(value);
        return;
      }
    }
    std::this_thread::sleep_for(poll_interval);
  }
  kill_hard();
  fail("server not ready within " + std::to_string(options_.ready_timeout.count()) + " ms");
}

bool test_server::has_exited(int* status) {
  if (pid_ <= 0) return true;
  int local = 0;
  const pid_t result = ::waitpid(pid_, &local, WNOHANG);
  if (result == pid_) {
    pid_ = -1;
    if (status != nullptr) *status = local;
    return true;
  }
  return false;
}

void test_server::send_signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

int test_server::wait_exit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) throw test_server_error("wait_exit: server is not running");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (has_exited(&status)) return decode_wait_status(status);
    std::this_thread::sleep_for(poll_interval);
  }
  kill_hard();
  fail("server did not exit within " + std::to_string(timeout.count()) + " ms (killed with SIGKILL)");
}

int test_server::stop(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) throw test_server_error("stop: server is not running");
  send_signal(SIGTERM);
  return wait_exit(timeout);
}

void test_server::restart() {
  if (pid_ > 0) stop();
  spawn();
  wait_ready();
}

void test_server::kill_hard() noexcept {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::uint64_t test_server::proc_status_kib(const char* field) const {
  if (pid_ <= 0) throw test_server_error("server is not running");
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  const std::string prefix = std::string(field) + ":";
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(prefix, 0) == 0) return std::stoull(line.substr(prefix.size()));  // "  123 kB"
  }
  throw test_server_error(std::string("no ") + field + " in /proc/" + std::to_string(pid_) + "/status");
}

std::uint64_t test_server::peak_rss_bytes() const { return proc_status_kib("VmHWM") * 1024; }
std::uint64_t test_server::rss_bytes() const { return proc_status_kib("VmRSS") * 1024; }

std::string test_server::log(std::size_t max_bytes) const {
  auto text = read_file(log_path());
  if (text.size() > max_bytes) text = "[...]\n" + text.substr(text.size() - max_bytes);
  return text;
}

void test_server::fail(const std::string& what) const {
  throw test_server_error(what + "\n--- server log " + log_path().string() + " (tail) ---\n" +
                          log(failure_log_tail_bytes) + "\n--- end of server log ---");
}

}  // namespace letterbox::test

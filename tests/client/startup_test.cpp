// Tests of start-up with a broken environment: a $TMPDIR that is not a directory must not
// abort the client (it used to throw from a default member initialiser, outside any catch).
#include <doctest/doctest.h>

#include <stdlib.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "operations.hpp"
#include "self_test.hpp"
#include "test_directory.hpp"

using namespace letterbox::client;

namespace {

// Sets $TMPDIR for the lifetime of the object and restores the previous value.
struct scoped_tmpdir {
  std::optional<std::string> saved;
  explicit scoped_tmpdir(const std::string& value) {
    if (const char* old = ::getenv("TMPDIR")) saved = old;
    ::setenv("TMPDIR", value.c_str(), 1);
  }
  ~scoped_tmpdir() {
    if (saved) ::setenv("TMPDIR", saved->c_str(), 1);
    else ::unsetenv("TMPDIR");
  }
};

}  // namespace

TEST_CASE("a missing $TMPDIR: the menu's client starts, the self-test reports it and returns 2") {
  test_directory dir;  // created before $TMPDIR is broken
  std::ofstream(dir.path / "server.info") << "127.0.0.1:1\n";
  scoped_tmpdir broken(dir.path.string() + "/no-such-directory");

  client_options options;
  options.directory = dir.path;
  CHECK_NOTHROW(client_operations{options});

  self_test_options test_options;
  test_options.config_directory = dir.path;
  std::ostringstream out;
  CHECK(run_self_test(test_options, out) == 2);
  CHECK(out.str().find("cannot start the self-test") != std::string::npos);
}

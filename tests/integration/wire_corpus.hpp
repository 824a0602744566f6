// The protocol v1 wire corpus: deterministic request sequences that cover every request code
// and every error rule of docs/PROTOCOL.md (§3, §7), each run against a fresh server and
// recorded by wire_transcript.hpp. Its transcript is the golden file of wire_transcript_test.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "wire_transcript.hpp"

namespace letterbox::test::wire {

struct scenario {
  std::string name;
  std::string summary;                   // one line, in the transcript's heading
  std::vector<std::string> server_args;  // beyond test_server's standard ones
  std::function<void(recorder&)> run;
};

const std::vector<scenario>& v1_corpus();

// Runs every scenario of v1_corpus() against a fresh server (test_server: a new temporary
// directory and database each, binary from default_server_binary()) and returns the
// transcript, without comment lines. Throws test_server_error if a server does not start.
std::string record_v1_corpus();

}  // namespace letterbox::test::wire

// Progress bar for file transfers, drawn on stderr only when stderr is a terminal.
#pragma once

#include <string>

#include "operations.hpp"

namespace letterbox::client {

// A callback drawing "label  done / total  percent  rate" on one stderr line, redrawn at most
// ten times a second and ended with a newline when done == total. Returns an empty callback
// (no output at all) when stderr is not a terminal.
progress_callback make_terminal_progress(const std::string& label);

// "1.5 MiB"-style size for people.
std::string human_size(double bytes);

}  // namespace letterbox::client

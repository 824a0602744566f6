// Terminal progress bar on stderr (see progress.hpp).
#include "progress.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

namespace letterbox::client {

std::string human_size(double bytes) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t unit = 0;
  while (bytes >= 1024 && unit + 1 < std::size(units)) bytes /= 1024, ++unit;
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return text;
}

progress_callback make_terminal_progress(const std::string& label) {
  if (!::isatty(STDERR_FILENO)) return {};
  using clock = std::chrono::steady_clock;
  struct state {
    clock::time_point start = clock::now();
    clock::time_point last_draw{};
    std::uint64_t last_done = 0;
  };
  auto s = std::make_shared<state>();
  return [s, label](std::uint64_t done, std::uint64_t total) {
    const auto now = clock::now();
    if (done < s->last_done) s->start = now;  // a new transfer with the same bar (next file of a pull)
    s->last_done = done;
    const bool finished = done >= total;
    if (!finished && now - s->last_draw < std::chrono::milliseconds(100)) return;
    s->last_draw = now;
    const double seconds = std::chrono::duration<double>(now - s->start).count();
    const double percent = total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / static_cast<double>(total);
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0;
    std::fprintf(stderr, "\r%s  %s / %s  %3.0f%%  %s/s\033[K%s", label.c_str(), human_size(static_cast<double>(done)).c_str(),
                 human_size(static_cast<double>(total)).c_str(), percent, human_size(rate).c_str(), finished ? "\n" : "");
    std::fflush(stderr);
  };
}

}  // namespace letterbox::client

// Shared pieces of the benchmark tools (loadgen, limits, null_server): a latency histogram,
// the result line (one JSON line for scripts + a table for people), the process probes
// (memory from /proc/PID/status, CPU time from /proc/PID/stat, open descriptors from
// /proc/PID/fd, the open-file limit) and the deterministic content pattern used to verify
// large transfers. No sockets here.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace letterbox::bench {

using bench_clock = std::chrono::steady_clock;

inline double seconds_between(bench_clock::time_point from, bench_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Log-linear histogram of durations in nanoseconds (the HdrHistogram idea, fixed size):
// values below 2^precision_bits are exact, larger ones fall into buckets whose width is
// 1/2^(precision_bits-1) of their magnitude (<= 1.6 % error). record() never allocates.
class latency_histogram {
 public:
  static constexpr unsigned precision_bits = 7;
  static constexpr std::uint64_t linear_limit = 1ull << precision_bits;      // 128
  static constexpr std::uint64_t sub_buckets = 1ull << (precision_bits - 1);  // 64
  static constexpr std::size_t bucket_count =
      linear_limit + (64 - precision_bits) * sub_buckets;

  void record(std::uint64_t nanoseconds) noexcept {
    ++counts_[index_of(nanoseconds)];
    ++total_;
    max_ = std::max(max_, nanoseconds);
  }
  void record(bench_clock::duration d) noexcept {
    record(static_cast<std::uint64_t>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count())));
  }
  void merge(const latency_histogram& other) noexcept {
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t max() const noexcept { return max_; }

  // The value at quantile q in [0, 1] (midpoint of its bucket, never above max()); 0 when empty.
  std::uint64_t quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * total_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        auto [low, high] = bucket_range(i);
        return std::min(low + (high - low) / 2, max_);
      }
    }
    return max_;
  }
  double quantile_us(double q) const noexcept { return static_cast<double>(quantile(q)) / 1e3; }

  static std::size_t index_of(std::uint64_t v) noexcept {
    if (v < linear_limit) return static_cast<std::size_t>(v);
    const unsigned msb = 63u - static_cast<unsigned>(std::countl_zero(v));
    const unsigned shift = msb - (precision_bits - 1);  // >= 1
    const std::uint64_t mantissa = v >> shift;         // in [sub_buckets, 2*sub_buckets)
    return static_cast<std::size_t>(linear_limit + (shift - 1) * sub_buckets +
                                    (mantissa - sub_buckets));
  }
  // Inclusive [low, high] of the values that map to bucket i.
  static std::pair<std::uint64_t, std::uint64_t> bucket_range(std::size_t i) noexcept {
    if (i < linear_limit) return {i, i};
    const std::uint64_t shift = (i - linear_limit) / sub_buckets + 1;
    const std::uint64_t mantissa = (i - linear_limit) % sub_buckets + sub_buckets;
    const std::uint64_t low = mantissa << shift;
    return {low, low + ((1ull << shift) - 1)};
  }

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

// One benchmark result: ordered key/value pairs printed as a single machine-readable line
//   BENCH_RESULT {"scenario":"send","sends_per_s":123.4,...}
// and as a two-column table for people.
class result_line {
 public:
  explicit result_line(std::string scenario) { add("scenario", std::move(scenario)); }

  result_line& add(std::string key, std::string value) {
    fields_.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  result_line& add(std::string key, const char* value) { return add(std::move(key), std::string(value)); }
  result_line& add(std::string key, bool value) { return add(std::move(key), value ? "true" : "false"); }
  template <typename Number>
    requires(std::is_arithmetic_v<Number> && !std::is_same_v<Number, bool>)
  result_line& add(std::string key, Number value) {
    fields_.emplace_back(std::move(key), static_cast<double>(value));
    return *this;
  }

  std::string json() const {
    std::string out = "{";
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      if (i) out += ",";
      out += quote(fields_[i].first) + ":";
      if (auto* s = std::get_if<std::string>(&fields_[i].second))
        out += quote(*s);
      else
        out += number(std::get<double>(fields_[i].second));
    }
    return out + "}";
  }

  // Prints the table, then the BENCH_RESULT line, to stdout.
  void print() const {
    std::size_t width = 0;
    for (auto& f : fields_) width = std::max(width, f.first.size());
    std::printf("\n");
    for (auto& f : fields_) {
      std::string value = std::holds_alternative<std::string>(f.second)
                              ? std::get<std::string>(f.second)
                              : human(std::get<double>(f.second));
      std::printf("  %-*s  %s\n", static_cast<int>(width), f.first.c_str(), value.c_str());
    }
    std::printf("BENCH_RESULT %s\n", json().c_str());
    std::fflush(stdout);
  }

 private:
  static std::string quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      if (static_cast<unsigned char>(c) < 0x20) continue;
      out += c;
    }
    return out + "\"";
  }
  static std::string number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 1e15)
      std::snprintf(buf, sizeof buf, "%.0f", v);
    else
      std::snprintf(buf, sizeof buf, "%.7g", v);
    return buf;
  }
  static std::string human(double v) {
    char buf[64];
    if (v == std::floor(v) && std::fabs(v) < 1e15)
      std::snprintf(buf, sizeof buf, "%.0f", v);
    else
      std::snprintf(buf, sizeof buf, "%.3f", v);
    return buf;
  }
  std::vector<std::pair<std::string, std::variant<std::string, double>>> fields_;
};

// Memory of another process, from /proc/PID/status (kB values converted to bytes).
struct process_memory {
  std::uint64_t rss_bytes = 0;   // VmRSS: resident now
  std::uint64_t peak_bytes = 0;  // VmHWM: resident high-water mark
};

inline std::optional<process_memory> read_process_memory(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  process_memory m;
  std::string line;
  bool any = false;
  while (std::getline(in, line)) {
    unsigned long long kb = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %llu kB", &kb) == 1) m.rss_bytes = kb * 1024, any = true;
    if (std::sscanf(line.c_str(), "VmHWM: %llu kB", &kb) == 1) m.peak_bytes = kb * 1024, any = true;
  }
  if (!any) return std::nullopt;
  return m;
}

// Resets the VmHWM of a process to its current RSS (Linux >= 4.0, same user or root).
// Returns false when the kernel refused.
inline bool reset_peak_memory(long pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  if (!out) return false;
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

// CPU seconds (user + system, all threads) this process has used so far.
inline double own_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// utime + stime, in clock ticks, from the text of a /proc/PID/stat file; nullopt when the text
// is not such a line. The command name (field 2) is in parentheses and may itself contain
// spaces and parentheses, so fields are counted from the last ')'.
inline std::optional<std::uint64_t> cpu_ticks_from_proc_stat(std::string_view stat) {
  const auto close_paren = stat.rfind(')');
  if (close_paren == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close_paren + 1);
  constexpr std::string_view blanks = " \n";
  std::uint64_t utime = 0;
  for (int field = 3; field <= 15; ++field) {  // field 3 is the state; utime is 14, stime 15
    const auto start = rest.find_first_not_of(blanks);
    if (start == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(start);
    const auto token = rest.substr(0, rest.find_first_of(blanks));
    rest.remove_prefix(token.size());
    if (field < 14) continue;
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), value);
    if (error != std::errc{} || end != token.data() + token.size()) return std::nullopt;
    if (field == 15) return utime + value;
    utime = value;
  }
  return std::nullopt;
}

// CPU seconds (user + system) a process has used so far, from /proc/PID/stat; nullopt when
// the file cannot be read (no such process) or is malformed.
inline std::optional<double> process_cpu_seconds(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto ticks = cpu_ticks_from_proc_stat(text);
  if (!ticks) return std::nullopt;
  return static_cast<double>(*ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Open descriptors of a process: the entries of /proc/PID/fd (0 when it cannot be listed).
inline std::size_t open_descriptor_count(long pid) {
  std::error_code ec;
  std::size_t n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

// Raises this process's soft limit on open files to its hard limit, as far as the kernel
// allows; returns the soft limit now in force (0 when it cannot be read).
inline rlim_t raise_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  return limit.rlim_cur;
}

// Deterministic content: byte i of a pattern stream is byte (i % 8) of splitmix64(seed + i/8).
// fill_pattern writes the bytes [offset, offset + out.size()) of the stream.
inline std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline void fill_pattern(std::uint64_t seed, std::uint64_t offset, std::span<std::uint8_t> out) noexcept {
  static_assert(std::endian::native == std::endian::little, "fast path assumes little-endian");
  std::size_t done = 0;
  while (done < out.size()) {
    if ((offset + done) % 8 == 0) {  // fast path: whole aligned words
      std::uint64_t index = (offset + done) / 8;
      for (; out.size() - done >= 8; done += 8, ++index) {
        const std::uint64_t word = splitmix64(seed + index);
        std::memcpy(out.data() + done, &word, 8);
      }
      if (done == out.size()) break;
    }
    const std::uint64_t pos = offset + done;
    const std::uint64_t word = splitmix64(seed + pos / 8);
    const std::size_t in_word = static_cast<std::size_t>(pos % 8);
    const std::size_t n = std::min<std::size_t>(8 - in_word, out.size() - done);
    for (std::size_t k = 0; k < n; ++k)
      out[done + k] = static_cast<std::uint8_t>(word >> (8 * (in_word + k)));
    done += n;
  }
}

// True when data equals the pattern bytes [offset, offset + data.size()). scratch is reused
// between calls to avoid allocation (it grows to the largest chunk seen).
inline bool matches_pattern(std::uint64_t seed, std::uint64_t offset, std::span<const std::uint8_t> data,
                            std::vector<std::uint8_t>& scratch) {
  if (scratch.size() < data.size()) scratch.resize(data.size());
  fill_pattern(seed, offset, std::span(scratch.data(), data.size()));
  return std::memcmp(scratch.data(), data.data(), data.size()) == 0;
}

}  // namespace letterbox::bench

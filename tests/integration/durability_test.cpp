// Durability under kill -9 (issue 8, "Tests that stay in the project"). Sender threads stream
// small (inline) and large (spooled) pattern contents to a few recipients and record every send
// answered with 1003. At a seeded random moment the server is killed with SIGKILL, restarted on
// the same directory, and every mailbox is pulled completely: every acknowledged message must
// come back byte-exact (lost = 0), nothing may appear that was never sent, nothing twice, the
// start-up sweep must leave no orphan spool file, and the server must serve normally afterwards.
// A send whose 1003 never arrived may or may not be stored: it is counted, not judged.
//
// The seed is printed; LETTERBOX_DURABILITY_SEED=<n> replays the same plan (kill moments, sizes,
// contents). Thread timing is not replayable, so a replay reaches the same kind of moment, not
// the same instant.
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "integration_support.hpp"

using namespace letterbox::test;
namespace protocol = letterbox::protocol;

namespace {

constexpr int sender_count = 4;
constexpr int recipient_count = 3;
constexpr std::uint32_t inline_limit = 64 * 1024;  // passed as --inline-limit: larger contents are spooled
constexpr std::uint32_t small_max = 4 * 1024;
constexpr std::uint32_t spooled_min = 100 * 1024;
constexpr std::uint32_t spooled_max = 2 * 1024 * 1024;
constexpr std::size_t upload_chunk_size = 32 * 1024;  // granularity of a mid-upload kill
constexpr int max_sends_per_sender = 2000;            // per round; the kill normally ends a round far sooner
constexpr auto io_timeout = 5s;                       // every connect, read and write of the test
constexpr auto moment_timeout = 8s;                   // a kill moment not reached by then: kill anyway, fail
constexpr auto exit_timeout = 5s;
constexpr std::size_t max_problems_listed = 10;

// splitmix64 finaliser: derives independent seeds (contents, per-thread generators) from the run's seed.
std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept { return mix(mix(a) ^ b); }

std::uint64_t run_seed() {
  if (const char* text = std::getenv("LETTERBOX_DURABILITY_SEED"); text != nullptr && *text)
    return std::strtoull(text, nullptr, 0);
  std::random_device device;
  return (std::uint64_t{device()} << 32) | device();
}

// --- Kill moments ---------------------------------------------------------------------------

enum class kill_moment {
  early,            // a few milliseconds after the senders start, often before any 1003
  mid_upload,       // while a spooled content is being uploaded (its sender pauses part-way)
  after_ack_burst,  // right after the n-th 1003 arrived, while other sends wait for their commit
  random_time,      // at a random time within the first ~0.7 s of sending
};

struct kill_plan {
  kill_moment moment = kill_moment::early;
  std::chrono::milliseconds delay{0};  // early, random_time: after the senders start
  int acks_before = 0;                 // mid_upload, after_ack_burst: 1003s received first
  double upload_fraction = 0;          // mid_upload: share of the content written when the kill lands
};

std::string describe(const kill_plan& plan) {
  switch (plan.moment) {
    case kill_moment::early: return "early (" + std::to_string(plan.delay.count()) + " ms)";
    case kill_moment::random_time: return "random time (" + std::to_string(plan.delay.count()) + " ms)";
    case kill_moment::after_ack_burst: return "after ack " + std::to_string(plan.acks_before);
    case kill_moment::mid_upload:
      return "mid-upload (" + std::to_string(static_cast<int>(plan.upload_fraction * 100)) + "% written, after " +
             std::to_string(plan.acks_before) + " acks)";
  }
  return "?";
}

kill_plan draw_plan(kill_moment moment, std::mt19937_64& rng) {
  auto uniform = [&rng](int low, int high) { return std::uniform_int_distribution<int>(low, high)(rng); };
  kill_plan plan{moment};
  switch (moment) {
    case kill_moment::early: plan.delay = std::chrono::milliseconds(uniform(0, 20)); break;
    case kill_moment::random_time: plan.delay = std::chrono::milliseconds(uniform(30, 700)); break;
    case kill_moment::after_ack_burst: plan.acks_before = uniform(5, 120); break;
    case kill_moment::mid_upload:
      plan.acks_before = uniform(0, 40);
      plan.upload_fraction = uniform(10, 90) / 100.0;
      break;
  }
  return plan;
}

// The rounds cycle through every kind of moment; the parameters of each come from the seed.
constexpr kill_moment moments[] = {kill_moment::early, kill_moment::mid_upload, kill_moment::after_ack_burst,
                                   kill_moment::random_time};
constexpr int rounds = 3 * std::size(moments);

// --- The senders --------------------------------------------------------------------------

struct attempted_send {
  int sender = 0;
  int recipient = 0;
  std::uint8_t type = 0;
  std::uint32_t size = 0;
  std::uint64_t seed = 0;  // content is content_pattern(seed)
};

struct acked_send {
  attempted_send send;
  std::uint32_t message_id = 0;
};

struct sender_result {
  std::vector<acked_send> acked;
  std::optional<attempted_send> unacked;  // the send in flight when the connection ended
  int attempts = 0;
  std::string unexpected;  // an error other than the server going away when it was killed
};

// What the senders of one round share with the thread that kills the server.
class round_signals {
 public:
  explicit round_signals(kill_plan plan) : plan_(plan) {}

  // --- senders
  void count_ack() {
    {
      std::lock_guard lock(mutex_);
      ++acks_;
    }
    changed_.notify_all();
  }
  // Called while a spooled content is being written. When this is where the plan wants the
  // kill, it tells the killer and holds the upload there until the senders are stopped.
  void upload_progress(std::uint64_t written, std::uint32_t size) {
    std::unique_lock lock(mutex_);
    if (plan_.moment != kill_moment::mid_upload || upload_held_ || acks_ < plan_.acks_before ||
        static_cast<double>(written) < plan_.upload_fraction * size)
      return;
    upload_held_ = true;
    changed_.notify_all();
    changed_.wait_for(lock, moment_timeout, [this] { return stopping_; });
  }
  void sender_done() {
    {
      std::lock_guard lock(mutex_);
      ++senders_done_;
    }
    changed_.notify_all();
  }
  bool stopping() const {
    std::lock_guard lock(mutex_);
    return stopping_;
  }
  bool killing() const { return killing_.load(); }

  // --- the killer
  // Waits until the planned moment; false when it was not reached within moment_timeout (or
  // every sender ended before it).
  bool wait_for_moment(std::chrono::steady_clock::time_point started) {
    std::unique_lock lock(mutex_);
    const auto all_done = [this] { return senders_done_ == sender_count; };
    switch (plan_.moment) {
      case kill_moment::early:
      case kill_moment::random_time:
        lock.unlock();
        std::this_thread::sleep_until(started + plan_.delay);
        return true;
      case kill_moment::after_ack_burst:
        return changed_.wait_for(lock, moment_timeout, [&] { return acks_ >= plan_.acks_before || all_done(); }) &&
               acks_ >= plan_.acks_before;
      case kill_moment::mid_upload:
        return changed_.wait_for(lock, moment_timeout, [&] { return upload_held_ || all_done(); }) && upload_held_;
    }
    return false;
  }
  void begin_kill() { killing_ = true; }
  void stop_senders() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
  }

 private:
  const kill_plan plan_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  int acks_ = 0;
  int senders_done_ = 0;
  bool upload_held_ = false;
  bool stopping_ = false;
  std::atomic<bool> killing_{false};
};

attempted_send draw_send(int sender, std::mt19937_64& rng, std::uint64_t content_seed) {
  auto uniform = [&rng](std::uint32_t low, std::uint32_t high) {
    return std::uniform_int_distribution<std::uint32_t>(low, high)(rng);
  };
  attempted_send send{sender, static_cast<int>(uniform(0, recipient_count - 1)),
                      static_cast<std::uint8_t>(uniform(3, 4)), 0, content_seed};
  const auto kind = uniform(0, 99);
  if (kind < 75)
    send.size = uniform(1, small_max);
  else if (kind < 85)
    send.size = uniform(small_max + 1, inline_limit);  // up to the inline limit itself
  else
    send.size = uniform(spooled_min, spooled_max);
  return send;
}

// One sender's round: sends on one connection, one request at a time, until the server dies,
// the round stops or max_sends_per_sender is reached.
void run_sender(int index, const protocol::client_id& self, const std::vector<protocol::client_id>& recipients,
                std::uint16_t port, std::uint64_t round_seed, sender_result& result, round_signals& signals) {
  std::mt19937_64 rng(mix(round_seed, 1000 + index));
  try {
    raw_connection connection(port, io_timeout);
    while (!signals.stopping() && result.attempts < max_sends_per_sender) {
      const auto send = draw_send(index, rng, mix(round_seed, (std::uint64_t(index) << 32) | result.attempts));
      ++result.attempts;
      result.unacked = send;
      send_progress progress;
      if (send.size > inline_limit)
        progress = [&signals, size = send.size](std::uint64_t written) { signals.upload_progress(written, size); };
      const auto sent = send_pattern_message(connection, self, recipients[send.recipient], send.type, send.size,
                                             send.seed, upload_chunk_size, progress);
      result.unacked.reset();
      if (sent.to != recipients[send.recipient]) {
        result.unexpected = "1003 names another recipient than the send";
        break;
      }
      result.acked.push_back({send, sent.message_id});
      signals.count_ack();
    }
  } catch (const unexpected_response& error) {
    result.unexpected = error.what();
  } catch (const operation_timeout& error) {
    result.unexpected = error.what();
  } catch (const connection_error& error) {
    if (!signals.killing()) result.unexpected = error.what();  // after the kill it is how a sender ends
  } catch (const std::exception& error) {
    result.unexpected = error.what();
  }
  signals.sender_done();
}

// The sender threads of one round. join() (also run by the destructor, so an exception in the
// killing thread cannot leave a joinable std::thread behind) stops the senders and waits for
// them; each one ends within io_timeout once the server is gone.
class sender_group {
 public:
  explicit sender_group(round_signals& signals) : signals_(signals) {}
  ~sender_group() { join(); }
  sender_group(const sender_group&) = delete;
  sender_group& operator=(const sender_group&) = delete;

  template <typename... Args>
  void start(Args&&... args) {
    threads_.emplace_back(run_sender, std::forward<Args>(args)..., std::ref(signals_));
  }
  void join() {
    signals_.stop_senders();
    for (auto& thread : threads_)
      if (thread.joinable()) thread.join();
  }

 private:
  round_signals& signals_;
  std::vector<std::thread> threads_;
};

// --- Checking what came back --------------------------------------------------------------

struct round_figures {
  int attempted = 0;
  int acked = 0;
  int acked_spooled = 0;
  int unacked_present = 0;
  int unacked_absent = 0;
  int lost = 0;          // acknowledged, not delivered
  int corrupt = 0;       // acknowledged, delivered with other bytes, size, type or sender
  int phantom = 0;       // delivered, never sent (or a copy of a message under another ID)
  int duplicate = 0;     // one (mailbox, message ID) delivered twice
  int out_of_order = 0;  // a mailbox's message IDs not ascending (send order)
  int clients_lost = 0;  // registered (1000) before the kill, unknown after it
  int spool_files_at_kill = 0;   // complete and partial uploads the dead server left
  int spool_files_at_start = 0;  // what the restarted server's start-up sweep kept
  int spooled_delivered = 0;

  round_figures& operator+=(const round_figures& other) {
    attempted += other.attempted;
    acked += other.acked;
    acked_spooled += other.acked_spooled;
    unacked_present += other.unacked_present;
    unacked_absent += other.unacked_absent;
    lost += other.lost;
    corrupt += other.corrupt;
    phantom += other.phantom;
    duplicate += other.duplicate;
    out_of_order += other.out_of_order;
    clients_lost += other.clients_lost;
    spool_files_at_kill += other.spool_files_at_kill;
    spool_files_at_start += other.spool_files_at_start;
    spooled_delivered += other.spooled_delivered;
    return *this;
  }
};

std::string describe(const round_figures& figures) {
  std::ostringstream text;
  text << "attempted " << figures.attempted << ", acked " << figures.acked << " (spooled " << figures.acked_spooled
       << "), unacked-but-present " << figures.unacked_present << ", unacked-absent " << figures.unacked_absent
       << ", lost " << figures.lost << ", corrupt " << figures.corrupt << ", phantom " << figures.phantom
       << ", duplicate " << figures.duplicate << ", out of order " << figures.out_of_order << ", clients lost "
       << figures.clients_lost << ", spool files "
       << figures.spool_files_at_kill << " at kill, " << figures.spool_files_at_start << " after start-up for "
       << figures.spooled_delivered << " spooled messages delivered";
  return text.str();
}

std::string describe(const attempted_send& send) {
  return "sender " + std::to_string(send.sender) + " -> recipient " + std::to_string(send.recipient) + ", type " +
         std::to_string(send.type) + ", " + std::to_string(send.size) + " bytes, content seed " +
         std::to_string(send.seed);
}

int files_in(const std::filesystem::path& directory) {
  int count = 0;
  std::error_code error;
  if (!std::filesystem::exists(directory, error)) return 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(directory, error))
    if (!entry.is_directory()) ++count;
  return count;
}

struct participants {
  std::vector<protocol::client_id> senders;
  std::vector<protocol::client_id> recipients;
  protocol::client_id joined{};  // registered just before this round's senders start
  std::string joined_name;
};

// Pulls every mailbox completely and classifies each message against what was sent.
round_figures check_mailboxes(const test_server& server, const participants& clients,
                              const std::vector<sender_result>& results, std::vector<std::string>& problems) {
  auto note = [&problems](std::string text) {
    if (problems.size() < max_problems_listed) problems.push_back(std::move(text));
  };
  round_figures figures;
  std::map<std::pair<int, std::uint32_t>, const acked_send*> acked;  // (recipient, message ID)
  std::set<std::pair<int, std::uint32_t>> acked_seen;
  std::map<protocol::client_id, int> sender_index;
  for (int s = 0; s < sender_count; ++s) {
    sender_index[clients.senders[s]] = s;
    figures.attempted += results[s].attempts;
    for (const auto& sent : results[s].acked) {
      if (!acked.emplace(std::pair{sent.send.recipient, sent.message_id}, &sent).second) {
        ++figures.duplicate;
        note("1003 gave message ID " + std::to_string(sent.message_id) + " twice in one mailbox (" +
             describe(sent.send) + ")");
      }
      ++figures.acked;
      if (sent.send.size > inline_limit) ++figures.acked_spooled;
    }
  }
  std::vector<bool> unacked_used(sender_count, false);
  figures.spool_files_at_start = files_in(server.spool_directory());

  raw_connection connection(server.port(), io_timeout);
  // Registrations are acknowledged durably too: a 101 from each client must be served.
  auto still_registered = [&](const protocol::client_id& id, const std::string& name) {
    if (connection.request(id, code_of(protocol::request_code::list_clients), {}).code() ==
        code_of(protocol::response_code::client_list))
      return true;
    ++figures.clients_lost;
    note("lost: registered client " + name);
    return false;
  };
  still_registered(clients.joined, clients.joined_name);
  for (int s = 0; s < sender_count; ++s) still_registered(clients.senders[s], "sender-" + std::to_string(s));
  for (int r = 0; r < recipient_count; ++r) {
    if (!still_registered(clients.recipients[r], "recipient-" + std::to_string(r))) continue;  // its mail is lost
    // The content each delivered message should have: by its ID if it was acknowledged, else
    // the in-flight send of its sender to this mailbox (one per sender at most).
    auto expected_seed = [&](const protocol::pulled_message_header& header) -> std::uint64_t {
      if (const auto it = acked.find({r, header.message_id}); it != acked.end()) return it->second->send.seed;
      if (const auto it = sender_index.find(header.from); it != sender_index.end()) {
        const auto& in_flight = results[it->second].unacked;
        if (in_flight && in_flight->recipient == r) return in_flight->seed;
      }
      return 0;
    };
    const auto delivered = pull_all_streamed_by(connection, clients.recipients[r], expected_seed);
    std::set<std::uint32_t> ids;
    std::optional<std::uint32_t> previous;
    for (const auto& message : delivered) {
      const auto& header = message.header;
      const auto where = "recipient " + std::to_string(r) + " message ID " + std::to_string(header.message_id);
      if (previous && header.message_id < *previous) {  // an equal ID counts as a duplicate below
        ++figures.out_of_order;
        note(where + " comes after ID " + std::to_string(*previous));
      }
      previous = header.message_id;
      if (!ids.insert(header.message_id).second) {
        ++figures.duplicate;
        note(where + " delivered twice");
        continue;
      }
      if (header.content_size > inline_limit) ++figures.spooled_delivered;
      if (const auto it = acked.find({r, header.message_id}); it != acked.end()) {
        const auto& send = it->second->send;
        acked_seen.insert(it->first);
        if (header.from != clients.senders[send.sender] || header.type != send.type ||
            header.content_size != send.size || !message.content_matches) {
          ++figures.corrupt;
          note(where + " differs from its acknowledged send (" + describe(send) + "): " +
               std::to_string(header.content_size) + " bytes, type " + std::to_string(header.type) +
               (message.content_matches ? "" : ", first differing byte " + std::to_string(message.first_mismatch)));
        }
        continue;
      }
      const auto sender = sender_index.find(header.from);
      if (sender != sender_index.end()) {
        const auto& in_flight = results[sender->second].unacked;
        if (in_flight && !unacked_used[sender->second] && in_flight->recipient == r &&
            in_flight->type == header.type && in_flight->size == header.content_size && message.content_matches) {
          unacked_used[sender->second] = true;
          ++figures.unacked_present;
          continue;
        }
      }
      ++figures.phantom;
      note(where + " (" + std::to_string(header.content_size) + " bytes, type " + std::to_string(header.type) +
           ") matches no send");
    }
  }
  for (const auto& [key, sent] : acked) {
    if (acked_seen.count(key) != 0) continue;
    ++figures.lost;
    note("lost: message ID " + std::to_string(sent->message_id) + " acknowledged (" + describe(sent->send) + ")");
  }
  for (int s = 0; s < sender_count; ++s)
    if (results[s].unacked && !unacked_used[s]) ++figures.unacked_absent;
  return figures;
}

// After the checks: a small and a spooled message round-trip and a registration succeeds.
void check_serves_normally(const test_server& server, const participants& clients, std::uint64_t seed) {
  raw_connection connection(server.port(), io_timeout);
  std::map<std::uint32_t, std::uint64_t> seeds;
  const std::uint32_t sizes[] = {100, spooled_min};
  for (std::uint32_t size : sizes) {
    const auto sent = send_pattern_message(connection, clients.senders[0], clients.recipients[0], 4, size,
                                           mix(seed, size));
    seeds[sent.message_id] = mix(seed, size);
  }
  const auto delivered = pull_all_streamed(connection, clients.recipients[0], seeds);
  REQUIRE(delivered.size() == 2);
  for (std::size_t i = 0; i < delivered.size(); ++i) {
    CAPTURE(i);
    CHECK(delivered[i].header.content_size == sizes[i]);
    CHECK(delivered[i].content_matches);
  }
  check_server_still_serves(server);
}

}  // namespace

TEST_SUITE("durability") {

TEST_CASE("kill -9 at random moments: every acknowledged send survives byte-exact, nothing else appears") {
  const auto seed = run_seed();
  LETTERBOX_REPORT("seed " << seed << " (replay: LETTERBOX_DURABILITY_SEED=" << seed << ")");
  INFO("seed " << seed << " (replay: LETTERBOX_DURABILITY_SEED=" << seed << ")");
  test_server server({"--inline-limit", std::to_string(inline_limit)});
  LETTERBOX_ATTACH_SERVER_LOG(server);

  participants clients;
  {
    raw_connection connection(server.port(), io_timeout);
    for (int s = 0; s < sender_count; ++s)
      clients.senders.push_back(register_client(connection, "sender-" + std::to_string(s)));
    for (int r = 0; r < recipient_count; ++r)
      clients.recipients.push_back(register_client(connection, "recipient-" + std::to_string(r)));
  }
  // On disk before the first kill, so that a lost registration is counted once (each round
  // registers one more client for that) and does not take the mailboxes of later rounds with it.
  CHECK(server.stop() == 0);
  server.restart();

  std::mt19937_64 plan_rng(mix(seed, 0));
  round_figures total;
  for (int round = 1; round <= rounds; ++round) {
    const auto plan = draw_plan(moments[(round - 1) % std::size(moments)], plan_rng);
    const auto round_seed = mix(seed, round);
    CAPTURE(round);
    INFO("kill moment: " << describe(plan));

    {
      raw_connection connection(server.port(), io_timeout);
      clients.joined_name = "joined-in-round-" + std::to_string(round);
      clients.joined = register_client(connection, clients.joined_name);
    }
    round_signals signals(plan);
    std::vector<sender_result> results(sender_count);
    sender_group senders(signals);
    const auto started = std::chrono::steady_clock::now();
    for (int s = 0; s < sender_count; ++s)
      senders.start(s, std::cref(clients.senders[s]), std::cref(clients.recipients), server.port(), round_seed,
                    std::ref(results[s]));
    const bool moment_reached = signals.wait_for_moment(started);
    const auto killed_after = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    signals.begin_kill();
    server.send_signal(SIGKILL);
    const int status = server.wait_exit(exit_timeout);
    senders.join();
    CHECK(status == 128 + SIGKILL);
    CHECK(moment_reached);
    for (int s = 0; s < sender_count; ++s) {
      CAPTURE(s);
      CHECK_MESSAGE(results[s].unexpected.empty(), results[s].unexpected);
    }

    const int spool_files_at_kill = files_in(server.spool_directory());
    server.restart();
    std::vector<std::string> problems;
    auto figures = check_mailboxes(server, clients, results, problems);
    figures.spool_files_at_kill = spool_files_at_kill;
    std::string problem_text;
    for (const auto& problem : problems) problem_text += "\n  " + problem;
    INFO("problems (first " << max_problems_listed << "):" << problem_text);
    LETTERBOX_REPORT("round " << round << ", kill " << describe(plan) << " at " << killed_after.count()
                              << " ms: " << describe(figures));
    CHECK(figures.lost == 0);
    CHECK(figures.corrupt == 0);
    CHECK(figures.phantom == 0);
    CHECK(figures.duplicate == 0);
    CHECK(figures.out_of_order == 0);
    CHECK(figures.clients_lost == 0);
    // The start-up sweep: every spool file left belongs to a message that was then delivered.
    CHECK(figures.spool_files_at_start == figures.spooled_delivered);
    total += figures;

    check_serves_normally(server, clients, round_seed);
    // A clean stop commits the deliveries, so the next round starts from empty mailboxes.
    CHECK(server.stop() == 0);
    server.restart();
    CHECK(files_in(server.spool_directory()) == 0);
    raw_connection connection(server.port(), io_timeout);
    for (int r = 0; r < recipient_count; ++r) CHECK(pull(connection, clients.recipients[r]).empty());
  }
  LETTERBOX_REPORT("total: " << describe(total));
}

}  // TEST_SUITE

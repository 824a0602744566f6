// Tests of storage_worker (server/storage/storage_worker.hpp) with a fake batch_store that
// records its batches: results are delivered only after their batch committed, concurrent
// submissions share batches (group commit), a failing commit fails the whole batch, a
// throwing job fails only itself, and stop() finishes what is queued.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>

#include <SQLiteCpp/Database.h>

#include "handler.hpp"
#include "mailbox_store.hpp"
#include "responses.hpp"
#include "server_test_support.hpp"
#include "spool.hpp"
#include "sqlite_store.hpp"
#include "storage_worker.hpp"

using namespace letterbox::server;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// Records begin/commit/rollback and how many jobs ran in each batch. Called only from the
// worker thread; the test thread reads it after the results came back (or after stop()).
class recording_store final : public batch_store {
 public:
  std::chrono::microseconds commit_delay{0};  // simulated fsync
  int fail_commit_of_batch = 0;               // 1-based batch number whose commit throws; 0 = none

  std::atomic<int> begun{0}, committed{0}, rolled_back{0};
  std::vector<int> jobs_per_committed_batch;
  std::vector<std::string> events;  // "begin", "job", "commit", "rollback", in order
  bool job_outside_batch = false;

  // Called by every test job: returns the number of the batch it runs in.
  int run_job() {
    if (!in_batch_) job_outside_batch = true;
    ++jobs_in_batch_;
    ++jobs_total;
    events.push_back("job");
    return begun.load();
  }
  int jobs_total = 0;

  void begin() override {
    in_batch_ = true;
    jobs_in_batch_ = 0;
    events.push_back("begin");
    ++begun;
  }
  void commit() override {
    if (commit_delay.count() > 0) std::this_thread::sleep_for(commit_delay);
    if (begun.load() == fail_commit_of_batch) throw storage_error("commit failed: disk full");
    in_batch_ = false;
    jobs_per_committed_batch.push_back(jobs_in_batch_);
    events.push_back("commit");
    ++committed;
  }
  void rollback() noexcept override {
    in_batch_ = false;
    events.push_back("rollback");
    ++rolled_back;
  }

  bool has_deferred_writes() const noexcept override { return false; }

 private:
  bool in_batch_ = false;
  int jobs_in_batch_ = 0;
};

// What one submitting coroutine saw.
struct outcome {
  bool done = false;
  bool failed = false;
  std::string error;
  int value = 0;
  int batch = 0;                     // batch number the job ran in
  int committed_at_delivery = -1;    // store.committed when the coroutine resumed
  std::thread::id resumed_on;
};

// Runs the io_context (kept alive by a work guard) until pred() holds or 20 s passed.
template <typename Pred>
bool run_until(asio::io_context& io, Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!pred() && std::chrono::steady_clock::now() < deadline) io.run_for(5ms);
  return pred();
}

// A coroutine that submits one job returning `value` (or throwing when value < 0).
void submit(asio::io_context& io, storage_worker& worker, recording_store& store, outcome& out, int value) {
  asio::co_spawn(
      io,
      [&worker, &store, &out, value]() -> asio::awaitable<void> {
        auto job = [&store, value] {
          const int batch = store.run_job();
          if (value < 0) throw std::runtime_error("job " + std::to_string(-value) + " failed");
          return std::pair<int, int>{value, batch};
        };
        try {
          const auto [result, batch] = co_await worker.run<std::pair<int, int>>(std::move(job));
          out.value = result;
          out.batch = batch;
        } catch (const std::exception& e) {
          out.failed = true;
          out.error = e.what();
        }
        out.committed_at_delivery = store.committed.load();
        out.resumed_on = std::this_thread::get_id();
        out.done = true;
      },
      asio::detached);
}

bool all_done(const std::vector<outcome>& outs) {
  return std::all_of(outs.begin(), outs.end(), [](const outcome& o) { return o.done; });
}

// Occupies the worker with a job that waits until release() is called, so that jobs submitted
// meanwhile are all queued and then run together in the next batch.
class blocker {
 public:
  blocker(asio::io_context& io, storage_worker& worker, recording_store& store) {
    asio::co_spawn(
        io,
        [this, &worker, &store]() -> asio::awaitable<void> {
          auto job = [this, &store] {
            store.run_job();
            started_.set_value();
            release_future_.wait();
            return 1;
          };
          co_await worker.run<int>(std::move(job));
          done = true;
        },
        asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (started_future_.wait_for(0s) != std::future_status::ready && std::chrono::steady_clock::now() < deadline)
      io.run_for(1ms);
    REQUIRE(started_future_.wait_for(0s) == std::future_status::ready);
  }
  void release() { release_.set_value(); }
  bool done = false;

 private:
  std::promise<void> started_, release_;
  std::future<void> started_future_ = started_.get_future();
  std::shared_future<void> release_future_ = release_.get_future().share();
};

}  // namespace

// --- Edge cases --------------------------------------------------------------------------

TEST_CASE("storage worker: max_batch 0 is treated as 1 job per batch") {
  recording_store store;
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  storage_worker worker(store, 0);
  blocker block(io, worker, store);
  std::vector<outcome> outs(5);
  for (std::size_t i = 0; i < outs.size(); ++i) submit(io, worker, store, outs[i], static_cast<int>(i) + 1);
  io.poll();
  block.release();
  REQUIRE(run_until(io, [&] { return all_done(outs) && block.done; }));
  CHECK(worker.batches() == 6);
  CHECK(store.jobs_per_committed_batch == std::vector<int>(6, 1));
  for (std::size_t i = 0; i < outs.size(); ++i) {
    CHECK_FALSE(outs[i].failed);
    CHECK(outs[i].value == static_cast<int>(i) + 1);
  }
}

TEST_CASE("storage worker: a job submitted after stop() fails with storage_error") {
  recording_store store;
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  storage_worker worker(store, 16);
  worker.stop();
  outcome out;
  submit(io, worker, store, out, 7);
  REQUIRE(run_until(io, [&] { return out.done; }));
  CHECK(out.failed);
  CHECK(out.error.find("shutting down") != std::string::npos);
  CHECK(store.jobs_total == 0);
  CHECK_NOTHROW(worker.stop());  // a second stop (and the destructor's) is harmless
}

// --- Results and batching ----------------------------------------------------------------

TEST_CASE("storage worker: every job gets its own result, on its own thread, only after its batch committed") {
  recording_store store;
  store.commit_delay = 2ms;  // a result delivered before the commit would be seen here
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  storage_worker worker(store, 8);
  std::vector<outcome> outs(50);
  for (std::size_t i = 0; i < outs.size(); ++i) submit(io, worker, store, outs[i], static_cast<int>(i) * 3 + 1);
  REQUIRE(run_until(io, [&] { return all_done(outs); }));
  for (std::size_t i = 0; i < outs.size(); ++i) {
    CAPTURE(i);
    CHECK_FALSE(outs[i].failed);
    CHECK(outs[i].value == static_cast<int>(i) * 3 + 1);
    CHECK(outs[i].batch >= 1);
    CHECK(outs[i].committed_at_delivery >= outs[i].batch);  // its batch had committed
    CHECK(outs[i].resumed_on == std::this_thread::get_id());  // back on the io_context's thread
  }
  worker.stop();
  CHECK_FALSE(store.job_outside_batch);
  CHECK(store.rolled_back == 0);
  CHECK(store.jobs_total == 50);
  // begin, job..., commit, begin, ...: every job sits between a begin and its commit.
  REQUIRE_FALSE(store.events.empty());
  CHECK(store.events.front() == "begin");
  CHECK(store.events.back() == "commit");
  for (int size : store.jobs_per_committed_batch) CHECK(size <= 8);
  CHECK(std::accumulate(store.jobs_per_committed_batch.begin(), store.jobs_per_committed_batch.end(), 0) == 50);
}

TEST_CASE("storage worker: 1000 concurrent submissions are group-committed in far fewer batches") {
  recording_store store;
  store.commit_delay = 1ms;  // like an fsync: jobs arriving meanwhile wait for the next batch
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  constexpr std::size_t max_batch = 256;
  storage_worker worker(store, max_batch);
  std::vector<outcome> outs(1000);
  for (std::size_t i = 0; i < outs.size(); ++i) submit(io, worker, store, outs[i], static_cast<int>(i));
  REQUIRE(run_until(io, [&] { return all_done(outs); }));
  const auto batches = worker.batches();
  MESSAGE("1000 jobs in " << batches << " batches");
  CHECK(batches < 1000);
  // With a 1 ms commit the submissions pile up behind each batch (the MESSAGE above shows how
  // many); the bound leaves room for a loaded machine yet still needs real grouping.
  CHECK(batches <= 500);
  CHECK(batches >= (1000 + max_batch - 1) / max_batch);
  worker.stop();
  CHECK(static_cast<std::uint64_t>(store.committed.load()) == batches);
  CHECK(std::accumulate(store.jobs_per_committed_batch.begin(), store.jobs_per_committed_batch.end(), 0) == 1000);
  for (int size : store.jobs_per_committed_batch) CHECK(size <= static_cast<int>(max_batch));
  for (std::size_t i = 0; i < outs.size(); ++i) {
    CHECK_FALSE(outs[i].failed);
    CHECK(outs[i].value == static_cast<int>(i));
  }
}

// --- Failures ----------------------------------------------------------------------------

TEST_CASE("storage worker: a failing commit fails every job of its batch with that error") {
  recording_store store;
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  storage_worker worker(store, 100);
  blocker block(io, worker, store);  // batch 1
  store.fail_commit_of_batch = 2;
  std::vector<outcome> outs(10);
  for (std::size_t i = 0; i < outs.size(); ++i) submit(io, worker, store, outs[i], static_cast<int>(i) + 1);
  io.poll();  // all ten are queued while batch 1 runs
  block.release();
  REQUIRE(run_until(io, [&] { return all_done(outs) && block.done; }));
  for (const auto& out : outs) {
    CHECK(out.failed);
    CHECK(out.error == "commit failed: disk full");
  }
  CHECK(store.jobs_total == 11);  // the jobs did run; their batch then failed as a whole
  CHECK(store.rolled_back == 1);
  CHECK(store.committed == 1);

  // The worker goes on: the next batch commits normally.
  outcome after;
  submit(io, worker, store, after, 42);
  REQUIRE(run_until(io, [&] { return after.done; }));
  CHECK_FALSE(after.failed);
  CHECK(after.value == 42);
  CHECK(after.batch == 3);
}

TEST_CASE("storage worker: when a commit fails, the undo of every job that succeeded runs; otherwise none") {
  recording_store store;
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  storage_worker worker(store, 100);
  std::vector<int> undone;  // written on the worker thread, read after the results came back
  auto submit_with_undo = [&](outcome& out, int value) {
    asio::co_spawn(
        io,
        [&, value]() -> asio::awaitable<void> {
          auto job = [&store, value] {
            store.run_job();
            if (value < 0) throw std::runtime_error("job failed");
            return value;
          };
          auto undo = [&undone](int& result) noexcept { undone.push_back(result); };
          try {
            out.value = co_await worker.run<int>(std::move(job), std::move(undo));
          } catch (const std::exception& e) {
            out.failed = true;
            out.error = e.what();
          }
          out.done = true;
        },
        asio::detached);
  };
  blocker block(io, worker, store);  // batch 1
  store.fail_commit_of_batch = 2;
  std::vector<outcome> outs(3);
  submit_with_undo(outs[0], 7);
  submit_with_undo(outs[1], -1);  // fails by itself: nothing to undo
  submit_with_undo(outs[2], 9);
  io.poll();
  block.release();
  REQUIRE(run_until(io, [&] { return all_done(outs) && block.done; }));
  for (const auto& out : outs) CHECK(out.failed);
  std::sort(undone.begin(), undone.end());
  CHECK(undone == std::vector<int>{7, 9});

  undone.clear();
  outcome ok;
  submit_with_undo(ok, 5);
  REQUIRE(run_until(io, [&] { return ok.done; }));
  CHECK_FALSE(ok.failed);
  CHECK(ok.value == 5);
  CHECK(undone.empty());
}

TEST_CASE("storage worker: a throwing job fails only itself; its batch still commits") {
  recording_store store;
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  storage_worker worker(store, 100);
  blocker block(io, worker, store);
  std::vector<outcome> outs(5);
  for (std::size_t i = 0; i < outs.size(); ++i) submit(io, worker, store, outs[i], i == 2 ? -2 : static_cast<int>(i) + 1);
  io.poll();
  block.release();
  REQUIRE(run_until(io, [&] { return all_done(outs) && block.done; }));
  for (std::size_t i = 0; i < outs.size(); ++i) {
    CAPTURE(i);
    if (i == 2) {
      CHECK(outs[i].failed);
      CHECK(outs[i].error == "job 2 failed");
    } else {
      CHECK_FALSE(outs[i].failed);
      CHECK(outs[i].value == static_cast<int>(i) + 1);
      CHECK(outs[i].batch == 2);
    }
  }
  worker.stop();
  CHECK(store.rolled_back == 0);
  CHECK(store.jobs_per_committed_batch == std::vector<int>{1, 5});
}

TEST_CASE("storage worker: stop() runs every queued job before it returns") {
  recording_store store;
  store.commit_delay = 1ms;
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  storage_worker worker(store, 4);  // several batches still to go when stop() is called
  blocker block(io, worker, store);
  std::vector<outcome> outs(20);
  for (std::size_t i = 0; i < outs.size(); ++i) submit(io, worker, store, outs[i], static_cast<int>(i) + 100);
  io.poll();
  block.release();
  worker.stop();  // joins the worker thread
  CHECK(store.jobs_total == 21);
  CHECK(store.committed == 6);  // 1 + 20 / 4
  REQUIRE(run_until(io, [&] { return all_done(outs) && block.done; }));
  for (std::size_t i = 0; i < outs.size(); ++i) {
    CHECK_FALSE(outs[i].failed);
    CHECK(outs[i].value == static_cast<int>(i) + 100);
  }
}

// --- With the real store and handler ------------------------------------------------------

TEST_CASE("storage worker + handler + sqlite_store: a 1003 arrives only once its message is committed on disk") {
  using namespace letterbox::protocol;
  letterbox::server::test::temp_dir dir;
  spool_directory spool(dir / "server.db.spool");
  sqlite_store records(dir / "server.db");
  mailbox_store store(records, spool);
  request_handler handler(store, server_limits{});
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  storage_worker worker(store, 64);
  // What another process (the sqlite3 shell) sees: only committed rows.
  SQLite::Database peek((dir / "server.db").string(), SQLite::OPEN_READONLY);

  client_id alice{}, bob{};
  bool registered = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (auto [name, id] : {std::pair{"alice", &alice}, std::pair{"bob", &bob}}) {
          auto job = [&handler, name = std::string(name)] {
            return encode_response(handler.register_client({name, letterbox::server::test::make_key(1)}));
          };
          const auto response = co_await worker.run<byte_buffer>(std::move(job));
          *id = decode_registered_payload(bytes_view(response).subspan(response_header_size));
        }
        registered = true;
      },
      asio::detached);
  REQUIRE(run_until(io, [&] { return registered; }));

  constexpr int senders = 200;
  int done = 0, visible = 0;
  std::vector<std::uint32_t> ids;
  for (int i = 0; i < senders; ++i) {
    asio::co_spawn(
        io,
        [&, i]() -> asio::awaitable<void> {
          auto job = [&handler, &alice, &bob, i] {
            const auto content = letterbox::server::test::make_content(16, static_cast<std::uint8_t>(i));
            return encode_response(handler.store_message(alice, {bob, 3, 16}, content, {}));
          };
          const auto response = co_await worker.run<byte_buffer>(std::move(job));
          const auto sent = decode_message_sent_payload(bytes_view(response).subspan(response_header_size));
          SQLite::Statement row(peek, "SELECT count(*) FROM messages WHERE ID = ?");
          row.bind(1, static_cast<std::int64_t>(sent.message_id));
          row.executeStep();
          visible += row.getColumn(0).getInt();
          ids.push_back(sent.message_id);
          ++done;
        },
        asio::detached);
  }
  REQUIRE(run_until(io, [&] { return done == senders; }));
  CHECK(visible == senders);  // every 1003 came after its row was committed
  std::sort(ids.begin(), ids.end());
  CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());  // all distinct
  MESSAGE(senders << " sends + 2 registrations in " << worker.batches() << " batches");
  CHECK(worker.batches() < senders + 2);
  worker.stop();
  CHECK(peek.execAndGet("SELECT count(*) FROM messages").getInt() == senders);
}

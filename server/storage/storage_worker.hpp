// The storage worker: one thread that owns the store and runs jobs submitted by sessions.
// Jobs that arrive while a transaction is being committed are run together in the next one,
// so concurrent sends share one transaction and one fsync (group commit). A job's result is
// delivered only after the commit that holds its changes succeeded; if the commit fails,
// every job of the batch fails with that error.
//
// The worker never waits to make a batch bigger: while one commit syncs, the next batch
// gathers by itself (a fill wait was measured to be slower; see docs/ARCHITECTURE.md).
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include "batch_store.hpp"
#include "store_types.hpp"

namespace letterbox::server {

namespace detail {
template <typename R>
struct job_completion {
  using signature = void(std::exception_ptr, R);
};
template <>
struct job_completion<void> {
  using signature = void(std::exception_ptr);
};
}  // namespace detail

class storage_worker {
 public:
  // The store must outlive the worker; it is used only from the worker's thread.
  storage_worker(batch_store& store, std::size_t max_batch);
  ~storage_worker();  // finishes queued jobs, then joins the thread
  storage_worker(const storage_worker&) = delete;
  storage_worker& operator=(const storage_worker&) = delete;

  // Runs fn() on the worker thread inside a batch transaction and resumes the awaiting
  // coroutine on its own executor with fn's result (R may be void) once the batch committed.
  // Exceptions from fn or from the commit are rethrown in the awaiting coroutine.
  template <typename R, typename F>
  boost::asio::awaitable<R> run(F fn) {
    return run<R>(std::move(fn), no_undo{});
  }

  // As run(fn), and when the batch fails to commit after fn succeeded, undo(result) — undo()
  // for R = void — runs on the worker thread to take back what fn did outside the database
  // (for example a count kept in memory).
  template <typename R, typename F, typename Undo>
  boost::asio::awaitable<R> run(F fn, Undo undo) {
    // Deliberately not a coroutine itself: returning the awaitable keeps fn out of any
    // coroutine parameter or temporary (g++ 12 destroys some of those twice).
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, signature<R>>(
        [this, fn = std::move(fn), undo = std::move(undo)](auto handler) mutable {
          auto io = boost::asio::get_associated_executor(handler);
          enqueue(std::make_unique<job_impl<R, F, Undo, decltype(handler)>>(std::move(fn), std::move(undo),
                                                                             std::move(handler), io));
        },
        boost::asio::use_awaitable);
  }

  // Stops accepting work after the queued jobs are done and joins the thread.
  void stop();
  std::uint64_t batches() const noexcept { return batches_.load(std::memory_order_relaxed); }
  std::uint64_t jobs() const noexcept { return jobs_.load(std::memory_order_relaxed); }
  // Worker time spent running jobs, and whole batches (jobs + commit), in nanoseconds.
  std::uint64_t execute_ns() const noexcept { return execute_ns_.load(std::memory_order_relaxed); }
  std::uint64_t batch_ns() const noexcept { return batch_ns_.load(std::memory_order_relaxed); }

 private:
  template <typename R>
  using signature = typename detail::job_completion<R>::signature;
  struct no_undo {
    template <typename... Args>
    void operator()(Args&&...) const noexcept {}
  };

  struct job {
    virtual ~job() = default;
    virtual void execute() noexcept = 0;
    // The batch did not commit: take back effects outside the database.
    virtual void undo() noexcept = 0;
    // Delivers the result (or error) to the submitter's executor.
    virtual void complete(std::exception_ptr batch_error) noexcept = 0;
    virtual boost::asio::any_io_executor executor() const = 0;
  };

  template <typename R, typename F, typename Undo, typename Handler>
  struct job_impl final : job {
    job_impl(F f, Undo u, Handler h, boost::asio::any_io_executor e)
        : fn(std::move(f)), undo_fn(std::move(u)), handler(std::move(h)), io(std::move(e)) {}
    void execute() noexcept override {
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
          result.emplace();
        } else {
          result.emplace(fn());
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    void undo() noexcept override {
      if (!result) return;
      if constexpr (std::is_void_v<R>)
        undo_fn();
      else
        undo_fn(*result);
    }
    void complete(std::exception_ptr batch_error) noexcept override {
      if (batch_error && !error) error = batch_error;
      if constexpr (std::is_void_v<R>) {
        std::move(handler)(error);
      } else if (error) {
        std::move(handler)(error, R{});
      } else {
        std::move(handler)(std::exception_ptr{}, std::move(*result));
      }
    }
    boost::asio::any_io_executor executor() const override { return io; }
    F fn;
    Undo undo_fn;
    Handler handler;
    boost::asio::any_io_executor io;
    std::optional<std::conditional_t<std::is_void_v<R>, std::monostate, R>> result;
    std::exception_ptr error;
  };

  void enqueue(std::unique_ptr<job> job);
  void loop();
  void flush_deferred() noexcept;  // an empty batch, so deferred writes reach the disk

  batch_store& store_;
  std::size_t max_batch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<job>> queue_;
  bool stopping_ = false;
  bool idle_ = false;
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> jobs_{0};
  std::atomic<std::uint64_t> execute_ns_{0}, batch_ns_{0};  // worker time running jobs / whole batches
  std::thread thread_;
};

}  // namespace letterbox::server

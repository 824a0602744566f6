// The storage worker: one thread that owns the store and runs jobs submitted by sessions.
// Jobs that arrive while a transaction is being committed are run together in the next one,
// so concurrent sends share one transaction and one fsync (group commit). A job's result is
// delivered only after the commit that holds its changes succeeded; if the commit fails,
// every job of the batch fails with that error.
#pragma once

#include <utility>  // before Asio (Boost 1.74 + g++ 12 + C++20)

#include <boost/asio.hpp>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "store.hpp"

namespace letterbox::server {

class storage_worker {
 public:
  // The store must outlive the worker; it is used only from the worker's thread.
  storage_worker(mailbox_store& store, std::size_t max_batch);
  ~storage_worker();  // finishes queued jobs, then joins the thread
  storage_worker(const storage_worker&) = delete;
  storage_worker& operator=(const storage_worker&) = delete;

  // Runs fn(store) on the worker thread inside a batch transaction and resumes the awaiting
  // coroutine on its own executor with fn's result once the batch committed. Exceptions from
  // fn or from the commit are rethrown in the awaiting coroutine.
  template <typename R, typename F>
  boost::asio::awaitable<R> run(F fn) {
    // Deliberately not a coroutine itself: returning the awaitable keeps fn out of any
    // coroutine parameter or temporary (g++ 12 destroys some of those twice).
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(std::exception_ptr, R)>(
        [this, fn = std::move(fn)](auto handler) mutable {
          auto io = boost::asio::get_associated_executor(handler);
          enqueue(std::make_unique<job_impl<R, F, decltype(handler)>>(std::move(fn), std::move(handler), io));
        },
        boost::asio::use_awaitable);
  }

  // Stops accepting work after the queued jobs are done and joins the thread.
  void stop();
  std::uint64_t batches() const noexcept { return batches_; }

 private:
  struct job {
    virtual ~job() = default;
    virtual void execute(mailbox_store& store) noexcept = 0;
    // Delivers the result (or error) to the submitter's executor.
    virtual void complete(std::exception_ptr batch_error) noexcept = 0;
    virtual boost::asio::any_io_executor executor() const = 0;
  };

  template <typename R, typename F, typename Handler>
  struct job_impl final : job {
    job_impl(F f, Handler h, boost::asio::any_io_executor e)
        : fn(std::move(f)), handler(std::move(h)), io(std::move(e)) {}
    void execute(mailbox_store& store) noexcept override {
      try {
        result.emplace(fn(store));
      } catch (...) {
        error = std::current_exception();
      }
    }
    void complete(std::exception_ptr batch_error) noexcept override {
      if (batch_error && !error) error = batch_error;
      if (error)
        std::move(handler)(error, R{});
      else
        std::move(handler)(std::exception_ptr{}, std::move(*result));
    }
    boost::asio::any_io_executor executor() const override { return io; }
    F fn;
    Handler handler;
    boost::asio::any_io_executor io;
    std::optional<R> result;
    std::exception_ptr error;
  };

  void enqueue(std::unique_ptr<job> job);
  void loop();

  mailbox_store& store_;
  std::size_t max_batch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<job>> queue_;
  bool stopping_ = false;
  bool idle_ = false;
  std::uint64_t batches_ = 0;
  std::thread thread_;
};

}  // namespace letterbox::server

// The storage worker's thread and batching loop (see storage_worker.hpp).
#include "storage_worker.hpp"

#include <algorithm>

namespace letterbox::server {

storage_worker::storage_worker(batch_store& store, std::size_t max_batch)
    : store_(store), max_batch_(max_batch == 0 ? 1 : max_batch), thread_([this] { loop(); }) {}

storage_worker::~storage_worker() { stop(); }

void storage_worker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void storage_worker::enqueue(std::unique_ptr<job> new_job) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      // Shutting down: fail the job at once (on its own executor).
      auto* raw = new_job.release();
      boost::asio::post(raw->executor(), [raw] {
        std::unique_ptr<job> owned(raw);
        owned->complete(std::make_exception_ptr(storage_error("server is shutting down")));
      });
      return;
    }
    queue_.push_back(std::move(new_job));
    wake = idle_;  // only when the worker sleeps: no futex call per job under load
  }
  if (wake) wake_.notify_one();
}

void storage_worker::flush_deferred() noexcept {
  if (!store_.has_deferred_writes()) return;
  try {
    store_.begin();
    store_.commit();
  } catch (...) {
    store_.rollback();
  }
}

void storage_worker::loop() {
  std::vector<std::unique_ptr<job>> batch;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      idle_ = true;
      const auto ready = [&] { return stopping_ || !queue_.empty(); };
      const bool deferred = store_.has_deferred_writes();
      if (deferred)
        wake_.wait_for(lock, deferred_write_interval, ready);
      else
        wake_.wait(lock, ready);
      idle_ = false;
      if (queue_.empty() && (stopping_ || deferred)) {
        lock.unlock();
        flush_deferred();  // quiet for a while, or stopping: write what waited
        if (stopping_) return;  // everything queued was done
        continue;
      }
      while (!queue_.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    const auto started = std::chrono::steady_clock::now();
    std::exception_ptr batch_error;
    try {
      store_.begin();
      for (auto& j : batch) j->execute();
      const auto executed = std::chrono::steady_clock::now();
      execute_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(executed - started).count();
      store_.commit();
    } catch (...) {
      batch_error = std::current_exception();
      store_.rollback();
      for (auto& j : batch) j->undo();
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    jobs_.fetch_add(batch.size(), std::memory_order_relaxed);
    batch_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started)
                     .count();
    // Hand the results back: one post per executor rather than one per job.
    std::vector<std::pair<boost::asio::any_io_executor, std::vector<std::unique_ptr<job>>>> groups;
    for (auto& j : batch) {
      auto executor = j->executor();
      auto group = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == executor; });
      if (group == groups.end()) {
        groups.emplace_back(executor, std::vector<std::unique_ptr<job>>{});
        group = std::prev(groups.end());
      }
      group->second.push_back(std::move(j));
    }
    batch.clear();
    for (auto& [executor, jobs] : groups) {
      boost::asio::post(executor, [jobs = std::make_shared<std::vector<std::unique_ptr<job>>>(std::move(jobs)),
                                   batch_error] {
        for (auto& j : *jobs) j->complete(batch_error);
      });
    }
  }
}

}  // namespace letterbox::server

// What the storage worker needs of a store: batch transactions (see storage_worker.hpp).
#pragma once

#include <chrono>

namespace letterbox::server {

// Longest time a deferred write waits: the store writes it with the first batch that commits
// after this long, and an idle worker commits an empty batch after this long.
inline constexpr std::chrono::seconds deferred_write_interval{1};

class batch_store {
 public:
  virtual ~batch_store() = default;
  // Every change between begin() and commit() becomes durable together, or none after
  // rollback() (which is harmless when no transaction is open). Throw storage_error.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  // True while some change waits to be written by a later commit (the worker then commits an
  // empty batch when it has been idle for a while, or before it stops).
  virtual bool has_deferred_writes() const noexcept = 0;
};

}  // namespace letterbox::server

// Records the largest single operator-new allocation made by the current thread while a probe
// is alive, so that tests can assert that a size field from the network never drove a large
// allocation and that streaming really uses bounded buffers. The global operator new of the
// test binary is replaced in allocation_probe.cpp.
#pragma once

#include <cstddef>

class allocation_probe {
 public:
  allocation_probe();   // starts watching this thread, largest() == 0
  ~allocation_probe();  // stops watching
  allocation_probe(const allocation_probe&) = delete;
  allocation_probe& operator=(const allocation_probe&) = delete;
  // The largest size passed to operator new / new[] by this thread since construction.
  std::size_t largest() const;
};

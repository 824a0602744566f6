// Replacement global operator new/delete for client_unit_tests: malloc/free plus a per-thread
// record of the largest request while an allocation_probe is alive (see allocation_probe.hpp).
#include "allocation_probe.hpp"

#include <cstdlib>
#include <new>

namespace {
thread_local bool watching = false;
thread_local std::size_t largest_seen = 0;
}  // namespace

allocation_probe::allocation_probe() {
  largest_seen = 0;
  watching = true;
}
allocation_probe::~allocation_probe() { watching = false; }
std::size_t allocation_probe::largest() const { return largest_seen; }

void* operator new(std::size_t size) {
  if (watching && size > largest_seen) largest_seen = size;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

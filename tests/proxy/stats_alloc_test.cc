// Counting a Socket.IO event that already has its slot allocates nothing: the global operator
// new of this test executable counts allocations while the data path runs. Sanitizer builds
// own operator new themselves, so there the counting is left out.
#include <catch2/catch.hpp>

#if defined(__SANITIZE_ADDRESS__)

TEST_CASE("allocation counting runs in builds without sanitizers only") { SUCCEED(); }

#else

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "proxy/stats.h"

namespace {
std::atomic<size_t> allocations{0};
}  // namespace

void* operator new(size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

using namespace wsb::proxy;

namespace {
uint64_t eventCount(const WorkerStats& w, const std::string& route, const std::string& name) {
  StatsTotals t;
  t.add(w);
  auto it = t.events.find({route, name});
  return it == t.events.end() ? 0 : it->second;
}
}  // namespace

TEST_CASE("an event name seen before is counted without allocating") {
  WorkerStats w;
  const std::string route = "/chat";
  // Names longer than the small-string buffer: building a std::string from them would allocate.
  const std::string long_name = "a-rather-long-event-name-past-sso";
  w.countEvent(route, long_name);  // first sight: the slot is made
  RouteEvents& events = w.events(route);

  size_t before = allocations.load();
  for (int i = 0; i < 100; ++i) {
    w.countEvent(route, long_name);   // by route name
    events.count(long_name);          // through the session's cached reference
  }
  size_t during = allocations.load() - before;
  CHECK(during == 0);
  CHECK(eventCount(w, route, long_name) == 201);
}

TEST_CASE("names past the limit fold into other without allocating once other exists") {
  WorkerStats w;
  RouteEvents& events = w.events("/feed");
  for (size_t i = 0; i < kTopEvents; ++i) events.count("name-number-" + std::to_string(i));
  const std::string late = "a-late-name-that-gets-no-slot-of-its-own";
  events.count(late);  // makes the "other" slot

  size_t before = allocations.load();
  for (int i = 0; i < 10; ++i) events.count(late);
  CHECK(allocations.load() - before == 0);
  CHECK(eventCount(w, "/feed", "other") == 11);
  CHECK(eventCount(w, "/feed", late) == 0);
}

#endif  // __SANITIZE_ADDRESS__

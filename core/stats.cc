#include "core/stats.h"

#include <sys/mman.h>

#include <new>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace echolab {
namespace {

// The one list of Counters' fields: adding, totalling and JSON all walk it.
template <typename Visit>
constexpr void for_each_field(Visit&& visit) {
  visit("connections_accepted", &Counters::connections_accepted);
  visit("connections_closed", &Counters::connections_closed);
  visit("connections_refused", &Counters::connections_refused);
  visit("messages", &Counters::messages);
  visit("bytes_in", &Counters::bytes_in);
  visit("bytes_out", &Counters::bytes_out);
  visit("protocol_errors", &Counters::protocol_errors);
  visit("datagrams_truncated", &Counters::datagrams_truncated);
  visit("datagrams_dropped", &Counters::datagrams_dropped);
  visit("peer_resets", &Counters::peer_resets);
  visit("io_errors", &Counters::io_errors);
  visit("accept_errors", &Counters::accept_errors);
  visit("spawn_errors", &Counters::spawn_errors);
  visit("idle_timeouts", &Counters::idle_timeouts);
  visit("messages_unanswered", &Counters::messages_unanswered);
  visit("messages_no_reply", &Counters::messages_no_reply);
  visit("replies_dropped", &Counters::replies_dropped);
  visit("workers_replaced", &Counters::workers_replaced);
  visit("accept_wakeups_idle", &Counters::accept_wakeups_idle);
}


constexpr int count_fields() {
  int n = 0;
  for_each_field([&](const char*, std::uint64_t Counters::*) { ++n; });
  return n;
}
static_assert(count_fields() == ServerStats::kCounterFields, "update kCounterFields");
static_assert(sizeof(Counters) == sizeof(std::uint64_t) * (ServerStats::kCounterFields +
                                                           static_cast<int>(Syscall::kCount)),
              "a Counters field is missing from for_each_field");

}  // namespace

std::string_view to_string(Syscall call) {
  switch (call) {
    case Syscall::accept:
      return "accept";
    case Syscall::recv:
      return "recv";
    case Syscall::send:
      return "send";
    case Syscall::recvfrom:
      return "recvfrom";
    case Syscall::sendto:
      return "sendto";
    case Syscall::recvmmsg:
      return "recvmmsg";
    case Syscall::sendmmsg:
      return "sendmmsg";
    case Syscall::select:
      return "select";
    case Syscall::poll:
      return "poll";
    case Syscall::epoll_wait:
      return "epoll_wait";
    case Syscall::epoll_ctl:
      return "epoll_ctl";
    case Syscall::fork:
      return "fork";
    case Syscall::thread_create:
      return "thread_create";
    case Syscall::eventfd_read:
      return "eventfd_read";
    case Syscall::eventfd_write:
      return "eventfd_write";
    case Syscall::io_uring_enter:
      return "io_uring_enter";
    case Syscall::kCount:
      break;
  }
  return "?";
}

void Counters::add(const Counters& other) {
  for_each_field([&](const char*, std::uint64_t Counters::*field) { this->*field += other.*field; });
  for (std::size_t i = 0; i < syscalls.size(); ++i) {
    syscalls[i] += other.syscalls[i];
  }
}

void ServerStats::add(const Counters& counters, int worker) {
  int index = 0;
  for_each_field([&](const char*, std::uint64_t Counters::*field) {
    totals_[index++].fetch_add(counters.*field, std::memory_order_relaxed);
  });
  for (std::size_t i = 0; i < counters.syscalls.size(); ++i) {
    syscalls_[i].fetch_add(counters.syscalls[i], std::memory_order_relaxed);
  }
  add_share(worker, counters.connections_accepted, counters.messages, counters.accept_wakeups_idle);
}

void ServerStats::add_connection_share(int worker, std::uint64_t connections) { add_share(worker, connections, 0, 0); }

void ServerStats::add_share(int worker, std::uint64_t connections, std::uint64_t messages,
                            std::uint64_t wakeups_idle) {
  if (worker >= 0 && worker < kMaxWorkers) {
    worker_connections_[worker].fetch_add(connections, std::memory_order_relaxed);
    worker_messages_[worker].fetch_add(messages, std::memory_order_relaxed);
    worker_wakeups_idle_[worker].fetch_add(wakeups_idle, std::memory_order_relaxed);
    int seen = workers_seen_.load(std::memory_order_relaxed);
    while (seen < worker + 1 && !workers_seen_.compare_exchange_weak(seen, worker + 1)) {
    }
  }
}

void ServerStats::connection_opened() {
  const std::uint64_t now = active_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::uint64_t peak = peak_active_.load(std::memory_order_relaxed);
  while (peak < now && !peak_active_.compare_exchange_weak(peak, now)) {
  }
}

void ServerStats::connection_closed() { active_.fetch_sub(1, std::memory_order_relaxed); }

Counters ServerStats::totals() const {
  Counters result;
  int index = 0;
  for_each_field([&](const char*, std::uint64_t Counters::*field) {
    result.*field = totals_[index++].load(std::memory_order_relaxed);
  });
  for (std::size_t i = 0; i < result.syscalls.size(); ++i) {
    result.syscalls[i] = syscalls_[i].load(std::memory_order_relaxed);
  }
  return result;
}

nlohmann::json ServerStats::to_json(Herd herd) const {
  const Counters total = totals();
  nlohmann::json counters = nlohmann::json::object();
  for_each_field([&](const char* name, std::uint64_t Counters::*field) { counters[name] = total.*field; });
  if (herd == Herd::not_counted) {
    counters.erase("accept_wakeups_idle");
  }
  nlohmann::json syscalls = nlohmann::json::object();
  std::uint64_t all_syscalls = 0;
  for (int i = 0; i < static_cast<int>(Syscall::kCount); ++i) {
    syscalls[std::string(to_string(static_cast<Syscall>(i)))] = total.syscalls[i];
    all_syscalls += total.syscalls[i];
  }
  nlohmann::json workers = nlohmann::json::array();
  for (int i = 0; i < workers_seen_.load(); ++i) {
    nlohmann::json worker = {{"worker", i},
                             {"connections", worker_connections_[i].load()},
                             {"messages", worker_messages_[i].load()}};
    if (herd == Herd::counted) {
      worker["accept_wakeups_idle"] = worker_wakeups_idle_[i].load();
    }
    workers.push_back(std::move(worker));
  }
  nlohmann::json report = {
      {"counters", counters},
      {"connections_active", active_.load()},
      {"connections_peak", peak_active_.load()},
      {"syscalls", syscalls},
      {"syscalls_total", all_syscalls},
      {"syscalls_per_message",
       total.messages == 0 ? 0.0 : static_cast<double>(all_syscalls) / static_cast<double>(total.messages)},
      {"workers", workers},
  };
  if (herd == Herd::counted) {
    // The herd in one place: connections accepted, wake-ups that found none, and their ratio.
    report["accept_wakeups"] = {
        {"accepts", total.connections_accepted},
        {"idle", total.accept_wakeups_idle},
        {"idle_per_accept", total.connections_accepted == 0
                                ? 0.0
                                : static_cast<double>(total.accept_wakeups_idle) /
                                      static_cast<double>(total.connections_accepted)}};
  }
  return report;
}

SharedStats::SharedStats() {
  void* memory = ::mmap(nullptr, sizeof(ServerStats), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    throw_sys_error("mmap");
  }
  stats_ = new (memory) ServerStats();
}

SharedStats::~SharedStats() {
  stats_->~ServerStats();
  ::munmap(stats_, sizeof(ServerStats));
}

}  // namespace echolab

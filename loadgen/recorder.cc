#include "loadgen/recorder.h"

#include <sys/resource.h>

#include <algorithm>

namespace echolab {
namespace {

ThreadUsage thread_usage_now(std::int64_t now) {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return ThreadUsage{.user_s = seconds(usage.ru_utime), .sys_s = seconds(usage.ru_stime),
                     .wall_s = static_cast<double>(now) / 1e9};
}

}  // namespace

Recorder::Recorder(std::int64_t measure_start, std::int64_t interval, std::size_t max_intervals,
                   bool interval_details)
    : measure_start_(measure_start),
      interval_ns_(interval),
      next_boundary_(measure_start),
      last_index_(std::max<std::size_t>(max_intervals, 1) - 1),
      intervals_(std::max<std::size_t>(max_intervals, 1)),
      interval_details_(interval_details) {}

void Recorder::set_measure_start(std::int64_t measure_start, std::int64_t planned_end) {
  measure_start_ = measure_start;
  next_boundary_ = measure_start;
  if (planned_end != INT64_MAX && planned_end > measure_start) {
    // Echoes that arrive after the end (while draining) belong to the last interval.
    last_index_ = std::min(last_index_,
                           static_cast<std::size_t>((planned_end - 1 - measure_start) / interval_ns_));
  }
}

void Recorder::stop_measuring(std::int64_t measure_end) {
  if (measure_end <= measure_start_) {
    measure_end_ = measure_start_;
    return;
  }
  advance(measure_end - 1);
  measure_end_ = measure_end;
  last_index_ = std::min(last_index_,
                         static_cast<std::size_t>((measure_end - 1 - measure_start_) / interval_ns_));
  if (used_intervals_ > 0 && used_intervals_ - 1 >= last_index_) {
    next_boundary_ = INT64_MAX;
  }
}

void Recorder::record_send(std::int64_t intended, std::int64_t sent, std::size_t wire_bytes,
                           bool scheduled) noexcept {
  if (intended < measure_start_) {
    return;
  }
  // A paced batch that began before the clock started (or before a boundary) also sends the
  // messages that fell due while it ran: their interval may not be open yet.
  advance(sent);
  if (scheduled) {
    tally_.send_lag.record(sent - intended);
    if (current_ != nullptr && current_->send_lag) {
      current_->send_lag->record(sent - intended);
    }
  }
  ++tally_.sent;
  tally_.bytes_sent += wire_bytes;
}

void Recorder::record_echo(std::int64_t intended, std::int64_t sent, std::int64_t done,
                           std::size_t wire_bytes) noexcept {
  if (intended < measure_start_) {
    ++tally_.warmup_messages;
    return;
  }
  advance(done);
  tally_.corrected.record(done - intended);
  tally_.uncorrected.record(done - sent);
  ++tally_.received;
  tally_.bytes_received += wire_bytes;
  if (current_ != nullptr) {
    ++current_->messages;
    current_->bytes += wire_bytes;
    current_->latency.record(done - intended);
    if (current_->uncorrected) current_->uncorrected->record(done - sent);
  }
  published_messages_.store(tally_.received, std::memory_order_relaxed);
}

void Recorder::count(Failure failure, std::int64_t when, std::uint64_t n) noexcept {
  if (when < measure_start_) {
    tally_.warmup_failures += n;
    return;
  }
  advance(when);
  tally_.failures[static_cast<std::size_t>(failure)] += n;
  errors_ += n;
  if (current_ != nullptr) {
    current_->errors += n;
  }
  published_errors_.store(errors_, std::memory_order_relaxed);
}

void Recorder::open_interval(std::size_t index) {
  // Allocates once per interval (not per message): a fresh histogram for the new interval.
  intervals_[index] = std::make_unique<Interval>();
  current_ = intervals_[index].get();
  if (interval_details_) {
    current_->uncorrected.emplace(make_interval_histogram());
    current_->send_lag.emplace(make_interval_send_lag_histogram());
  }
  current_->start_s = static_cast<double>(static_cast<std::int64_t>(index) * interval_ns_) / 1e9;
  current_->length_s = static_cast<double>(interval_ns_) / 1e9;
  used_intervals_ = index + 1;
}

void Recorder::roll(std::int64_t now) {
  if (!started_) {
    started_ = true;
    usage_at_start_ = thread_usage_now(measure_start_);
  }
  const auto wanted = static_cast<std::size_t>((now - measure_start_) / interval_ns_);
  const std::size_t index = std::min(wanted, last_index_);
  // Intervals with nothing in them (an idle thread) still get an (empty) entry.
  for (std::size_t i = used_intervals_; i <= index; ++i) {
    open_interval(i);
  }
  closed_.store(index, std::memory_order_release);
  next_boundary_ = index < last_index_
                       ? measure_start_ + static_cast<std::int64_t>(index + 1) * interval_ns_
                       : INT64_MAX;
}

void Recorder::finish(std::int64_t now) {
  const std::int64_t end = std::min(now, measure_end_);
  if (end <= measure_start_) {
    usage_ = ThreadUsage{};
    closed_.store(used_intervals_, std::memory_order_release);
    return;
  }
  advance(end - 1);
  if (current_ != nullptr) {
    const auto current_start = static_cast<std::int64_t>(used_intervals_ - 1) * interval_ns_;
    current_->length_s = static_cast<double>(std::clamp<std::int64_t>(
                             end - measure_start_ - current_start, 0, interval_ns_)) /
                         1e9;
  }
  const ThreadUsage usage = thread_usage_now(now);
  usage_.user_s = usage.user_s - usage_at_start_.user_s;
  usage_.sys_s = usage.sys_s - usage_at_start_.sys_s;
  usage_.wall_s = static_cast<double>(now - measure_start_) / 1e9;
  usage_.busy_s = std::max(0.0, usage_.wall_s - static_cast<double>(idle_ns_) / 1e9);
  usage_.largest_burst = largest_burst_;
  closed_.store(used_intervals_, std::memory_order_release);
}

}  // namespace echolab

#include "loadgen/live_status.h"

#include <algorithm>
#include <utility>

namespace echolab {

LiveStatusSampler::LiveStatusSampler(std::vector<const Recorder*> recorders, std::int64_t start,
                                     std::int64_t measure_start)
    : recorders_(std::move(recorders)),
      start_(start),
      measure_start_(measure_start),
      last_sample_(start) {}

LiveStatus LiveStatusSampler::sample(std::int64_t now) {
  LiveStatus status;
  status.elapsed_s = static_cast<double>(now - start_) / 1e9;
  status.warming_up = now < measure_start_;
  std::uint64_t messages = 0;
  std::size_t complete = SIZE_MAX;
  for (const Recorder* recorder : recorders_) {
    messages += recorder->published_messages();
    status.errors += recorder->published_errors();
    complete = std::min(complete, recorder->closed_intervals());
  }
  status.msgs_per_s = static_cast<double>(messages - last_messages_) * 1e9 /
                      static_cast<double>(std::max<std::int64_t>(1, now - last_sample_));
  last_messages_ = messages;
  last_sample_ = now;
  // The last interval every thread has closed: the newest p99 that covers them all.
  if (complete > 0 && complete != SIZE_MAX) {
    Histogram p99 = make_interval_histogram();
    for (const Recorder* recorder : recorders_) {
      p99.merge(recorder->interval(complete - 1).latency);
    }
    if (p99.count() > 0) {
      status.p99_us = static_cast<double>(p99.value_at_percentile(99)) / 1000.0;
    }
  }
  return status;
}

}  // namespace echolab

#pragma once
// The live status line's figures, sampled from the generator threads while they run. Only
// what a Recorder publishes for other threads is read (its relaxed counters and its closed,
// immutable intervals), never what its own thread is still writing.
#include <cstdint>
#include <vector>

#include "loadgen/recorder.h"

namespace echolab {

// What the live status line shows, sampled a few times a second.
struct LiveStatus {
  double elapsed_s = 0;  // since the start, warm-up included
  bool warming_up = false;
  double msgs_per_s = 0;  // over the last sample period
  double p99_us = -1;     // of the last complete interval; < 0 before there is one
  std::uint64_t errors = 0;
};

class LiveStatusSampler {
 public:
  // `start` and `measure_start`: the run's start and its start of measurement
  // (CLOCK_MONOTONIC ns). The recorders must outlive the sampler.
  LiveStatusSampler(std::vector<const Recorder*> recorders, std::int64_t start,
                    std::int64_t measure_start);

  // The status at `now`; its rate is over the time since the previous sample (or the start).
  [[nodiscard]] LiveStatus sample(std::int64_t now);

 private:
  std::vector<const Recorder*> recorders_;
  std::int64_t start_;
  std::int64_t measure_start_;
  std::uint64_t last_messages_ = 0;
  std::int64_t last_sample_;
};

}  // namespace echolab

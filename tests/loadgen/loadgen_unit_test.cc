// The load generator's parts in-process: command-line validation, the message format and
// its verification, size distributions, the pacer, the recorder's intervals and warm-up,
// the JSON round trip, merging and validity. No sockets, no processes.
#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "loadgen/live_status.h"
#include "loadgen/merge.h"
#include "loadgen/message.h"
#include "loadgen/options.h"
#include "loadgen/pacer.h"
#include "loadgen/recorder.h"
#include "loadgen/result.h"
#include "loadgen/spread.h"

namespace echolab {
namespace {

using namespace std::chrono_literals;

LoadConfig parse(std::vector<std::string> args) {
  args.insert(args.begin(), {"--target", "127.0.0.1:7007"});
  return parse_command_line(args).config;
}

TEST(LoadgenOptions, Defaults) {
  const LoadConfig c = parse({});
  EXPECT_EQ(c.mode, LoadMode::closed);
  EXPECT_EQ(c.transport, Transport::tcp);
  EXPECT_EQ(c.protocol, Protocol::framed);
  EXPECT_EQ(c.connections, 1);
  EXPECT_EQ(c.pipeline, 1);
  EXPECT_EQ(c.size.min, 64u);
  EXPECT_EQ(c.duration, 10s);
  EXPECT_EQ(c.interval, 1s);
  EXPECT_EQ(c.hard_limit(), 1s + 10s + 2s + 5s);
  EXPECT_EQ(parse_command_line({"--target", "unix:/tmp/x"}).config.transport, Transport::unix_stream);
}

TEST(LoadgenOptions, Durations) {
  auto duration_of = [](const char* text) { return parse_command_line({"--target", "127.0.0.1:1", "--duration", text}).config.duration; };
  EXPECT_EQ(duration_of("250ms"), 250ms);
  EXPECT_EQ(duration_of("1.5s"), 1500ms);
  EXPECT_EQ(duration_of("2"), 2s);
  EXPECT_EQ(duration_of("50us"), 50us);
  EXPECT_EQ(duration_of("2m"), 120s);
  EXPECT_THROW((void)duration_of("fast"), UsageError);
  EXPECT_THROW((void)duration_of("5parsecs"), UsageError);
}

TEST(LoadgenOptions, SizesAndCpus) {
  const SizeDistribution uniform = parse_size("64..4096");
  EXPECT_EQ(uniform.kind, SizeDistribution::Kind::uniform);
  EXPECT_EQ(uniform.min, 64u);
  EXPECT_EQ(uniform.max, 4096u);
  const SizeDistribution weighted = parse_size("64:8,1024:1,100");
  ASSERT_EQ(weighted.choices.size(), 3u);
  EXPECT_EQ(weighted.min, 64u);
  EXPECT_EQ(weighted.max, 1024u);
  EXPECT_DOUBLE_EQ(weighted.choices[2].weight, 1.0);
  EXPECT_THROW((void)parse_size("100..10"), UsageError);
  EXPECT_THROW((void)parse_size("64:-1"), UsageError);
  EXPECT_EQ(parse_cpu_list("0,2-4"), (std::vector<int>{0, 2, 3, 4}));
  EXPECT_THROW((void)parse_cpu_list("a"), UsageError);
}

TEST(LoadgenOptions, ImpossibleCombinationsAreRefused) {
  const std::vector<std::vector<std::string>> bad = {
      {"--mode", "open"},
      {"--rate", "10"},
      {"--mode", "open", "--rate", "10", "--pipeline", "2"},
      {"--transport", "udp", "--protocol", "raw", "--pipeline", "2"},
      {"--transport", "udp", "--mode", "connect"},
      {"--size", "15"},
      {"--transport", "udp", "--size", "65504"},
      {"--threads", "2"},
      {"--transport", "unix-stream"},
      {"--messages", "10", "--duration", "3s"},
      {"--time-limit", "1s"},
      {"--interval", "1ms"},
  };
  for (const auto& args : bad) {
    EXPECT_THROW((void)parse(args), UsageError) << ::testing::PrintToString(args);
  }
  // The largest datagram that fits, framed and raw.
  EXPECT_NO_THROW((void)parse({"--transport", "udp", "--size", "65503"}));
  EXPECT_NO_THROW((void)parse({"--transport", "udp", "--protocol", "raw", "--size", "65507"}));
}

// Every numeric option: finite, in range, whole where it counts something. Boost alone
// took "-1" for an unsigned as 2^64-1 and "nan" for a double.
TEST(LoadgenOptions, EveryNumberIsRangeChecked) {
  const std::vector<std::vector<std::string>> bad = {
      {"--max-cpu", "nan"},         {"--max-cpu", "inf"},        {"--max-cpu", "1.5"},
      {"--max-cpu", "-0.5"},        {"--messages", "-1"},        {"--messages", "0"},
      {"--messages", "1e3"},        {"--messages", "99999999999999999999"},
      {"--size", "64:1e308,128:1e308"},  {"--size", "64:nan"},   {"--size", "64:0"},
      {"--size", "-64"},            {"--size", "64..1e9"},       {"--size", "99999999999"},
      {"--connections", "-1"},      {"--connections", "1e5"},    {"--connections", "4294967297"},
      {"--connections", "2.5"},     {"--pipeline", "-1"},        {"--pipeline", "4097"},
      {"--threads", "-1"},          {"--threads", "257"},        {"--seed", "-1"},
      {"--seed", "1.5"},            {"--seed", "18446744073709551616"},
      {"--send-buffer", "-1"},      {"--receive-buffer", "4294967296"},
      {"--send-buffer", "nan"},     {"--cpus", "-1"},            {"--cpus", "1024"},
      {"--cpus", "0-99999999999"},  {"--cpus", "1,,2"},
      {"--timeout", "nan"},         {"--timeout", "2h"},         {"--timeout", "-1s"},
      {"--warmup", "inf"},          {"--duration", "1e400s"},    {"--interval", "-1s"},
      {"--max-send-lag", "nan"},    {"--time-limit", "0"},
      {"--mode", "open", "--rate", "nan"},    {"--mode", "open", "--rate", "inf"},
      {"--mode", "open", "--rate", "1e-10"},  {"--mode", "open", "--rate", "1e15"},
      {"--mode", "open", "--rate", "1e9"},    {"--mode", "open", "--rate", "-5"},
  };
  for (const auto& args : bad) {
    EXPECT_THROW((void)parse(args), UsageError) << ::testing::PrintToString(args);
  }
  const LoadConfig edges = parse({"--seed", "18446744073709551615", "--max-cpu", "1", "--cpus",
                                  "1023", "--send-buffer", "0", "--size", "64:0.5,128:1000000"});
  EXPECT_EQ(edges.seed, UINT64_MAX);
  EXPECT_EQ(edges.max_cpu, 1.0);
  EXPECT_NO_THROW((void)parse({"--mode", "open", "--rate", "0.001"}));
  EXPECT_NO_THROW((void)parse({"--mode", "open", "--rate", "1e8"}));
}

TEST(LoadgenMessage, EncodedMessageVerifiesAndEveryFlipIsSeen) {
  const PayloadPool pool(5000, 7);
  for (Protocol protocol : {Protocol::framed, Protocol::raw}) {
    for (std::uint32_t payload : {16u, 17u, 100u, 4999u}) {
      std::vector<std::byte> wire(wire_size(protocol, payload));
      const std::uint32_t checksum = encode_message(wire.data(), protocol, 3, 42, payload, pool);
      const ExpectedMessage expected{protocol, 3, 42, checksum, payload};
      EXPECT_EQ(count_mismatches(wire, 0, expected, pool), 0u);
      // Chunk by chunk, as a raw stream delivers it.
      std::size_t differ = 0;
      for (std::size_t at = 0; at < wire.size(); at += 7) {
        const std::size_t n = std::min<std::size_t>(7, wire.size() - at);
        differ += count_mismatches(std::span<const std::byte>(wire).subspan(at, n), at, expected, pool);
      }
      EXPECT_EQ(differ, 0u);
      const std::span<const std::byte> body =
          std::span<const std::byte>(wire).subspan(protocol == Protocol::framed ? 4 : 0);
      EXPECT_TRUE(is_intact(body));
      const auto id = read_message_id(body);
      ASSERT_TRUE(id.has_value());
      EXPECT_EQ(id->connection, 3u);
      EXPECT_EQ(id->sequence, 42u);
      for (std::size_t at : {std::size_t{0}, wire.size() / 2, wire.size() - 1}) {
        std::vector<std::byte> damaged = wire;
        damaged[at] ^= std::byte{0x01};
        EXPECT_EQ(count_mismatches(damaged, 0, expected, pool), 1u) << at;
      }
      std::vector<std::byte> damaged = wire;
      damaged.back() ^= std::byte{0x80};
      EXPECT_FALSE(is_intact(std::span<const std::byte>(damaged).subspan(protocol == Protocol::framed ? 4 : 0)));
    }
  }
}

TEST(LoadgenMessage, NeighbouringMessagesDiffer) {
  const PayloadPool pool(1000, 1);
  std::vector<std::byte> a(1000);
  std::vector<std::byte> b(1000);
  encode_message(a.data(), Protocol::raw, 0, 1, 1000, pool);
  encode_message(b.data(), Protocol::raw, 0, 2, 1000, pool);
  const ExpectedMessage expected_a{Protocol::raw, 0, 1, message_checksum(0, 1, pool.body(0, 1, 984)), 1000};
  // The echo of message 2 where message 1's was due: nearly every byte differs.
  EXPECT_GT(count_mismatches(b, 0, expected_a, pool), 900u);
}

TEST(LoadgenMessage, SizeSamplerStaysInItsDistribution) {
  const SizeDistribution uniform = parse_size("20..30");
  SizeSampler sample_uniform(uniform, 1);
  std::map<std::uint32_t, int> seen;
  for (int i = 0; i < 10000; ++i) ++seen[sample_uniform.next()];
  EXPECT_EQ(seen.size(), 11u);
  EXPECT_EQ(seen.begin()->first, 20u);
  EXPECT_EQ(seen.rbegin()->first, 30u);

  const SizeDistribution weighted = parse_size("16:3,1000:1");
  SizeSampler sample_weighted(weighted, 1);
  int small = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::uint32_t size = sample_weighted.next();
    ASSERT_TRUE(size == 16 || size == 1000) << size;
    small += size == 16 ? 1 : 0;
  }
  EXPECT_GT(small, 7000);  // 7500 expected
  EXPECT_LT(small, 8000);
}

TEST(LoadgenPacer, IntendedTimesFollowTheRateWithoutDrift) {
  Pacer pacer(3.0, 1000);  // a period of 333,333,333.3 ns
  std::vector<std::int64_t> times;
  for (int i = 0; i < 4; ++i) {
    times.push_back(pacer.next());
    pacer.advance();
  }
  EXPECT_EQ(times, (std::vector<std::int64_t>{1000, 333'334'333, 666'667'667, 1'000'001'000}));
  for (int i = 4; i < 3'000'000; ++i) pacer.advance();
  EXPECT_EQ(pacer.next(), 1000 + 1'000'000'000'000'000);  // 10^6 s at 3 msgs/s, to the ns
}

// A period past what int64 nanoseconds hold is "never", not an overflow into the past
// (which made every message due at once, for ever).
TEST(LoadgenPacer, AnIntendedTimePastInt64IsNever) {
  Pacer pacer(1e-10, 5'000'000'000);
  EXPECT_EQ(pacer.next(), 5'000'000'000);
  pacer.advance();
  EXPECT_EQ(pacer.next(), INT64_MAX);
  Pacer slow(kMinRate / 100'000, INT64_MAX / 2);  // the slowest rate one thread can get
  slow.advance();
  EXPECT_GT(slow.next(), INT64_MAX / 2);
}

TEST(LoadgenRecorder, WarmupIsExcludedAndIntervalsSplitTheWindow) {
  const std::int64_t start = 10'000'000'000;
  const std::int64_t second = 1'000'000'000;
  Recorder recorder(INT64_MAX, second, 10);
  recorder.count(Failure::connect_error, start - 5);  // before the clock: warm-up
  recorder.set_measure_start(start, start + 3 * second);
  recorder.record_echo(start - 10, start - 10, start + 100'000, 64);  // warm-up message
  recorder.record_echo(start, start, start + 50'000, 64);
  recorder.record_echo(start + second + 1, start + second + 1, start + second + 2'000'001, 64);
  recorder.count(Failure::timeout, start + second + 5);
  // After the planned end: still recorded, in the last interval.
  recorder.record_echo(start + 3 * second - 1, start + 3 * second - 1, start + 3 * second + 1'000'000, 64);
  recorder.finish(start + 3 * second + 2'000'000);
  const Tally& tally = recorder.tally();
  EXPECT_EQ(tally.warmup_messages, 1u);
  EXPECT_EQ(tally.warmup_failures, 1u);
  EXPECT_EQ(tally.received, 3u);
  EXPECT_EQ(tally.corrected.count(), 3u);
  EXPECT_EQ(tally.failures[static_cast<std::size_t>(Failure::timeout)], 1u);
  ASSERT_EQ(recorder.interval_count(), 3u);
  EXPECT_EQ(recorder.closed_intervals(), 3u);
  EXPECT_EQ(recorder.interval(0).messages, 1u);
  EXPECT_EQ(recorder.interval(1).messages, 1u);
  EXPECT_EQ(recorder.interval(1).errors, 1u);
  EXPECT_EQ(recorder.interval(2).messages, 1u);
  EXPECT_DOUBLE_EQ(recorder.interval(2).start_s, 2.0);
  EXPECT_DOUBLE_EQ(recorder.interval(2).length_s, 1.0);
}

// The interval log must hold every send-lag sample the totals hold: a send recorded before
// anything else in the measured window (or past a boundary) opens its own interval.
TEST(LoadgenRecorder, EverySendIsInTheIntervalOfItsSendTime) {
  const std::int64_t start = 10'000'000'000;
  const std::int64_t second = 1'000'000'000;
  Recorder recorder(INT64_MAX, second, 10, /*interval_details=*/true);
  recorder.set_measure_start(start, start + 2 * second);
  recorder.record_send(start, start + 40, 64, /*scheduled=*/true);  // no advance() before it
  recorder.record_send(start + second, start + second + 7, 64, /*scheduled=*/true);
  recorder.finish(start + 2 * second);
  EXPECT_EQ(recorder.tally().send_lag.count(), 2u);
  ASSERT_EQ(recorder.interval_count(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(recorder.interval(i).send_lag.has_value());
    EXPECT_EQ(recorder.interval(i).send_lag->count(), 1u) << "interval " << i;
  }
}

// The status line reads only what the recorders publish for other threads: their counters,
// and the newest interval every one of them has closed.
TEST(LoadgenLiveStatus, ShowsPublishedCountsAndTheLastIntervalAllThreadsClosed) {
  const std::int64_t start = 10'000'000'000;
  const std::int64_t second = 1'000'000'000;
  const std::int64_t measure = start + second;  // after one second of warm-up
  Recorder a(INT64_MAX, second, 10);
  Recorder b(INT64_MAX, second, 10);
  a.set_measure_start(measure);
  b.set_measure_start(measure);
  LiveStatusSampler sampler({&a, &b}, start, measure);

  const LiveStatus warming = sampler.sample(start + second / 2);
  EXPECT_TRUE(warming.warming_up);
  EXPECT_DOUBLE_EQ(warming.elapsed_s, 0.5);
  EXPECT_DOUBLE_EQ(warming.msgs_per_s, 0.0);
  EXPECT_EQ(warming.errors, 0u);
  EXPECT_LT(warming.p99_us, 0.0);

  a.record_echo(measure, measure, measure + 2'000'000, 64);
  b.record_echo(measure, measure, measure + 4'000'000, 64);
  b.count(Failure::timeout, measure + 1);
  a.advance(measure + second);  // a closed its first interval, b has not yet
  const LiveStatus measuring = sampler.sample(measure + second / 2);
  EXPECT_FALSE(measuring.warming_up);
  EXPECT_DOUBLE_EQ(measuring.elapsed_s, 1.5);
  EXPECT_DOUBLE_EQ(measuring.msgs_per_s, 2.0);  // two echoes over the second since the last
  EXPECT_EQ(measuring.errors, 1u);
  EXPECT_LT(measuring.p99_us, 0.0);

  b.advance(measure + second);
  const LiveStatus closed = sampler.sample(measure + 3 * second / 2);
  EXPECT_DOUBLE_EQ(closed.msgs_per_s, 0.0);
  EXPECT_NEAR(closed.p99_us, 4000.0, 40.0);  // both threads' first interval: 2 ms and 4 ms
}

RunResult sample_result(double start_unix_s, std::uint64_t scale) {
  RunResult r;
  r.config = to_json(parse({"--mode", "open", "--rate", "1000"}));
  r.context = {{"host_name", "h"}};
  r.start_utc = "2024-01-01T00:00:00.000Z";
  r.start_unix_s = start_unix_s;
  r.measured_s = 1.0;
  r.stopped_by = "duration";
  r.asked_msgs_per_s = 1000;
  r.tally.sent = r.tally.received = 1000 * scale;
  r.sent_msgs_per_s = r.msgs_per_s = 1000.0 * static_cast<double>(scale);
  r.tally.failures[static_cast<std::size_t>(Failure::timeout)] = scale;
  for (std::uint64_t i = 1; i <= 1000 * scale; ++i) {
    r.tally.corrected.record(static_cast<std::int64_t>(i * 1000 / scale));
    r.tally.uncorrected.record(static_cast<std::int64_t>(i * 900 / scale));
    r.tally.send_lag.record(static_cast<std::int64_t>(i));
  }
  Interval interval;
  interval.length_s = 1.0;
  interval.messages = r.tally.received;
  interval.latency.record(5000);
  r.intervals.push_back(std::move(interval));
  r.threads.push_back(ThreadUsage{.user_s = 0.1, .sys_s = 0.2, .wall_s = 1.0, .busy_s = 0.25, .largest_burst = 3});
  r.syscalls["send"] = 1000 * scale;
  assess_validity(r);
  return r;
}

// Idle time counts only inside the measured window (the window the CPU time is taken
// over); busy is the rest of that window.
TEST(LoadgenRecorder, IdleTimeInsideTheWindowIsNotBusy) {
  const std::int64_t start = 10'000'000'000;
  const std::int64_t ms = 1'000'000;
  Recorder recorder(INT64_MAX, 1000 * ms, 4);
  recorder.add_idle(0, start);  // set-up, before the clock starts
  recorder.set_measure_start(start);
  recorder.add_idle(start - 500 * ms, start + 200 * ms);  // only its last 200 ms count
  recorder.advance(start);
  recorder.add_idle(start + 500 * ms, start + 600 * ms);
  recorder.note_burst(7);
  recorder.note_burst(3);
  recorder.finish(start + 1000 * ms);
  EXPECT_DOUBLE_EQ(recorder.usage().wall_s, 1.0);
  EXPECT_NEAR(recorder.usage().busy_s, 0.7, 1e-9);
  EXPECT_NEAR(recorder.usage().busy_share(), 0.7, 1e-9);
  EXPECT_EQ(recorder.usage().largest_burst, 7u);
}

TEST(LoadgenResult, JsonRoundTripIsLossless) {
  const RunResult original = sample_result(100.0, 1);
  const nlohmann::json once = to_json(original);
  const RunResult back = result_from_json(once);
  EXPECT_EQ(to_json(back), once);
  EXPECT_TRUE(back.tally.corrected == original.tally.corrected);
  EXPECT_THROW((void)result_from_json(nlohmann::json{{"schema", "other"}}), std::invalid_argument);
}

TEST(LoadgenResult, ValidityNamesItsReasons) {
  RunResult r = sample_result(100.0, 1);
  EXPECT_TRUE(r.valid) << ::testing::PrintToString(r.invalid_reasons);
  r.tally.send_lag.record(50'000'000);
  for (int i = 0; i < 100; ++i) r.tally.send_lag.record(50'000'000);
  r.threads.push_back(ThreadUsage{.user_s = 0.9, .sys_s = 0.09, .wall_s = 1.0, .busy_s = 0.95});
  r.sent_msgs_per_s = 500;
  assess_validity(r);
  EXPECT_FALSE(r.valid);
  EXPECT_EQ(r.invalid_reasons.size(), 3u) << ::testing::PrintToString(r.invalid_reasons);
}

// --max-cpu judges the time a thread was busy, not the core it held: a thread that polled
// for its next send at 99 % CPU while busy 40 % of the time could have done more.
TEST(LoadgenResult, MaxCpuJudgesBusyTimeNotCpuTime) {
  RunResult r = sample_result(100.0, 1);
  r.threads = {ThreadUsage{.user_s = 0.5, .sys_s = 0.49, .wall_s = 1.0, .busy_s = 0.4}};
  assess_validity(r);
  EXPECT_TRUE(r.valid) << ::testing::PrintToString(r.invalid_reasons);
  r.threads.push_back(ThreadUsage{.user_s = 0.3, .sys_s = 0.3, .wall_s = 1.0, .busy_s = 0.95});
  assess_validity(r);
  ASSERT_EQ(r.invalid_reasons.size(), 1u) << ::testing::PrintToString(r.invalid_reasons);
  EXPECT_EQ(r.invalid_reasons[0], "generator thread 1 was busy 95% of the time (CPU 60% of a core), over --max-cpu 90%");

  const nlohmann::json written = to_json(r);
  const nlohmann::json& thread = written.at("generator").at("threads").at(1);
  EXPECT_DOUBLE_EQ(thread.at("busy_s").get<double>(), 0.95);
  EXPECT_DOUBLE_EQ(thread.at("busy_share").get<double>(), 0.95);
  EXPECT_DOUBLE_EQ(thread.at("cpu_share").get<double>(), 0.6);
  EXPECT_EQ(written.at("generator").at("threads").at(0).at("busy_share").get<double>(), 0.4);
}

// A result written before busy time was kept reads back judged by its CPU time, as it was
// then; a busy time past the wall time is refused (its share would be past 1).
TEST(LoadgenResult, ResultsWithoutBusyTimeReadBackWithTheirCpuTime) {
  nlohmann::json old = to_json(sample_result(100.0, 1));
  nlohmann::json& thread = old["generator"]["threads"][0];
  thread.erase("busy_s");
  thread.erase("busy_share");
  thread.erase("largest_burst_msgs");
  const RunResult back = result_from_json(old);
  ASSERT_EQ(back.threads.size(), 1u);
  EXPECT_DOUBLE_EQ(back.threads[0].busy_s, 0.1 + 0.2);
  EXPECT_EQ(back.threads[0].largest_burst, 0u);
  thread["busy_s"] = 2.0;
  EXPECT_THROW((void)result_from_json(old), std::invalid_argument);
}

TEST(LoadgenMerge, CountsAddAndHistogramsMergeExactly) {
  const RunResult a = sample_result(100.0, 1);
  const RunResult b = sample_result(100.2, 3);
  const RunResult merged = merge_results({{"a.json", a}, {"b.json", b}}, false);
  EXPECT_EQ(merged.tally.received, a.tally.received + b.tally.received);
  EXPECT_EQ(merged.tally.failures[static_cast<std::size_t>(Failure::timeout)], 4u);
  EXPECT_DOUBLE_EQ(merged.msgs_per_s, a.msgs_per_s + b.msgs_per_s);
  EXPECT_DOUBLE_EQ(merged.asked_msgs_per_s, 2000.0);
  Histogram all = a.tally.corrected;
  all.merge(b.tally.corrected);
  EXPECT_TRUE(merged.tally.corrected == all);
  EXPECT_EQ(merged.intervals.size(), 1u);
  EXPECT_EQ(merged.intervals[0].messages, a.tally.received + b.tally.received);
  EXPECT_EQ(merged.intervals[0].latency.count(), 2u);
  EXPECT_EQ(merged.sources.size(), 2u);
  EXPECT_EQ(merged.syscalls.at("send"), 4000u);
  EXPECT_NEAR(merged.measured_s, 1.2, 1e-9);
}

TEST(LoadgenMerge, RefusesWhatDoesNotBelongTogether) {
  const RunResult a = sample_result(100.0, 1);
  RunResult other = sample_result(100.0, 1);
  other.config["size"]["spec"] = "128";
  EXPECT_THROW((void)merge_results({{"a", a}, {"b", other}}, false), UsageError);
  RunResult threads = sample_result(100.0, 1);
  threads.config["threads"] = 4;  // a generator's own business
  EXPECT_NO_THROW((void)merge_results({{"a", a}, {"b", threads}}, false));
  const RunResult later = sample_result(200.0, 1);
  EXPECT_THROW((void)merge_results({{"a", a}, {"b", later}}, false), UsageError);
  EXPECT_NO_THROW((void)merge_results({{"a", a}, {"b", later}}, true));
  EXPECT_THROW((void)merge_results({}, false), UsageError);
}

// One result "merged" alone (one MPI rank) reads as any merge: a source entry, and its
// invalid reasons under its name.
TEST(LoadgenMerge, OneInputIsAMergeOfOne) {
  RunResult a = sample_result(100.0, 1);
  a.invalid_reasons = {"too slow"};
  a.valid = false;
  const RunResult merged = merge_results({{"rank 0 on h", a}}, false);
  EXPECT_EQ(merged.tally.received, a.tally.received);
  EXPECT_TRUE(merged.tally.corrected == a.tally.corrected);
  ASSERT_EQ(merged.sources.size(), 1u);
  EXPECT_EQ(merged.sources[0]["file"], "rank 0 on h");
  EXPECT_EQ(merged.invalid_reasons, std::vector<std::string>{"rank 0 on h: too slow"});
  EXPECT_FALSE(merged.valid);
}

// Numbers read from result files are checked like those from the command line: a count is
// a non-negative integer, a time or rate finite and bounded, and sums never wrap.
TEST(LoadgenMerge, NumbersFromFilesAreChecked) {
  const nlohmann::json good = to_json(sample_result(100.0, 1));
  ASSERT_NO_THROW((void)result_from_json(good));
  const std::vector<std::pair<nlohmann::json::json_pointer, nlohmann::json>> bad = {
      {nlohmann::json::json_pointer("/messages/sent"), -1},
      {nlohmann::json::json_pointer("/messages/received"), 1e308},
      {nlohmann::json::json_pointer("/messages/received"), 1.5},
      {nlohmann::json::json_pointer("/errors/timeout"), -3},
      {nlohmann::json::json_pointer("/anomalies/duplicate"), "7"},
      {nlohmann::json::json_pointer("/throughput/msgs_per_s"), 1e308},
      {nlohmann::json::json_pointer("/throughput/msgs_per_s"), -1.0},
      {nlohmann::json::json_pointer("/run/measured_s"), nullptr},
      {nlohmann::json::json_pointer("/run/start_unix_s"), -5.0},
      {nlohmann::json::json_pointer("/intervals/0/messages"), -1},
      {nlohmann::json::json_pointer("/generator/threads/0/wall_s"), 1e300},
      {nlohmann::json::json_pointer("/generator/syscalls/send"), -2},
      {nlohmann::json::json_pointer("/config/max_cpu_share"), nullptr},
      {nlohmann::json::json_pointer("/config/max_cpu_share"), 2.0},
      {nlohmann::json::json_pointer("/config/connections"), -1},
      {nlohmann::json::json_pointer("/config/seed"), -1},
      {nlohmann::json::json_pointer("/schema_version"), 1e300},
  };
  for (const auto& [where, value] : bad) {
    nlohmann::json j = good;
    j[where] = value;
    EXPECT_THROW((void)result_from_json(j), std::invalid_argument) << where.to_string() << " = " << value.dump();
  }
  RunResult a = sample_result(100.0, 1);
  RunResult b = sample_result(100.2, 1);
  a.tally.sent = b.tally.sent = UINT64_MAX / 2 + 1;
  EXPECT_THROW((void)merge_results({{"a", a}, {"b", b}}, false), UsageError);
  RunResult c = sample_result(100.2, 1);
  c.tally.failures[static_cast<std::size_t>(Failure::timeout)] = UINT64_MAX;
  EXPECT_THROW((void)merge_results({{"a", sample_result(100.0, 1)}, {"c", c}}, false), UsageError);
  RunResult d = sample_result(100.2, 1);
  d.tally.corrected = Histogram(1, 1'000'000, 2);  // another layout: a bad file, not a crash
  EXPECT_THROW((void)merge_results({{"a", sample_result(100.0, 1)}, {"d", d}}, false), UsageError);
}

// The totals of a load spread over generators: whole shares, remainders to the lowest
// ranks, the rate following the connections, and nothing lost or added.
TEST(LoadgenSpread, SharesAddUpToTheTotalsRemaindersToTheLowestRanks) {
  const LoadConfig total = parse({"--mode", "open", "--rate", "1000", "-c", "10"});
  const std::vector<int> connections = {3, 3, 2, 2};
  int connections_sum = 0;
  double rate_sum = 0;
  for (int rank = 0; rank < 4; ++rank) {
    const LoadConfig share = generator_share(total, rank, 4);
    EXPECT_EQ(share.connections, connections[static_cast<std::size_t>(rank)]) << rank;
    EXPECT_DOUBLE_EQ(share.rate, 100.0 * share.connections) << rank;
    EXPECT_EQ(share.target_text, total.target_text);
    connections_sum += share.connections;
    rate_sum += share.rate;
  }
  EXPECT_EQ(connections_sum, 10);
  EXPECT_DOUBLE_EQ(rate_sum, 1000.0);
  EXPECT_EQ(describe_shares(total, 4),
            "10 connections, 1000 msgs/s over 4 generators: ranks 0-1 3 connections, 300 msgs/s each; "
            "ranks 2-3 2 connections, 200 msgs/s each");
  const LoadConfig messages = parse({"-c", "4", "--messages", "7"});
  std::uint64_t messages_sum = 0;
  for (int rank = 0; rank < 3; ++rank) messages_sum += generator_share(messages, rank, 3).messages;
  EXPECT_EQ(messages_sum, 7u);
  EXPECT_EQ(generator_share(messages, 0, 3).messages, 3u);
  EXPECT_EQ(describe_shares(messages, 3),
            "4 connections, 7 messages over 3 generators: rank 0 2 connections, 3 messages; "
            "ranks 1-2 1 connection, 2 messages each");
  EXPECT_EQ(describe_shares(parse({"-c", "2"}), 1), "2 connections over 1 generator: rank 0 2 connections");
}

TEST(LoadgenSpread, ASharePastWhatAGeneratorCanRunIsOneLine) {
  auto message = [](const LoadConfig& total, int rank, int ranks) {
    try {
      (void)generator_share(total, rank, ranks);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message(parse({"-c", "3"}), 0, 4),
            "--connections 3 over 4 generators leaves some without a connection: give at least one per generator");
  EXPECT_EQ(message(parse({"-c", "4", "--messages", "2"}), 0, 4),
            "--messages 2 over 4 generators leaves some without a message: give at least one per generator");
  EXPECT_EQ(message(parse({"-c", "5", "--threads", "2"}), 1, 4),
            "--threads 2 is more than the 1 connection of rank 1 (--connections 5 over 4 generators): every "
            "thread needs a connection of its own");
  EXPECT_NE(message(parse({"--mode", "open", "--rate", "0.001", "-c", "2"}), 1, 2).find("below the pacer's"),
            std::string::npos);
  EXPECT_THROW((void)generator_share(parse({}), 1, 1), std::invalid_argument);
}

GeneratorResult generator(int rank, double start_unix_s, std::uint64_t scale, double late_s) {
  GeneratorResult part{rank, "host" + std::to_string(rank), sample_result(start_unix_s, scale)};
  part.result.config = to_json(parse({"--mode", "open", "--rate", "2000", "-c", "2"}));
  part.result.start_late_s = late_s;
  return part;
}

TEST(LoadgenSpread, GeneratorsMergeExactlyWithTheirBreakdown) {
  const LoadConfig total = parse({"--mode", "open", "--rate", "2000", "-c", "2"});
  GeneratorResult first = generator(0, 100.0, 1, 0.000'2);
  GeneratorResult second = generator(1, 100.0, 3, 0.000'5);
  Histogram all = first.result.tally.corrected;
  all.merge(second.result.tally.corrected);
  // Given out of order, as they could arrive.
  const RunResult merged = merge_generators({second, first}, total, std::chrono::milliseconds(1));
  EXPECT_TRUE(merged.valid) << ::testing::PrintToString(merged.invalid_reasons);
  EXPECT_TRUE(merged.tally.corrected == all);
  EXPECT_EQ(merged.tally.received, 4000u);
  const nlohmann::json& g = merged.generators;
  EXPECT_EQ(g["count"], 2);
  EXPECT_DOUBLE_EQ(g["start_skew_us"].get<double>(), 500.0);
  EXPECT_DOUBLE_EQ(g["max_start_skew_us"].get<double>(), 1000.0);
  ASSERT_EQ(g["ranks"].size(), 2u);
  EXPECT_EQ(g["ranks"][0]["rank"], 0);
  EXPECT_EQ(g["ranks"][0]["host"], "host0");
  EXPECT_EQ(g["ranks"][1]["received"], 3000u);
  EXPECT_EQ(g["ranks"][1]["connections"], 1);
  EXPECT_EQ(g["ranks"][1]["errors"], 3u);
  EXPECT_DOUBLE_EQ(g["ranks"][0]["start_late_us"].get<double>(), 200.0);
  EXPECT_EQ(g["ranks"][1]["p99_us"], latency_summary(second.result.tally.corrected)["p99_us"]);
  EXPECT_EQ(merged.sources.size(), 2u);
  EXPECT_EQ(to_json(result_from_json(to_json(merged))), to_json(merged));
}

TEST(LoadgenSpread, SkewOrAnInvalidRankMakesTheWholeInvalid) {
  const LoadConfig total = parse({"--mode", "open", "--rate", "2000", "-c", "2"});
  const RunResult skewed =
      merge_generators({generator(0, 100.0, 1, 0.000'1), generator(1, 100.0, 1, 0.002'5)}, total,
                       std::chrono::milliseconds(1));
  EXPECT_FALSE(skewed.valid);
  EXPECT_EQ(skewed.invalid_reasons,
            std::vector<std::string>{"the generators started up to 2.500 ms apart (rank 1 the furthest from the "
                                     "agreed start), over --max-start-skew 1.000 ms"});
  GeneratorResult slow = generator(1, 100.0, 1, 0.0);
  slow.result.invalid_reasons = {"generator queue overflowed: 3 messages never sent"};
  slow.result.valid = false;
  const RunResult invalid = merge_generators({generator(0, 100.0, 1, 0.0), slow}, total, std::chrono::milliseconds(1));
  EXPECT_FALSE(invalid.valid);
  EXPECT_EQ(invalid.invalid_reasons,
            std::vector<std::string>{"rank 1 on host1: generator queue overflowed: 3 messages never sent"});
  EXPECT_EQ(invalid.generators["ranks"][1]["valid"], false);
  GeneratorResult unstarted = generator(1, 100.0, 1, 0.0);
  unstarted.result.start_late_s.reset();
  EXPECT_THROW((void)merge_generators({generator(0, 100.0, 1, 0.0), unstarted}, total, std::chrono::milliseconds(1)),
               std::invalid_argument);
  EXPECT_THROW((void)merge_generators({generator(0, 100.0, 1, 0.0), generator(2, 100.0, 1, 0.0)}, total,
                                      std::chrono::milliseconds(1)),
               std::invalid_argument);
  GeneratorResult other = generator(1, 100.0, 1, 0.0);
  other.result.config["size"]["spec"] = "128";
  EXPECT_THROW((void)merge_generators({generator(0, 100.0, 1, 0.0), other}, total, std::chrono::milliseconds(1)),
               UsageError);
}

}  // namespace
}  // namespace echolab

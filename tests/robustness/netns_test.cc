// A real, impaired link: two network namespaces joined by a veth pair,
// echolab-server in one, the clients in the other, and `tc netem` on both ends of the veth
// (so each direction has its own loss, duplication and reordering).
//
// TCP must stay byte-exact whatever the link does: echolab-loadgen verifies every echo and
// must report no error. UDP has no such promise: the test counts, with its own client,
// what the round trip lost, duplicated and reordered, and checks that this matches what
// netem was told to inject, within a few binomial standard deviations.
//
// Without root, `ip`, `tc` or namespaces the whole suite skips, saying why; without
// sch_netem (a kernel built without CONFIG_NET_SCH_NETEM) the impaired cases skip and the
// plain veth case still runs. Namespaces are deleted by an RAII guard, also on failure; a
// namespace left by a run that was killed (ctest timeout) is found by its name, which
// carries the PID of the test that made it, and deleted by the next run.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <linux/sock_diag.h>
#include <sstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/case_result.h"
#include "tests/support/loadgen_runner.h"
#include "tests/support/process_tree.h"
#include "tests/support/server_under_test.h"
#include "tests/support/engine_cases.h"
#include "tests/support/process.h"
#include "tests/support/socket_client.h"

namespace echolab::test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kNamePrefix = "echolab-ns-";  // namespaces: echolab-ns-<pid>-<n>-{srv,cli}
constexpr const char* kServerIp = "10.201.0.1";
constexpr const char* kClientIp = "10.201.0.2";
constexpr int kUdpDatagrams = 4'000;
constexpr double kSigmas = 5.0;

// The servers, picked from the table by what the cases need: streams served all at once on
// one loop, and datagrams served one at a time (one thread: it keeps arrival order).
std::string tcp_engine() {
  return std::string(first_engine([](const EngineInfo& engine) {
    return engine.serves == Serves::streams && engine.concurrency == Concurrency::multiplexed;
  }, "a multiplexed stream engine").name);
}

std::string udp_engine() {
  return std::string(first_engine([](const EngineInfo& engine) {
    return engine.serves == Serves::datagrams && engine.concurrency == Concurrency::one_at_a_time;
  }, "a one-at-a-time datagram engine").name);
}

std::optional<std::string> find_tool(std::string_view name) {
  if (auto found = find_in_path(name)) {
    return found;
  }
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    const std::string path = dir + std::string(name);
    if (::access(path.c_str(), X_OK) == 0) {
      return path;
    }
  }
  return std::nullopt;
}

struct Tools {
  std::string ip;
  std::string tc;
};

// Why namespaces cannot be used here, or empty (and `tools` filled).
std::string namespace_skip_reason(Tools& tools) {
  if (::geteuid() != 0) {
    return "network namespaces need root (euid " + std::to_string(::geteuid()) + ")";
  }
  const auto ip = find_tool("ip");
  const auto tc = find_tool("tc");
  if (!ip || !tc) {
    return "iproute2 (ip, tc) is not installed";
  }
  tools = {*ip, *tc};
  return {};
}

CompletedProcess run(const std::vector<std::string>& argv) {
  return run_process(argv, milliseconds(15'000));
}

std::string failure_text(const std::vector<std::string>& argv, const CompletedProcess& done) {
  std::string line;
  for (const auto& arg : argv) {
    line += (line.empty() ? "" : " ") + arg;
  }
  return "'" + line + "' " + done.status.describe() + ": " + done.err + done.out;
}

// Deletes namespaces named by a test process that no longer exists (killed by a timeout
// before its guard could run). Only names of our own prefix and format are touched.
void delete_stale_namespaces(const Tools& tools) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", error)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(kNamePrefix)) {
      continue;
    }
    const std::string rest = name.substr(std::strlen(kNamePrefix));
    const pid_t owner = static_cast<pid_t>(std::atol(rest.c_str()));
    if (owner > 0 && ::kill(owner, 0) != 0 && errno == ESRCH) {
      [[maybe_unused]] auto done = run({tools.ip, "netns", "del", name});
    }
  }
}

// Two namespaces and the veth pair between them; deleted on destruction.
class NamespacePair {
 public:
  explicit NamespacePair(const Tools& tools) : tools_(tools) {
    static int counter = 0;
    const std::string base = kNamePrefix + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    server_ns_ = base + "-srv";
    client_ns_ = base + "-cli";
    // Interface names live inside the namespaces, so they need not be unique machine-wide,
    // but they are created in this one first: keep them unique and short (IFNAMSIZ 16).
    const std::string tag = std::to_string(::getpid() % 100'000) + "x" + std::to_string(counter);
    server_if_ = "pbs" + tag;
    client_if_ = "pbc" + tag;
  }
  NamespacePair(const NamespacePair&) = delete;
  NamespacePair& operator=(const NamespacePair&) = delete;

  ~NamespacePair() {
    // Deleting a namespace destroys the veth end inside it, and with it its peer.
    for (const auto* ns : {&server_ns_, &client_ns_}) {
      if (created_.count(*ns) != 0) {
        [[maybe_unused]] auto done = run({tools_.ip, "netns", "del", *ns});
      }
    }
    if (veth_in_root_) {
      [[maybe_unused]] auto done = run({tools_.ip, "link", "del", server_if_});
    }
  }

  // Sets everything up; returns what failed, or empty.
  std::string create() {
    for (const auto* ns : {&server_ns_, &client_ns_}) {
      if (auto error = step({tools_.ip, "netns", "add", *ns}); !error.empty()) {
        return error;
      }
      created_.insert(*ns);
    }
    if (auto error = step({tools_.ip, "link", "add", server_if_, "type", "veth", "peer", "name",
                           client_if_});
        !error.empty()) {
      return error;
    }
    veth_in_root_ = true;
    for (const auto& [dev, ns] : {std::pair{server_if_, server_ns_}, std::pair{client_if_, client_ns_}}) {
      if (auto error = step({tools_.ip, "link", "set", dev, "netns", ns}); !error.empty()) {
        return error;
      }
    }
    veth_in_root_ = false;
    for (const auto& [dev, ns, address] :
         {std::tuple{server_if_, server_ns_, kServerIp}, std::tuple{client_if_, client_ns_, kClientIp}}) {
      for (const std::vector<std::string>& argv :
           {std::vector<std::string>{tools_.ip, "-n", ns, "addr", "add", std::string(address) + "/24", "dev", dev},
            std::vector<std::string>{tools_.ip, "-n", ns, "link", "set", dev, "up"},
            std::vector<std::string>{tools_.ip, "-n", ns, "link", "set", "lo", "up"}}) {
        if (auto error = step(argv); !error.empty()) {
          return error;
        }
      }
    }
    return {};
  }

  // netem with `spec` (e.g. {"delay","1ms","loss","1%"}) on both ends: every direction.
  // Returns what failed, or empty.
  std::string impair(const std::vector<std::string>& spec) {
    for (const auto& [dev, ns] : {std::pair{server_if_, server_ns_}, std::pair{client_if_, client_ns_}}) {
      std::vector<std::string> argv = {tools_.ip, "netns", "exec", ns, tools_.tc, "qdisc", "add",
                                       "dev", dev, "root", "netem"};
      argv.insert(argv.end(), spec.begin(), spec.end());
      if (auto error = step(argv); !error.empty()) {
        return error;
      }
    }
    return {};
  }

  // Packets netem dropped and put ahead of the queue (reordered) so far, both ends summed,
  // from `tc -s qdisc show`: the faults actually injected.
  std::pair<std::uint64_t, std::uint64_t> injected() {
    std::uint64_t dropped = 0;
    std::uint64_t requeues = 0;
    for (const auto& [dev, ns] : {std::pair{server_if_, server_ns_}, std::pair{client_if_, client_ns_}}) {
      const auto done = run({tools_.ip, "netns", "exec", ns, tools_.tc, "-s", "qdisc", "show", "dev", dev});
      dropped += number_after(done.out, "dropped ");
      requeues += number_after(done.out, "requeues ");
    }
    return {dropped, requeues};
  }

  [[nodiscard]] std::vector<std::string> exec_in_server() const {
    return {tools_.ip, "netns", "exec", server_ns_};
  }
  [[nodiscard]] std::vector<std::string> exec_in_client() const {
    return {tools_.ip, "netns", "exec", client_ns_};
  }
  [[nodiscard]] const std::string& client_ns() const { return client_ns_; }

 private:
  static std::uint64_t number_after(const std::string& text, const std::string& key) {
    const auto at = text.find(key);
    return at == std::string::npos ? 0 : std::strtoull(text.c_str() + at + key.size(), nullptr, 10);
  }

  std::string step(const std::vector<std::string>& argv) {
    const auto done = run(argv);
    return done.status.success() ? std::string() : failure_text(argv, done);
  }

  const Tools& tools_;
  std::string server_ns_;
  std::string client_ns_;
  std::string server_if_;
  std::string client_if_;
  std::set<std::string> created_;
  bool veth_in_root_ = false;
};

// A UDP socket of the client namespace, connected to the server: made by a thread that
// joins that namespace (setns changes only the calling thread), so the test itself stays
// where it is. The socket keeps its namespace whoever uses it.
Fd udp_socket_in(const std::string& ns, const SocketAddress& server, std::string& error) {
  Fd socket_fd;
  std::thread([&] {
    Fd ns_fd(::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns_fd.valid() || ::setns(ns_fd.get(), CLONE_NEWNET) != 0) {
      error = "setns into " + ns + ": " + std::strerror(errno);
      return;
    }
    socket_fd.reset(::socket(server.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    // Room for every echo of a run, so that a test starved of CPU loses none (root may
    // force past rmem_max; if not, the drops are counted below anyway).
    const int room = 8 << 20;
    if (socket_fd.valid()) {
      ::setsockopt(socket_fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &room, sizeof room);
    }
    if (!socket_fd.valid() || ::connect(socket_fd.get(), server.get(), server.length) != 0) {
      error = std::string("udp socket: ") + std::strerror(errno);
      socket_fd.reset();
    }
  }).join();
  return socket_fd;
}

// Datagrams the kernel dropped at a full receive queue: of our client socket (SO_MEMINFO)
// and of the server's (the drops column of /proc/PID/net/udp, which shows the server's own
// namespace). A starved process on a busy machine drops these; netem did not.
std::uint64_t socket_drops(int fd) {
  std::uint32_t info[SK_MEMINFO_VARS] = {};
  socklen_t length = sizeof info;
  if (::getsockopt(fd, SOL_SOCKET, SO_MEMINFO, info, &length) != 0) {
    return 0;
  }
  return info[SK_MEMINFO_DROPS];
}

std::uint64_t server_udp_drops(pid_t pid, int port) {
  std::ifstream table("/proc/" + std::to_string(pid) + "/net/udp");
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, ":%04X", port);
  std::string line;
  std::getline(table, line);  // header
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local;
    fields >> slot >> local;
    if (!local.ends_with(port_hex)) {
      continue;
    }
    std::string last;
    for (std::string field; fields >> field;) {
      last = field;
    }
    return std::strtoull(last.c_str(), nullptr, 10);
  }
  return 0;
}

// What the client saw of kUdpDatagrams sequenced datagrams and their echoes.
struct UdpTally {
  int sent = 0;
  int answered = 0;     // distinct sequence numbers echoed at least once
  int lost = 0;         // sent - answered
  int duplicates = 0;   // echoes beyond the first of their sequence number
  int reordered = 0;    // first echoes arriving after the first echo of a later datagram
  int early = 0;        // first echoes back in under 1.5 one-way delays: overtook the queue
  int foreign = 0;      // replies that are not an echo of ours (must be 0)
};

// Sends kUdpDatagrams framed datagrams (sequence number and send time inside), 500 µs
// apart, and collects the echoes until `linger` after the last send.
UdpTally exchange_sequenced(int fd, milliseconds one_way_delay, milliseconds linger) {
  constexpr std::size_t kSize = 64;
  std::vector<int> copies(kUdpDatagrams, 0);
  // Atomic: written by the sender, read by the receiver (the echo in between is a system
  // call, which orders them in fact but not for the C++ memory model).
  auto sent_at = std::make_unique<std::atomic<std::int64_t>[]>(kUdpDatagrams);
  std::atomic<bool> sending{true};
  UdpTally tally;
  std::thread receiver([&] {
    std::vector<std::byte> buffer(2048);
    int highest_first = -1;
    Clock::time_point stop_at = Clock::time_point::max();
    for (;;) {
      const auto now = Clock::now();
      if (!sending.load() && stop_at == Clock::time_point::max()) {
        stop_at = now + linger;
      }
      if (now >= stop_at) {
        break;
      }
      pollfd pfd{fd, POLLIN, 0};
      if (::poll(&pfd, 1, 20) <= 0) {
        continue;
      }
      const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
      if (n != static_cast<ssize_t>(kSize) || read_be32(buffer.data()) != kSize - 4) {
        tally.foreign += n >= 0 ? 1 : 0;  // ECONNREFUSED (ICMP) and the like are not replies
        continue;
      }
      std::uint32_t sequence = 0;
      std::int64_t sent_ns = 0;
      std::memcpy(&sequence, buffer.data() + 4, sizeof sequence);
      std::memcpy(&sent_ns, buffer.data() + 8, sizeof sent_ns);
      if (sequence >= static_cast<std::uint32_t>(kUdpDatagrams) || sent_at[sequence].load() != sent_ns) {
        ++tally.foreign;
        continue;
      }
      const int seq = static_cast<int>(sequence);
      if (copies[seq]++ > 0) {
        ++tally.duplicates;
        continue;
      }
      const auto rtt = Clock::now().time_since_epoch().count() - sent_ns;
      if (static_cast<double>(rtt) < 1.5 * static_cast<double>(std::chrono::nanoseconds(one_way_delay).count())) {
        ++tally.early;
      }
      if (seq < highest_first) {
        ++tally.reordered;
      }
      highest_first = std::max(highest_first, seq);
    }
  });
  std::vector<std::byte> datagram(kSize);
  write_be32(kSize - 4, datagram.data());
  const auto start = Clock::now();
  for (int seq = 0; seq < kUdpDatagrams; ++seq) {
    std::this_thread::sleep_until(start + std::chrono::microseconds(500) * seq);
    const auto sequence = static_cast<std::uint32_t>(seq);
    // Written before the send: the receiver reads it only after the echo, which comes after.
    const std::int64_t now_ns = Clock::now().time_since_epoch().count();
    sent_at[seq].store(now_ns);
    std::memcpy(datagram.data() + 4, &sequence, sizeof sequence);
    std::memcpy(datagram.data() + 8, &now_ns, sizeof now_ns);
    if (::send(fd, datagram.data(), datagram.size(), 0) == static_cast<ssize_t>(kSize)) {
      ++tally.sent;
    }
  }
  sending.store(false);
  receiver.join();
  for (const int n : copies) {
    tally.answered += n > 0 ? 1 : 0;
  }
  tally.lost = tally.sent - tally.answered;
  return tally;
}

// |observed - n p| within kSigmas binomial standard deviations (plus one, for tiny n p).
testing::AssertionResult within_sampling_error(double observed, double n, double p, double variance_per_trial,
                                               const char* what) {
  const double expected = n * p;
  const double allowed = kSigmas * std::sqrt(n * variance_per_trial) + 1.0;
  if (std::abs(observed - expected) <= allowed) {
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure() << what << ": observed " << observed << ", expected " << expected
                                     << " +- " << allowed << " (" << kSigmas << " sigma)";
}

struct Scenario {
  std::string name;               // "plain", "loss", "duplicate_reorder"
  std::vector<std::string> netem;  // empty: no netem
  double loss = 0;                // per direction, as configured
  double duplicate = 0;
  double reorder = 0;
  milliseconds delay{0};
};

void PrintTo(const Scenario& scenario, std::ostream* out) { *out << scenario.name; }

class NetnsTest : public testing::TestWithParam<Scenario> {
 protected:
  void SetUp() override {
    if (const auto reason = namespace_skip_reason(tools_); !reason.empty()) {
      GTEST_SKIP() << reason;
    }
    delete_stale_namespaces(tools_);
  }

  Tools tools_;
};

TEST_P(NetnsTest, TcpStaysExactAndUdpFaultsMatchNetem) {
  const Scenario& scenario = GetParam();
  NamespacePair pair(tools_);
  if (const auto error = pair.create(); !error.empty()) {
    GTEST_SKIP() << "cannot create network namespaces and a veth pair here: " << error;
  }
  if (!scenario.netem.empty()) {
    if (const auto error = pair.impair(scenario.netem); !error.empty()) {
      GTEST_SKIP() << "cannot add netem (kernel without sch_netem?): " << error;
    }
  }

  // TCP: echolab-loadgen in the client namespace against a server in the other; every echo
  // verified. Loss costs retransmissions (latency), never bytes.
  {
    const std::string tcp_name = tcp_engine();
    ServerLaunch launch = launch_of(tcp_name);
    launch.listen = std::string(kServerIp) + ":0";
    launch.prefix = pair.exec_in_server();
    ServerUnderTest server(launch);
    const TempDir loadgen_dir("echolab-loadgen");
    const auto outcome = run_loadgen(loadgen_dir,
        {"--quiet", "--no-status", "--target", server.ready().address, "--mode", "closed", "--connections",
         "4", "--warmup", "0s", "--duration", "3s", "--size", "16..4096", "--timeout", "20s"},
        milliseconds(60'000), {}, pair.exec_in_client());
    ASSERT_FALSE(outcome.json.is_null()) << "no result: " << outcome.describe();
    const auto& result = outcome.json;
    const auto received = loadgen_count(result, "messages", "received");
    const auto errors = loadgen_count(result, "errors", "total");
    const auto mismatched = loadgen_count(result, "anomalies", "mismatched_bytes");
    const auto bytes_sent = loadgen_count(result, "messages", "bytes_sent");
    const auto bytes_received = loadgen_count(result, "messages", "bytes_received");
    EXPECT_GT(received, 0u) << outcome.describe();
    EXPECT_EQ(errors, 0u) << "TCP over an impaired link must stay exact: " << result["errors"].dump();
    EXPECT_EQ(mismatched, 0u);
    EXPECT_EQ(bytes_sent, bytes_received) << "bytes lost on TCP";
    const int leaked = server.leaked_fds();
    EXPECT_EQ(leaked, 0);
    const StopReport end = server.stop();
    ASSERT_TRUE(end.status.has_value()) << server.describe();
    EXPECT_TRUE(end.status->success()) << end.status->describe() << ": " << server.describe();
    EXPECT_EQ(end.leftover_processes, 0) << end.leftovers_described;
    write_case_result({
        {"case", case_name("netns_" + scenario.name + "_tcp", tcp_name)},
        {"test", "netns_" + scenario.name + "_tcp"},
        {"engine", tcp_name},
        {"netem", scenario.netem},
        {"messages_verified", received},
        {"verification_errors", errors + mismatched},
        {"bytes_sent", bytes_sent},
        {"bytes_lost", bytes_sent > bytes_received ? bytes_sent - bytes_received : 0},
        {"p50_us", loadgen_latency_us(result, "p50_us")},
        {"p99_us", loadgen_latency_us(result, "p99_us")},
        {"leaked_fds", leaked},
        {"zombies", end.zombies},
        {"leftover_processes", end.leftover_processes},
    });
  }

  // UDP: our own client, so that each datagram's fate is known exactly.
  const std::string udp_name = udp_engine();
  ServerLaunch launch = launch_of(udp_name, {"--rcvbuf", std::to_string(8 << 20)});
  launch.listen = std::string(kServerIp) + ":0";
  launch.prefix = pair.exec_in_server();
  ServerUnderTest server(launch);
  std::string error;
  Fd fd = udp_socket_in(pair.client_ns(), server.address(), error);
  ASSERT_TRUE(fd.valid()) << error;
  {
    // Warm up with resent pings: ARP must be resolved before the count starts, or datagrams
    // queued behind a lost ARP request would be dropped by the neighbour table, not netem.
    set_io_timeouts(fd.get(), milliseconds(1'000));
    std::vector<std::byte> scratch;
    for (std::uint32_t i = 0; i < 5; ++i) {
      std::vector<std::byte> ping(64);
      write_be32(60, ping.data());
      std::memcpy(ping.data() + 4, &i, sizeof i);
      ping[12] = std::byte{0x7f};  // never a valid send time of the counted run
      const auto exchanged = exchange_datagram(fd.get(), ping, 8, ResendPolicy{}, scratch);
      ASSERT_TRUE(exchanged.ok) << "UDP warm-up over the veth: " << exchanged.error;
    }
    std::this_thread::sleep_for(milliseconds(3 * scenario.delay.count() + 100));
    while (::recv(fd.get(), scratch.data(), scratch.size(), MSG_DONTWAIT) > 0) {
    }  // late duplicates of the warm-up
  }
  const auto before = pair.injected();
  const int server_port = std::stoi(server.ready().address.substr(server.ready().address.rfind(':') + 1));
  const std::uint64_t drops_before = socket_drops(fd.get()) + server_udp_drops(server.pid(), server_port);
  const UdpTally tally = exchange_sequenced(fd.get(), scenario.delay, milliseconds(2'000) + 4 * scenario.delay);
  const auto after = pair.injected();
  const std::uint64_t host_drops =
      socket_drops(fd.get()) + server_udp_drops(server.pid(), server_port) - drops_before;
  fd.reset();
  const StopReport end = server.stop();
  ASSERT_TRUE(end.status.has_value()) << server.describe();
  EXPECT_TRUE(end.status->success()) << end.status->describe() << ": " << server.describe();

  const double n = tally.sent;
  EXPECT_EQ(tally.sent, kUdpDatagrams);
  EXPECT_EQ(tally.foreign, 0) << "replies that echo nothing we sent";
  // Round-trip loss: a datagram survives the two directions with (1-p)^2.
  const double q = 1 - (1 - scenario.loss) * (1 - scenario.loss);
  // Drops at a full socket queue (this host, not the link) are taken out first.
  const double link_lost = static_cast<double>(tally.lost) - static_cast<double>(host_drops);
  EXPECT_TRUE(within_sampling_error(link_lost, n, q, q * (1 - q), "datagrams lost on the link"))
      << tally.lost << " lost in all, " << host_drops << " of them at full socket queues";
  // Duplicates: each direction doubles a packet with probability d (the echo of a doubled
  // request is itself doubled or not), so copies per datagram X = sum over A in {1,2} of B
  // in {1,2}: E[X] - 1 = 2d + d^2, Var X = E[A] Var B + Var A E[B]^2.
  const double d = scenario.duplicate;
  const double dup_mean = 2 * d + d * d;
  const double dup_variance = (1 + d) * d * (1 - d) + d * (1 - d) * (1 + d) * (1 + d);
  EXPECT_TRUE(within_sampling_error(tally.duplicates, n, dup_mean, dup_variance, "duplicate echoes"));
  // Reordering: netem sends a packet at once with probability r instead of after the delay;
  // a round trip that skipped at least one delay is back in under 1.5 delays.
  if (scenario.reorder > 0) {
    const double r = 1 - (1 - scenario.reorder) * (1 - scenario.reorder);
    EXPECT_TRUE(within_sampling_error(tally.early, n, r, r * (1 - r), "echoes that overtook the queue"));
    EXPECT_GT(tally.reordered, 0) << "reordering injected but no echo arrived out of order";
  } else {
    EXPECT_EQ(tally.reordered, 0) << "echoes out of order on a link that does not reorder";
  }

  write_case_result({
      {"case", case_name("netns_" + scenario.name + "_udp", udp_name)},
      {"test", "netns_" + scenario.name + "_udp"},
      {"engine", udp_name},
      {"netem", scenario.netem},
      {"netem_per_direction", {{"loss", scenario.loss}, {"duplicate", scenario.duplicate},
                               {"reorder", scenario.reorder}, {"delay_ms", scenario.delay.count()}}},
      {"datagrams_sent", tally.sent},
      {"datagrams_answered", tally.answered},
      {"datagrams_lost", tally.lost},
      {"datagrams_lost_expected", n * q},
      {"datagrams_dropped_by_host_sockets", host_drops},
      {"duplicates", tally.duplicates},
      {"duplicates_expected", n * dup_mean},
      {"reordered", tally.reordered},
      {"overtook_queue", tally.early},
      {"overtook_queue_expected",
       n * (1 - (1 - scenario.reorder) * (1 - scenario.reorder))},
      {"faults_injected", (after.first - before.first) + (after.second - before.second)},
      {"faults_injected_drops", after.first - before.first},
      {"faults_injected_reorders", after.second - before.second},
      {"zombies", end.zombies},
      {"leftover_processes", end.leftover_processes},
  });
}

INSTANTIATE_TEST_SUITE_P(
    Links, NetnsTest,
    testing::Values(Scenario{"plain", {}, 0, 0, 0, milliseconds(0)},
                    Scenario{"loss", {"delay", "1ms", "loss", "1%"}, 0.01, 0, 0, milliseconds(1)},
                    Scenario{"duplicate_reorder",
                             {"delay", "10ms", "duplicate", "1%", "reorder", "5%"},
                             0, 0.01, 0.05, milliseconds(10)}),
    [](const auto& case_info) { return case_info.param.name; });

}  // namespace
}  // namespace echolab::test

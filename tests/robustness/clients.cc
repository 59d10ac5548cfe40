#include "tests/robustness/clients.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace echolab::test {
namespace {

constexpr milliseconds kIoTimeout{15'000};

}  // namespace

std::string_view name_of(SendMode mode) {
  switch (mode) {
    case SendMode::whole:
      return "whole";
    case SendMode::byte_by_byte:
      return "byte_by_byte";
    case SendMode::random_split:
      return "random_split";
  }
  return "?";
}

IoResult send_in_mode(int fd, std::span<const std::byte> bytes, SendMode mode,
                      FastRandom& random) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    std::size_t chunk = bytes.size() - sent;
    if (mode == SendMode::byte_by_byte) {
      chunk = 1;
    } else if (mode == SendMode::random_split) {
      chunk = std::min<std::size_t>(chunk, 1 + random.below(std::max<std::size_t>(2, bytes.size() / 3)));
    }
    const auto result = send_all(fd, bytes.subspan(sent, chunk));
    if (!result.ok()) {
      return {result.outcome, sent + result.bytes, result.error};
    }
    sent += chunk;
  }
  return {IoOutcome::ok, sent, 0};
}

std::vector<std::byte> random_bytes(FastRandom& random, std::size_t size) {
  std::vector<std::byte> bytes(size);
  random.fill(bytes);
  return bytes;
}

GoodClient::GoodClient(SocketAddress address, bool one_at_a_time, FastRandom& random)
    : address_(address), one_at_a_time_(one_at_a_time), random_(&random) {}

std::string GoodClient::round(std::size_t max_payload) {
  ++rounds_;
  try {
    if (!fd_) {
      fd_ = connect_socket(address_, SOCK_STREAM, kIoTimeout);
      ++connections_;
    }
  } catch (const std::exception& error) {
    return std::string("connect: ") + error.what();
  }
  std::vector<std::byte> frames;
  for (const std::size_t size : {std::size_t{0}, std::size_t{1}, max_payload,
                                 static_cast<std::size_t>(random_->below(max_payload + 1))}) {
    append_frame(frames, random_bytes(*random_, size));
  }
  std::string error = check_echo(fd_->get(), frames, scratch_);
  if (one_at_a_time_ || !error.empty()) {
    fd_.reset();
  }
  return error;
}

IoResult read_until_closed(int fd, milliseconds timeout, std::vector<std::byte>* received) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::byte> buffer(65536);
  std::size_t total = 0;
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return {IoOutcome::timeout, total, 0};
    }
    pollfd waiter{fd, POLLIN, 0};
    const int ready = ::poll(&waiter, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) {
      continue;
    }
    if (ready <= 0) {
      continue;  // the deadline check above ends the wait
    }
    const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n == 0) {
      return {IoOutcome::closed, total, 0};
    }
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) {
        continue;
      }
      return {errno == ECONNRESET ? IoOutcome::reset : IoOutcome::error, total, errno};
    }
    total += static_cast<std::size_t>(n);
    if (received != nullptr) {
      received->insert(received->end(), buffer.begin(), buffer.begin() + n);
    }
  }
}

}  // namespace echolab::test

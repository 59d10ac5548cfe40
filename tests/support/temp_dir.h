#pragma once
// TempDir: a fresh private directory (mkdtemp), removed with its contents on destruction.
// Unix socket paths and stats files go here, so parallel tests never collide.
#include <string>
#include <string_view>

namespace echolab::test {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "echolab-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string file(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace echolab::test

#include "util/string_file.h"

#include <utility>

namespace trackpoint {
namespace {

class StringWritableFile final : public WritableFile {
 public:
  StringWritableFile(std::string* contents, std::string name)
      : contents_(contents), name_(std::move(name)) {}
  Status Append(std::string_view data) override {
    contents_->append(data);
    return OkStatus();
  }
  Status Sync() override { return OkStatus(); }
  Status Close() override { return OkStatus(); }
  const std::string& name() const override { return name_; }

 private:
  std::string* contents_;
  std::string name_;
};

class StringRandomAccessFile final : public RandomAccessFile {
 public:
  StringRandomAccessFile(std::string contents, std::string name)
      : contents_(std::move(contents)), name_(std::move(name)) {}
  Status Read(uint64_t offset, size_t n, char* dst) const override {
    if (offset > contents_.size() || n > contents_.size() - offset) {
      return DataLossError(ReadPastEndMessage(name_, offset, n, contents_.size()));
    }
    contents_.copy(dst, n, offset);
    return OkStatus();
  }
  uint64_t size() const override { return contents_.size(); }
  const std::string& name() const override { return name_; }

 private:
  std::string contents_;
  std::string name_;
};

}  // namespace

std::unique_ptr<WritableFile> NewStringWritableFile(std::string* contents,
                                                    std::string name) {
  return std::make_unique<StringWritableFile>(contents, std::move(name));
}

std::unique_ptr<RandomAccessFile> NewStringRandomAccessFile(
    std::string contents, std::string name) {
  return std::make_unique<StringRandomAccessFile>(std::move(contents),
                                                  std::move(name));
}

}  // namespace trackpoint

// Reads the layout written by table_builder.cc: data blocks, metaindex
// block, index block (one entry per data block: separator key -> handle),
// 48-byte footer.
#include "table/table.h"

#include <string>

#include "util/coding.h"

namespace trackpoint {
namespace table {

Result<std::unique_ptr<Table>> Table::Open(
    std::shared_ptr<const RandomAccessFile> file) {
  const std::string& name = file->name();
  const uint64_t size = file->size();
  if (size < Footer::kEncodedLength) {
    return DataLossError(name + " is too short to be a checkpoint index (" +
                         std::to_string(size) + " bytes, a table footer " +
                         "alone is 48)");
  }
  char buf[Footer::kEncodedLength];
  TP_RETURN_IF_ERROR(file->Read(size - sizeof(buf), sizeof(buf), buf));
  const std::string_view footer_bytes(buf, sizeof(buf));
  const char* magic = buf + sizeof(buf) - 8;
  if ((uint64_t{DecodeFixed32(magic)} |
       (uint64_t{DecodeFixed32(magic + 4)} << 32)) != kTableMagicNumber) {
    return DataLossError(name +
                         " is not a checkpoint index (bad magic number)");
  }
  Footer footer;
  Status s = footer.DecodeFrom(footer_bytes);
  if (!s.ok()) return DataLossError(s.message() + " in " + name);

  // TensorFlow never reads the metaindex block; its checksum is still
  // verified so that no byte of the file goes unchecked.
  TP_RETURN_IF_ERROR(
      ReadBlock(*file, footer.metaindex_handle(), "metaindex block").status());
  TP_ASSIGN_OR_RETURN(std::string index_contents,
                      ReadBlock(*file, footer.index_handle(), "index block"));
  TP_ASSIGN_OR_RETURN(std::unique_ptr<Block> index_block,
                      Block::Parse(std::move(index_contents), name,
                                   footer.index_handle().offset()));
  return std::unique_ptr<Table>(
      new Table(std::move(file), footer, std::move(index_block)));
}

Table::Table(std::shared_ptr<const RandomAccessFile> file, const Footer& footer,
             std::shared_ptr<const Block> index_block)
    : file_(std::move(file)),
      footer_(footer),
      index_block_(std::move(index_block)) {}

// A two-level iterator: index entries name data blocks, which are read and
// iterated on demand. The current data block is kept until the index moves
// to an entry with a different handle.
class Table::Iter final : public Iterator {
 public:
  Iter(std::shared_ptr<const RandomAccessFile> file,
       std::shared_ptr<const Block> index_block)
      : file_(std::move(file)),
        index_block_(std::move(index_block)),
        index_iter_(index_block_->NewIterator()) {}

  bool Valid() const override {
    return status_.ok() && data_iter_ != nullptr && data_iter_->Valid();
  }
  Status status() const override { return status_; }
  std::string_view key() const override { return data_iter_->key(); }
  std::string_view value() const override { return data_iter_->value(); }

  void SeekToFirst() override {
    if (!status_.ok()) return;
    index_iter_->SeekToFirst();
    LoadDataBlock();
    if (data_iter_ != nullptr) data_iter_->SeekToFirst();
    SkipExhaustedBlocks();
  }

  void Seek(std::string_view target) override {
    if (!status_.ok()) return;
    index_iter_->Seek(target);
    LoadDataBlock();
    if (data_iter_ != nullptr) data_iter_->Seek(target);
    SkipExhaustedBlocks();
  }

  void Next() override {
    data_iter_->Next();
    SkipExhaustedBlocks();
  }

 private:
  // Makes data_iter_ iterate the block of the current index entry (nullptr
  // when the index is exhausted or on error).
  void LoadDataBlock() {
    if (!index_iter_->Valid()) {
      Fail(index_iter_->status());
      data_iter_.reset();
      return;
    }
    std::string_view handle_bytes = index_iter_->value();
    BlockHandle handle;
    if (!handle.DecodeFrom(&handle_bytes).ok()) {  // trailing bytes tolerated
      Fail(DataLossError("bad block handle in the index block of " +
                         file_->name()));
      return;
    }
    if (data_iter_ != nullptr && data_block_ != nullptr &&
        handle == data_handle_) {
      return;  // already loaded; the caller repositions data_iter_
    }
    data_iter_.reset();
    data_block_.reset();
    Result<std::string> contents = ReadBlock(*file_, handle, "data block");
    if (!contents.ok()) {
      Fail(contents.status());
      return;
    }
    Result<std::unique_ptr<Block>> block = Block::Parse(
        std::move(contents).value(), file_->name(), handle.offset());
    if (!block.ok()) {
      Fail(block.status());
      return;
    }
    data_block_ = std::move(block).value();
    data_handle_ = handle;
    data_iter_ = data_block_->NewIterator();
  }

  // Moves past data blocks that have no (more) entries.
  void SkipExhaustedBlocks() {
    while (status_.ok() && (data_iter_ == nullptr || !data_iter_->Valid())) {
      if (data_iter_ != nullptr) Fail(data_iter_->status());
      if (!status_.ok() || !index_iter_->Valid()) return;
      index_iter_->Next();
      LoadDataBlock();
      if (data_iter_ != nullptr) data_iter_->SeekToFirst();
    }
  }

  void Fail(const Status& s) {
    if (s.ok() || !status_.ok()) return;
    status_ = s;
    data_iter_.reset();
    data_block_.reset();
  }

  const std::shared_ptr<const RandomAccessFile> file_;
  const std::shared_ptr<const Block> index_block_;
  const std::unique_ptr<Iterator> index_iter_;
  // data_iter_ points into data_block_, so it is declared (and destroyed)
  // after it.
  std::unique_ptr<Block> data_block_;
  BlockHandle data_handle_;
  std::unique_ptr<Iterator> data_iter_;
  Status status_;
};

std::unique_ptr<Iterator> Table::NewIterator() const {
  return std::make_unique<Iter>(file_, index_block_);
}

}  // namespace table
}  // namespace trackpoint

#include "trackpoint/checkpoint_reader.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdio>

#include "proto/bundle_proto.h"
#include "trackpoint/bundle_writer.h"
#include "trackpoint/crc32c.h"
#include "util/file.h"
#include "util/mapped_file.h"

namespace trackpoint {
namespace {

constexpr std::string_view kIndexSuffix = ".index";
constexpr char kStateFilename[] = "checkpoint";

bool HostIsBigEndian() {
  const uint16_t one = 1;
  return *reinterpret_cast<const uint8_t*>(&one) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

// ---- the `checkpoint` state file -------------------------------------------
// A CheckpointState message in protobuf text format, e.g.
//   model_checkpoint_path: "ckpt-5"
//   all_model_checkpoint_paths: "ckpt-4"
//   all_model_checkpoint_paths: "ckpt-5"
//   all_model_checkpoint_timestamps: 1700000000.5
// Only model_checkpoint_path is needed. The scanner below knows just enough
// of the text format to find that field: identifiers, ':', quoted strings
// with C escapes, '#' comments; anything else is skipped one token at a time.

class StateScanner {
 public:
  explicit StateScanner(std::string_view text) : text_(text) {}

  // Finds the last `model_checkpoint_path: "<string>"` and decodes it.
  Result<std::string> FindModelCheckpointPath() {
    std::optional<std::string> found;
    std::string ident;
    while (SkipSpace()) {
      const char c = text_[pos_];
      if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
        ident = Identifier();
        if (ident != "model_checkpoint_path") continue;
        if (!SkipSpace() || text_[pos_] != ':') {
          return DataLossError("expected ':' after model_checkpoint_path");
        }
        ++pos_;
        if (!SkipSpace() || (text_[pos_] != '"' && text_[pos_] != '\'')) {
          return DataLossError(
              "expected a quoted string after model_checkpoint_path:");
        }
        TP_ASSIGN_OR_RETURN(std::string value, QuotedString());
        found = std::move(value);
      } else if (c == '"' || c == '\'') {
        TP_RETURN_IF_ERROR(QuotedString().status());
      } else {
        ++pos_;
      }
    }
    if (!found) return NotFoundError("no model_checkpoint_path");
    return *found;
  }

 private:
  // Skips whitespace and comments; false at the end of the text.
  bool SkipSpace() {
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else if (std::isspace(static_cast<unsigned char>(c))) {
        ++pos_;
      } else {
        return true;
      }
    }
    return false;
  }

  std::string Identifier() {
    const size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) ||
            text_[pos_] == '_')) {
      ++pos_;
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  static int HexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // REQUIRES: text_[pos_] is a quote. Decodes "..." or '...' with C escapes
  // (\n \t \\ \" \' ..., octal \NNN, hex \xHH), leaving pos_ after it.
  Result<std::string> QuotedString() {
    const char quote = text_[pos_++];
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      char c = text_[pos_++];
      if (c == '\n') return DataLossError("newline inside a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= text_.size()) break;
      c = text_[pos_++];
      switch (c) {
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x': {
          int value = 0, digits = 0;
          while (digits < 2 && pos_ < text_.size() &&
                 HexValue(text_[pos_]) >= 0) {
            value = value * 16 + HexValue(text_[pos_++]);
            ++digits;
          }
          if (digits == 0) return DataLossError("bad \\x escape");
          out.push_back(static_cast<char>(value));
          break;
        }
        default:
          if (c >= '0' && c <= '7') {
            int value = c - '0', digits = 1;
            while (digits < 3 && pos_ < text_.size() && text_[pos_] >= '0' &&
                   text_[pos_] <= '7') {
              value = value * 8 + (text_[pos_++] - '0');
              ++digits;
            }
            out.push_back(static_cast<char>(value & 0xff));
          } else {
            out.push_back(c);  // \\ \" \' \?
          }
      }
    }
    if (pos_ >= text_.size()) return DataLossError("unterminated string");
    ++pos_;  // the closing quote
    return out;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

Result<std::string> ReadSmallFile(const std::string& path) {
  TP_ASSIGN_OR_RETURN(std::unique_ptr<RandomAccessFile> file,
                      NewRandomAccessFile(path));
  // A state file names a handful of checkpoints; anything huge is not one.
  constexpr uint64_t kMaxStateFileSize = 16 << 20;
  if (file->size() > kMaxStateFileSize) {
    return DataLossError(path + " is too large (" +
                         std::to_string(file->size()) +
                         " bytes) to be a checkpoint state file");
  }
  std::string contents(static_cast<size_t>(file->size()), '\0');
  TP_RETURN_IF_ERROR(file->Read(0, contents.size(), contents.data()));
  return contents;
}

}  // namespace

Result<std::string> ParseModelCheckpointPath(std::string_view state_text) {
  return StateScanner(state_text).FindModelCheckpointPath();
}

Result<std::string> LatestCheckpoint(const std::string& dir) {
  const std::string state_path = dir + "/" + kStateFilename;
  Result<std::string> text = ReadSmallFile(state_path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return NotFoundError("no checkpoint in directory " + dir + " (" +
                           state_path + " does not exist)");
    }
    return text.status();
  }
  Result<std::string> path = ParseModelCheckpointPath(*text);
  if (!path.ok()) {
    return DataLossError(state_path + ": " + path.status().message());
  }
  std::string prefix = std::move(path).value();
  if (prefix.empty()) {
    return DataLossError(state_path + ": model_checkpoint_path is empty");
  }
  if (prefix[0] != '/') prefix = dir + "/" + prefix;
  if (!FileExists(IndexFilename(prefix))) {
    return NotFoundError(state_path + " names checkpoint " + prefix + ", but " +
                         IndexFilename(prefix) + " does not exist");
  }
  return prefix;
}

CheckpointReader::CheckpointReader(std::unique_ptr<BundleReader> bundle)
    : bundle_(std::move(bundle)) {}
CheckpointReader::~CheckpointReader() = default;

Result<std::unique_ptr<CheckpointReader>> CheckpointReader::Open(
    const std::string& path) {
  if (path.empty()) return InvalidArgumentError("empty checkpoint path");
  std::string prefix = path;
  if (IsDirectory(path)) {
    TP_ASSIGN_OR_RETURN(prefix, LatestCheckpoint(path));
  } else if (prefix.size() > kIndexSuffix.size() &&
             prefix.compare(prefix.size() - kIndexSuffix.size(),
                            kIndexSuffix.size(), kIndexSuffix) == 0 &&
             !FileExists(IndexFilename(prefix))) {
    prefix.resize(prefix.size() - kIndexSuffix.size());
  }
  TP_ASSIGN_OR_RETURN(std::unique_ptr<BundleReader> bundle,
                      BundleReader::Open(prefix));
  return std::unique_ptr<CheckpointReader>(
      new CheckpointReader(std::move(bundle)));
}

Result<TensorInfo> CheckpointReader::GetTensorInfo(std::string_view key) const {
  TP_ASSIGN_OR_RETURN(const BundleEntry* entry, bundle_->Lookup(key));
  TensorInfo info;
  info.dtype = entry->dtype;
  info.shape = entry->shape;
  // The reader checked every shape when it opened the index.
  TP_RETURN_IF_ERROR(ValidateShape(entry->shape, &info.num_elements));
  info.nbytes =
      static_cast<size_t>(info.num_elements) * DataTypeSize(entry->dtype);
  info.partitioned = !entry->slices.empty();
  return info;
}

Status CheckpointReader::ReadTensor(std::string_view key, void* dst,
                                    size_t nbytes) const {
  return bundle_->ReadTensor(key, dst, nbytes);
}

Result<std::shared_ptr<const MappedFile>> CheckpointReader::MapShard(
    int32_t shard_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<const MappedFile>& mapped = mapped_shards_[shard_id];
  if (mapped == nullptr) {
    const std::string name =
        DataFilename(prefix(), shard_id, bundle_->header().num_shards);
    Result<std::shared_ptr<const MappedFile>> opened = MappedFile::Open(name);
    if (!opened.ok()) {
      mapped_shards_.erase(shard_id);
      if (opened.status().code() == StatusCode::kNotFound) {
        return NotFoundError("data file " + name + " of checkpoint " +
                             prefix() + " is missing");
      }
      return opened.status();
    }
    mapped = std::move(opened).value();
  }
  return mapped;
}

Result<MappedTensor> CheckpointReader::MapTensor(
    std::string_view key, const MapOptions& options) const {
  TP_ASSIGN_OR_RETURN(const BundleEntry* entry, bundle_->Lookup(key));
  const std::string what =
      "tensor '" + std::string(key) + "' in checkpoint " + prefix();
  const size_t element_size = DataTypeSize(entry->dtype);
  if (element_size == 0) {
    return InvalidArgumentError(what + " is a " +
                                std::string(DataTypeName(entry->dtype)) +
                                " tensor; only fixed-size tensors can be "
                                "mapped (use ReadStringTensor)");
  }
  if (!entry->slices.empty()) {
    return UnimplementedError(what +
                              " is partitioned into slices and cannot be "
                              "viewed in place; read it with ReadTensor");
  }
  if ((bundle_->header().endianness == Endianness::kBig) != HostIsBigEndian()) {
    return UnimplementedError(what +
                              " was written in the other byte order and "
                              "cannot be viewed in place; read it with "
                              "ReadTensor");
  }
  TP_ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file,
                      MapShard(entry->shard_id));
  const uint64_t offset = static_cast<uint64_t>(entry->offset);
  const uint64_t size = static_cast<uint64_t>(entry->size);
  if (!file->Contains(offset, size)) {
    return DataLossError(what + ": bytes [" + std::to_string(offset) + ", " +
                         std::to_string(offset + size) +
                         ") lie past the end "
                         "of " +
                         file->name() + " (" + std::to_string(file->size()) +
                         " bytes; file truncated?)");
  }
  const char* data = file->data() + offset;
  if (options.verify_checksum) {
    const uint32_t actual = crc32c::Value(data, static_cast<size_t>(size));
    const uint32_t expected = crc32c::Unmask(entry->crc32c);
    if (actual != expected) {
      return DataLossError("checksum mismatch for " + what + " in " +
                           file->name() + " at offset " +
                           std::to_string(offset) + ": stored " +
                           Hex32(expected) + ", computed " + Hex32(actual) +
                           " (data corrupted)");
    }
  }
  MappedTensor view;
  view.file_ = std::move(file);
  view.data_ = data;
  view.size_ = static_cast<size_t>(size);
  view.dtype_ = entry->dtype;
  view.shape_ = entry->shape;
  view.num_elements_ = static_cast<int64_t>(size / element_size);
  return view;
}

Result<const TrackableObjectGraph*> CheckpointReader::ObjectGraph() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!graph_) {
    if (!HasTensor(kObjectGraphKey)) {
      graph_.emplace(NotFoundError(
          "checkpoint " + prefix() + " has no object graph (" +
          std::string(kObjectGraphKey) + "): it is a name-based checkpoint"));
    } else {
      Result<std::vector<std::string>> bytes =
          bundle_->ReadStringTensor(kObjectGraphKey);
      if (!bytes.ok()) {
        graph_.emplace(bytes.status());
      } else if (bytes->size() != 1) {
        graph_.emplace(DataLossError(std::string(kObjectGraphKey) + " in " +
                                     prefix() + " is not a scalar string"));
      } else {
        Result<TrackableObjectGraph> parsed = ParseObjectGraph((*bytes)[0]);
        graph_.emplace(
            parsed.ok() ? std::move(parsed)
                        : Result<TrackableObjectGraph>(parsed.status().Annotate(
                              "object graph of " + prefix())));
      }
    }
  }
  if (!graph_->ok()) return graph_->status();
  return &graph_->value();
}

Result<std::string> CheckpointReader::ObjectKey(
    std::string_view path, std::string_view attribute) const {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) names.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return ObjectKeyAt(names, attribute);
}

Result<std::string> CheckpointReader::ObjectKeyAt(
    const std::vector<std::string>& local_names,
    std::string_view attribute) const {
  TP_ASSIGN_OR_RETURN(const TrackableObjectGraph* graph, ObjectGraph());
  if (graph->nodes.empty()) {
    return DataLossError("object graph of " + prefix() + " has no nodes");
  }
  int32_t node = 0;
  std::string walked = "(root)";
  for (const std::string& name : local_names) {
    const TrackableObject& object = graph->nodes[static_cast<size_t>(node)];
    int32_t next = -1;
    for (const ObjectReference& child : object.children) {
      if (child.local_name == name) {
        next = child.node_id;
        break;
      }
    }
    if (next < 0) {
      return NotFoundError("object " + walked + " in checkpoint " + prefix() +
                           " has no child '" + name + "'");
    }
    node = next;
    walked += "." + name;
  }
  for (const SerializedTensor& tensor :
       graph->nodes[static_cast<size_t>(node)].attributes) {
    if (tensor.name == attribute) return tensor.checkpoint_key;
  }
  return NotFoundError("object " + walked + " in checkpoint " + prefix() +
                       " saved no tensor named '" + std::string(attribute) +
                       "'");
}

}  // namespace trackpoint

// Reads the worked-example fixture (tf.train.Checkpoint(v=[1.0, 2.0],
// s=["hi", ""])) through the installed headers and library, and checks every
// value. Prints "consumer: OK" and exits 0 when all is as expected.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "trackpoint/checkpoint_reader.h"

namespace {

int failures = 0;

void Check(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "consumer: FAILED: " << what << "\n";
    ++failures;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer PATH/TO/worked_example/tv\n";
    return 2;
  }
  auto reader = trackpoint::CheckpointReader::Open(argv[1]);
  if (!reader.ok()) {
    std::cerr << "consumer: " << reader.status().ToString() << "\n";
    return 1;
  }
  const trackpoint::CheckpointReader& r = **reader;
  Check(r.Keys().size() == 3, "three keys");

  auto key = r.ObjectKey("v");
  Check(key.ok() && *key == "v/.ATTRIBUTES/VARIABLE_VALUE", "object path v");
  auto info = r.GetTensorInfo("v/.ATTRIBUTES/VARIABLE_VALUE");
  Check(info.ok() && info->dtype == trackpoint::DataType::kFloat &&
            info->shape.dims == std::vector<int64_t>{2} && info->nbytes == 8,
        "v is float32[2]");

  float copy[2] = {0, 0};
  Check(r.ReadTensor("v/.ATTRIBUTES/VARIABLE_VALUE", copy, sizeof(copy)).ok() &&
            copy[0] == 1.0f && copy[1] == 2.0f,
        "ReadTensor v == [1, 2]");

  auto view = r.MapTensor("v/.ATTRIBUTES/VARIABLE_VALUE");
  float mapped[2] = {0, 0};
  if (view.ok()) std::memcpy(mapped, view->data(), sizeof(mapped));
  Check(
      view.ok() && view->size() == 8 && mapped[0] == 1.0f && mapped[1] == 2.0f,
      "MapTensor v == [1, 2]");

  auto s = r.ReadStringTensor("s/.ATTRIBUTES/VARIABLE_VALUE");
  Check(s.ok() && *s == std::vector<std::string>{"hi", ""},
        "s == [\"hi\", \"\"]");

  auto missing = r.GetTensorInfo("nope");
  Check(!missing.ok() &&
            missing.status().code() == trackpoint::StatusCode::kNotFound,
        "a missing key is NotFound");

  if (failures != 0) return 1;
  std::cout << "consumer: OK (" << r.prefix() << ")\n";
  return 0;
}

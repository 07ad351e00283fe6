// mlp_server: a small inference server whose weights come from a checkpoint.
//
// The model is a two-layer perceptron in Keras's Dense layout (kernel
// [inputs, outputs]):  y = relu(x W1 + b1) W2 + b2.  Its four tensors are
// looked up by object path ("model/layer1/kernel", ...) when the checkpoint
// has a TF2 object graph (tf.train.Checkpoint(model=...) or
// trackpoint.Checkpoint(model=...) wrote it), and by bundle key (the same
// strings) otherwise. float32 weights are viewed in place in the mmapped data
// file when they are aligned, and copied out otherwise.
//
// Protocol: one query per line on stdin, the input features separated by
// spaces; one answer per line on stdout, the outputs separated by spaces, or
// "error: <why>" for a malformed query. EOF ends the server.
//
//   mlp_server CHECKPOINT           serve (a prefix or a directory)
//   mlp_server --write-demo PREFIX  write a demo checkpoint (3 -> 4 -> 2)
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "trackpoint/bundle_writer.h"
#include "trackpoint/checkpoint_reader.h"

namespace {

using trackpoint::CheckpointReader;
using trackpoint::Result;
using trackpoint::Status;

// One float32 weight tensor: a zero-copy view when possible, else a copy.
struct Weight {
  trackpoint::MappedTensor view;
  std::vector<float> copy;
  const float* data = nullptr;
  std::vector<int64_t> dims;
};

Result<Weight> LoadWeight(const CheckpointReader& reader,
                          const std::string& path) {
  std::string key = path;
  if (reader.HasObjectGraph()) {
    TP_ASSIGN_OR_RETURN(key, reader.ObjectKey(path));
  }
  TP_ASSIGN_OR_RETURN(trackpoint::TensorInfo info, reader.GetTensorInfo(key));
  if (info.dtype != trackpoint::DataType::kFloat) {
    return trackpoint::InvalidArgumentError(
        path + " is " + trackpoint::DataTypeName(info.dtype) +
        ", expected float32");
  }
  Weight w;
  w.dims = info.shape.dims;
  Result<trackpoint::MappedTensor> view = reader.MapTensor(key);
  if (view.ok() && view->data_as<float>() != nullptr) {
    w.view = std::move(view).value();
    w.data = w.view.data_as<float>();
  } else {
    // Unaligned, partitioned, or the other byte order: copy it out.
    TP_ASSIGN_OR_RETURN(w.copy, reader.ReadVector<float>(key));
    w.data = w.copy.data();
  }
  return w;
}

struct Mlp {
  Weight w1, b1, w2, b2;
  int64_t inputs = 0, hidden = 0, outputs = 0;

  static Result<Mlp> Load(const CheckpointReader& reader) {
    Mlp m;
    TP_ASSIGN_OR_RETURN(m.w1, LoadWeight(reader, "model/layer1/kernel"));
    TP_ASSIGN_OR_RETURN(m.b1, LoadWeight(reader, "model/layer1/bias"));
    TP_ASSIGN_OR_RETURN(m.w2, LoadWeight(reader, "model/layer2/kernel"));
    TP_ASSIGN_OR_RETURN(m.b2, LoadWeight(reader, "model/layer2/bias"));
    if (m.w1.dims.size() != 2 || m.w2.dims.size() != 2 ||
        m.b1.dims.size() != 1 || m.b2.dims.size() != 1 ||
        m.w1.dims[1] != m.b1.dims[0] || m.w2.dims[0] != m.w1.dims[1] ||
        m.w2.dims[1] != m.b2.dims[0]) {
      return trackpoint::InvalidArgumentError(
          "the weights' shapes do not form a 2-layer perceptron");
    }
    m.inputs = m.w1.dims[0];
    m.hidden = m.w1.dims[1];
    m.outputs = m.w2.dims[1];
    return m;
  }

  std::vector<float> Run(const std::vector<float>& x) const {
    std::vector<float> h(static_cast<size_t>(hidden));
    for (int64_t j = 0; j < hidden; ++j) {
      float sum = b1.data[j];
      for (int64_t i = 0; i < inputs; ++i) {
        sum += x[static_cast<size_t>(i)] * w1.data[i * hidden + j];
      }
      h[static_cast<size_t>(j)] = sum > 0 ? sum : 0;
    }
    std::vector<float> y(static_cast<size_t>(outputs));
    for (int64_t k = 0; k < outputs; ++k) {
      float sum = b2.data[k];
      for (int64_t j = 0; j < hidden; ++j) {
        sum += h[static_cast<size_t>(j)] * w2.data[j * outputs + k];
      }
      y[static_cast<size_t>(k)] = sum;
    }
    return y;
  }
};

int Serve(const std::string& path) {
  auto reader = CheckpointReader::Open(path);
  if (!reader.ok()) {
    std::cerr << "mlp_server: " << reader.status().ToString() << "\n";
    return 1;
  }
  auto mlp = Mlp::Load(**reader);
  if (!mlp.ok()) {
    std::cerr << "mlp_server: " << mlp.status().ToString() << "\n";
    return 1;
  }
  std::cerr << "mlp_server: " << mlp->inputs << " -> " << mlp->hidden << " -> "
            << mlp->outputs << " from " << (*reader)->prefix() << "\n";
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::vector<float> x;
    std::string token;
    bool bad = false;
    while (in >> token) {
      char* end = nullptr;
      const float value = std::strtof(token.c_str(), &end);
      if (end == token.c_str() || *end != '\0' || !std::isfinite(value)) {
        bad = true;
        break;
      }
      x.push_back(value);
    }
    if (bad || x.size() != static_cast<size_t>(mlp->inputs)) {
      std::printf("error: expected %lld numbers\n",
                  static_cast<long long>(mlp->inputs));
    } else {
      const std::vector<float> y = mlp->Run(x);
      for (size_t k = 0; k < y.size(); ++k) {
        std::printf(k == 0 ? "%.6g" : " %.6g", y[k]);
      }
      std::printf("\n");
    }
    std::fflush(stdout);
  }
  return 0;
}

// A demo checkpoint with fixed weights, as a name-based bundle.
int WriteDemo(const std::string& prefix) {
  auto writer = trackpoint::BundleWriter::Open(prefix);
  if (!writer.ok()) {
    std::cerr << "mlp_server: " << writer.status().ToString() << "\n";
    return 1;
  }
  std::vector<float> w1(3 * 4), b1(4), w2(4 * 2), b2(2);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 4; ++j) w1[i * 4 + j] = 0.25f * (i + 1) - 0.5f * j;
  }
  for (int j = 0; j < 4; ++j) b1[j] = 0.5f - 0.25f * j;
  for (int j = 0; j < 4; ++j) {
    for (int k = 0; k < 2; ++k) w2[j * 2 + k] = k == 0 ? 1.0f + j : -0.5f;
  }
  b2 = {0.125f, -1.0f};
  auto add = [&](const char* key, std::vector<int64_t> dims,
                 const std::vector<float>& v) {
    return (*writer)->Add(key, trackpoint::DataType::kFloat, {std::move(dims)},
                          v.data(), v.size() * sizeof(float));
  };
  Status s = add("model/layer1/kernel", {3, 4}, w1);
  if (s.ok()) s = add("model/layer1/bias", {4}, b1);
  if (s.ok()) s = add("model/layer2/kernel", {4, 2}, w2);
  if (s.ok()) s = add("model/layer2/bias", {2}, b2);
  if (s.ok()) s = (*writer)->Finish();
  if (!s.ok()) {
    std::cerr << "mlp_server: " << s.ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--write-demo") {
    return WriteDemo(argv[2]);
  }
  if (argc != 2 || argv[1][0] == '-') {
    std::cerr << "usage: mlp_server CHECKPOINT\n"
                 "       mlp_server --write-demo PREFIX\n";
    return 2;
  }
  return Serve(argv[1]);
}

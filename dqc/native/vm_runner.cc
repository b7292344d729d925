// dqc_vm_runner: runs one function of a dqc model library in TVM's Relax VM, with no Python.
//
// It is how dqc executes a cross-compiled (aarch64) model on an x86 host under qemu-user:
// the Python side writes the arguments as raw files, this program runs the function and
// writes the results back, so outputs can be compared with the x86 build bit for bit.
//
//   dqc_vm_runner LIBRARY FUNCTION DIR REPEATS
//
// DIR/args.txt has one line per argument, "FILE DTYPE NDIM DIM...", FILE holding the raw
// C-order bytes. Results go to DIR/out<i>.bin, described the same way in DIR/outputs.txt.
// With REPEATS > 0 the function is then called REPEATS more times and the median wall time
// of one call is printed as "median_ms <value>".
#include <tvm/ffi/container/array.h>
#include <tvm/ffi/container/tensor.h>
#include <tvm/ffi/extra/module.h>
#include <tvm/ffi/function.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace ffi = tvm::ffi;

namespace {

constexpr size_t kAlignment = 64;  // what TVM's kernels assume of every tensor

struct AlignedAlloc {
  void AllocData(DLTensor* tensor) {
    size_t bytes = ffi::GetDataSize(*tensor);
    size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    tensor->data = std::aligned_alloc(kAlignment, std::max(rounded, kAlignment));
  }
  void FreeData(DLTensor* tensor) { std::free(tensor->data); }
};

ffi::Tensor ReadArgument(const std::string& dir, const std::string& line) {
  std::istringstream fields(line);
  std::string file, dtype;
  int ndim = 0;
  fields >> file >> dtype >> ndim;
  std::vector<int64_t> shape(ndim);
  for (auto& dim : shape) fields >> dim;
  ffi::Tensor tensor = ffi::Tensor::FromNDAlloc(AlignedAlloc(), ffi::ShapeView(shape.data(), shape.size()),
                                                ffi::StringToDLDataType(dtype), {kDLCPU, 0});
  std::ifstream in(dir + "/" + file, std::ios::binary);
  size_t bytes = ffi::GetDataSize(*tensor.GetDLTensorPtr());
  in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(bytes));
  if (!in || static_cast<size_t>(in.gcount()) != bytes) {
    throw std::runtime_error("cannot read " + std::to_string(bytes) + " bytes from " + file);
  }
  return tensor;
}

void WriteResults(const std::string& dir, const ffi::Any& result) {
  std::vector<ffi::Tensor> tensors;
  if (auto single = result.as<ffi::Tensor>()) {
    tensors.push_back(*single);
  } else {
    for (const ffi::Any& item : result.cast<ffi::Array<ffi::Any>>()) {
      tensors.push_back(item.cast<ffi::Tensor>());
    }
  }
  std::ofstream listing(dir + "/outputs.txt");
  for (size_t i = 0; i < tensors.size(); ++i) {
    const DLTensor* t = tensors[i].GetDLTensorPtr();
    std::string file = "out" + std::to_string(i) + ".bin";
    std::ofstream(dir + "/" + file, std::ios::binary)
        .write(static_cast<const char*>(t->data),
               static_cast<std::streamsize>(ffi::GetDataSize(*t)));
    listing << file << " " << ffi::DLDataTypeToString(t->dtype) << " " << t->ndim;
    for (int d = 0; d < t->ndim; ++d) listing << " " << t->shape[d];
    listing << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: dqc_vm_runner LIBRARY FUNCTION DIR REPEATS\n";
    return 2;
  }
  const std::string library = argv[1], function = argv[2], dir = argv[3];
  const int repeats = std::atoi(argv[4]);
  try {
    ffi::Module executable = ffi::Module::LoadFromFile(library);
    ffi::Module vm = executable->GetFunction("vm_load_executable").value()().cast<ffi::Module>();
    constexpr int kPooledAllocator = 2;
    vm->GetFunction("vm_initialization").value()(static_cast<int>(kDLCPU), 0, kPooledAllocator);
    ffi::Function run = vm->GetFunction(function).value();

    std::vector<ffi::Tensor> args;
    std::ifstream listing(dir + "/args.txt");
    for (std::string line; std::getline(listing, line);) {
      if (!line.empty()) args.push_back(ReadArgument(dir, line));
    }
    std::vector<ffi::AnyView> views(args.begin(), args.end());
    ffi::Any result;
    run.CallPacked(views.data(), static_cast<int32_t>(views.size()), &result);
    WriteResults(dir, result);

    std::vector<double> times;
    for (int i = 0; i < repeats; ++i) {
      auto start = std::chrono::steady_clock::now();
      run.CallPacked(views.data(), static_cast<int32_t>(views.size()), &result);
      times.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
    }
    if (!times.empty()) {
      std::sort(times.begin(), times.end());
      std::cout << "median_ms " << times[times.size() / 2] << "\n";
    }
  } catch (const std::exception& err) {
    std::cerr << "dqc_vm_runner: " << err.what() << "\n";
    return 1;
  }
  return 0;
}

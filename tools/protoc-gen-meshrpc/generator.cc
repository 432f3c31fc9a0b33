#include "generator.h"

#include <google/protobuf/io/printer.h>
#include <google/protobuf/io/zero_copy_stream.h>

#include <memory>
#include <optional>

#include "header_printer.h"
#include "service_model.h"
#include "source_printer.h"

namespace meshrpc::protoc_gen {
namespace {

namespace pb = google::protobuf;

using PrintFunction = void (*)(const FileModel&, pb::io::Printer&);

bool write_file(const FileModel& model, const std::string& name, PrintFunction print,
                pb::compiler::GeneratorContext& context, std::string* error) {
  std::unique_ptr<pb::io::ZeroCopyOutputStream> stream(context.Open(name));
  pb::io::Printer out(stream.get(), '$');
  print(model, out);
  if (out.failed()) {
    *error = "could not write " + name;
    return false;
  }
  return true;
}

}  // namespace

bool Generator::Generate(const pb::FileDescriptor* file, const std::string& parameter,
                         pb::compiler::GeneratorContext* context, std::string* error) const {
  if (!parameter.empty()) {
    *error = "protoc-gen-meshrpc takes no options, got '" + parameter + "'";
    return false;
  }
  std::optional<FileModel> model = read_file_model(*file, error);
  if (!model) return false;
  return write_file(*model, model->base_name + ".meshrpc.h", &print_header, *context, error) &&
         write_file(*model, model->base_name + ".meshrpc.cc", &print_source, *context, error);
}

}  // namespace meshrpc::protoc_gen

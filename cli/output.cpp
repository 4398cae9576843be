#include "cli/output.hpp"

#include <google/protobuf/util/json_util.h>

#include <iostream>

#include "cli/exit_codes.hpp"
#include "common/grpc_codes.hpp"

namespace notify::cli {

std::string to_json(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  // Only fails for messages that can't be printed (unresolvable Any types),
  // which the admin API has none of.
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string status_name(int code) {
  if (code >= 0 && code < static_cast<int>(kGrpcCodeNames.size())) return std::string(kGrpcCodeNames[code]);
  return "CODE_" + std::to_string(code);
}

int report_failure(std::string_view command, const grpc::Status& status) {
  std::cerr << "notifyctl " << command << ": " << status_name(status.error_code()) << ": " << status.error_message()
            << '\n';
  return exit_code_for(status.error_code());
}

int report(std::string_view command, const grpc::Status& status, const google::protobuf::Message& response) {
  if (!status.ok()) return report_failure(command, status);
  std::cout << to_json(response) << std::endl;
  return kExitOk;
}

}  // namespace notify::cli

// MatcompConstantsJson(): the constants this op library was compiled with (cc/core/constants.h),
// as a JSON object, so a test can check that the kernels, `_core` and Python agree.
#include <cstdio>
#include <string>

#include "cc/core/constants_list.h"

namespace {

std::string Json(int64_t value) { return std::to_string(value); }
std::string Json(uint64_t value) { return std::to_string(value); }
std::string Json(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

std::string BuildConstantsJson() {
  std::string json = "{";
  matcomp::ForEachConstant([&json](const char* name, auto value) {
    if (json.size() > 1) json += ", ";
    json += std::string("\"") + name + "\": " + Json(value);
  });
  return json + "}";
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const char* MatcompConstantsJson() {
  static const std::string json = BuildConstantsJson();
  return json.c_str();
}

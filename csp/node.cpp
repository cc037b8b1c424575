#include "csp/node.h"

#include <cctype>
#include <charconv>
#include <cstdint>

#include "base/ascii.h"

namespace dm::csp {

std::string_view FormatName(Format f) {
  switch (f) {
    case Format::kNode:
      return "node";
    case Format::kChr:
      return "chr";
    case Format::kInt:
      return "int";
    case Format::kBool:
      return "bool";
    case Format::kB64:
      return "b64";
    case Format::kXml:
      return "xml";
    case Format::kNull:
      return "null";
  }
  return "chr";
}

NodeDef Interior(std::string name, unsigned access, Storage storage,
                 std::vector<NodeDef> children) {
  NodeDef d;
  d.name = std::move(name);
  d.access = access;
  d.storage = storage;
  d.children = std::move(children);
  return d;
}

NodeDef DynamicInterior(Naming naming, std::string label, unsigned access, Storage storage,
                        std::vector<NodeDef> children) {
  NodeDef d = Interior(std::move(label), access, storage, std::move(children));
  d.naming = naming;
  return d;
}

NodeDef Leaf(std::string name, Format format, unsigned access, Storage storage) {
  NodeDef d;
  d.name = std::move(name);
  d.format = format;
  d.access = access;
  d.storage = storage;
  return d;
}

NodeDef ComputedLeaf(std::string name, Format format,
                     std::function<Result<std::optional<std::string>>(const NodeAddress&)> get) {
  NodeDef d = Leaf(std::move(name), format, access::kGet, Storage::kComputed);
  d.get = std::move(get);
  return d;
}

int StatusCodeFor(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return status::kOk;
    case Code::kInvalidArgument:
      return status::kBadRequest;
    case Code::kNotFound:
      return status::kNotFound;
    case Code::kAlreadyExists:
      return status::kAlreadyExists;
    case Code::kPermissionDenied:
      return status::kNotAllowed;
    case Code::kUnimplemented:
      return status::kOptionalFeatureNotSupported;
    case Code::kResourceExhausted:
      return status::kEntityTooLarge;
    default:
      return status::kCommandFailed;
  }
}

Result<std::string> CanonicalValue(Format format, std::string_view data) {
  switch (format) {
    case Format::kBool: {
      const std::string v = AsciiLower(data);
      if (v == "true" || v == "false") return v;
      return InvalidArgument("expected true or false, got '" + std::string(data) + "'");
    }
    case Format::kInt: {
      std::string_view v = data;
      if (!v.empty() && v.front() == '+') v.remove_prefix(1);
      int64_t n = 0;
      auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      if (v.empty() || ec != std::errc() || ptr != v.data() + v.size()) {
        return InvalidArgument("expected a decimal integer, got '" + std::string(data) + "'");
      }
      return std::to_string(n);
    }
    case Format::kNode:
      if (!data.empty()) return InvalidArgument("an interior node takes no data");
      return std::string();
    default:
      return std::string(data);
  }
}

}  // namespace dm::csp

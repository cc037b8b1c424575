// How a CSP describes its nodes: a table of NodeDefs (name, format, allowed operations, scope,
// where the value lives), so that the generic tree (csp/tree.h) applies every OMA-DM status
// rule the same way for all CSPs and a CSP is mostly data plus a few hooks.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "csp/dm_tree.h"
#include "csp/uri.h"

namespace dm::csp {

// Meta Format values (protocol-omadm.md 1.7).
enum class Format { kNode, kChr, kInt, kBool, kB64, kXml, kNull };
std::string_view FormatName(Format f);

// Allowed operations (DDF AccessType), combined as a bit set.
namespace access {
inline constexpr unsigned kAdd = 1u << 0;
inline constexpr unsigned kDelete = 1u << 1;
inline constexpr unsigned kGet = 1u << 2;
inline constexpr unsigned kReplace = 1u << 3;
inline constexpr unsigned kExec = 1u << 4;
inline constexpr unsigned kAddDeleteGet = kAdd | kDelete | kGet;
inline constexpr unsigned kAddDeleteGetReplace = kAdd | kDelete | kGet | kReplace;
}  // namespace access

// Which tree a node appears in: ./Device (and the un-prefixed form), ./User, or both.
enum class NodeScope { kDevice, kUser, kBoth };

// Naming of a node: a fixed name, or a dynamic one (DDF DynamicNodeNaming).
enum class Naming {
  kStatic,
  kAnyName,  // ServerGeneratedUniqueIdentifier, e.g. DMClient {ProviderID}, users, settings
  kGuid,     // UniqueName GUID without braces, e.g. PassportForWork {TenantId}; lower-cased
};

// Where a node's existence and value live.
enum class Storage {
  kPermanent,  // interior node that always exists (DDF Scope Permanent)
  kStored,     // in the tree's own node store: interior nodes that are Added, plain leaves
  kExternal,   // leaf whose value another component keeps (read/write/clear hooks); the node
               // store records that the leaf exists, so subtree Deletes find it
  kComputed,   // produced on demand: get/set/instances hooks
};

// A node as the hooks see it.
struct NodeAddress {
  UriScope scope = UriScope::kDevice;
  std::string user;                   // the user for ./User, else empty
  std::vector<std::string> segments;  // decoded, canonical spelling, after the scope prefix
  std::vector<std::string> dynamic;   // names bound to dynamic nodes on the path, outermost first
  std::string Path() const { return JoinPath(segments); }
  std::string Uri() const { return CanonicalUri(scope, segments); }
};

struct NodeDef {
  std::string name;  // the static name, or a label such as "{TenantId}" for a dynamic node
  Naming naming = Naming::kStatic;
  Format format = Format::kNode;
  unsigned access = access::kGet;
  NodeScope scope = NodeScope::kBoth;
  Storage storage = Storage::kPermanent;

  // kStored leaves: the value Get reports while none was written (DDF DefaultValue); a
  // default makes the leaf visible as soon as its parent exists.
  std::optional<std::string> default_value;
  // An Add/Replace with empty data removes the value (Reboot schedules).
  bool empty_deletes = false;
  // A value rule beyond the format (range, pattern). InvalidArgument -> 400.
  std::function<Status(const NodeAddress&, std::string_view value)> validate;
  // Validates and returns the value's canonical form (what is stored and compared when a
  // re-sent Add is checked for "same value"); runs after validate. InvalidArgument -> 400.
  std::function<Result<std::string>(const NodeAddress&, std::string_view value)> normalize;

  // kExternal leaves.
  std::function<Result<std::optional<std::string>>(const NodeAddress&)> read;
  std::function<Status(const NodeAddress&, std::string_view value)> write;
  std::function<Status(const NodeAddress&)> clear;

  // kComputed leaves: the value, nullopt when the node is absent (404); set serves Replace.
  std::function<Result<std::optional<std::string>>(const NodeAddress&)> get;
  std::function<Status(const NodeAddress&, std::string_view value)> set;
  // kComputed dynamic nodes: the names that exist under the parent (address of the parent).
  std::function<Result<std::vector<std::string>>(const NodeAddress&)> instances;
  // Exec.
  std::function<OpResult(const NodeAddress&, const NodeValue&)> exec;

  std::vector<NodeDef> children;

  bool is_leaf() const { return format != Format::kNode; }
  bool is_dynamic() const { return naming != Naming::kStatic; }

  // Builder helpers for readable CSP tables.
  NodeDef&& DeviceOnly() && {
    scope = NodeScope::kDevice;
    return std::move(*this);
  }
  NodeDef&& UserOnly() && {
    scope = NodeScope::kUser;
    return std::move(*this);
  }
  NodeDef&& Default(std::string v) && {
    default_value = std::move(v);
    return std::move(*this);
  }
  NodeDef&& Validate(std::function<Status(const NodeAddress&, std::string_view)> f) && {
    validate = std::move(f);
    return std::move(*this);
  }
};

// An interior node with a fixed name.
NodeDef Interior(std::string name, unsigned access, Storage storage,
                 std::vector<NodeDef> children = {});
// An interior node with a dynamic name; `label` is for messages ("{TenantId}").
NodeDef DynamicInterior(Naming naming, std::string label, unsigned access, Storage storage,
                        std::vector<NodeDef> children = {});
NodeDef Leaf(std::string name, Format format, unsigned access, Storage storage);
// A Get-only computed leaf.
NodeDef ComputedLeaf(std::string name, Format format,
                     std::function<Result<std::optional<std::string>>(const NodeAddress&)> get);

// OMA-DM status for a Status returned by a hook or a lower module.
int StatusCodeFor(const Status& s);

// Format-level check and normal form of a leaf value: bool "true"/"false" (case-insensitive
// on input, lower-case out), int decimal (fits in 64 bits; "+7", "007" -> "7").
Result<std::string> CanonicalValue(Format format, std::string_view data);

}  // namespace dm::csp

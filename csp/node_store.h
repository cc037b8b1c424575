// The DM tree's own persisted nodes (table csp_nodes): interior nodes a server Added, leaf
// values that just live in the tree, and markers for leaves whose value another component
// holds. Keys are (scope, user, canonical path); paths are EncodeSegment-ed segments joined by
// '/', so "a/b" is a descendant of "a" exactly when it starts with "a/".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "csp/uri.h"

namespace dm::storage {
class Database;
}

namespace dm::csp {

struct NodeKey {
  UriScope scope = UriScope::kDevice;
  std::string user;  // empty for device scope
  std::string path;  // "Vendor/MSFT/Reboot/Schedule/Single"
};

struct NodeRow {
  std::string path;
  std::string format;
  std::optional<std::string> value;
  bool external = false;
  TimePoint updated_at;
};

class NodeStore {
 public:
  NodeStore(storage::Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  Result<std::optional<NodeRow>> Find(const NodeKey& key) const;
  // Inserts or replaces the row; updated_at = now.
  Status Put(const NodeKey& key, std::string_view format, const std::optional<std::string>& value,
             bool external);
  Status Remove(const NodeKey& key);
  // The node itself and every descendant, parents before children.
  Result<std::vector<NodeRow>> Subtree(const NodeKey& key) const;
  Status RemoveSubtree(const NodeKey& key);
  // Removes the rows in key.scope/key.user whose path matches the SQLite GLOB `pattern`,
  // except key.path itself.
  Status RemoveMatchingExcept(const NodeKey& key, std::string_view pattern);
  // Decoded names of the direct children, in name order.
  Result<std::vector<std::string>> ChildNames(const NodeKey& key) const;

 private:
  storage::Database& db_;
  const Clock& clock_;
};

}  // namespace dm::csp

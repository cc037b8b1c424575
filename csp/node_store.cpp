#include "csp/node_store.h"

#include "storage/database.h"

namespace dm::csp {
namespace {

std::string_view ScopeText(UriScope s) { return s == UriScope::kUser ? "user" : "device"; }

std::string ParentOf(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

// Descendants of `path` are the paths in ["path/", "path0"): '0' follows '/' in byte order
// and '/' never occurs inside an encoded segment.
std::string LowerBound(std::string_view path) { return std::string(path) + "/"; }
std::string UpperBound(std::string_view path) { return std::string(path) + "0"; }

NodeRow ReadRow(const storage::Statement& st) {
  NodeRow row;
  row.path = st.Text(0);
  row.format = st.Text(1);
  row.value = st.OptText(2);
  row.external = st.Int(3) != 0;
  row.updated_at = FromUnixSeconds(st.Int(4));
  return row;
}

}  // namespace

Result<std::optional<NodeRow>> NodeStore::Find(const NodeKey& key) const {
  DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT path, format, value, external, updated_at "
                                           "FROM csp_nodes WHERE scope = ? AND user = ? "
                                           "AND path = ?"));
  st.BindAll(ScopeText(key.scope), key.user, key.path);
  DM_ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return std::optional<NodeRow>();
  return std::optional<NodeRow>(ReadRow(st));
}

Status NodeStore::Put(const NodeKey& key, std::string_view format,
                      const std::optional<std::string>& value, bool external) {
  DM_ASSIGN_OR_RETURN(
      auto st, db_.Prepare("INSERT INTO csp_nodes (scope, user, path, parent, format, value, "
                           "external, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                           "ON CONFLICT (scope, user, path) DO UPDATE SET "
                           "format = excluded.format, value = excluded.value, "
                           "external = excluded.external, updated_at = excluded.updated_at"));
  std::string parent = ParentOf(key.path);
  st.BindAll(ScopeText(key.scope), key.user, key.path, parent, format, value, external,
             ToUnixSeconds(clock_.Now()));
  return st.Run();
}

Status NodeStore::Remove(const NodeKey& key) {
  return db_.Run("DELETE FROM csp_nodes WHERE scope = ? AND user = ? AND path = ?",
                 ScopeText(key.scope), key.user, key.path);
}

Result<std::vector<NodeRow>> NodeStore::Subtree(const NodeKey& key) const {
  DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT path, format, value, external, updated_at FROM "
                                           "csp_nodes WHERE scope = ? AND user = ? AND "
                                           "(path = ? OR (path >= ? AND path < ?)) ORDER BY path"));
  std::string lo = LowerBound(key.path), hi = UpperBound(key.path);
  st.BindAll(ScopeText(key.scope), key.user, key.path, lo, hi);
  std::vector<NodeRow> rows;
  for (;;) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    rows.push_back(ReadRow(st));
  }
  return rows;
}

Status NodeStore::RemoveSubtree(const NodeKey& key) {
  return db_.Run(
      "DELETE FROM csp_nodes WHERE scope = ? AND user = ? AND "
      "(path = ? OR (path >= ? AND path < ?))",
      ScopeText(key.scope), key.user, key.path, LowerBound(key.path), UpperBound(key.path));
}

Status NodeStore::RemoveMatchingExcept(const NodeKey& key, std::string_view pattern) {
  return db_.Run("DELETE FROM csp_nodes WHERE scope = ? AND user = ? AND path GLOB ? AND path <> ?",
                 ScopeText(key.scope), key.user, pattern, key.path);
}

Result<std::vector<std::string>> NodeStore::ChildNames(const NodeKey& key) const {
  DM_ASSIGN_OR_RETURN(auto st, db_.Prepare("SELECT path FROM csp_nodes WHERE scope = ? AND "
                                           "user = ? AND parent = ? ORDER BY path"));
  st.BindAll(ScopeText(key.scope), key.user, key.path);
  std::vector<std::string> names;
  for (;;) {
    DM_ASSIGN_OR_RETURN(bool row, st.Step());
    if (!row) break;
    std::string path = st.Text(0);
    size_t slash = path.rfind('/');
    std::string_view last = slash == std::string::npos ? std::string_view(path)
                                                       : std::string_view(path).substr(slash + 1);
    DM_ASSIGN_OR_RETURN(std::string name, DecodeSegment(last));
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace dm::csp

// The generic DM tree: CSP tables (csp/node.h) mounted by URI prefix, the node store, and the
// OMA-DM status rules applied the same way for every CSP. The rules, where the references
// leave room (protocol-omadm.md 1.4/1.6, csp-and-container.md 1.2/2.2):
//
//  URI       malformed -> 400; a query -> 406; a path no CSP defines -> 404; static names and
//            the ./Device, ./User prefixes match case-insensitively in every CSP (the DDFs'
//            CaseSense CIS) and are stored in the CSP's spelling; dynamic names keep the
//            server's spelling (GUIDs lower-cased); a dynamic name that breaks its rule ({TenantId} not a GUID) -> 400 for Add/Replace, 404 otherwise.
//  Scope     a device-only node under ./User (or a user-only one under ./Device) -> 405;
//            ./User with no signed-in user in the Context -> 404.
//  Access    an operation the node does not allow (Replace/Add/Delete on a Get-only node,
//            Exec on a non-Exec node) -> 405. Checked before existence.
//  Format    Add/Replace of a leaf whose Meta Format differs from the node's -> 415; an
//            interior Add takes Format node or none (chr) and no data, else 415/400.
//  Value     unparsable or out of range (the node's rule, e.g. the policy catalog) -> 400.
//  Add       missing interior ancestors the CSP defines as Addable are created implicitly;
//            an existing node -> 418, except an existing leaf with the same value (after
//            normalisation) -> 200, because servers re-send commands whose Status they lost.
//  Replace   of a leaf the CSP defines: sets it whether or not it existed, creating missing
//            dynamic interior ancestors (as Add would). MS-MDM says Replace of a missing node
//            is an error, but Intune and Fleet send Replace for settings, and Fleet re-sends a
//            418 Add as Replace; refusing would leave those settings unapplied. A URI the CSP
//            does not define stays 404.
//  Get       of a missing node -> 404, including a policy leaf that is not configured (Windows
//            does not document this case; an explicit "nothing configured here" is what an
//            admin needs, and a default would look like a value the server set). Interior
//            nodes list their existing children, '/'-separated, Format node.
//  Delete    of a missing node -> 404; an interior node goes with its whole subtree, and every
//            externally held value below it (policy values) is cleared.
//
// Every mutating command runs in its own savepoint, so a failed command leaves nothing half
// done, and the caller's transaction (the SyncML message, an Atomic) covers it.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "base/clock.h"
#include "csp/dm_tree.h"
#include "csp/node.h"
#include "csp/node_store.h"

namespace dm::storage {
class Database;
}

namespace dm::csp {

class Tree final : public DmTree {
 public:
  Tree(storage::Database& db, const Clock& clock);
  ~Tree() override;

  // Attaches a CSP's root node below `parent` ("" = the root, "Vendor/MSFT"); missing parents
  // become permanent Get-only nodes present in both scopes.
  void Mount(std::string_view parent, NodeDef csp_root);
  // Runs in OnCommitted() (the device tree evaluates policy there).
  void SetOnCommitted(std::function<void()> f) { on_committed_ = std::move(f); }

  OpResult Add(const Context& ctx, std::string_view uri, const NodeValue& value) override;
  OpResult Replace(const Context& ctx, std::string_view uri, const NodeValue& value) override;
  OpResult Delete(const Context& ctx, std::string_view uri) override;
  GetResult Get(const Context& ctx, std::string_view uri) override;
  OpResult Exec(const Context& ctx, std::string_view uri, const NodeValue& value) override;
  void OnCommitted() override;

  NodeStore& store() { return store_; }

 private:
  struct Resolved;
  enum class Op { kAdd, kReplace, kDelete, kGet, kExec };

  bool Resolve(const Context& ctx, std::string_view uri, Op op, Resolved& out, OpResult& error);
  bool ResolveSegments(UriScope scope, const std::string& user,
                       const std::vector<std::string>& segments, Resolved& out,
                       OpResult& error) const;
  Result<bool> HasRow(const Resolved& r, size_t depth) const;
  Result<bool> Exists(const Resolved& r, size_t depth) const;
  // The first missing ancestor of the node (0 = all there).
  Result<size_t> MissingAncestor(const Resolved& r) const;
  Result<std::optional<std::string>> ReadLeaf(const Resolved& r) const;
  Result<std::vector<std::string>> ListChildren(const Resolved& r) const;
  // Creates missing stored interior ancestors; NotFound if a missing one cannot be created.
  Status CreateAncestors(const Resolved& r);
  Status WriteLeaf(const Resolved& r, const std::string& value);
  Status DeleteSubtree(const Resolved& r);
  OpResult CheckLeafValue(const Resolved& r, const NodeValue& value, std::string& canonical) const;
  OpResult DoAdd(const Context& ctx, std::string_view uri, const NodeValue& value);
  OpResult DoReplace(const Context& ctx, std::string_view uri, const NodeValue& value);
  OpResult DoDelete(const Context& ctx, std::string_view uri);
  GetResult DoGet(const Context& ctx, std::string_view uri);
  OpResult DoExec(const Context& ctx, std::string_view uri, const NodeValue& value);

  storage::Database& db_;
  NodeStore store_;
  NodeDef root_;
  std::function<void()> on_committed_;
};

}  // namespace dm::csp

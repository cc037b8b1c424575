#include "csp/tree.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <set>

#include "base/ascii.h"
#include "storage/database.h"

namespace dm::csp {
namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// 8-4-4-4-12 hex digits, no braces (DDF DynamicNodeNaming UniqueName for {TenantId}).
bool IsGuidWithoutBraces(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !IsHex(s[i])) return false;
  }
  return true;
}

bool ScopeAllows(const NodeDef& d, UriScope scope) {
  return d.scope == NodeScope::kBoth ||
         (d.scope == NodeScope::kDevice ? scope == UriScope::kDevice : scope == UriScope::kUser);
}

bool HasDefault(const NodeDef& d) { return d.storage == Storage::kStored && d.default_value; }

OpResult Fail(int code, std::string reason) { return OpResult{code, std::move(reason)}; }
OpResult Fail(const Status& s) { return OpResult{StatusCodeFor(s), s.message()}; }
GetResult GetFail(const OpResult& r) {
  GetResult g;
  g.code = r.code;
  g.reason = r.reason;
  return g;
}

std::string_view OpName(int op) {
  static constexpr std::string_view kNames[] = {"Add", "Replace", "Delete", "Get", "Exec"};
  return kNames[op];
}

}  // namespace

struct Tree::Resolved {
  UriScope scope = UriScope::kDevice;
  std::string user;
  std::vector<const NodeDef*> chain;  // chain[0] = root; chain[i] = node of segment i-1
  std::vector<std::string> names;     // canonical names of the segments
  std::vector<size_t> dynamic_upto;   // dynamic names bound within the first i segments
  std::vector<std::string> dynamic;
  std::string bad_name;  // why a dynamic name breaks its rule; empty when none does

  size_t depth() const { return names.size(); }
  const NodeDef& def() const { return *chain.back(); }
  std::string uri() const { return CanonicalUri(scope, names); }
  NodeAddress AddressAt(size_t d) const {
    NodeAddress a;
    a.scope = scope;
    a.user = user;
    a.segments.assign(names.begin(), names.begin() + static_cast<long>(d));
    a.dynamic.assign(dynamic.begin(), dynamic.begin() + static_cast<long>(dynamic_upto[d]));
    return a;
  }
  NodeAddress Address() const { return AddressAt(depth()); }
  NodeKey KeyAt(size_t d) const {
    std::vector<std::string> prefix(names.begin(), names.begin() + static_cast<long>(d));
    return NodeKey{scope, user, JoinPath(prefix)};
  }
  NodeKey Key() const { return KeyAt(depth()); }
};

Tree::Tree(storage::Database& db, const Clock& clock) : db_(db), store_(db, clock) {
  root_ = Interior(".", access::kGet, Storage::kPermanent);
}

Tree::~Tree() = default;

void Tree::Mount(std::string_view parent, NodeDef csp_root) {
  NodeDef* at = &root_;
  size_t start = 0;
  while (start < parent.size()) {
    size_t slash = parent.find('/', start);
    std::string_view name = parent.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    auto it = std::find_if(at->children.begin(), at->children.end(),
                           [&](const NodeDef& c) { return c.name == name; });
    if (it == at->children.end()) {
      at->children.push_back(Interior(std::string(name), access::kGet, Storage::kPermanent));
      it = at->children.end() - 1;
    }
    at = &*it;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  at->children.push_back(std::move(csp_root));
}

bool Tree::ResolveSegments(UriScope scope, const std::string& user,
                           const std::vector<std::string>& segments, Resolved& out,
                           OpResult& error) const {
  out = Resolved{};
  out.scope = scope;
  out.user = scope == UriScope::kUser ? user : std::string();
  out.chain.push_back(&root_);
  out.dynamic_upto.push_back(0);
  for (const std::string& seg : segments) {
    const NodeDef* parent = out.chain.back();
    const NodeDef* match = nullptr;
    const NodeDef* dynamic = nullptr;
    for (const NodeDef& c : parent->children) {
      if (c.is_dynamic()) {
        dynamic = &c;
      } else if (AsciiEqualsIgnoreCase(c.name, seg)) {
        match = &c;
        break;
      }
    }
    std::string name;
    if (match != nullptr) {
      name = match->name;
    } else if (dynamic != nullptr) {
      match = dynamic;
      name = seg;
      if (dynamic->naming == Naming::kGuid) {
        if (!IsGuidWithoutBraces(seg) && out.bad_name.empty()) {
          out.bad_name =
              "'" + seg + "' is not a valid " + dynamic->name + ": expected a GUID without braces";
        }
        name = AsciiLower(seg);
      }
      out.dynamic.push_back(name);
    } else {
      std::string where =
          out.names.empty() ? std::string("the root") : CanonicalUri(scope, out.names);
      error = Fail(status::kNotFound, "no node '" + seg + "' under " + where);
      return false;
    }
    out.names.push_back(std::move(name));
    out.chain.push_back(match);
    out.dynamic_upto.push_back(out.dynamic.size());
  }
  return true;
}

bool Tree::Resolve(const Context& ctx, std::string_view uri, Op op, Resolved& out,
                   OpResult& error) {
  auto parsed = ParseUri(uri);
  if (!parsed) {
    error =
        Fail(parsed.error().code() == Code::kUnimplemented ? status::kOptionalFeatureNotSupported
                                                           : status::kBadRequest,
             parsed.error().message());
    return false;
  }
  if (!ResolveSegments(parsed->scope, ctx.user, parsed->segments, out, error)) return false;
  for (size_t i = 1; i < out.chain.size(); ++i) {
    const NodeDef& d = *out.chain[i];
    if (!ScopeAllows(d, out.scope)) {
      std::string node = "./" + JoinPath(std::vector<std::string>(
                                    out.names.begin(), out.names.begin() + static_cast<long>(i)));
      error = Fail(status::kNotAllowed,
                   d.scope == NodeScope::kDevice
                       ? node + " is device-only; it cannot be addressed under ./User"
                       : node + " is user-only; address it under ./User");
      return false;
    }
  }
  if (out.scope == UriScope::kUser && ctx.user.empty()) {
    error = Fail(status::kNotFound, "no signed-in user: ./User URIs address nothing");
    return false;
  }
  if (!out.bad_name.empty()) {
    bool creates = op == Op::kAdd || op == Op::kReplace;
    error = Fail(creates ? status::kBadRequest : status::kNotFound, out.bad_name);
    return false;
  }
  const NodeDef& d = out.def();
  unsigned needed = 0;
  switch (op) {
    case Op::kAdd:
      needed = access::kAdd;
      break;
    case Op::kReplace:
      needed = access::kReplace;
      break;
    case Op::kDelete:
      needed = access::kDelete;
      break;
    case Op::kGet:
      needed = access::kGet;
      break;
    case Op::kExec:
      needed = access::kExec;
      break;
  }
  if ((d.access & needed) == 0) {
    error = Fail(status::kNotAllowed,
                 std::string(OpName(static_cast<int>(op))) + " is not allowed on " + out.uri());
    return false;
  }
  return true;
}

Result<bool> Tree::HasRow(const Resolved& r, size_t depth) const {
  DM_ASSIGN_OR_RETURN(auto row, store_.Find(r.KeyAt(depth)));
  return row.has_value();
}

Result<bool> Tree::Exists(const Resolved& r, size_t depth) const {
  if (depth == 0) return true;
  const NodeDef& d = *r.chain[depth];
  switch (d.storage) {
    case Storage::kPermanent:
      return true;
    case Storage::kStored: {
      DM_ASSIGN_OR_RETURN(bool row, HasRow(r, depth));
      return row || HasDefault(d);
    }
    case Storage::kExternal:
      return HasRow(r, depth);
    case Storage::kComputed: {
      if (d.is_leaf()) {
        if (!d.get) return false;
        DM_ASSIGN_OR_RETURN(auto v, d.get(r.AddressAt(depth)));
        return v.has_value();
      }
      if (d.is_dynamic() && d.instances) {
        DM_ASSIGN_OR_RETURN(auto names, d.instances(r.AddressAt(depth - 1)));
        return std::find(names.begin(), names.end(), r.names[depth - 1]) != names.end();
      }
      return true;
    }
  }
  return false;
}

Result<size_t> Tree::MissingAncestor(const Resolved& r) const {
  for (size_t d = 1; d < r.depth(); ++d) {
    DM_ASSIGN_OR_RETURN(bool there, Exists(r, d));
    if (!there) return d;
  }
  return size_t{0};
}

Result<std::optional<std::string>> Tree::ReadLeaf(const Resolved& r) const {
  const NodeDef& d = r.def();
  switch (d.storage) {
    case Storage::kStored: {
      DM_ASSIGN_OR_RETURN(auto row, store_.Find(r.Key()));
      if (row) return std::optional<std::string>(row->value.value_or(std::string()));
      return d.default_value;
    }
    case Storage::kExternal: {
      DM_ASSIGN_OR_RETURN(bool row, HasRow(r, r.depth()));
      if (!row || !d.read) return std::optional<std::string>();
      return d.read(r.Address());
    }
    case Storage::kComputed:
      if (!d.get) return std::optional<std::string>();
      return d.get(r.Address());
    case Storage::kPermanent:
      break;
  }
  return std::optional<std::string>();
}

Result<std::vector<std::string>> Tree::ListChildren(const Resolved& r) const {
  const NodeDef& d = r.def();
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](std::string name) {
    if (seen.insert(name).second) out.push_back(std::move(name));
  };
  for (const NodeDef& c : d.children) {
    if (!ScopeAllows(c, r.scope)) continue;
    if (c.is_dynamic()) {
      if (c.storage == Storage::kComputed) {
        if (!c.instances) continue;
        DM_ASSIGN_OR_RETURN(auto names, c.instances(r.Address()));
        for (auto& n : names) add(std::move(n));
      } else {
        DM_ASSIGN_OR_RETURN(auto names, store_.ChildNames(r.Key()));
        for (auto& n : names) {
          bool is_static = std::any_of(d.children.begin(), d.children.end(), [&](const NodeDef& s) {
            return !s.is_dynamic() && AsciiEqualsIgnoreCase(s.name, n);
          });
          if (!is_static) add(std::move(n));
        }
      }
      continue;
    }
    Resolved child = r;
    child.names.push_back(c.name);
    child.chain.push_back(&c);
    child.dynamic_upto.push_back(child.dynamic.size());
    DM_ASSIGN_OR_RETURN(bool there, Exists(child, child.depth()));
    if (there) add(c.name);
  }
  return out;
}

Status Tree::CreateAncestors(const Resolved& r) {
  for (size_t d = 1; d < r.depth(); ++d) {
    DM_ASSIGN_OR_RETURN(bool there, Exists(r, d));
    if (there) continue;
    const NodeDef& def = *r.chain[d];
    if (def.storage != Storage::kStored || def.is_leaf() || (def.access & access::kAdd) == 0) {
      return NotFound(r.AddressAt(d).Uri() + " does not exist");
    }
    DM_RETURN_IF_ERROR(store_.Put(r.KeyAt(d), "node", std::nullopt, false));
  }
  return Status::Ok();
}

Status Tree::WriteLeaf(const Resolved& r, const std::string& value) {
  const NodeDef& d = r.def();
  NodeAddress addr = r.Address();
  if (d.empty_deletes && value.empty()) {
    if (d.storage == Storage::kExternal && d.clear) {
      DM_ASSIGN_OR_RETURN(bool row, HasRow(r, r.depth()));
      if (row) {
        Status s = d.clear(addr);
        if (!s.ok() && s.code() != Code::kNotFound) return s;
      }
    }
    return store_.Remove(r.Key());
  }
  switch (d.storage) {
    case Storage::kStored:
      return store_.Put(r.Key(), FormatName(d.format), value, false);
    case Storage::kExternal:
      if (!d.write) return Internal(r.uri() + " has no writer");
      DM_RETURN_IF_ERROR(d.write(addr, value));
      return store_.Put(r.Key(), FormatName(d.format), std::nullopt, true);
    case Storage::kComputed:
      if (!d.set) return PermissionDenied(r.uri() + " cannot be written");
      return d.set(addr, value);
    case Storage::kPermanent:
      break;
  }
  return PermissionDenied(r.uri() + " cannot be written");
}

Status Tree::DeleteSubtree(const Resolved& r) {
  DM_ASSIGN_OR_RETURN(auto rows, store_.Subtree(r.Key()));
  for (const NodeRow& row : rows) {
    if (!row.external) continue;
    // Find the row's node definition again to clear the value where it is held.
    std::vector<std::string> segments;
    size_t start = 0;
    for (;;) {
      size_t slash = row.path.find('/', start);
      DM_ASSIGN_OR_RETURN(std::string seg, DecodeSegment(std::string_view(row.path).substr(
                                               start, slash == std::string::npos ? std::string::npos
                                                                                 : slash - start)));
      segments.push_back(std::move(seg));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    Resolved leaf;
    OpResult ignored;
    if (!ResolveSegments(r.scope, r.user, segments, leaf, ignored)) continue;  // schema changed
    const NodeDef& d = leaf.def();
    if (d.storage != Storage::kExternal || !d.clear) continue;
    Status s = d.clear(leaf.Address());
    if (!s.ok() && s.code() != Code::kNotFound) return s;
  }
  return store_.RemoveSubtree(r.Key());
}

OpResult Tree::CheckLeafValue(const Resolved& r, const NodeValue& value,
                              std::string& canonical) const {
  const NodeDef& d = r.def();
  std::string_view expected = FormatName(d.format);
  if (!AsciiEqualsIgnoreCase(value.format, expected)) {
    return Fail(status::kUnsupportedMediaType, r.uri() + " takes Format " + std::string(expected) +
                                                   ", not '" + value.format + "'");
  }
  if (d.empty_deletes && value.data.empty()) {
    canonical.clear();
    return {};
  }
  auto c = CanonicalValue(d.format, value.data);
  if (!c) return Fail(status::kBadRequest, r.uri() + ": " + c.error().message());
  canonical = std::move(*c);
  if (d.validate) {
    Status s = d.validate(r.Address(), canonical);
    if (!s.ok()) return Fail(StatusCodeFor(s), s.message());
  }
  if (d.normalize) {
    auto n = d.normalize(r.Address(), canonical);
    if (!n) return Fail(StatusCodeFor(n.error()), n.error().message());
    canonical = std::move(*n);
  }
  return {};
}

OpResult Tree::DoAdd(const Context& ctx, std::string_view uri, const NodeValue& value) {
  Resolved r;
  OpResult err;
  if (!Resolve(ctx, uri, Op::kAdd, r, err)) return err;
  const NodeDef& d = r.def();
  std::string canonical;
  if (d.is_leaf()) {
    OpResult check = CheckLeafValue(r, value, canonical);
    if (!IsSuccess(check.code)) return check;
  } else {
    if (!AsciiEqualsIgnoreCase(value.format, "node") &&
        !AsciiEqualsIgnoreCase(value.format, "chr")) {
      return Fail(status::kUnsupportedMediaType,
                  r.uri() + " is an interior node: Format node, not '" + value.format + "'");
    }
    if (!value.data.empty()) {
      return Fail(status::kBadRequest, r.uri() + " is an interior node and takes no data");
    }
  }
  auto missing = MissingAncestor(r);
  if (!missing) return Fail(missing.error());
  bool exists = false;
  if (*missing == 0) {
    auto has = d.storage == Storage::kStored || d.storage == Storage::kExternal
                   ? HasRow(r, r.depth())
                   : Exists(r, r.depth());
    if (!has) return Fail(has.error());
    exists = *has;
  }
  if (exists) {
    if (!d.is_leaf()) return Fail(status::kAlreadyExists, r.uri() + " already exists");
    auto current = ReadLeaf(r);
    if (!current) return Fail(current.error());
    if (current->has_value() && **current == canonical) return {};  // a re-delivered Add
    return Fail(status::kAlreadyExists, r.uri() + " already exists with another value");
  }
  auto tx = db_.Begin();
  if (!tx) return Fail(tx.error());
  if (Status s = CreateAncestors(r); !s.ok()) return Fail(s);
  if (d.is_leaf()) {
    if (Status s = WriteLeaf(r, canonical); !s.ok()) return Fail(s);
  } else if (d.storage == Storage::kStored) {
    if (Status s = store_.Put(r.Key(), "node", std::nullopt, false); !s.ok()) return Fail(s);
  } else {
    return Fail(status::kNotAllowed, r.uri() + " cannot be added");
  }
  if (Status s = tx->Commit(); !s.ok()) return Fail(s);
  return {};
}

OpResult Tree::DoReplace(const Context& ctx, std::string_view uri, const NodeValue& value) {
  Resolved r;
  OpResult err;
  if (!Resolve(ctx, uri, Op::kReplace, r, err)) return err;
  if (!r.def().is_leaf()) {
    return Fail(status::kNotAllowed, "Replace of interior node " + r.uri() + " is not supported");
  }
  std::string canonical;
  OpResult check = CheckLeafValue(r, value, canonical);
  if (!IsSuccess(check.code)) return check;
  auto tx = db_.Begin();
  if (!tx) return Fail(tx.error());
  if (Status s = CreateAncestors(r); !s.ok()) return Fail(s);
  if (Status s = WriteLeaf(r, canonical); !s.ok()) return Fail(s);
  if (Status s = tx->Commit(); !s.ok()) return Fail(s);
  return {};
}

OpResult Tree::DoDelete(const Context& ctx, std::string_view uri) {
  Resolved r;
  OpResult err;
  if (!Resolve(ctx, uri, Op::kDelete, r, err)) return err;
  const NodeDef& d = r.def();
  auto missing = MissingAncestor(r);
  if (!missing) return Fail(missing.error());
  if (*missing != 0) {
    return Fail(status::kNotFound, r.AddressAt(*missing).Uri() + " does not exist");
  }
  auto row = HasRow(r, r.depth());
  if (!row) return Fail(row.error());
  if (!*row) {
    // A leaf showing its default has nothing stored to delete: it already is the default.
    if (HasDefault(d)) return {};
    return Fail(status::kNotFound, r.uri() + " does not exist");
  }
  auto tx = db_.Begin();
  if (!tx) return Fail(tx.error());
  if (Status s = DeleteSubtree(r); !s.ok()) return Fail(s);
  if (Status s = tx->Commit(); !s.ok()) return Fail(s);
  return {};
}

GetResult Tree::DoGet(const Context& ctx, std::string_view uri) {
  Resolved r;
  OpResult err;
  if (!Resolve(ctx, uri, Op::kGet, r, err)) return GetFail(err);
  const NodeDef& d = r.def();
  auto missing = MissingAncestor(r);
  if (!missing) return GetFail(Fail(missing.error()));
  if (*missing != 0) {
    return GetFail(Fail(status::kNotFound, r.AddressAt(*missing).Uri() + " does not exist"));
  }
  GetResult out;
  if (d.is_leaf()) {
    auto v = ReadLeaf(r);
    if (!v) return GetFail(Fail(v.error()));
    if (!v->has_value()) {
      return GetFail(Fail(status::kNotFound, r.uri() + " is not set"));
    }
    out.value.data = std::move(**v);
    out.value.format = std::string(FormatName(d.format));
    return out;
  }
  auto there = Exists(r, r.depth());
  if (!there) return GetFail(Fail(there.error()));
  if (!*there) return GetFail(Fail(status::kNotFound, r.uri() + " does not exist"));
  auto children = ListChildren(r);
  if (!children) return GetFail(Fail(children.error()));
  for (const auto& c : *children) {
    if (!out.value.data.empty()) out.value.data += '/';
    out.value.data += EncodeSegment(c);
  }
  out.value.format = "node";
  return out;
}

OpResult Tree::DoExec(const Context& ctx, std::string_view uri, const NodeValue& value) {
  Resolved r;
  OpResult err;
  if (!Resolve(ctx, uri, Op::kExec, r, err)) return err;
  auto missing = MissingAncestor(r);
  if (!missing) return Fail(missing.error());
  if (*missing != 0) {
    return Fail(status::kNotFound, r.AddressAt(*missing).Uri() + " does not exist");
  }
  const NodeDef& d = r.def();
  if (!d.exec) return Fail(status::kOptionalFeatureNotSupported, r.uri() + " has no action");
  auto tx = db_.Begin();
  if (!tx) return Fail(tx.error());
  OpResult result = d.exec(r.Address(), value);
  if (!IsSuccess(result.code)) return result;
  if (Status s = tx->Commit(); !s.ok()) return Fail(s);
  return result;
}

// The public operations: the edge where a throwing dependency becomes a 500, and one log line
// per failed command (URI and reason; values are never logged).
namespace {
template <typename R, typename F>
R Guarded(std::string_view op, std::string_view uri, F&& f) {
  R r;
  try {
    r = f();
  } catch (const std::exception& e) {
    r.code = status::kCommandFailed;
    r.reason = std::string("internal error: ") + e.what();
  }
  if (!IsSuccess(r.code)) {
    spdlog::info("dm tree: {} {} -> {} ({})", op, uri, r.code, r.reason);
  } else {
    spdlog::debug("dm tree: {} {} -> {}", op, uri, r.code);
  }
  return r;
}
}  // namespace

OpResult Tree::Add(const Context& ctx, std::string_view uri, const NodeValue& value) {
  return Guarded<OpResult>("Add", uri, [&] { return DoAdd(ctx, uri, value); });
}
OpResult Tree::Replace(const Context& ctx, std::string_view uri, const NodeValue& value) {
  return Guarded<OpResult>("Replace", uri, [&] { return DoReplace(ctx, uri, value); });
}
OpResult Tree::Delete(const Context& ctx, std::string_view uri) {
  return Guarded<OpResult>("Delete", uri, [&] { return DoDelete(ctx, uri); });
}
GetResult Tree::Get(const Context& ctx, std::string_view uri) {
  return Guarded<GetResult>("Get", uri, [&] { return DoGet(ctx, uri); });
}
OpResult Tree::Exec(const Context& ctx, std::string_view uri, const NodeValue& value) {
  return Guarded<OpResult>("Exec", uri, [&] { return DoExec(ctx, uri, value); });
}

void Tree::OnCommitted() {
  if (!on_committed_) return;
  try {
    on_committed_();
  } catch (const std::exception& e) {
    spdlog::error("dm tree: after-commit step failed: {}", e.what());
  }
}

}  // namespace dm::csp

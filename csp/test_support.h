// Shared test fixture for csp/ tests: a real agent database in a fresh temporary directory.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/clock.h"
#include "csp/dm_tree.h"
#include "storage/database.h"
#include "storage/schema.h"

namespace dm::csp::testing {

class DbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "csptest-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Closes and reopens the database file (persistence checks).
  void Reopen() {
    db_.reset();
    auto db = storage::Database::Open(dir_ / "agent.db", {.migrations = storage::AgentSchema()});
    ASSERT_TRUE(db.ok()) << db.error().ToString();
    db_ = std::move(*db);
  }
  storage::Database& db() { return *db_; }

  std::filesystem::path dir_;
  std::unique_ptr<storage::Database> db_;
  FakeClock clock_;
};

inline NodeValue Chr(std::string data) { return NodeValue{std::move(data), "chr", "text/plain"}; }
inline NodeValue Int(std::string data) { return NodeValue{std::move(data), "int", "text/plain"}; }
inline NodeValue Bool(std::string data) { return NodeValue{std::move(data), "bool", "text/plain"}; }
inline NodeValue NodeFmt() { return NodeValue{"", "node", "text/plain"}; }

}  // namespace dm::csp::testing

// The formats and sinks behind InitLogging (log.h); internal to base.
#pragma once

#include <spdlog/formatter.h>
#include <spdlog/sinks/sink.h>

#include <memory>
#include <string>

namespace dm::log_internal {

// "2026-12-04T10:00:00.000Z info message device_id=... session_id=..."
std::unique_ptr<spdlog::formatter> MakeTextFormatter();

// {"time":"2026-12-04T10:00:00.000Z","level":"info","message":"...","device_id":"..."}
std::unique_ptr<spdlog::formatter> MakeJsonFormatter();

// Records to journald through sd_journal_sendv, with PRIORITY, SYSLOG_IDENTIFIER `identifier`
// and each field upper-cased (DEVICE_ID=...). spdlog's own systemd sink sends no fields of
// ours. When journald cannot be reached, the record goes to stderr as text instead.
spdlog::sink_ptr MakeJournalSink(std::string identifier);

}  // namespace dm::log_internal

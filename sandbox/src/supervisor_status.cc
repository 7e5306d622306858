// `shapex status`: the supervisor's report as one JSON object.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "status_json.h"
#include "supervisor_state.h"

namespace shapex::sandbox {
namespace {

// Resident set size of `pid` in KiB, from /proc/PID/statm (0 if unreadable).
uint64_t RssKib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/statm", pid));
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return 0;
  return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) / 1024;
}

const char* StateName(ExecutorEntry::State s) {
  switch (s) {
    case ExecutorEntry::kStarting: return "starting";
    case ExecutorEntry::kIdle: return "idle";
    case ExecutorEntry::kGranting: return "granting";
    case ExecutorEntry::kLeased: return "leased";
    case ExecutorEntry::kExiting: return "exiting";
  }
  return "unknown";
}

}  // namespace

std::string Supervisor::State::StatusJson() const {
  using Json = nlohmann::ordered_json;
  double uptime = std::chrono::duration<double>(Clock::now() - started).count();
  Json executors_json = Json::array();
  for (const auto& [pid, e] : executors) {
    executors_json.push_back({{"pid", pid},
                              {"state", StateName(e.state)},
                              {"leases", e.leases},
                              {"calls_served", e.calls},
                              {"rss_kib", RssKib(pid)},
                              {"spawn_ms", RoundTo(static_cast<double>(e.spawn_ns) / 1e6, 3)}});
  }
  Json errors_json = Json::object();
  for (const auto& [kind, n] : errors_by_kind) errors_json[kind] = n;
  Json store_json = nullptr;
  if (store) {
    std::optional<BlobStoreStats> st = store->Stats();
    if (st) {
      uint64_t lookups = st->hits + st->misses;
      double hit_rate =
          lookups == 0 ? 0.0 : static_cast<double>(st->hits) / static_cast<double>(lookups);
      store_json = {{"dir", st->dir},         {"objects", st->objects},
                    {"bytes", st->bytes},     {"max_bytes", st->max_bytes},
                    {"hits", st->hits},       {"misses", st->misses},
                    {"hit_rate", RoundTo(hit_rate, 3)},
                    {"corrupt_deleted", st->corrupt_deleted}};
    }
  }
  auto median_ms = [](std::vector<int64_t> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : RoundTo(static_cast<double>(v[v.size() / 2]) / 1e6, 3);
  };
  size_t leases_held = 0;
  for (const auto& [pid, e] : executors) leases_held += e.state == ExecutorEntry::kLeased;
  Json dropped_json = Json::object();
  uint64_t dropped_total = 0;
  for (size_t r = 0; r < static_cast<size_t>(DropReason::kCount); ++r) {
    dropped_json[DropReasonName(static_cast<DropReason>(r))] = stats.dropped[r];
    dropped_total += stats.dropped[r];
  }
  Json limits_json = {{"handshake_timeout_ms", options.handshake_timeout.count()},
                      {"write_timeout_ms", options.write_timeout.count()},
                      {"max_output_bytes", options.max_output_bytes},
                      {"max_request_bytes", options.max_request_bytes},
                      {"max_queued_leases_per_client", options.max_queued_leases_per_client},
                      {"max_leases_per_client", MaxLeasesPerClient()},
                      {"max_clients", options.max_clients},
                      {"lease_wait_ms", options.lease_wait.count()},
                      {"idle_exit_ms", options.idle_exit.count()}};
  Json report = Json::object();
  report["supervisor_pid"] = ::getpid();
  report["socket"] = socket_path;
  report["uptime_s"] = RoundTo(uptime, 3);
  report["pool_size"] = options.pool_size;
  report["sandbox"] = options.sandbox == SandboxMode::kFull ? "full" : "none";
  report["executors"] = std::move(executors_json);
  report["spawning"] = spawning;
  report["queued_leases"] = queued_total;
  report["clients"] = clients.size();
  report["calls"] = stats.calls;
  report["calls_per_s"] =
      RoundTo(uptime > 0 ? static_cast<double>(stats.calls) / uptime : 0.0, 3);
  report["errors"] = stats.errors;
  report["errors_by_kind"] = std::move(errors_json);
  report["leases_granted"] = stats.leases_granted;
  report["leases_lost"] = stats.leases_lost;
  report["spawned"] = stats.spawned;
  report["spawn_failures"] = stats.spawn_failures;
  report["spawn_median_ms"] = median_ms(spawn_ns_samples);
  report["spawn_clone_median_ms"] = median_ms(clone_ns_samples);
  report["spawn_samples"] = spawn_ns_samples.size();
  report["crashes"] = stats.crashes;
  report["seccomp_kills"] = stats.seccomp_kills;
  report["kills"] = stats.kills;
  report["code_bytes_received"] = stats.code_bytes_received;
  report["blobs_preloaded"] = stats.blobs_preloaded;
  report["refused_peers"] = stats.refused_peers;
  report["store"] = std::move(store_json);
  report["connections"] = stats.connections;
  report["leases_held"] = leases_held;
  report["releases"] = stats.leases_released;
  report["lease_wait_timeouts"] = stats.lease_wait_timeouts;
  report["orphaned_kills"] = stats.orphaned_kills;
  report["executor_start_timeouts"] = stats.executor_start_timeouts;
  report["dropped_total"] = dropped_total;
  report["dropped"] = std::move(dropped_json);
  report["limits"] = std::move(limits_json);
  report["cgroups"] = cgroups ? cgroups->StatusObject() : ExecutorCgroups::DisabledStatusObject();
  return DumpStatusJson(report);
}

std::string Supervisor::State::StatusText() const {
  double uptime = std::chrono::duration<double>(Clock::now() - started).count();
  std::string out = fmt::format(
      "supervisor  pid {}, up {:.0f} s, socket {}, sandbox {}\n"
      "pool        {} executors wanted, {} starting\n"
      "calls       {} ({:.2f}/s), errors {}",
      ::getpid(), uptime, socket_path, options.sandbox == SandboxMode::kFull ? "full" : "none",
      options.pool_size, spawning, stats.calls,
      uptime > 0 ? static_cast<double>(stats.calls) / uptime : 0.0, stats.errors);
  for (const auto& [kind, n] : errors_by_kind) out += fmt::format(", {} {}", kind, n);
  std::vector<int64_t> spawn = spawn_ns_samples;
  std::sort(spawn.begin(), spawn.end());
  out += fmt::format("\nexecutors   lost mid-lease {}, seccomp kills {}, spawn median {:.2f} ms\n",
                     stats.leases_lost, stats.seccomp_kills,
                     spawn.empty() ? 0.0 : static_cast<double>(spawn[spawn.size() / 2]) / 1e6);
  if (cgroups) out += cgroups->StatusLine();
  out += fmt::format("  {:>8}  {:<9} {:>7} {:>8} {:>9}\n", "PID", "STATE", "LEASES", "CALLS",
                     "RSS KiB");
  for (const auto& [pid, e] : executors) {
    out += fmt::format("  {:>8}  {:<9} {:>7} {:>8} {:>9}\n", pid, StateName(e.state), e.leases,
                       e.calls, RssKib(pid));
  }
  if (store) {
    std::optional<BlobStoreStats> st = store->Stats();
    if (st) {
      uint64_t lookups = st->hits + st->misses;
      out += fmt::format("blob store  {}: {} objects, {} bytes, hit rate {:.0f}% of {} reads\n",
                         st->dir, st->objects, st->bytes,
                         lookups == 0 ? 0.0 : 100.0 * static_cast<double>(st->hits) /
                                                  static_cast<double>(lookups),
                         lookups);
    }
  } else {
    out += "blob store  none\n";
  }
  return out;
}

}  // namespace shapex::sandbox

// `shapex status`: the supervisor's report as one JSON object.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "supervisor_state.h"
#include "json_string.h"

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
  double uptime = std::chrono::duration<double>(Clock::now() - started).count();
  std::string executors_json;
  for (const auto& [pid, e] : executors) {
    if (!executors_json.empty()) executors_json += ", ";
    executors_json += fmt::format(
        "{{\"pid\": {}, \"state\": \"{}\", \"leases\": {}, \"calls_served\": {}, \"rss_kib\": {}, "
        "\"spawn_ms\": {:.3f}}}",
        pid, StateName(e.state), e.leases, e.calls, RssKib(pid), e.spawn_ns / 1e6);
  }
  std::string errors_json;
  for (const auto& [kind, n] : errors_by_kind) {
    if (!errors_json.empty()) errors_json += ", ";
    errors_json += fmt::format("{}: {}", JsonString(kind), n);
  }
  std::string store_json = "null";
  if (store) {
    std::optional<BlobStoreStats> st = store->Stats();
    if (st) {
      uint64_t lookups = st->hits + st->misses;
      store_json = fmt::format(
          "{{\"dir\": {}, \"objects\": {}, \"bytes\": {}, \"max_bytes\": {}, \"hits\": {}, "
          "\"misses\": {}, \"hit_rate\": {:.3f}, \"corrupt_deleted\": {}}}",
          JsonString(st->dir), st->objects, st->bytes, st->max_bytes, st->hits, st->misses,
          lookups == 0 ? 0.0 : static_cast<double>(st->hits) / static_cast<double>(lookups),
          st->corrupt_deleted);
    }
  }
  auto median_ms = [](std::vector<int64_t> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : static_cast<double>(v[v.size() / 2]) / 1e6;
  };
  double spawn_median_ms = median_ms(spawn_ns_samples);
  size_t leases_held = 0;
  for (const auto& [pid, e] : executors) leases_held += e.state == ExecutorEntry::kLeased;
  std::string dropped_json;
  uint64_t dropped_total = 0;
  for (size_t r = 0; r < static_cast<size_t>(DropReason::kCount); ++r) {
    if (!dropped_json.empty()) dropped_json += ", ";
    dropped_json += fmt::format("\"{}\": {}", DropReasonName(static_cast<DropReason>(r)),
                                stats.dropped[r]);
    dropped_total += stats.dropped[r];
  }
  std::string limits_json = fmt::format(
      "{{\"handshake_timeout_ms\": {}, \"write_timeout_ms\": {}, \"max_output_bytes\": {}, "
      "\"max_request_bytes\": {}, \"max_queued_leases_per_client\": {}, "
      "\"max_leases_per_client\": {}, \"max_clients\": {}, \"lease_wait_ms\": {}, "
      "\"idle_exit_ms\": {}}}",
      options.handshake_timeout.count(), options.write_timeout.count(), options.max_output_bytes,
      options.max_request_bytes, options.max_queued_leases_per_client, MaxLeasesPerClient(),
      options.max_clients, options.lease_wait.count(), options.idle_exit.count());
  double clone_median_ms = median_ms(clone_ns_samples);
  return fmt::format(
      "{{\"supervisor_pid\": {}, \"socket\": {}, \"uptime_s\": {:.3f}, \"pool_size\": {}, "
      "\"sandbox\": \"{}\", \"executors\": [{}], \"spawning\": {}, \"queued_leases\": {}, "
      "\"clients\": {}, "
      "\"calls\": {}, \"calls_per_s\": {:.3f}, \"errors\": {}, \"errors_by_kind\": {{{}}}, "
      "\"leases_granted\": {}, \"leases_lost\": {}, \"spawned\": {}, \"spawn_failures\": {}, "
      "\"spawn_median_ms\": {:.3f}, \"spawn_clone_median_ms\": {:.3f}, \"spawn_samples\": {}, "
      "\"crashes\": {}, \"seccomp_kills\": {}, \"kills\": {}, "
      "\"code_bytes_received\": {}, \"blobs_preloaded\": {}, \"refused_peers\": {}, "
      "\"store\": {}, \"connections\": {}, \"leases_held\": {}, "
      "\"releases\": {}, \"lease_wait_timeouts\": {}, \"orphaned_kills\": {}, "
      "\"executor_start_timeouts\": {}, \"dropped_total\": {}, \"dropped\": {{{}}}, "
      "\"limits\": {}, \"cgroups\": {}}}",
      ::getpid(), JsonString(socket_path), uptime, options.pool_size,
      options.sandbox == SandboxMode::kFull ? "full" : "none", executors_json, spawning, queued_total,
      clients.size(), stats.calls, uptime > 0 ? static_cast<double>(stats.calls) / uptime : 0.0,
      stats.errors, errors_json, stats.leases_granted, stats.leases_lost, stats.spawned,
      stats.spawn_failures, spawn_median_ms, clone_median_ms, spawn_ns_samples.size(), stats.crashes, stats.seccomp_kills, stats.kills,
      stats.code_bytes_received, stats.blobs_preloaded, stats.refused_peers, store_json,
      stats.connections, leases_held, stats.leases_released, stats.lease_wait_timeouts,
      stats.orphaned_kills, stats.executor_start_timeouts, dropped_total, dropped_json,
      limits_json, cgroups ? cgroups->StatusJson() : "{\"enabled\": false, \"reason\": \"\"}");
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

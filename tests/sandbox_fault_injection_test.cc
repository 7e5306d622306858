// Fault injection (issue 12, Build item 6). A real supervisor, zygote and jailed executors, with
// executors that, when a call asks them to, abort, segfault, hang in a system call, spin, run out
// of memory (the VM's per-call limit, or the process's address space), close in the middle of a
// frame, or answer with garbage, with a wrong call id or with a forged segment (a memfd that is
// not sealed, a slice past its end, a wrong checksum), while 8 clients call concurrently (half
// over the call ring, half over the socket), single calls and pipelined ones.
//
// Checked: every call is answered exactly once (a value or a typed error; asking again for an
// answered call is InvalidArgument), each fault gets the error kind it should, healthy calls get
// their values, nothing leaks (the supervisor's children, its and the zygote's descriptors and
// memfds, this process's descriptors and memfds: counted in /proc), and the supervisor's RSS after
// all faults is within 4 MiB of its RSS after the first tenth (100 of 1,000).
//
//   SHAPEX_FAULT_SEED=N   the seed (default 12), printed at start; a run is reproducible in its
//                         choices (not in its interleavings)
//   SHAPEX_FAULTS=N       faults to inject (default 100; docs/testing.md reports 1,000)
//
// The hooks: the supervisor runs in a child forked from this test, pointed (SetServeClientForTesting,
// a private sandbox header) at FaultyServe below, which serves the leased connection with the real
// Executor but lets the test native `test_fault` reach that connection. So the fault code exists
// only in this binary; docs/testing.md ("Fault injection") explains the choice.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <fmt/core.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <new>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shapex/client/client.h"
#include "shapex/engine/natives.h"
#include "shapex/engine/vm.h"
#include "shapex/ipc/frame.h"
#include "shapex/ipc/messages.h"
#include "shapex/ipc/protocol.h"
#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/shared_memory.h"
#include "shapex/ipc/sidecar_transport.h"
#include "shapex/sandbox/jail.h"
#include "shapex/sandbox/supervisor.h"
#include "testing/processes.h"
#include "testing/wire_test_util.h"
#include "zygote.h"

namespace shapex::sandbox {
namespace {

using ipc::FrameType;
using ipc::WireValue;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ executor side (the hooks)

// The leased client's connection and the executor serving it, while FaultyServe runs (executors
// are single-threaded processes).
ipc::Connection* g_connection = nullptr;
const Executor* g_executor = nullptr;

Status FaultyServe(Executor& executor, ipc::UnixSocket socket, const ExecutorOptions& options) {
  ASSIGN_OR_RETURN(ipc::Connection connection,
                   ipc::Connection::Accept(std::move(socket), options.connection));
  g_connection = &connection;
  g_executor = &executor;
  Status served = executor.Serve(connection);
  g_connection = nullptr;
  g_executor = nullptr;
  return served;
}

// Blocks in a system call for good (poll of no descriptors: allowed by the executor policy,
// unlike pipe2 or pause).
[[noreturn]] void HangInSyscall() {
  for (;;) (void)::poll(nullptr, 0, -1);
}

// A response whose value is a typed array in sidecar 0 of a forged descriptor table.
Status SendForgedSegment(uint64_t call_id, int fd, ipc::FdSlice slice, uint64_t ref_length,
                         uint64_t checksum) {
  ipc::WireSidecarRef ref;
  ref.kind = ipc::SidecarKind::kTypedArray;
  ref.elem = engine::ElemKind::kU8;
  ref.length = ref_length;
  ref.checksum = checksum;
  std::vector<uint8_t> payload;
  ipc::EncodeFdTable(ipc::FdTable{1, {slice}}, &payload);
  std::vector<uint8_t> message = ipc::EncodeMessage(
      ipc::WireMessage{ipc::RemoteCallResponse::Success(WireValue::SidecarRef(ref))});
  payload.insert(payload.end(), message.begin(), message.end());
  return g_connection->Send(FrameType::kMessageWithFds, call_id, payload, std::span(&fd, 1));
}

constexpr uint8_t kForgedByte = 0x5a;
constexpr size_t kForgedLength = 16;

// test_fault(kind, then, seed): the fault `kind` in the executor running this call. After a
// fault that leaves the process running (garbage, wrong_id, forged_*), `then` says what the
// executor does: "continue" (the call returns 1 and its real answer follows), "exit", "hang".
bool FaultNative(engine::Vm& vm, engine::Value* args, int argc, engine::Value* out) {
  if (args[0].type != engine::Type::kString || args[1].type != engine::Type::kString ||
      args[2].type != engine::Type::kInt || argc != 3) {
    return vm.Fail("test_fault(kind: string, then: string, seed: int)");
  }
  std::string kind = engine::AsString(args[0])->str;
  std::string then = engine::AsString(args[1])->str;
  std::mt19937_64 rng(static_cast<uint64_t>(args[2].as.i));
  if (g_connection == nullptr || g_executor == nullptr) return vm.Fail("no faulty connection");
  uint64_t id = g_executor->current_call_id();
  Status sent = Status::Ok();
  if (kind == "abort") {
    std::abort();
  } else if (kind == "segv") {
    int* volatile nowhere = nullptr;
    *nowhere = 1;
  } else if (kind == "hang") {
    HangInSyscall();
  } else if (kind == "spin") {
    for (;;) asm volatile("" ::: "memory");
  } else if (kind == "oom") {
    // Address space until RLIMIT_AS says no (touching 1 MiB of every 64 MiB, so the host does
    // not pay for it), then what C++ code does when `new` fails. Sanitizer builds set no
    // RLIMIT_AS: there 1 GiB stands for it.
    rlimit as{};
    bool unlimited = ::getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur == RLIM_INFINITY;
    std::vector<void*> chunks;
    for (;;) {
      void* p = unlimited && chunks.size() >= 16 ? nullptr : std::malloc(size_t{64} << 20);
      if (p == nullptr) throw std::bad_alloc();
      std::memset(p, 1, size_t{1} << 20);
      chunks.push_back(p);
    }
  } else if (kind == "mid_frame") {
    // A frame header that promises 1000 bytes, 10 of them, then the end of the process. On the
    // ring transport the frame that follows (with a descriptor, so on the socket) puts the
    // ring's SocketFrame record in front of it; its bytes become more of the promised payload.
    auto header = ipc::EncodeFrameHeader({1000, static_cast<uint8_t>(FrameType::kMessage), id});
    uint8_t part[10] = {};
    if (::write(g_connection->socket_fd(), header.data(), header.size()) < 0) ::_exit(41);
    if (::write(g_connection->socket_fd(), part, sizeof part) < 0) ::_exit(42);
    Result<ScopedFd> memfd = ipc::CreateMemfd(4096);
    std::vector<uint8_t> table;
    ipc::EncodeFdTable(ipc::FdTable{1, {}}, &table);
    if (memfd.has_value()) {
      int fd = memfd->get();
      (void)g_connection->Send(FrameType::kMessageWithFds, id, table, std::span(&fd, 1));
    }
    ::_exit(0);
  } else if (kind == "garbage") {
    std::vector<uint8_t> junk(1 + rng() % 200);
    for (uint8_t& b : junk) b = static_cast<uint8_t>(rng());
    sent = g_connection->Send(FrameType::kMessage, id, junk);
  } else if (kind == "wrong_id") {
    sent = ipc::SendMessage(*g_connection, id + 1 + rng() % 1000000,
                            ipc::RemoteCallResponse::Success(WireValue::Int(7)));
  } else if (kind == "forged_unsealed") {
    Result<ScopedFd> memfd = ipc::CreateMemfd(4096);
    if (!memfd.has_value()) return vm.Fail(memfd.error().ToString());
    sent = SendForgedSegment(id, memfd->get(), {0, 0, kForgedLength}, kForgedLength, 0);
  } else if (kind == "forged_size" || kind == "forged_checksum") {
    std::vector<uint8_t> bytes(kForgedLength, kForgedByte);
    Result<ipc::SealedSegment> sealed = ipc::SealedSegment::CreateFrom(bytes);
    if (!sealed.has_value()) return vm.Fail(sealed.error().ToString());
    bool size = kind == "forged_size";
    ipc::FdSlice slice{0, size ? 8u : 0u, kForgedLength};  // forged_size: 8 bytes past the end
    sent = SendForgedSegment(id, sealed->fd(), slice, kForgedLength, size ? 0 : rng() | 1);
  } else {
    return vm.Fail("unknown fault " + kind);
  }
  if (!sent.ok()) ::_exit(43);
  if (then == "exit") ::_exit(0);
  if (then == "hang") HangInSyscall();
  *out = engine::Value::Int(1);
  return true;
}

const engine::NativeDef kFaultNatives[] = {{"test_fault", &FaultNative, 3, 3, false}};

// Before anything compiles: the supervisor (and so every executor) is forked from this process.
const bool kFaultNativesRegistered = engine::RegisterExtraNatives(kFaultNatives);

constexpr char kProgram[] = R"(
function add(a, b) { a + b }
function fault(kind, then, seed) { test_fault(kind, then, seed) }
function hog() { var a = []; while true { a.push(Vec::f64(1000000)) } }
)";

// ------------------------------------------------------------------ faults and outcomes

enum class Fault {
  kNone,  // a healthy call
  kAbort, kSegv, kHang, kSpin, kOom, kVmMemory, kMidFrame, kGarbage, kWrongId,
  kForgedUnsealed, kForgedSize, kForgedChecksum, kCount
};

const char* FaultName(Fault f) {
  static const char* const kNames[] = {"healthy",  "abort",           "segv",        "hang",
                                       "spin",     "oom",             "vm_memory",   "mid_frame",
                                       "garbage",  "wrong_id",        "forged_unsealed",
                                       "forged_size", "forged_checksum"};
  return kNames[static_cast<int>(f)];
}

// What a fault's own call may be answered with, when nothing else is in flight on its lease.
bool Expected(Fault f, ErrorKind kind) {
  switch (f) {
    case Fault::kNone: return kind == ErrorKind::kOk;
    case Fault::kAbort:
    case Fault::kSegv:
    case Fault::kOom: return kind == ErrorKind::kExecutorCrashed;
    case Fault::kHang:
    case Fault::kSpin: return kind == ErrorKind::kTimeout;
    case Fault::kVmMemory: return kind == ErrorKind::kResourceExhausted;
    case Fault::kMidFrame:
    case Fault::kGarbage:
    case Fault::kWrongId:
    case Fault::kForgedUnsealed:
    case Fault::kForgedSize: return kind == ErrorKind::kProtocolError;
    // Segment slices carry no checksum check (wire-protocol.md): the bytes are the answer.
    case Fault::kForgedChecksum: return kind == ErrorKind::kOk || kind == ErrorKind::kProtocolError;
    case Fault::kCount: break;
  }
  return false;
}

// The error kinds a call may end with at all ("typed": no IoError, Internal, InvalidArgument).
bool Typed(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kOk:
    case ErrorKind::kExecutorCrashed:
    case ErrorKind::kTimeout:
    case ErrorKind::kProtocolError:
    case ErrorKind::kResourceExhausted:
    case ErrorKind::kCancelled: return true;
    default: return false;
  }
}

struct Tally {
  std::map<std::string, uint64_t> by_outcome;  // "fault -> kind"
  uint64_t calls = 0, answers = 0, lost = 0, doubled = 0, faults = 0, leases = 0;
  uint64_t healthy_timeouts = 0;  // tolerated (a loaded host), reported
  std::vector<std::string> failures;

  void Merge(const Tally& t) {
    for (const auto& [k, v] : t.by_outcome) by_outcome[k] += v;
    calls += t.calls;
    answers += t.answers;
    lost += t.lost;
    doubled += t.doubled;
    faults += t.faults;
    leases += t.leases;
    healthy_timeouts += t.healthy_timeouts;
    for (const auto& f : t.failures) {
      if (failures.size() < 20) failures.push_back(f);
    }
  }
};

uint64_t EnvOr(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

// ------------------------------------------------------------------ /proc accounting

struct FdCount {
  size_t fds = 0, memfds = 0;
  friend bool operator==(const FdCount&, const FdCount&) = default;
};

FdCount CountFds(pid_t pid) {
  FdCount count;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(dir, ec); !ec && it != decltype(it)();
       it.increment(ec)) {
    ++count.fds;
    std::error_code link_ec;
    std::string target = std::filesystem::read_symlink(it->path(), link_ec).string();
    if (target.rfind("/memfd:", 0) == 0) ++count.memfds;
  }
  return count;
}

pid_t ParentOf(pid_t pid) {
  std::string status = shapex_testing::ReadProcFile(pid, "status");
  size_t at = status.find("PPid:");
  return at == std::string::npos ? -1 : static_cast<pid_t>(std::atol(status.c_str() + at + 5));
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  for (pid_t pid : shapex_testing::AllPids()) {
    if (ParentOf(pid) == parent) children.push_back(pid);
  }
  return children;
}

int64_t RssKib(pid_t pid) {
  std::string status = shapex_testing::ReadProcFile(pid, "status");
  size_t at = status.find("VmRSS:");
  return at == std::string::npos ? -1 : std::atoll(status.c_str() + at + 6);
}

// The integer after the first `"key": ` in `json` (-1 if absent).
int64_t JsonInt(const std::string& json, const std::string& key) {
  size_t pos = json.find("\"" + key + "\": ");
  return pos == std::string::npos ? -1 : std::atoll(json.c_str() + pos + key.size() + 4);
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = 0; (pos = haystack.find(needle, pos)) != std::string::npos; ++pos) ++n;
  return n;
}

// ------------------------------------------------------------------ the test

constexpr size_t kPool = 8;
constexpr int kClients = 8;
constexpr milliseconds kCallTimeout{2000};

class FaultInjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kFaultNativesRegistered);
    if (Status probe = ProbeJailSupport(); !probe.ok()) {
      GTEST_SKIP() << "this host cannot run jailed executors: " << probe.ToString();
    }
    char pattern[] = "/tmp/shapex-fault-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    socket_ = dir_ + "/run/sock";
    std::filesystem::create_directories(dir_ + "/run");
    ::chmod((dir_ + "/run").c_str(), 0700);
    log_ = dir_ + "/supervisor.log";
    // Forked before any thread exists here, as Supervisor::Start requires.
    supervisor_ = ::fork();
    ASSERT_GE(supervisor_, 0);
    if (supervisor_ == 0) RunSupervisor();
    for (int i = 0; i < 1000; ++i) {
      if (Client::Connect(Options()).has_value()) return;
      int status = 0;
      if (::waitpid(supervisor_, &status, WNOHANG) == supervisor_) {
        supervisor_ = -1;
        FAIL() << "the supervisor exited with status " << status << "\n" << LogTail();
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    FAIL() << "the supervisor did not come up\n" << LogTail();
  }

  void TearDown() override {
    if (supervisor_ > 0) {
      ::kill(supervisor_, SIGTERM);
      int status = 0;
      pid_t got = 0;
      for (int i = 0; i < 2000 && got == 0; ++i) {  // hang deadline 20 s
        got = ::waitpid(supervisor_, &status, WNOHANG);
        if (got == 0) std::this_thread::sleep_for(milliseconds(10));
      }
      if (got == 0) {
        ::kill(supervisor_, SIGKILL);
        ::waitpid(supervisor_, &status, 0);
        ADD_FAILURE() << "the supervisor did not stop within 20 s of SIGTERM";
      } else {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "supervisor status " << status << "\n" << LogTail();
      }
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  [[noreturn]] void RunSupervisor() {
    int log = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log >= 0) ::dup2(log, STDERR_FILENO);
    SetServeClientForTesting(&FaultyServe);
    SupervisorOptions options;
    options.socket_path = socket_;
    options.pool_size = kPool;
    options.store_dir = dir_ + "/store";
    options.systemd = false;
    options.executor.limits.memory = size_t{64} << 20;  // vm_memory: the per-call heap limit
    Result<std::unique_ptr<Supervisor>> supervisor = Supervisor::Start(options);
    if (!supervisor.has_value()) {
      std::fprintf(stderr, "start: %s\n", supervisor.error().ToString().c_str());
      ::_exit(2);
    }
    Status run = (*supervisor)->Run();
    supervisor->reset();
    ::_exit(run.ok() ? 0 : 3);
  }

  ClientOptions Options(ipc::Transport transport = ipc::Transport::kCallRing) const {
    ClientOptions options;
    options.socket_path = socket_;
    options.start_supervisor = false;
    options.session.call_timeout = kCallTimeout;
    options.session.connection.transport = transport;
    return options;
  }

  std::string LogTail() const {
    std::FILE* f = std::fopen(log_.c_str(), "r");
    if (f == nullptr) return "(no log)";
    std::string text;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, n);
    std::fclose(f);
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

  // Waits until the pool is full and at rest (every executor idle and every ended one reaped);
  // returns the last status JSON. The wait is a hang deadline (30 s), not a measurement.
  std::string WaitSettled(Client& client, pid_t zygote) {
    std::string json;
    for (int i = 0; i < 3000; ++i) {
      auto status = client.StatusJson();
      if (status.has_value()) {
        json = *status;
        bool settled = Count(json, "\"state\": \"idle\"") == kPool &&
                       Count(json, "\"state\": ") == kPool &&
                       JsonInt(json, "spawning") == 0;
        if (settled && ChildrenOf(zygote).size() == kPool) return json;
      }
      std::this_thread::sleep_for(milliseconds(10));
    }
    ADD_FAILURE() << "the pool did not settle: " << json;
    return json;
  }

  // One client's share of a round: leases, each with a few healthy calls and usually one
  // fault, until `*faults` reaches `target`.
  void ClientLoop(int index, uint64_t seed, const std::atomic<uint64_t>* target,
                  std::atomic<uint64_t>* faults, Tally* tally) {
    ipc::testing::WireTestProgram program(kProgram);
    std::mt19937_64 rng(seed);
    ipc::Transport transport = index % 2 == 0 ? ipc::Transport::kCallRing : ipc::Transport::kSocket;
    Result<Client> client = Client::Connect(Options(transport));
    if (!client.has_value()) {
      tally->failures.push_back("connect: " + client.error().ToString());
      return;
    }
    auto request = [&](Fault f, int64_t n) {
      if (f == Fault::kNone) {
        return ipc::BuildCallRequest(program.program(), program.blobs(), "add",
                                     {WireValue::Int(n), WireValue::Int(1000)});
      }
      if (f == Fault::kVmMemory) {
        return ipc::BuildCallRequest(program.program(), program.blobs(), "hog", {});
      }
      static const char* const kThen[] = {"continue", "exit", "hang"};
      return ipc::BuildCallRequest(
          program.program(), program.blobs(), "fault",
          {WireValue::String(FaultName(f)), WireValue::String(kThen[rng() % 3]),
           WireValue::Int(static_cast<int64_t>(rng() >> 2))});
    };
    while (faults->load() < target->load()) {
      // The plan of one lease: healthy calls around at most one fault, in order or pipelined.
      Fault fault = Fault::kNone;
      if (rng() % 8 != 0) {
        if (faults->fetch_add(1) >= target->load()) break;
        fault = static_cast<Fault>(1 + rng() % (static_cast<int>(Fault::kCount) - 1));
        ++tally->faults;
      }
      std::vector<Fault> plan(rng() % 3, Fault::kNone);
      if (fault != Fault::kNone) plan.push_back(fault);
      for (size_t n = rng() % 2; n > 0; --n) plan.push_back(Fault::kNone);
      bool pipelined = rng() % 3 == 0;

      Result<Lease> lease = client->LeaseFor(program.program(), program.blobs(), "fault");
      if (!lease.has_value()) {
        tally->failures.push_back(std::string("lease: ") + lease.error().ToString());
        continue;
      }
      ++tally->leases;
      struct Call {
        Fault fault;
        int64_t n;
        std::optional<uint64_t> id;
        std::optional<Result<ipc::RemoteCallResponse>> answer;
        const char* where = "";  // which step answered it
      };
      std::vector<Call> calls;
      for (Fault f : plan) calls.push_back({f, static_cast<int64_t>(rng() % 1000), {}, {}});
      tally->calls += calls.size();
      auto start = [&](Call& c) {
        Result<ipc::RemoteCallRequest> r = request(c.fault, c.n);
        if (!r.has_value()) {
          c.answer = r.error();
          return;
        }
        Result<uint64_t> id = lease->session.Start(std::move(*r));
        if (id.has_value()) {
          c.id = *id;
          return;
        }
        // The executor went away while we were sending (Client has no Start that maps this
        // like WaitOn does; RemoteCalls maps it the same way).
        c.answer = id.error().kind() == ErrorKind::kIoError
                       ? Status(ExecutorCrashedError(id.error().message()))
                       : id.error();
        c.where = "start";
      };
      auto wait = [&](Call& c) {
        if (!c.id || c.answer) return;
        c.answer = client->WaitOn(*lease, *c.id);
        c.where = "wait";
      };
      if (pipelined) {
        for (Call& c : calls) start(c);
        std::vector<size_t> order(calls.size());
        for (size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::shuffle(order.begin(), order.end(), rng);
        for (size_t i : order) wait(calls[i]);
      } else {
        for (Call& c : calls) {
          start(c);
          wait(c);
        }
      }
      // Exactly once: an answered call is no longer in flight.
      for (Call& c : calls) {
        if (!c.answer) {
          ++tally->lost;
          continue;
        }
        ++tally->answers;
        if (c.id && lease->session.connection().valid()) {
          Result<ipc::RemoteCallResponse> again = lease->session.Wait(*c.id);
          if (again.has_value() || again.error().kind() != ErrorKind::kInvalidArgument) {
            ++tally->doubled;
            tally->failures.push_back(
                fmt::format("{} call {} answered again: {}", FaultName(c.fault), *c.id,
                            again.has_value() ? "a response" : again.error().ToString()));
          }
        }
      }
      // Judge each answer.
      bool after_fault = false;
      for (Call& c : calls) {
        ErrorKind kind = ErrorKind::kOk;
        std::string detail;
        if (!c.answer->has_value()) {
          kind = c.answer->error().kind();
          detail = c.answer->error().ToString();
        } else if (!(*c.answer)->ok()) {
          kind = (*c.answer)->error().kind;
          detail = (*c.answer)->error().message;
        }
        tally->by_outcome[fmt::format("{:>15} -> {}", FaultName(c.fault), ErrorKindName(kind))]++;
        bool ok = Typed(kind);
        if (c.fault == Fault::kNone && !after_fault && !pipelined) {
          if (kind == ErrorKind::kTimeout) {
            ++tally->healthy_timeouts;
          } else {
            ok = ok && kind == ErrorKind::kOk &&
                 (*c.answer)->value() == WireValue::Int(c.n + 1000);
          }
        } else if (c.fault != Fault::kNone && !pipelined) {
          ok = ok && Expected(c.fault, kind);
          if (c.fault == Fault::kForgedChecksum && kind == ErrorKind::kOk) {
            std::span<const uint8_t> bytes = (*c.answer)->value().buffer().data();
            ok = bytes.size() == kForgedLength && bytes[0] == kForgedByte;
          }
        }
        if (!ok) {
          tally->failures.push_back(fmt::format("{} call #{} of {} ({}, {}, at {}) -> {} {}",
                                                FaultName(c.fault), &c - calls.data(),
                                                calls.size(),
                                                pipelined ? "pipelined" : "in order",
                                                transport == ipc::Transport::kSocket ? "socket"
                                                                                     : "ring",
                                                c.where, ErrorKindName(kind), detail));
        }
        after_fault = after_fault || c.fault != Fault::kNone;
      }
      client->Release(*lease);
    }
  }

  Tally RunRound(uint64_t seed, uint64_t round, uint64_t target, std::atomic<uint64_t>* faults) {
    std::atomic<uint64_t> goal{target};
    std::vector<Tally> tallies(kClients);
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i) {
      uint64_t s = seed * 1000003 + round * 101 + static_cast<uint64_t>(i);
      threads.emplace_back([&, i, s] { ClientLoop(i, s, &goal, faults, &tallies[i]); });
    }
    for (std::thread& t : threads) t.join();
    Tally all;
    for (const Tally& t : tallies) all.Merge(t);
    return all;
  }

  std::string dir_, socket_, log_;
  pid_t supervisor_ = -1;
};

// ------------------------------------------------------------------ regressions, one per fix

// The error kind of a call's answer (kOk for a value).
ErrorKind KindOf(const Result<ipc::RemoteCallResponse>& answer) {
  if (!answer.has_value()) return answer.error().kind();
  return answer->ok() ? ErrorKind::kOk : answer->error().kind;
}

Result<ipc::RemoteCallRequest> FaultRequest(const ipc::testing::WireTestProgram& p,
                                            const char* kind, const char* then) {
  return ipc::BuildCallRequest(p.program(), p.blobs(), "fault",
                               {WireValue::String(kind), WireValue::String(then), WireValue::Int(1)});
}

Result<ipc::RemoteCallRequest> AddRequest(const ipc::testing::WireTestProgram& p) {
  return ipc::BuildCallRequest(p.program(), p.blobs(), "add", {WireValue::Int(2), WireValue::Int(40)});
}

// ExecutorSession::Wait used to leave a call it answered with an error in flight: waiting for it
// again returned the executor's late real answer (a second answer).
TEST_F(FaultInjectionTest, CallAnsweredWithAnErrorIsNotAnsweredAgain) {
  ipc::testing::WireTestProgram program(kProgram);
  Result<Client> client = Client::Connect(Options());
  ASSERT_TRUE(client.has_value()) << client.error().ToString();
  Result<Lease> lease = client->LeaseFor(program.program(), program.blobs(), "fault");
  ASSERT_TRUE(lease.has_value()) << lease.error().ToString();
  for (const char* kind : {"garbage", "wrong_id", "forged_unsealed"}) {
    SCOPED_TRACE(kind);
    Result<ipc::RemoteCallRequest> fault = FaultRequest(program, kind, "continue");
    ASSERT_TRUE(fault.has_value());
    Result<uint64_t> id = lease->session.Start(std::move(*fault));
    ASSERT_TRUE(id.has_value()) << id.error().ToString();
    EXPECT_EQ(KindOf(client->WaitOn(*lease, *id)), ErrorKind::kProtocolError);
    Result<ipc::RemoteCallResponse> again = lease->session.Wait(*id);
    EXPECT_FALSE(again.has_value()) << "answered twice";
    if (!again.has_value()) {
      EXPECT_EQ(again.error().kind(), ErrorKind::kInvalidArgument);
    }
    // The executor's real answer to the faulty call came after; the next call does not see it.
    Result<ipc::RemoteCallRequest> add = AddRequest(program);
    ASSERT_TRUE(add.has_value());
    Result<ipc::RemoteCallResponse> sum = client->CallOn(*lease, std::move(*add));
    ASSERT_EQ(KindOf(sum), ErrorKind::kOk) << (sum.has_value() ? sum->status() : sum.error());
    EXPECT_EQ(sum->value(), WireValue::Int(42));
  }
  client->Release(*lease);
}

// A malformed answer used to fail whichever call was being waited for, not its own.
TEST_F(FaultInjectionTest, MalformedAnswerIsItsOwnCallsAnswer) {
  ipc::testing::WireTestProgram program(kProgram);
  Result<Client> client = Client::Connect(Options());
  ASSERT_TRUE(client.has_value()) << client.error().ToString();
  Result<Lease> lease = client->LeaseFor(program.program(), program.blobs(), "fault");
  ASSERT_TRUE(lease.has_value()) << lease.error().ToString();
  Result<ipc::RemoteCallRequest> fault = FaultRequest(program, "garbage", "continue");
  Result<ipc::RemoteCallRequest> add = AddRequest(program);
  ASSERT_TRUE(fault.has_value() && add.has_value());
  Result<uint64_t> bad = lease->session.Start(std::move(*fault));
  Result<uint64_t> good = lease->session.Start(std::move(*add));
  ASSERT_TRUE(bad.has_value() && good.has_value());
  Result<ipc::RemoteCallResponse> sum = client->WaitOn(*lease, *good);  // the garbage comes first
  ASSERT_EQ(KindOf(sum), ErrorKind::kOk) << (sum.has_value() ? sum->status() : sum.error());
  EXPECT_EQ(sum->value(), WireValue::Int(42));
  EXPECT_EQ(KindOf(client->WaitOn(*lease, *bad)), ErrorKind::kProtocolError);
  client->Release(*lease);
}

// A released executor stuck in a call (here: after answering with garbage) used to stay leased
// to its client for as long as the client stayed connected, holding a pool slot.
TEST_F(FaultInjectionTest, ReleasedExecutorStuckInACallIsKilled) {
  ipc::testing::WireTestProgram program(kProgram);
  Result<Client> client = Client::Connect(Options());
  ASSERT_TRUE(client.has_value()) << client.error().ToString();
  Result<Lease> lease = client->LeaseFor(program.program(), program.blobs(), "fault");
  ASSERT_TRUE(lease.has_value()) << lease.error().ToString();
  pid_t executor = lease->executor_pid;
  Result<ipc::RemoteCallRequest> fault = FaultRequest(program, "garbage", "hang");
  ASSERT_TRUE(fault.has_value());
  EXPECT_EQ(KindOf(client->CallOn(*lease, std::move(*fault))), ErrorKind::kProtocolError);
  client->Release(*lease);
  // release_timeout is 1 s; 20 s is the hang deadline. The client stays connected throughout.
  bool gone = false;
  for (int i = 0; i < 2000 && !gone; ++i) {
    gone = !shapex_testing::ProcessAlive(executor);
    if (!gone) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(gone) << "executor " << executor << " still runs 20 s after its release";
  Result<std::string> json = client->StatusJson();
  ASSERT_TRUE(json.has_value());
  EXPECT_EQ(JsonInt(*json, "orphaned_kills"), 1) << *json;
}

// ------------------------------------------------------------------ the random run

TEST_F(FaultInjectionTest, EveryCallAnsweredOnceAndNothingLeaks) {
  const uint64_t seed = EnvOr("SHAPEX_FAULT_SEED", 12);
  const uint64_t total = std::max<uint64_t>(EnvOr("SHAPEX_FAULTS", 100), 10);
  const uint64_t checkpoint = total >= 1000 ? 100 : total / 10;
  std::printf("fault injection: SHAPEX_FAULT_SEED=%llu SHAPEX_FAULTS=%llu (%d clients, pool %zu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(total),
              kClients, kPool);
  std::fflush(stdout);

  Result<Client> observer = Client::Connect(Options());
  ASSERT_TRUE(observer.has_value()) << observer.error().ToString();
  std::vector<pid_t> zygotes = ChildrenOf(supervisor_);
  ASSERT_EQ(zygotes.size(), 1u) << "the supervisor's only child is its zygote";
  pid_t zygote = zygotes[0];
  WaitSettled(*observer, zygote);
  FdCount supervisor_fds = CountFds(supervisor_), zygote_fds = CountFds(zygote);
  FdCount own_fds = CountFds(::getpid());

  std::atomic<uint64_t> faults{0};
  Tally tally = RunRound(seed, 1, checkpoint, &faults);
  WaitSettled(*observer, zygote);
  int64_t rss_checkpoint = RssKib(supervisor_);
  tally.Merge(RunRound(seed, 2, total, &faults));
  std::string json = WaitSettled(*observer, zygote);
  int64_t rss_end = RssKib(supervisor_);

  FdCount supervisor_after = CountFds(supervisor_), zygote_after = CountFds(zygote);
  FdCount own_after = CountFds(::getpid());
  std::vector<pid_t> supervisor_children = ChildrenOf(supervisor_);
  size_t executors = ChildrenOf(zygote).size();

  std::printf("calls %llu, answers %llu, lost %llu, doubled %llu, faults %llu, leases %llu, "
              "healthy calls timed out %llu\n",
              (unsigned long long)tally.calls, (unsigned long long)tally.answers,
              (unsigned long long)tally.lost, (unsigned long long)tally.doubled,
              (unsigned long long)tally.faults, (unsigned long long)tally.leases,
              (unsigned long long)tally.healthy_timeouts);
  for (const auto& [outcome, n] : tally.by_outcome) {
    std::printf("  %s: %llu\n", outcome.c_str(), (unsigned long long)n);
  }
  std::printf("supervisor fds %zu -> %zu (memfds %zu -> %zu), zygote fds %zu -> %zu, this "
              "process fds %zu -> %zu (memfds %zu -> %zu), executors %zu (pool %zu), "
              "supervisor children %zu\n",
              supervisor_fds.fds, supervisor_after.fds, supervisor_fds.memfds,
              supervisor_after.memfds, zygote_fds.fds, zygote_after.fds, own_fds.fds,
              own_after.fds, own_fds.memfds, own_after.memfds, executors, kPool,
              supervisor_children.size());
  std::printf("supervisor RSS after %llu faults: %lld KiB, after %llu: %lld KiB (+%lld KiB)\n",
              (unsigned long long)checkpoint, (long long)rss_checkpoint,
              (unsigned long long)faults.load(), (long long)rss_end,
              (long long)(rss_end - rss_checkpoint));
  std::printf("supervisor: crashes %lld, kills %lld, orphaned_kills %lld, leases_lost %lld, "
              "spawned %lld\n",
              (long long)JsonInt(json, "crashes"),
              (long long)JsonInt(json, "kills"),
              (long long)JsonInt(json, "orphaned_kills"),
              (long long)JsonInt(json, "leases_lost"),
              (long long)JsonInt(json, "spawned"));
  std::fflush(stdout);

  EXPECT_GE(tally.faults, total);
  EXPECT_EQ(tally.answers, tally.calls);
  EXPECT_EQ(tally.lost, 0u);
  EXPECT_EQ(tally.doubled, 0u);
  for (const std::string& f : tally.failures) ADD_FAILURE() << f;
  EXPECT_EQ(supervisor_after, supervisor_fds) << "the supervisor's descriptors";
  EXPECT_EQ(zygote_after, zygote_fds) << "the zygote's descriptors";
  EXPECT_EQ(own_after, own_fds) << "this process's descriptors (the clients)";
  EXPECT_EQ(executors, kPool) << "executor processes besides the pool";
  EXPECT_EQ(supervisor_children, std::vector<pid_t>{zygote});
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in quarantine (up to 256 MiB), so RSS growth says
  // nothing about leaks in this build (the release build asserts it); the process and
  // descriptor counts above hold in both.
  std::printf("supervisor RSS growth not asserted: an ASan build's quarantine holds freed "
              "memory\n");
#else
  EXPECT_LE(rss_end - rss_checkpoint, 4096) << "supervisor RSS growth (KiB)";
#endif
}

}  // namespace
}  // namespace shapex::sandbox

// Tests for sidecar_transport.h and shared_vec.h: large values passed as segment descriptors on
// a real Connection (both transports), zero-copy SharedVec arguments, the receiver's checks on
// every descriptor, and an end-to-end remote call whose argument never leaves shared memory.
#include "shapex/ipc/sidecar_transport.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <future>
#include <string>
#include <vector>

#include "shapex/ipc/remote_call.h"
#include "shapex/ipc/shared_memory.h"
#include "shapex/ipc/shared_vec.h"
#include "testing/open_fds.h"
#include "testing/status_matchers.h"
#include "testing/wire_test_util.h"

namespace shapex::ipc {
namespace {

using ::shapex::ipc::testing::WireTestProgram;
using ::shapex_testing::CountOpenFds;
using ::shapex_testing::IsError;
using ::testing::HasSubstr;
using std::chrono::seconds;

constexpr size_t kMiB = size_t{1} << 20;

struct Pair {
  Connection client;
  Connection server;
};

Result<Pair> MakePair(Transport transport) {
  ASSIGN_OR_RETURN(auto sockets, UnixSocket::Pair());
  ConnectionOptions options;
  options.transport = transport;
  auto server = std::async(std::launch::async, [&, s = std::move(sockets.second)]() mutable {
    return Connection::Accept(std::move(s), options);
  });
  Result<Connection> client = Connection::Connect(std::move(sockets.first), options);
  Result<Connection> accepted = server.get();
  if (!client.has_value()) return client.error();
  if (!accepted.has_value()) return accepted.error();
  return Pair{std::move(*client), std::move(*accepted)};
}

std::vector<uint8_t> Doubles(size_t n, double seed) {
  std::vector<uint8_t> out(n * sizeof(double));
  for (size_t i = 0; i < n; ++i) {
    double d = seed + static_cast<double>(i);
    std::memcpy(out.data() + i * sizeof(double), &d, sizeof(double));
  }
  return out;
}

RemoteCallRequest RequestWith(std::vector<WireValue> arguments) {
  RemoteCallRequest request;
  request.function_name = "f";
  request.arguments = std::move(arguments);
  return request;
}

class SidecarTransportTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override { fds_before_ = CountOpenFds(); }
  void TearDown() override { EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak"; }

  // Sends `message` from the client and decodes it on the server.
  Result<WireMessage> RoundTrip(Pair& pair, WireMessage message,
                                const SidecarTransportOptions& receive = {}) {
    RETURN_IF_ERROR(SendMessage(pair.client, 7, std::move(message)));
    IncomingFrame frame;
    RETURN_IF_ERROR(pair.server.Receive(&frame, seconds(5)));
    return DecodeIncoming(&frame, receive);
  }
  size_t fds_before_ = 0;
};

INSTANTIATE_TEST_SUITE_P(Transports, SidecarTransportTest,
                         ::testing::Values(Transport::kCallRing, Transport::kSocket),
                         [](const auto& info) {
                           return info.param == Transport::kCallRing ? "Ring" : "Socket";
                         });

TEST_P(SidecarTransportTest, SmallValuesStayInline) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  ASSERT_OK_AND_ASSIGN(OutgoingMessage out,
                       PrepareOutgoing(RequestWith({WireValue::Int(1), WireValue::String("x")})));
  EXPECT_EQ(out.type, FrameType::kMessage);
  EXPECT_TRUE(out.fds.empty());
  ASSERT_OK_AND_ASSIGN(WireMessage in,
                       RoundTrip(pair, RequestWith({WireValue::Int(1), WireValue::String("x")})));
  EXPECT_EQ(std::get<RemoteCallRequest>(in).arguments[1], WireValue::String("x"));
}

TEST_P(SidecarTransportTest, LargeInlineValuesShareOneSealedSegment) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  std::vector<WireValue> args = {
      WireValue::TypedArray(engine::ElemKind::kF64, Doubles(2 * kMiB / 8, 1.5)),
      WireValue::String(std::string(3 * kMiB, 'q')),
      WireValue::Array({WireValue::Matrix(512, 256, Doubles(512 * 256, -4)), WireValue::Int(3)}),
      WireValue::Int(9)};
  std::vector<WireValue> expected = args;
  ASSERT_OK_AND_ASSIGN(OutgoingMessage out, PrepareOutgoing(RequestWith(args)));
  EXPECT_EQ(out.type, FrameType::kMessageWithFds);
  EXPECT_EQ(out.fds.size(), 1u) << "all copied sidecars share one segment";
  EXPECT_EQ(out.copied_bytes, 6 * kMiB);
  EXPECT_LT(out.payload.size(), 4096u) << "the bytes are not in the frame";

  ASSERT_OK_AND_ASSIGN(WireMessage in, RoundTrip(pair, RequestWith(args)));
  auto& got = std::get<RemoteCallRequest>(in).arguments;
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], expected[i]) << "argument " << i;
  // Arrays and matrices point into the received mapping; strings were copied out.
  EXPECT_NE(got[0].buffer().segment, nullptr);
  EXPECT_NE(got[2].children[0].buffer().segment, nullptr);
}

// Through a SegmentReserve (what executors use for results): the second message of a size is
// written into the spare prepared in between, and the receiver, which accepts only sealed
// segments, gets the same values both times.
TEST_P(SidecarTransportTest, ReserveSparesCarryTheSameSealedValues) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  SegmentReserve reserve;
  SidecarTransportOptions send;
  send.reserve = &reserve;
  std::vector<WireValue> args = {
      WireValue::TypedArray(engine::ElemKind::kF64, Doubles(2 * kMiB / 8, 0.5)),
      WireValue::String(std::string(kMiB + 3, 's'))};
  for (int round = 0; round < 2; ++round) {
    ASSERT_OK_AND_ASSIGN(OutgoingMessage out, PrepareOutgoing(RequestWith(args), send));
    EXPECT_EQ(out.fds.size(), 1u);
    EXPECT_EQ(out.copied_bytes, 3 * kMiB + 3);
    ASSERT_EQ(out.sources.size(), 2u) << "the values' own bytes live as long as the message";
    EXPECT_EQ(out.sources[0].bytes.size(), 2 * kMiB);
    ASSERT_OK(SendPrepared(pair.client, 7, out));
    IncomingFrame frame;
    ASSERT_OK(pair.server.Receive(&frame, seconds(5)));
    ASSERT_OK_AND_ASSIGN(WireMessage in, DecodeIncoming(&frame));
    EXPECT_EQ(std::get<RemoteCallRequest>(in).arguments, args) << "round " << round;
    reserve.Replenish();
  }
  EXPECT_EQ(reserve.stats().spare_misses, 1u);
  EXPECT_EQ(reserve.stats().spare_hits, 1u);
}

// Mappings of memfd segments in this process (the allocator's own come and go, under ASan
// especially, so only these are counted).
size_t CountMappings() {
  std::ifstream maps("/proc/self/maps");
  size_t n = 0;
  for (std::string line; std::getline(maps, line);) {
    if (line.find("/memfd:") != std::string::npos) ++n;
  }
  return n;
}

// A typed array or matrix in a sealed segment becomes a Vm value over a private mapping of the
// segment (no copy); writing to it copies only the written page and never reaches the segment.
// A read-only (owner-writable) segment is copied instead, since its owner may still change it.
TEST_P(SidecarTransportTest, SealedArraysAreAdoptedByTheVmWithoutACopy) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  WireTestProgram program("function f(v) { v }");
  const size_t n = 2 * kMiB / 8;
  std::vector<uint8_t> bytes = Doubles(n, 0.5);
  size_t mappings_before = CountMappings();
  {
    ASSERT_OK_AND_ASSIGN(WireMessage in,
                         RoundTrip(pair, RequestWith({WireValue::TypedArray(
                                                          engine::ElemKind::kF64, bytes),
                                                      WireValue::Matrix(512, 512, bytes)})));
    auto& args = std::get<RemoteCallRequest>(in).arguments;
    ASSERT_NE(args[0].buffer().segment, nullptr);
    EXPECT_TRUE(args[0].buffer().segment->sealed);
    testing::VmSide side(program);
    ASSERT_OK_AND_ASSIGN(engine::Value array, side.FromWire(args[0]));
    engine::ObjTypedArray* a = engine::AsTypedArray(array);
    EXPECT_NE(a->external.release, nullptr) << "adopted, not copied";
    EXPECT_EQ(std::memcmp(a->data, bytes.data(), bytes.size()), 0);
    a->As<double>()[0] = 42.0;  // copy-on-write: the segment keeps 0.5
    double in_segment;
    std::memcpy(&in_segment, args[0].buffer().data().data(), sizeof in_segment);
    EXPECT_EQ(in_segment, 0.5);
    EXPECT_EQ(a->As<double>()[1], 1.5);
    ASSERT_OK_AND_ASSIGN(engine::Value matrix, side.FromWire(args[1]));
    EXPECT_NE(engine::AsMatrix(matrix)->external.release, nullptr);
    EXPECT_EQ(engine::AsMatrix(matrix)->At(511, 511), 0.5 + static_cast<double>(n - 1));
    EXPECT_GT(CountMappings(), mappings_before);
  }  // the Vm unmaps what it adopted
  EXPECT_EQ(CountMappings(), mappings_before);

  // Read-only segments (SharedVec, pooled arguments) are copied.
  ASSERT_OK_AND_ASSIGN(SharedVec<double> v, SharedVec<double>::Create(n));
  std::memcpy(v.data(), bytes.data(), bytes.size());
  SidecarTransportOptions trusting;
  trusting.accept_read_only_segments = true;
  ASSERT_OK_AND_ASSIGN(WireMessage in, RoundTrip(pair, RequestWith({v.ToWire()}), trusting));
  const WireValue& arg = std::get<RemoteCallRequest>(in).arguments[0];
  EXPECT_FALSE(arg.buffer().segment->sealed);
  testing::VmSide side(program);
  ASSERT_OK_AND_ASSIGN(engine::Value copy, side.FromWire(arg));
  EXPECT_EQ(engine::AsTypedArray(copy)->external.release, nullptr);
  v[0] = -1.0;  // the owner changes its segment: the Vm's copy does not see it
  EXPECT_EQ(engine::AsTypedArray(copy)->As<double>()[0], 0.5);
}

// Bytes borrowed from the sender's memory (a view with fd -1) are copied into the message's
// sealed segment like inline ones, never passed as a descriptor.
TEST_P(SidecarTransportTest, BorrowedBytesAreCopiedIntoTheSealedSegment) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  std::vector<uint8_t> bytes = Doubles(2 * kMiB / 8, 3.0);
  auto view = std::make_shared<SegmentView>(SegmentView{bytes, -1, 0, false});
  WireValue borrowed = WireValue::SharedTypedArray(engine::ElemKind::kF64, view);
  ASSERT_OK_AND_ASSIGN(OutgoingMessage out, PrepareOutgoing(RequestWith({borrowed})));
  ASSERT_EQ(out.fds.size(), 1u);
  EXPECT_EQ(out.copied_bytes, bytes.size());
  EXPECT_EQ(fcntl(out.fds[0], F_GET_SEALS), ImmutableSeals());
  ASSERT_OK_AND_ASSIGN(WireMessage in, RoundTrip(pair, RequestWith({borrowed})));
  EXPECT_EQ(std::get<RemoteCallRequest>(in).arguments[0],
            WireValue::TypedArray(engine::ElemKind::kF64, bytes));
}

TEST_P(SidecarTransportTest, SharedVecTravelsWithoutACopy) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  ASSERT_OK_AND_ASSIGN(SharedVec<double> v, SharedVec<double>::Create(300000));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25 * static_cast<double>(i);
  ASSERT_OK_AND_ASSIGN(OutgoingMessage out, PrepareOutgoing(RequestWith({v.ToWire()})));
  EXPECT_EQ(out.copied_bytes, 0u);
  EXPECT_EQ(out.sidecar_bytes, v.size() * sizeof(double));
  ASSERT_EQ(out.fds.size(), 1u);
  EXPECT_EQ(out.fds[0], v.ToWire().buffer().segment->fd);

  // A server that accepts only sealed segments refuses it.
  EXPECT_THAT(RoundTrip(pair, RequestWith({v.ToWire()})), IsError(ErrorKind::kProtocolError));

  SidecarTransportOptions trusting;
  trusting.accept_read_only_segments = true;
  ASSERT_OK_AND_ASSIGN(WireMessage in, RoundTrip(pair, RequestWith({v.ToWire()}), trusting));
  const WireBuffer& got = std::get<RemoteCallRequest>(in).arguments[0].buffer();
  ASSERT_NE(got.segment, nullptr);
  ASSERT_EQ(got.data().size(), v.size() * sizeof(double));
  double last;
  std::memcpy(&last, got.data().data() + got.data().size() - 8, 8);
  EXPECT_EQ(last, 0.25 * static_cast<double>(v.size() - 1));
  // Same memory: a later write by the owner is visible to the receiver (hence the rule that a
  // SharedVec is not modified while a call uses it).
  v[0] = 42.0;
  double first;
  std::memcpy(&first, got.data().data(), 8);
  EXPECT_EQ(first, 42.0);
}

// Resident pages (kB) of this process's mapping that contains `address`, from /proc/self/smaps;
// -1 when no mapping contains it.
long MappingRssKb(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  auto target = reinterpret_cast<uintptr_t>(address);
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2) {  // a mapping's first line
      inside = start <= target && target < end;
    } else if (inside && line.compare(0, 4, "Rss:") == 0) {
      return std::atol(line.c_str() + 4);
    }
  }
  return -1;
}

// Issue 14: what a large segment costs the receiver must not grow with its size. It checks the
// seals and size and maps the segment, but touches none of its pages (no MAP_POPULATE, no
// reading): a 64 MiB array arrives with nothing of it mapped in yet.
TEST_P(SidecarTransportTest, ReceivingALargeSegmentTouchesNoneOfItsPages) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  ASSERT_OK_AND_ASSIGN(SharedVec<double> v, SharedVec<double>::Create(64 * kMiB / 8));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);  // every page resident
  SidecarTransportOptions trusting;
  trusting.accept_read_only_segments = true;
  {
    ASSERT_OK_AND_ASSIGN(WireMessage in, RoundTrip(pair, RequestWith({v.ToWire()}), trusting));
    const WireBuffer& got = std::get<RemoteCallRequest>(in).arguments[0].buffer();
    ASSERT_NE(got.segment, nullptr);
    ASSERT_EQ(got.data().size(), 64 * kMiB);
    EXPECT_NE(got.data().data(), reinterpret_cast<const uint8_t*>(v.data()));  // its own mapping
    EXPECT_EQ(MappingRssKb(got.data().data()), 0);
    EXPECT_EQ(MappingRssKb(v.data()), 64 * 1024);  // the sender's, for contrast
  }
  // The same for a sealed segment (a large inline array copied by the sender).
  WireValue sealed = WireValue::TypedArray(engine::ElemKind::kF64, Doubles(8 * kMiB / 8, 1.0));
  ASSERT_OK_AND_ASSIGN(WireMessage in, RoundTrip(pair, RequestWith({std::move(sealed)})));
  const WireBuffer& got = std::get<RemoteCallRequest>(in).arguments[0].buffer();
  ASSERT_NE(got.segment, nullptr);
  EXPECT_TRUE(got.segment->sealed);
  EXPECT_EQ(MappingRssKb(got.data().data()), 0);
}

TEST_P(SidecarTransportTest, ResponsesCarrySidecarsToo) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  WireValue big = WireValue::TypedArray(engine::ElemKind::kI32, std::vector<uint8_t>(4 * kMiB, 1));
  ASSERT_OK(SendMessage(pair.server, 3, RemoteCallResponse::Success(big)));
  IncomingFrame frame;
  ASSERT_OK(pair.client.Receive(&frame, seconds(5)));
  EXPECT_EQ(frame.call_id, 3u);
  ASSERT_OK_AND_ASSIGN(WireMessage in, DecodeIncoming(&frame));
  EXPECT_EQ(std::get<RemoteCallResponse>(in).value(), big);
}

// ---- hostile descriptors ---------------------------------------------------------------------

class HostileSidecarTest : public SidecarTransportTest {
 protected:
  // Sends a kMessageWithFds frame whose table has `slices` over `fds`, and a one-argument call
  // whose argument is a SidecarRef to sidecar 0 of `length` bytes.
  Status SendForged(Pair& pair, std::vector<FdSlice> slices, std::vector<int> fds,
                    uint64_t length) {
    WireSidecarRef ref;
    ref.kind = SidecarKind::kTypedArray;
    ref.elem = engine::ElemKind::kU8;
    ref.length = length;
    FdTable table{static_cast<uint32_t>(fds.size()), std::move(slices)};
    std::vector<uint8_t> payload;
    EncodeFdTable(table, &payload);
    std::vector<uint8_t> message = EncodeMessage(RequestWith({WireValue::SidecarRef(ref)}));
    payload.insert(payload.end(), message.begin(), message.end());
    return pair.client.Send(FrameType::kMessageWithFds, 1, payload, fds);
  }
  Status ReceiveForged(Pair& pair, bool trusting = false) {
    IncomingFrame frame;
    RETURN_IF_ERROR(pair.server.Receive(&frame, seconds(5)));
    SidecarTransportOptions options;
    options.accept_read_only_segments = trusting;
    return DecodeIncoming(&frame, options).error();
  }
};

INSTANTIATE_TEST_SUITE_P(Transports, HostileSidecarTest,
                         ::testing::Values(Transport::kCallRing, Transport::kSocket),
                         [](const auto& info) {
                           return info.param == Transport::kCallRing ? "Ring" : "Socket";
                         });

TEST_P(HostileSidecarTest, EveryBadDescriptorIsAProtocolErrorAndTheConnectionLives) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  // An unsealed memfd (the sender could shrink it under us: SIGBUS).
  ASSERT_OK_AND_ASSIGN(ScopedFd unsealed, CreateMemfd(4096));
  ASSERT_OK(SendForged(pair, {{0, 0, 16}}, {unsealed.get()}, 16));
  EXPECT_THAT(ReceiveForged(pair, true), IsError(ErrorKind::kProtocolError));
  // A sealed segment, but the slice runs past its end.
  ASSERT_OK_AND_ASSIGN(SealedSegment sealed, SealedSegment::CreateFrom(std::vector<uint8_t>(64)));
  ASSERT_OK(SendForged(pair, {{0, 32, 64}}, {sealed.fd()}, 64));
  EXPECT_THAT(ReceiveForged(pair), IsError(ErrorKind::kProtocolError));
  // Offset + length that wraps around.
  ASSERT_OK(SendForged(pair, {{0, 63, ~uint64_t{0} - 10}}, {sealed.fd()}, 8));
  EXPECT_THAT(ReceiveForged(pair), IsError(ErrorKind::kProtocolError));
  // A length that disagrees with the reference.
  ASSERT_OK(SendForged(pair, {{0, 0, 32}}, {sealed.fd()}, 16));
  EXPECT_THAT(ReceiveForged(pair), IsError(ErrorKind::kProtocolError));
  // A descriptor no sidecar uses.
  ASSERT_OK(SendForged(pair, {{0, 0, 16}}, {sealed.fd(), sealed.fd()}, 16));
  EXPECT_THAT(ReceiveForged(pair), IsError(ErrorKind::kProtocolError));
  // Not a memfd at all.
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  ASSERT_OK(SendForged(pair, {{0, 0, 16}}, {p[0]}, 16));
  EXPECT_THAT(ReceiveForged(pair, true), IsError(ErrorKind::kProtocolError));
  close(p[0]);
  close(p[1]);
  // A writable descriptor of an owner-writable segment, even to a trusting receiver.
  ASSERT_OK_AND_ASSIGN(ScopedFd writable, CreateMemfd(4096));
  ASSERT_EQ(fcntl(writable.get(), F_ADD_SEALS, FixedSizeSeals() | F_SEAL_FUTURE_WRITE), 0);
  ASSERT_OK(SendForged(pair, {{0, 0, 16}}, {writable.get()}, 16));
  EXPECT_THAT(ReceiveForged(pair, true), IsError(ErrorKind::kProtocolError));
  // After all that, a good message still goes through on the same connection.
  ASSERT_OK(SendForged(pair, {{0, 0, 16}}, {sealed.fd()}, 16));
  EXPECT_OK(ReceiveForged(pair));
}

TEST_P(HostileSidecarTest, ReceivedSegmentCannotBeMappedWritable) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  ASSERT_OK_AND_ASSIGN(SharedVec<int32_t> v, SharedVec<int32_t>::Create(1 << 20));
  SidecarTransportOptions trusting;
  trusting.accept_read_only_segments = true;
  ASSERT_OK(SendMessage(pair.client, 1, RequestWith({v.ToWire()})));
  IncomingFrame frame;
  ASSERT_OK(pair.server.Receive(&frame, seconds(5)));
  ASSERT_OK_AND_ASSIGN(WireMessage in, DecodeIncoming(&frame, trusting));
  int fd = std::get<RemoteCallRequest>(in).arguments[0].buffer().segment->fd;
  size_t size = 4u << 20;
  errno = 0;
  void* w = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  EXPECT_EQ(w, MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
  // Reopening it read-write does not help either: the future-write seal refuses the mapping.
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  int rw = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (rw >= 0) {
    errno = 0;
    w = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
    EXPECT_EQ(w, MAP_FAILED);
    EXPECT_EQ(errno, EPERM);
    close(rw);
  }
}

// ---- SharedVec and SegmentPool -------------------------------------------------------------

TEST(SharedVecTest, PoolReusesSegmentsBySizeClass) {
  size_t fds_before = CountOpenFds();
  {
    SegmentPoolOptions options;
    options.max_idle_bytes = 8 * kMiB;
    SegmentPool pool(options);
    void* first_data = nullptr;
    {
      ASSERT_OK_AND_ASSIGN(SharedVec<double> v, SharedVec<double>::Create(100000, &pool));
      first_data = v.data();
      v[5] = 1.0;
    }
    ASSERT_OK_AND_ASSIGN(SharedVec<double> again, SharedVec<double>::Create(120000, &pool));
    EXPECT_EQ(again.data(), first_data) << "same 1 MiB class, same mapping";
    EXPECT_EQ(pool.stats().created, 1u);
    EXPECT_EQ(pool.stats().reused, 1u);
    // Segments larger than max_idle_bytes are not kept.
    { ASSERT_OK_AND_ASSIGN(SharedVec<uint8_t> big, SharedVec<uint8_t>::Create(16 * kMiB, &pool)); }
    EXPECT_EQ(pool.stats().released, 1u);
    // A WireValue keeps the segment alive after its SharedVec is gone.
    WireValue w;
    {
      ASSERT_OK_AND_ASSIGN(SharedVec<int16_t> s, SharedVec<int16_t>::Create(10, &pool));
      s[9] = 7;
      w = s.ToWire();
    }
    EXPECT_EQ(w.buffer().data()[18], 7);
  }
  EXPECT_EQ(CountOpenFds(), fds_before);
}

TEST_P(SidecarTransportTest, ManyArraysInOneArenaTravelAsOneDescriptor) {
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(GetParam()));
  ASSERT_OK_AND_ASSIGN(SegmentArena arena, SegmentArena::Create(4 * kMiB));
  size_t free_before = arena.stats().free_bytes;
  {
    std::vector<WireValue> args;
    for (int i = 0; i < 100; ++i) {
      ASSERT_OK_AND_ASSIGN(SharedVec<int32_t> v, SharedVec<int32_t>::Create(100 + i, &arena));
      for (size_t k = 0; k < v.size(); ++k) v[k] = i * 1000 + static_cast<int32_t>(k);
      args.push_back(v.ToWire());
    }
    std::vector<WireValue> expected;
    for (const WireValue& a : args) {
      std::span<const uint8_t> d = a.buffer().data();
      expected.push_back(
          WireValue::TypedArray(engine::ElemKind::kI32, std::vector<uint8_t>(d.begin(), d.end())));
    }
    ASSERT_OK_AND_ASSIGN(OutgoingMessage out, PrepareOutgoing(RequestWith(args)));
    EXPECT_EQ(out.fds.size(), 1u);
    EXPECT_EQ(out.copied_bytes, 0u);
    SidecarTransportOptions trusting;
    trusting.accept_read_only_segments = true;
    ASSERT_OK_AND_ASSIGN(WireMessage in, RoundTrip(pair, RequestWith(args), trusting));
    EXPECT_EQ(std::get<RemoteCallRequest>(in).arguments, expected);
    EXPECT_LT(arena.stats().free_bytes, free_before);
  }
  // Every allocation went back to the arena with the last value using it.
  EXPECT_EQ(arena.stats().free_bytes, free_before);
  EXPECT_EQ(arena.stats().allocations, 100u);
}

TEST(SharedVecTest, FullArenaIsResourceExhausted) {
  ASSERT_OK_AND_ASSIGN(SegmentArena arena, SegmentArena::Create(1 * kMiB));
  ASSERT_OK_AND_ASSIGN(SharedVec<double> most, SharedVec<double>::Create(100000, &arena));
  EXPECT_THAT(SharedVec<double>::Create(100000, &arena), IsError(ErrorKind::kResourceExhausted));
  EXPECT_EQ(arena.stats().failed, 1u);
}

TEST(SharedVecTest, MatrixShapeMustMatch) {
  ASSERT_OK_AND_ASSIGN(SharedVec<double> v, SharedVec<double>::Create(12));
  EXPECT_OK(v.ToWireMatrix(3, 4));
  EXPECT_THAT(v.ToWireMatrix(5, 4), IsError(ErrorKind::kInvalidArgument));
}

// ---- end to end: a remote call whose argument stays in shared memory ---------------------

TEST(SidecarRemoteCallTest, SharedVecArgumentAndLargeResult) {
  WireTestProgram program(R"(
function total(v) { v.sum() }
function twice(v) { v * 2.0 }
)");
  ASSERT_OK_AND_ASSIGN(auto pair, MakePair(Transport::kCallRing));
  ASSERT_OK_AND_ASSIGN(SharedVec<double> v, SharedVec<double>::Create(1 << 18));  // 2 MiB
  for (size_t i = 0; i < v.size(); ++i) v[i] = 1.0;
  SidecarTransportOptions trusting;
  trusting.accept_read_only_segments = true;
  for (const char* name : {"total", "twice"}) {
    SCOPED_TRACE(name);
    ASSERT_OK_AND_ASSIGN(RemoteCallRequest request,
                         BuildCallRequest(program.program(), program.blobs(), name, {v.ToWire()}));
    ASSERT_OK(SendMessage(pair.client, 11, std::move(request)));
    IncomingFrame frame;
    ASSERT_OK(pair.server.Receive(&frame, seconds(5)));
    ASSERT_OK_AND_ASSIGN(WireMessage in, DecodeIncoming(&frame, trusting));
    RemoteCallResponse response = ExecuteRemoteCall(std::get<RemoteCallRequest>(in), {});
    ASSERT_TRUE(response.ok()) << response.status();
    ASSERT_OK(SendMessage(pair.server, 11, std::move(response)));
    ASSERT_OK(pair.client.Receive(&frame, seconds(5)));
    ASSERT_OK_AND_ASSIGN(WireMessage back, DecodeIncoming(&frame));
    const WireValue& value = std::get<RemoteCallResponse>(back).value();
    if (std::string(name) == "total") {
      EXPECT_EQ(value, WireValue::Number(static_cast<double>(v.size())));
    } else {
      // 2 MiB of result came back as a sealed segment.
      ASSERT_EQ(value.kind, WireKind::kTypedArray);
      ASSERT_NE(value.buffer().segment, nullptr);
      EXPECT_EQ(value.buffer().data().size(), v.size() * 8);
      double x;
      std::memcpy(&x, value.buffer().data().data() + 8 * 1000, 8);
      EXPECT_EQ(x, 2.0);
    }
  }
}

}  // namespace
}  // namespace shapex::ipc

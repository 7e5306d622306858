// The one header an embedder includes: the embedding API (shapex::Runtime, shapex::Module,
// conversions, errors; client/runtime.h) and the lower-level client (shapex::Client,
// ExecutorSession, RemoteCalls) for experts. docs/embedding.md is the guide.
#ifndef SHAPEX_SHAPEX_H_
#define SHAPEX_SHAPEX_H_

#include "shapex/client/client.h"
#include "shapex/client/executor_session.h"
#include "shapex/client/remote_calls.h"
#include "shapex/client/runtime.h"
#include "shapex/core/result.h"
#include "shapex/core/status.h"

#endif  // SHAPEX_SHAPEX_H_

#include "base/exit_code.h"

namespace dm {

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return kExitOk;
    case Code::kInvalidArgument:
      return kExitUsage;
    case Code::kNotFound:
      return kExitNotFound;
    case Code::kAlreadyExists:
      return kExitExists;
    case Code::kUnauthenticated:
    case Code::kPermissionDenied:
      return kExitDenied;
    case Code::kFailedPrecondition:
      return kExitPrecondition;
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
      return kExitUnavailable;
    case Code::kResourceExhausted:
    case Code::kCorruption:
    case Code::kIoError:
    case Code::kAborted:
    case Code::kUnimplemented:
    case Code::kInternal:
      break;
  }
  return kExitFailure;
}

}  // namespace dm

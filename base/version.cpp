#include "base/version.h"

#include "git_revision.h"  // generated into the build tree (cmake/GitRevision.cmake)

namespace dm {

std::string_view ProjectVersion() { return DMAGENT_VERSION; }

std::string_view GitRevision() { return DMAGENT_GIT_REVISION; }

std::string VersionLine(std::string_view program) {
  return std::string(program) + " " + std::string(ProjectVersion()) + " (git " +
         std::string(GitRevision()) + ")";
}

}  // namespace dm

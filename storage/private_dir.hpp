// The data folder holds private chats: only the node's own user may read it.
#pragma once

#include <string>

namespace sb {

// Creates `dir` (and missing parents) if needed and removes every group and
// other permission bit from it and from everything under it (symlinks are
// left alone), logging what an existing folder had to lose. Throws
// storage_error when the folder cannot be created.
void make_private_dir(const std::string& dir);

}  // namespace sb

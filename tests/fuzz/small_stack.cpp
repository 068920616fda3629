// Linked into every fuzz target: limits the main thread's stack, on which
// libFuzzer runs each input, to 256 KiB before the first input. A parser
// that recurses once per level of nesting then overflows at a few thousand
// levels, which inputs of a few KiB reach, instead of at the hundreds of
// thousands that an 8 MiB stack takes (issue 12's 900 KB API body). The
// project's rule is that nothing recurses on input depth, so such an
// overflow is a finding even for inputs a node takes whole.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

namespace {

constexpr rlim_t stack_bytes = 256 * 1024;

// The kernel checks the limit whenever the stack grows, so lowering it now
// applies to the running thread.
const bool stack_limited = [] {
  rlimit r{};
  if (getrlimit(RLIMIT_STACK, &r) != 0) std::abort();
  r.rlim_cur = stack_bytes;
  if (setrlimit(RLIMIT_STACK, &r) != 0) {
    std::perror("small_stack: setrlimit");
    std::abort();
  }
  return true;
}();

}  // namespace

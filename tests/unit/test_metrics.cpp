#include <doctest/doctest.h>

#include "core/metrics.hpp"

TEST_CASE("metrics: namespaces have their own figures, unconfigured ones share 'other'") {
  sb::metrics::declare_spaces({"chat", "user"});
  auto& chat = sb::metrics::space_of("chat");
  chat.events_stored += 5;
  chat.channels++;
  sb::metrics::space_of("elsewhere").frames_delivered += 7;
  CHECK(&sb::metrics::space_of("elsewhere") == &sb::metrics::space_of("other"));
  CHECK(&sb::metrics::space_of("user") != &chat);
  auto text = sb::metrics::render();
  CHECK(text.find("switchboard_namespace_events_stored_total{namespace=\"chat\"} 5\n") !=
        std::string::npos);
  CHECK(text.find("switchboard_namespace_channels{namespace=\"chat\"} 1\n") != std::string::npos);
  CHECK(text.find("switchboard_namespace_frames_delivered_total{namespace=\"other\"} 7\n") !=
        std::string::npos);
  CHECK(text.find("switchboard_namespace_events_stored_total{namespace=\"user\"} 0\n") !=
        std::string::npos);
  CHECK(text.find("# TYPE switchboard_namespace_channels gauge\n") != std::string::npos);
}

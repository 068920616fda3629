// What a verified token says about the connecting user.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sb {

struct claims {
  std::string user_id;        // text form, used in channel names (`user:42`)
  bool user_id_numeric = false;  // echoed back as a JSON number when true
  std::string name;           // display name; empty when the token has none
  std::string role;           // empty when the token has none
  std::vector<std::string> channels;  // names or prefix patterns ending in '*'
  int64_t exp = 0;            // seconds since the epoch
};

}  // namespace sb

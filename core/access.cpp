#include "core/access.hpp"

#include <algorithm>

#include "core/channel_name.hpp"

namespace sb {

bool channels_claim_grants(const claims& c, const std::string& channel) {
  return std::any_of(c.channels.begin(), c.channels.end(), [&](const std::string& p) {
    if (!p.empty() && p.back() == '*')
      return channel.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0;
    return p == channel;
  });
}

static std::string id_part(const std::string& channel) {
  auto colon = channel.find(':');
  return colon == std::string::npos ? std::string{} : channel.substr(colon + 1);
}

bool may_subscribe(const config& cfg, const claims& c, const std::string& channel) {
  if (channels_claim_grants(c, channel)) return true;
  const auto& ns = cfg.namespace_of(channel);
  switch (ns.access) {
    case access_rule::members:
      return false;
    case access_rule::owner:
      return id_part(channel) == c.user_id;
    case access_rule::role:
      return !c.role.empty() && id_part(channel) == c.role;
    case access_rule::roles:
      return std::find(ns.roles.begin(), ns.roles.end(), c.role) != ns.roles.end();
    case access_rule::authenticated:
      return true;
  }
  return false;
}

bool may_publish(const config& cfg, const claims& c, const std::string& channel) {
  const auto& ns = cfg.namespace_of(channel);
  return ns.publish && ns.access == access_rule::members &&
         may_subscribe(cfg, c, channel);
}

}  // namespace sb

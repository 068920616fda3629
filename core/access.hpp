// Channel access rules (PROTOCOL section 2 and 10): who may subscribe to and
// publish in a channel, decided from the token's claims and the namespace's
// options.
#pragma once

#include <string>

#include "core/claims.hpp"
#include "core/config.hpp"

namespace sb {

// True when the token's `channels` claim names `channel`, exactly or by a
// prefix pattern ending in '*'.
bool channels_claim_grants(const claims& c, const std::string& channel);

bool may_subscribe(const config& cfg, const claims& c, const std::string& channel);

// Publishing needs subscribe rights and a namespace that takes client events.
bool may_publish(const config& cfg, const claims& c, const std::string& channel);

}  // namespace sb

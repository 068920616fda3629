#include "actors/connection_actor.hpp"

#include <chrono>
#include <unordered_set>

#include "actors/counted_actor.hpp"
#include "actors/messages.hpp"
#include "core/access.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/time.hpp"
#include "net/jwt.hpp"

namespace sb {

namespace {

using namespace std::chrono_literals;

constexpr auto request_timeout = 10s;

struct connection_state {
  connection_args args;
  user_ref user;
  caf::actor user_actor;
  request_bucket_ptr requests;  // the user's, shared by their connections here
  std::vector<std::pair<std::string, caf::actor>> channels;  // joined, in join order
  std::vector<wire::channel_position> positions;             // for the greeting
  std::unordered_set<std::string> subscribed;  // joined with `subscribe`: each holds a user slot
  type_filter notification_types;              // this connection's, as the channels hold it
  int64_t opened_ms = now_ms();
  std::size_t max_in_flight = 0;  // limits.max_requests_in_flight
  std::size_t in_flight = 0;      // requests under way that answer the client
};

using conn_actor = counted_actor<connection_state>;

void reply_error(conn_actor* self, std::string_view code, std::string_view message,
                 const std::string& id) {
  self->state.args.out->send(wire::error(code, message, id));
}

void reply_failure(conn_actor* self, const caf::error& e, const std::string& id) {
  if (auto text = describe(e); text.code) {
    reply_error(self, text.code, text.message, id);
    return;
  }
  log::warn("request_failed", {{"conn", self->state.args.id}, {"error", to_string(e)}});
  reply_error(self, "internal_error", "the request failed, try again", id);
}

// A client that floods reads (history, presence, subscriptions) gets at most
// max_in_flight of them queued at its channels at once: the rest would wait
// in the channel's mailbox ahead of every other user's request. A frame
// that asks `n` channels is admitted whole or not at all.
bool admit_request(conn_actor* self, const std::string& id, std::size_t n = 1) {
  auto& st = self->state;
  if (st.in_flight + n > st.max_in_flight) {
    reply_error(self, "rate_limited",
                "too many requests under way on this connection; wait for their answers", id);
    return false;
  }
  st.in_flight += n;
  return true;
}

void request_done(conn_actor* self) { --self->state.in_flight; }

void request_failed(conn_actor* self, const caf::error& e, const std::string& id) {
  request_done(self);
  reply_failure(self, e, id);
}

void fail_connect(conn_actor* self, uint16_t code, const char* reason, const caf::error& e) {
  log::info("conn_refused", {{"conn", self->state.args.id},
                             {"user", self->state.user.id},
                             {"code", code},
                             {"why", to_string(e)}});
  self->state.args.out->close(code, reason);
  self->quit();
}

// This connection as a channel sees it.
member as_member(conn_actor* self) {
  return member{caf::actor{self}, self->state.args.out, self->state.user, {}};
}

void greet(conn_actor* self, const config& cfg) {
  auto& st = self->state;
  double heartbeat = std::chrono::duration<double>(cfg.limits.heartbeat_interval).count();
  st.args.out->start(wire::connection_established(st.user, cfg.node_id, heartbeat, st.positions));
  st.positions.clear();
  log::info("conn_open", {{"conn", st.args.id},
                          {"user", st.user.id},
                          {"route", st.args.path},
                          {"remote", st.args.remote}});
}

// Joins the route's channels one after the other; commands wait until done.
void join_from(conn_actor* self, caf::actor hub, const config* cfg, std::size_t i) {
  auto& st = self->state;
  if (i == st.args.channels.size()) {
    greet(self, *cfg);
    return;
  }
  const auto& name = st.args.channels[i];
  auto pos = st.args.positions.find(name);
  join_request req{as_member(self),
                   pos == st.args.positions.end() ? std::nullopt : std::optional{pos->second},
                   {}, {}, false};
  self->request(hub, request_timeout, join_atom::value, st.args.channels[i], std::move(req))
      .await(
          [=](joined& j) {
            self->state.channels.emplace_back(j.position.channel, j.channel);
            self->state.positions.push_back(std::move(j.position));
            join_from(self, hub, cfg, i + 1);
          },
          [=](caf::error& e) { fail_connect(self, 4000, "internal error while joining", e); });
}

const caf::actor* find_channel(conn_actor* self, const std::string& name) {
  for (auto& [n, a] : self->state.channels)
    if (n == name) return &a;
  return nullptr;
}

// The channel a frame acts on: its `channel`, or the route's only channel.
const std::pair<std::string, caf::actor>* target(conn_actor* self, const wire::command& c) {
  auto& chans = self->state.channels;
  if (c.channel.empty()) {
    if (chans.size() == 1) return &chans.front();
    reply_error(self, "invalid_message", "channel is required on this route", c.id);
    return nullptr;
  }
  for (auto& entry : chans)
    if (entry.first == c.channel) return &entry;
  reply_error(self, "forbidden", "not subscribed to " + c.channel, c.id);
  return nullptr;
}

// The channel a stored-event or typing frame acts on, if this user may
// publish there (typing on a read-only channel would show the user's name to
// every subscriber).
const std::pair<std::string, caf::actor>* publish_target(conn_actor* self, const config& cfg,
                                                          const wire::command& c) {
  auto* ch = target(self, c);
  if (ch && !may_publish(cfg, self->state.args.token, ch->first)) {
    reply_error(self, "forbidden", "clients cannot publish to " + ch->first, c.id);
    return nullptr;
  }
  return ch;
}

void publish(conn_actor* self, const config& cfg, wire::command& c) {
  auto* ch = publish_target(self, cfg, c);
  if (!ch) return;
  auto& st = self->state;
  auto limit = cfg.namespace_of(ch->first).max_message_length;
  if (c.type == wire::command_type::message && c.content_length > limit) {
    reply_error(self, "invalid_message",
                "message is longer than " + std::to_string(limit) + " characters", c.id);
    return;
  }
  c.body.user = st.user;
  self->request(st.user_actor, request_timeout, publish_atom::value, ch->second, std::move(c.body))
      .then(
          [=, id = c.id](uint64_t event_id, const std::string&) {
            if (!id.empty()) self->state.args.out->send(wire::ack(id, event_id));
          },
          [=, id = c.id](caf::error& e) { reply_failure(self, e, id); });
}

void subscribe(conn_actor* self, caf::actor hub, const config& cfg, const wire::command& c) {
  auto& st = self->state;
  if (!st.args.multiplex) {
    reply_error(self, "forbidden", "this route does not take subscriptions", c.id);
    return;
  }
  if (!may_subscribe(cfg, st.args.token, c.channel)) {
    reply_error(self, "forbidden", "not allowed in " + c.channel, c.id);
    return;
  }
  if (find_channel(self, c.channel)) {
    reply_error(self, "invalid_message", "already subscribed to " + c.channel, c.id);
    return;
  }
  auto most = cfg.limits.max_channels_per_connection;
  if (st.subscribed.size() >= most) {
    reply_error(self, "limit_exceeded",
                "this connection is subscribed to " + std::to_string(most) +
                    " channels, the most allowed",
                c.id);
    return;
  }
  if (!admit_request(self, c.id)) return;
  // Awaited: the client may act on the channel as soon as `subscribed`
  // (sent by the channel) arrives, so frames after this one wait until the
  // channel is in the list.
  self->request(st.user_actor, request_timeout, slot_atom::value, join_atom::value, caf::actor{self})
      .await(
          [=](bool) {
            join_request req{as_member(self), c.since, c.epoch, c.id, true};
            self->request(hub, request_timeout, join_atom::value, c.channel, std::move(req))
                .await(
                    [=](joined& j) {
                      request_done(self);
                      self->state.channels.emplace_back(j.position.channel, j.channel);
                      self->state.subscribed.insert(j.position.channel);
                    },
                    [=, id = c.id](caf::error& e) {
                      self->send(self->state.user_actor, slot_atom::value, leave_atom::value,
                                 caf::actor{self});
                      request_failed(self, e, id);
                    });
          },
          [=, id = c.id](caf::error& e) { request_failed(self, e, id); });
}

void unsubscribe(conn_actor* self, const wire::command& c) {
  auto& chans = self->state.channels;
  auto it = std::find_if(chans.begin(), chans.end(),
                         [&](const auto& entry) { return entry.first == c.channel; });
  if (!self->state.args.multiplex || it == chans.end()) {
    reply_error(self, "not_found", "not subscribed to " + c.channel, c.id);
    return;
  }
  if (!admit_request(self, c.id)) return;
  auto channel = it->second;
  if (self->state.subscribed.erase(it->first))
    self->send(self->state.user_actor, slot_atom::value, leave_atom::value, caf::actor{self});
  chans.erase(it);
  self->request(channel, request_timeout, leave_atom::value, caf::actor{self})
      .then(
          [=, id = c.id](const wire::channel_position& p) {
            request_done(self);
            self->state.args.out->send(wire::subscription(false, p, id));
          },
          [=, id = c.id](caf::error& e) { request_failed(self, e, id); });
}

// subscribe/unsubscribe{notification_types}: narrows what the route's
// channels deliver to this connection.
void filter(conn_actor* self, const config& cfg, const wire::command& c) {
  auto& st = self->state;
  if (!st.args.notification_filter) {
    reply_error(self, "forbidden", "notification filters are only for /ws/notifications/", c.id);
    return;
  }
  // The channels keep each member's filter; this copy bounds it.
  bool add = c.type == wire::command_type::subscribe;
  auto most = cfg.limits.max_notification_types;
  auto next = changed_filter(st.notification_types, c.notification_types, add, most);
  if (!next) {
    reply_error(self, "limit_exceeded",
                "a connection may filter on at most " + std::to_string(most) + " notification types",
                c.id);
    return;
  }
  if (!admit_request(self, c.id, st.channels.size())) return;
  st.notification_types = std::move(*next);
  for (auto& [name, channel] : st.channels) {
    self->request(channel, request_timeout, filter_atom::value, caf::actor{self},
                  c.notification_types, add)
        .then(
            [=, id = c.id](const wire::channel_position& p) {
              request_done(self);
              self->state.args.out->send(wire::subscription(add, p, id));
            },
            [=, id = c.id](caf::error& e) { request_failed(self, e, id); });
  }
}

void history(conn_actor* self, const wire::command& c) {
  auto* ch = target(self, c);
  if (!ch || !admit_request(self, c.id)) return;
  history_query q{std::nullopt, c.before, c.limit};
  self->request(ch->second, request_timeout, history_atom::value, q)
      .then(
          [=, name = ch->first, id = c.id](const history_page& page) {
            request_done(self);
            self->state.args.out->send(wire::history(name, page.payloads, page.has_more, id));
          },
          [=, id = c.id](caf::error& e) { request_failed(self, e, id); });
}

void replay_request(conn_actor* self, const wire::command& c) {
  if (c.positions.empty()) {
    if (auto* ch = target(self, c))
      self->send(ch->second, replay_atom::value, caf::actor{self}, *c.since, c.id);
    return;
  }
  for (auto& [name, since] : c.positions) {
    if (auto* channel = find_channel(self, name))
      self->send(*channel, replay_atom::value, caf::actor{self}, since, c.id);
    else
      reply_error(self, "forbidden", "not subscribed to " + name, c.id);
  }
}

// Why `token` may not replace the connection's, or "": it must be for the
// same user and role and still grant every channel the connection is in.
std::string refresh_refusal(const config& cfg, const connection_state& st, const claims& token) {
  if (token.user_id != st.user.id) return "the token is for another user";
  if (token.role != st.user.role) return "the token has another role: reconnect";
  for (auto& [name, channel] : st.channels)
    if (!may_subscribe(cfg, token, name)) return "the token does not grant " + name;
  return {};
}

// An accepted token extends the connection's life, and its `channels` govern
// later subscribes (docs/protocol.md section 11); a refused one leaves the
// old expiry in force.
void refresh(conn_actor* self, const config& cfg, const wire::command& c) {
  auto& st = self->state;
  auto verdict = jwt::verify(c.token, cfg.auth.jwt_secret, now_s());
  if (!verdict.ok()) {
    reply_error(self, "invalid_token", verdict.reason, c.id);
    return;
  }
  auto& token = std::get<claims>(verdict.result);
  if (auto why = refresh_refusal(cfg, st, token); !why.empty()) {
    log::info("refresh_refused", {{"conn", st.args.id}, {"user", st.user.id}, {"why", why}});
    reply_error(self, "forbidden", why, c.id);
    return;
  }
  st.args.token = std::move(token);
  st.args.out->expires_at(st.args.token.exp);
  st.args.out->send(wire::refreshed(st.args.token.exp, c.id));
}

void typing(conn_actor* self, const config& cfg, const wire::command& c) {
  auto* ch = publish_target(self, cfg, c);
  if (!ch) return;
  auto& st = self->state;
  self->send(ch->second, typing_atom::value, st.user, c.is_typing);
  if (!c.id.empty()) st.args.out->send(wire::ack(c.id));
}

void dispatch(conn_actor* self, caf::actor hub, const config& cfg, wire::command& c) {
  using t = wire::command_type;
  auto& out = self->state.args.out;
  switch (c.type) {
    case t::message:
    case t::read:
    case t::reaction:
    case t::remove:
      publish(self, cfg, c);
      break;
    case t::typing:
      typing(self, cfg, c);
      break;
    case t::presence:
      if (auto* ch = target(self, c); ch && admit_request(self, c.id)) {
        self->request(ch->second, request_timeout, presence_atom::value)
            .then(
                [=, name = ch->first, id = c.id](std::vector<wire::presence_entry>& users) {
                  request_done(self);
                  self->state.args.out->send(wire::presence(name, users, id));
                },
                [=, id = c.id](caf::error& e) { request_failed(self, e, id); });
      }
      break;
    case t::ping:
      out->send(wire::pong(c.timestamp_json, c.id));
      break;
    case t::subscribe:
    case t::unsubscribe:
      if (!c.notification_types.empty()) {
        filter(self, cfg, c);
      } else if (c.type == t::subscribe) {
        subscribe(self, hub, cfg, c);
      } else {
        unsubscribe(self, c);
      }
      break;
    case t::history:
      history(self, c);
      break;
    case t::replay_request:
      replay_request(self, c);
      break;
    case t::refresh:
      refresh(self, cfg, c);
      break;
  }
}

// Frames that signal or read rather than store: each takes a token from the
// user's request bucket (not the stored events' one) first.
bool is_request(wire::command_type type) {
  using t = wire::command_type;
  return type == t::typing || type == t::presence || type == t::history ||
         type == t::replay_request || type == t::subscribe;
}

void handle(conn_actor* self, caf::actor hub, const config& cfg, wire::command& c) {
  if (is_request(c.type) && !self->state.requests->try_take()) {
    metrics::node().rate_limited++;
    reply_failure(self, make_error(sb_error::requests_limited), c.id);
    return;
  }
  dispatch(self, hub, cfg, c);
}

connection_stats stats_of(const connection_state& st) {
  auto q = st.args.out->queued();
  connection_stats s{st.args.id, st.user.id, st.args.remote, st.args.path, st.opened_ms,
                     q.frames, q.bytes, {}};
  for (auto& [name, channel] : st.channels) s.channels.push_back(name);
  return s;
}

std::vector<admin_field> dump(const connection_state& st) {
  auto s = stats_of(st);
  std::string channels;
  for (auto& c : s.channels) channels += (channels.empty() ? "" : " ") + c;
  return {{"user", s.user},
          {"remote", s.remote},
          {"route", s.route},
          {"age_ms", std::to_string(now_ms() - s.opened_ms)},
          {"channels", channels},
          {"queued_frames", std::to_string(s.queued_frames)},
          {"queued_bytes", std::to_string(s.queued_bytes)}};
}

caf::behavior connection(conn_actor* self, caf::actor hub, const config* cfg,
                         connection_args args) {
  auto& st = self->state;
  st.args = std::move(args);
  st.max_in_flight = cfg->limits.max_requests_in_flight;
  const auto& tok = st.args.token;
  st.user = user_ref{tok.user_id, tok.user_id_numeric, tok.name.empty() ? tok.user_id : tok.name,
                     tok.role};
  // Whatever ends this actor (shutdown, a crash) also ends its socket; a
  // close already under way keeps its own code.
  self->attach_functor([out = st.args.out] { out->close(1001, "server shutting down"); });
  if (!st.args.observer) st.args.out->expires_at(tok.exp);
  self->request(hub, request_timeout, connect_atom::value, st.user.id, caf::actor{self})
      .await(
          [=](const caf::actor& user_actor, const request_bucket_ptr& requests) {
            self->state.user_actor = user_actor;
            self->state.requests = requests;
            join_from(self, hub, cfg, 0);
          },
          [=](caf::error& e) {
            if (e == make_error(sb_error::too_many_connections))
              fail_connect(self, 4008, "too many connections", e);
            else
              fail_connect(self, 4000, "internal error while connecting", e);
          });
  return {
      [=](wire::command& c) { handle(self, hub, *cfg, c); },
      [=](kick_atom, uint16_t code) {
        log::info("conn_kicked", {{"conn", self->state.args.id}, {"user", self->state.user.id},
                                  {"code", code}});
        self->state.args.out->close(code, "disconnected by the server");
        self->quit();
      },
      [=](closed_atom) {
        log::info("conn_close", {{"conn", self->state.args.id}, {"user", self->state.user.id}});
        self->quit();
      },
      [=](admin_atom, bool with_fields) {
        auto s = self->stats("connection", "conn:" + std::to_string(self->state.args.id));
        if (with_fields) s.fields = dump(self->state);
        return s;
      },
      [=](admin_atom, connect_atom) { return stats_of(self->state); },
  };
}

}  // namespace

caf::actor spawn_connection(caf::actor_system& sys, caf::actor hub, const config& cfg,
                            connection_args args) {
  return sys.spawn(connection, std::move(hub), &cfg, std::move(args));
}

}  // namespace sb

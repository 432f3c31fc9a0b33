// AccessPolicy and Authorizer (authorization.h).
#include "meshrpc/security/authorization.h"

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <stdexcept>
#include <string>
#include <utility>

#include "meshrpc/base/status_macros.h"
#include "meshrpc/core/method_name.h"
#include "pattern.h"

namespace meshrpc::security {
namespace {

namespace json = boost::json;

constexpr std::string_view kAnyone = "anyone";
constexpr std::string_view kAnyAuthenticated = "any-authenticated";
constexpr std::string_view kClaimPrefix = "claim:";

// Kinds of Principal::names() a pattern may name.
constexpr std::array<std::string_view, 8> kNameKinds = {
    "token:", "static:", "cn:", "dns:", "uri:", "email:", "ip:", "sha256:"};

Status check_principal_pattern(std::string_view pattern) {
  if (pattern == kAnyone || pattern == kAnyAuthenticated) return Status();
  if (pattern.starts_with(kClaimPrefix)) {
    const std::string_view rest = pattern.substr(kClaimPrefix.size());
    const size_t equals = rest.find('=');
    if (equals == 0 || equals == std::string_view::npos) {
      return invalid_argument_error("principal pattern '" + std::string(pattern) +
                                    "' is not claim:<key>=<value>");
    }
    if (rest.substr(0, equals).find('*') != std::string_view::npos) {
      return invalid_argument_error("principal pattern '" + std::string(pattern) +
                                    "' has a '*' in the claim name");
    }
    const std::string_view value = rest.substr(equals + 1);
    const size_t star = value.find('*');
    if (star != std::string_view::npos && star + 1 != value.size()) {
      return invalid_argument_error("principal pattern '" + std::string(pattern) +
                                    "' has a '*' before the end of the claim value");
    }
    return Status();
  }
  for (std::string_view kind : kNameKinds) {
    if (pattern.starts_with(kind)) return detail::check_pattern(pattern, "principal");
  }
  return invalid_argument_error(
      "principal pattern '" + std::string(pattern) +
      "' is of no known kind (anyone, any-authenticated, token:, static:, cn:, dns:, uri:, "
      "email:, ip:, sha256:, claim:<key>=<value>)");
}

bool claim_matches(std::string_view pattern, const Principal& principal) {
  const std::string_view rest = pattern.substr(kClaimPrefix.size());
  const size_t equals = rest.find('=');
  const std::string key(rest.substr(0, equals));
  const std::string_view value = rest.substr(equals + 1);
  auto [first, last] = principal.claims.equal_range(key);
  for (auto it = first; it != last; ++it) {
    if (detail::matches_pattern(value, it->second)) return true;
  }
  return false;
}

bool allows(const AccessRule& rule, const Principal* principal) {
  std::vector<std::string> names;
  if (principal != nullptr) names = principal->names();
  for (const std::string& pattern : rule.allow) {
    if (pattern == kAnyone) return true;
    if (principal == nullptr) continue;
    if (pattern == kAnyAuthenticated) return true;
    if (pattern.starts_with(kClaimPrefix)) {
      if (claim_matches(pattern, *principal)) return true;
      continue;
    }
    for (const std::string& name : names) {
      if (detail::matches_pattern(pattern, name)) return true;
    }
  }
  return false;
}

Result<std::vector<std::string>> string_array(const json::value& value, std::string_view what) {
  if (!value.is_array()) return invalid_argument_error(std::string(what) + " is not an array");
  std::vector<std::string> out;
  for (const json::value& entry : value.as_array()) {
    if (!entry.is_string()) {
      return invalid_argument_error(std::string(what) + " holds a non-string");
    }
    out.emplace_back(entry.as_string());
  }
  return out;
}

Result<AccessRule> rule_from_json(const json::value& value, size_t index) {
  const std::string what = "access rule " + std::to_string(index + 1);
  if (!value.is_object()) return invalid_argument_error(what + " is not an object");
  const json::object& object = value.as_object();
  AccessRule rule;
  for (const auto& [key, field] : object) {
    if (key == "resource" && field.is_string()) {
      rule.resource = field.as_string();
    } else if (key == "allow") {
      MESHRPC_ASSIGN_OR_RETURN(rule.allow, string_array(field, what + " allow"));
    } else {
      return invalid_argument_error(what + " has an unknown or mistyped field '" +
                                    std::string(key) + "'");
    }
  }
  if (rule.resource.empty()) return invalid_argument_error(what + " has no resource string");
  return rule;
}

AuthorizerOptions canonical(AuthorizerOptions options) {
  for (std::string& method : options.exempt_methods) {
    if (Status valid = detail::check_pattern(method, "exempt method"); !valid.ok()) {
      throw std::invalid_argument("Authorizer: " + std::string(valid.message()));
    }
    if (method.back() != '*') method = core::canonical_method_name(method);
  }
  return options;
}

}  // namespace

std::string page_resource(std::string_view path) { return "page:" + std::string(path); }

Result<AccessPolicy> AccessPolicy::create(std::vector<AccessRule> rules) {
  for (size_t i = 0; i < rules.size(); ++i) {
    const std::string what = "access rule " + std::to_string(i + 1);
    MESHRPC_RETURN_IF_ERROR(
        detail::check_pattern(rules[i].resource, "resource").with_context(what));
    for (const std::string& pattern : rules[i].allow) {
      MESHRPC_RETURN_IF_ERROR(check_principal_pattern(pattern).with_context(what));
    }
  }
  return AccessPolicy(std::move(rules));
}

Result<AccessPolicy> AccessPolicy::from_json(std::string_view text) {
  json::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec) return invalid_argument_error("access policy is not JSON: " + ec.message());
  const json::value* rules = value.is_object() ? value.as_object().if_contains("rules") : nullptr;
  if (rules == nullptr || !rules->is_array() || value.as_object().size() != 1) {
    return invalid_argument_error("access policy is not {\"rules\":[...]}");
  }
  std::vector<AccessRule> parsed;
  for (size_t i = 0; i < rules->as_array().size(); ++i) {
    MESHRPC_ASSIGN_OR_RETURN(AccessRule rule, rule_from_json(rules->as_array()[i], i));
    parsed.push_back(std::move(rule));
  }
  return create(std::move(parsed));
}

Status AccessPolicy::check(std::string_view resource, const Principal* principal) const {
  const std::string who = principal != nullptr ? principal->name : "";
  for (size_t i = 0; i < rules_.size(); ++i) {
    const AccessRule& rule = rules_[i];
    if (!detail::matches_pattern(rule.resource, resource)) continue;
    if (allows(rule, principal)) return Status();
    const std::string by_rule =
        " (access rule " + std::to_string(i + 1) + ", '" + rule.resource + "')";
    if (principal == nullptr) {
      return unauthenticated_error(std::string(resource) + " needs an authenticated caller" +
                                   by_rule);
    }
    return permission_denied_error(who + " may not access " + std::string(resource) + by_rule);
  }
  if (principal == nullptr) {
    return unauthenticated_error(std::string(resource) +
                                 " needs an authenticated caller (no access rule matches it)");
  }
  return permission_denied_error(who + " may not access " + std::string(resource) +
                                 " (no access rule matches it: denied by default)");
}

Authorizer::Authorizer(std::shared_ptr<const AccessPolicy> policy, AuthorizerOptions options)
    : policy_(std::move(policy)), options_(canonical(std::move(options))) {
  if (policy_ == nullptr) throw std::invalid_argument("Authorizer: policy is null");
}

awaitable<Status> Authorizer::before_handler(core::ServerContext& ctx) {
  for (const std::string& pattern : options_.exempt_methods) {
    if (detail::matches_pattern(pattern, ctx.method())) co_return Status();
  }
  co_return policy_->check(ctx.method(), principal_of(ctx));
}

}  // namespace meshrpc::security

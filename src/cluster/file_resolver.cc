#include "meshrpc/cluster/file_resolver.h"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "meshrpc/base/logging.h"
#include "meshrpc/base/status_macros.h"

namespace meshrpc::cluster {
namespace {

namespace json = boost::json;

// Longest excerpt of a bad value quoted in an error: enough to recognise it, short enough
// that a megabyte string does not become a megabyte log line.
constexpr size_t kMaxQuotedValueBytes = 64;

std::string describe(const json::value& value) {
  switch (value.kind()) {
    case json::kind::object:
      return "an object";
    case json::kind::array:
      return "an array";
    default: {
      std::string text = json::serialize(value);
      if (text.size() > kMaxQuotedValueBytes) text = text.substr(0, kMaxQuotedValueBytes) + "...";
      return text;
    }
  }
}

Status bad(const std::string& path, std::string_view what) {
  return invalid_argument_error(path + ": " + std::string(what));
}

Status parse_tags(const std::string& path, const json::value& value,
                  std::map<std::string, std::string>& tags) {
  if (!value.is_object()) return bad(path, "expected an object, got " + describe(value));
  for (const auto& [key, tag] : value.get_object()) {
    if (!tag.is_string()) {
      return bad(path + "." + std::string(key), "expected a string, got " + describe(tag));
    }
    tags.emplace(std::string(key), std::string(tag.get_string()));
  }
  return Status();
}

Status parse_weight(const std::string& path, const json::value& value, uint32_t& weight) {
  constexpr auto kMax = std::numeric_limits<uint32_t>::max();
  if (value.is_int64() && value.get_int64() >= 0 && value.get_int64() <= kMax) {
    weight = static_cast<uint32_t>(value.get_int64());
    return Status();
  }
  if (value.is_uint64() && value.get_uint64() <= kMax) {
    weight = static_cast<uint32_t>(value.get_uint64());
    return Status();
  }
  return bad(path, describe(value) + " is not an integer in 0..4294967295");
}

Status parse_health(const std::string& path, const json::value& value, ProviderHealth& health) {
  for (auto candidate :
       {ProviderHealth::kHealthy, ProviderHealth::kDraining, ProviderHealth::kUnhealthy}) {
    if (value.is_string() && value.get_string() == provider_health_name(candidate)) {
      health = candidate;
      return Status();
    }
  }
  return bad(path, describe(value) + " is not one of \"healthy\", \"draining\", \"unhealthy\"");
}

Status parse_address(const std::string& path, const json::value& value,
                     transport::Address& address) {
  if (!value.is_string()) return bad(path, "expected a string, got " + describe(value));
  auto parsed = transport::Address::parse(std::string_view(value.get_string()));
  if (!parsed.ok()) return bad(path, describe(value) + " is not host:port");
  if (parsed->port == 0) return bad(path, describe(value) + " has port 0");
  address = std::move(parsed).value();
  return Status();
}

Result<Provider> parse_provider(const std::string& path, const json::value& value) {
  if (!value.is_object()) return bad(path, "expected an object, got " + describe(value));
  const json::object& fields = value.get_object();
  Provider provider;
  for (const auto& [key, field] : fields) {
    const std::string field_path = path + "." + std::string(key);
    if (key == "node_id") {
      if (!field.is_string() || field.get_string().empty()) {
        return bad(field_path, "expected a non-empty string, got " + describe(field));
      }
      provider.node_id = std::string(field.get_string());
    } else if (key == "address") {
      MESHRPC_RETURN_IF_ERROR(parse_address(field_path, field, provider.address));
    } else if (key == "weight") {
      MESHRPC_RETURN_IF_ERROR(parse_weight(field_path, field, provider.weight));
    } else if (key == "tags") {
      MESHRPC_RETURN_IF_ERROR(parse_tags(field_path, field, provider.tags));
    } else if (key == "health") {
      MESHRPC_RETURN_IF_ERROR(parse_health(field_path, field, provider.health));
    } else {
      return bad(field_path, "unknown field");
    }
  }
  if (provider.node_id.empty()) return bad(path + ".node_id", "missing");
  if (!fields.contains("address")) return bad(path + ".address", "missing");
  return provider;
}

Result<std::vector<Provider>> parse_service(const std::string& path, const json::value& value) {
  if (!value.is_array()) return bad(path, "expected an array, got " + describe(value));
  std::vector<Provider> providers;
  std::map<std::string, size_t, std::less<>> index_of;
  const json::array& items = value.get_array();
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string item_path = path + "[" + std::to_string(i) + "]";
    MESHRPC_ASSIGN_OR_RETURN(Provider provider, parse_provider(item_path, items[i]));
    auto [it, inserted] = index_of.emplace(provider.node_id, i);
    if (!inserted) {
      return bad(item_path + ".node_id", "\"" + provider.node_id + "\" duplicates " + path + "[" +
                                             std::to_string(it->second) + "]");
    }
    providers.push_back(std::move(provider));
  }
  return providers;
}

// The default FileResolverOptions::read_file: the real file, bounded by `max_bytes`.
Result<std::string> read_real_file(const std::string& path, size_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec == std::errc::no_such_file_or_directory) return not_found_error("no such file");
  if (ec == std::errc::permission_denied) return permission_denied_error(ec.message());
  if (ec) return unavailable_error("cannot stat: " + ec.message());
  if (size > max_bytes) {
    return resource_exhausted_error("file size " + std::to_string(size) +
                                    " exceeds max_file_bytes " + std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return unavailable_error("cannot open for reading");
  // One byte more than allowed, so a file that grew after the stat is caught below.
  std::string content(max_bytes + 1, '\0');
  in.read(content.data(), static_cast<std::streamsize>(content.size()));
  if (in.bad()) return unavailable_error("read failed");
  content.resize(static_cast<size_t>(in.gcount()));
  return content;
}

}  // namespace

Result<ServiceProviders> parse_provider_file(std::string_view text) {
  boost::system::error_code ec;
  const json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return invalid_argument_error("not valid JSON: " + ec.message());
  if (!root.is_object()) return bad("(root)", "expected an object, got " + describe(root));
  for (const auto& [key, value] : root.get_object()) {
    if (key != "services") return bad(std::string(key), "unknown field");
  }
  const json::value* services = root.get_object().if_contains("services");
  if (services == nullptr) return bad("services", "missing");
  if (!services->is_object()) {
    return bad("services", "expected an object, got " + describe(*services));
  }
  ServiceProviders result;
  for (const auto& [name, list] : services->get_object()) {
    if (name.empty()) return bad("services", "empty service name");
    const std::string path = "services." + std::string(name);
    MESHRPC_ASSIGN_OR_RETURN(auto providers, parse_service(path, list));
    result.emplace(std::string(name), std::move(providers));
  }
  return result;
}

// The polling loop and the state it keeps. Shared with the pending timer's handler, so a
// timer that fires after the resolver is gone finds a live, stopped poller.
//
// Locking: mutex_ guards the read state and is taken before `lists`' own lock. cancel_ and
// arming the timer are touched only on strand_.
class FileResolver::Poller : public std::enable_shared_from_this<Poller> {
 public:
  Poller(runtime::Env& env, std::string path, FileResolverOptions options)
      : lists(env),
        path(std::move(path)),
        env_(env),
        options_(std::move(options)),
        strand_(asio::make_strand(env.blocking_executor())) {
    if (!options_.read_file) {
      options_.read_file = [max = options_.max_file_bytes](const std::string& file) {
        return read_real_file(file, max);
      };
    }
  }

  void start() {
    poll();
    asio::post(strand_, [self = shared_from_this()] { self->arm(); });
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    lists.stop();
    asio::post(strand_, [self = shared_from_this()] {
      self->cancel_.emit(asio::cancellation_type::terminal);
    });
  }

  Resolver::WatchId watch(std::string service, Resolver::Watcher watcher) {
    std::lock_guard lock(mutex_);
    const std::string name = service;
    const auto id = lists.watch(std::move(service), std::move(watcher));
    // Bring a service the file never mentioned in line with the file's state.
    if (!last_error_.ok()) {
      lists.set_error(name, last_error_);
    } else if (!last_good_.contains(name)) {
      lists.set(name, {});
    }
    return id;
  }

  Status last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
  }

  runtime::Duration staleness() const {
    std::lock_guard lock(mutex_);
    if (last_good_time_ == runtime::TimePoint::min()) return runtime::Duration::max();
    return env_.now() - last_good_time_;
  }

  StaticResolver lists;
  const std::string path;

 private:
  // Runs on strand_: waits one interval, polls, and arms again until stopped.
  void arm() {
    {
      std::lock_guard lock(mutex_);
      if (stopped_) return;
    }
    auto on_timer = [self = shared_from_this()](error_code ec) {
      // The finished wait may leave its canceller in the slot, pointing at a timer that is
      // gone once this handler returns; a later emit() from stop() must not reach it.
      self->cancel_.slot().clear();
      if (ec) return;
      self->poll();
      self->arm();
    };
    env_.async_wait_for(options_.poll_interval,
                        asio::bind_cancellation_slot(
                            cancel_.slot(), asio::bind_executor(strand_, std::move(on_timer))));
  }

  void poll() {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    Result<std::string> content = options_.read_file(path);
    if (content.ok() && content->size() > options_.max_file_bytes) {
      content = resource_exhausted_error("file size " + std::to_string(content->size()) +
                                         " exceeds max_file_bytes " +
                                         std::to_string(options_.max_file_bytes));
    }
    if (!content.ok()) {
      last_content_.reset();
      fail_locked(content.status());
      return;
    }
    if (last_content_ == *content) {
      // Unchanged since the last read: the same lists again, or the same error again.
      if (last_error_.ok()) succeed_locked(last_good_);
      return;
    }
    last_content_ = std::move(content).value();
    auto parsed = parse_provider_file(*last_content_);
    if (!parsed.ok()) {
      fail_locked(parsed.status());
      return;
    }
    succeed_locked(std::move(parsed).value());
  }

  void succeed_locked(ServiceProviders services) {
    for (const std::string& name : lists.services()) {
      if (!services.contains(name)) lists.set(name, {});
    }
    for (const auto& [name, providers] : services) lists.set(name, providers);
    if (!last_error_.ok()) {
      MESHRPC_LOG_INFO("file resolver {}: recovered from: {}", path, last_error_.to_string());
    }
    last_good_ = std::move(services);
    last_good_time_ = env_.now();
    last_error_ = Status();
    logged_error_.clear();
  }

  void fail_locked(const Status& error) {
    Status status(error.code(), path + ": " + std::string(error.message()));
    for (const std::string& name : lists.services()) lists.set_error(name, status);
    std::string text = status.to_string();
    if (text != logged_error_) {
      MESHRPC_LOG_WARN("file resolver: {}; keeping the last good provider lists", text);
      logged_error_ = std::move(text);
    }
    last_error_ = std::move(status);
  }

  runtime::Env& env_;
  FileResolverOptions options_;
  asio::strand<asio::any_io_executor> strand_;
  asio::cancellation_signal cancel_;

  mutable std::mutex mutex_;
  bool stopped_ = false;
  // The content of the latest successful read (good or malformed); empty after a failed read.
  std::optional<std::string> last_content_;
  ServiceProviders last_good_;
  runtime::TimePoint last_good_time_ = runtime::TimePoint::min();
  Status last_error_;
  // The error last logged, so that a persisting error is logged once, not every poll.
  std::string logged_error_;
};

FileResolver::FileResolver(runtime::Env& env, std::string path, FileResolverOptions options)
    : poller_(std::make_shared<Poller>(env, std::move(path), std::move(options))) {
  poller_->start();
}

FileResolver::~FileResolver() { stop(); }

const std::string& FileResolver::path() const { return poller_->path; }

Status FileResolver::last_error() const { return poller_->last_error(); }

runtime::Duration FileResolver::staleness() const { return poller_->staleness(); }

Resolver::WatchId FileResolver::watch(std::string service, Watcher watcher) {
  return poller_->watch(std::move(service), std::move(watcher));
}

void FileResolver::unwatch(WatchId id) { poller_->lists.unwatch(id); }

ResolverUpdate FileResolver::current(std::string_view service) const {
  return poller_->lists.current(service);
}

void FileResolver::stop() { poller_->stop(); }

}  // namespace meshrpc::cluster

#include "echo_flags.h"

#include <charconv>
#include <map>
#include <string_view>

namespace meshrpc::bench {
namespace {

constexpr std::string_view kLoopback = "127.0.0.1";

// Parses "127.0.0.1:PORT"; returns CLI11's error text (empty when valid).
std::string parse_endpoint(const std::string& text, Endpoint& out) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return "expected HOST:PORT, got '" + text + "'";
  const std::string_view host(text.data(), colon);
  if (host != kLoopback) {
    return "host '" + std::string(host) + "' is not " + std::string(kLoopback) +
           " (benchmarks only ever target the loopback interface)";
  }
  unsigned port = 0;
  const char* first = text.data() + colon + 1;
  const char* last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(first, last, port);
  if (ec != std::errc{} || end != last || port > 65535) {
    return "port '" + std::string(first, last) + "' is not a number in 0..65535";
  }
  out = Endpoint{std::string(host), static_cast<uint16_t>(port)};
  return "";
}

CLI::Option* add_endpoint(CLI::App& app, const std::string& name, Endpoint& out,
                          const std::string& help) {
  return app
      .add_option_function<std::string>(
          name, [&out](const std::string& text) { parse_endpoint(text, out); }, help)
      ->check(CLI::Validator(
          [](std::string& text) {
            Endpoint ignored;
            return parse_endpoint(text, ignored);
          },
          "127.0.0.1:PORT", "loopback endpoint"));
}

// --tls-cert and --tls-key, each requiring the other.
struct TlsIdentityOptions {
  CLI::Option* certificate;
  CLI::Option* key;
};

TlsIdentityOptions add_tls_identity(CLI::App& app, TlsFlags& flags, const std::string& whose) {
  CLI::Option* certificate = app.add_option("--tls-cert", flags.certificate_chain_file,
                                            whose + " certificate chain, PEM, leaf first")
                                 ->check(CLI::ExistingFile);
  CLI::Option* key =
      app.add_option("--tls-key", flags.private_key_file, whose + " private key, PEM, unencrypted")
          ->check(CLI::ExistingFile);
  certificate->needs(key);
  key->needs(certificate);
  return {certificate, key};
}

}  // namespace

void add_client_flags(CLI::App& app, ClientFlags& flags) {
  add_endpoint(app, "--target", flags.target, "server to call, 127.0.0.1:PORT")->required();
  app.add_option("--payload", flags.payload_bytes, "request (and echoed reply) payload bytes")
      ->check(CLI::Range(uint32_t{1}, kMaxPayloadBytes));
  app.add_option("--inflight", flags.inflight, "calls kept in flight (closed loop)")
      ->check(CLI::Range(uint32_t{1}, kMaxInflight));
  app.add_option("--duration", flags.duration_s, "measured seconds")
      ->check(CLI::Range(0.1, kMaxDurationSeconds));
  app.add_option("--warmup", flags.warmup_s, "seconds of calls before measuring")
      ->check(CLI::Range(0.0, 60.0));
  app.add_option("--connections", flags.connections, "connections the in-flight calls share")
      ->check(CLI::Range(uint32_t{1}, kMaxConnections));
  app.add_option("--mode", flags.mode, "unary: echo calls; stream: server-streamed messages")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, Mode>{{"unary", Mode::kUnary}, {"stream", Mode::kStream}}));
  app.final_callback([&flags] {
    if (flags.connections > flags.inflight) {
      throw CLI::ValidationError(
          "--connections",
          "more connections (" + std::to_string(flags.connections) + ") than --inflight calls");
    }
  });
}

void add_server_flags(CLI::App& app, ServerFlags& flags) {
  add_endpoint(app, "--listen", flags.listen, "address to listen on; port 0 picks a free one");
  app.add_option("--threads", flags.threads, "server I/O threads")
      ->check(CLI::Range(uint32_t{1}, uint32_t{64}));
  app.add_option("--max-lifetime", flags.max_lifetime_s, "exit after this many seconds anyway")
      ->check(CLI::Range(1.0, 86400.0));
}

void add_metrics_flag(CLI::App& app, bool& enabled) {
  app.add_option("--metrics", enabled, "on: record call metrics (the default); off: none")
      ->transform(
          CLI::CheckedTransformer(std::map<std::string, bool>{{"on", true}, {"off", false}}))
      ->default_str("on");
}

void add_server_tls_flags(CLI::App& app, TlsFlags& flags) {
  TlsIdentityOptions identity = add_tls_identity(app, flags, "TLS: the server's");
  app.add_option("--tls-ca", flags.ca_file,
                 "mTLS: require client certificates issued by this CA (PEM)")
      ->check(CLI::ExistingFile)
      ->needs(identity.certificate);
}

void add_client_tls_flags(CLI::App& app, TlsFlags& flags) {
  CLI::Option* ca = app.add_option("--tls-ca", flags.ca_file,
                                   "TLS: the CA the server's certificate must chain to (PEM)")
                        ->check(CLI::ExistingFile);
  TlsIdentityOptions identity = add_tls_identity(app, flags, "mTLS: the client's");
  identity.certificate->needs(ca);
}

}  // namespace meshrpc::bench

// The one translation unit that compiles Asio's implementation (see src/CMakeLists.txt).
#include <boost/asio/impl/src.hpp>
// And its TLS layer (transport/tls.h), over OpenSSL.
#include <boost/asio/ssl/impl/src.hpp>

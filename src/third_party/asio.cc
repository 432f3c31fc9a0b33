// The one translation unit that compiles Asio's implementation (see src/CMakeLists.txt).
#include <boost/asio/impl/src.hpp>

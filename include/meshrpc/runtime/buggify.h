// BUGGIFY (FoundationDB's name): fault points that fire, in simulation only, at marked code
// sites, so rare paths (a failed accept, a delayed write) run in every simulated run instead
// of once a year in production.
//
//   if (MESHRPC_BUGGIFY) return unavailable_error("connect failed (buggify)");
//
// A site fires only while the calling thread runs a SimEnv built with Options::buggify. Each
// site is switched on for the whole run with probability kSiteActivation when first reached,
// and then fires with probability kFireProbability each time it is reached, drawn from the
// simulation's seed: a run replays exactly. Every firing is in the simulation's trace.
//
// Compiled out (the macro is `false`) unless MESHRPC_BUGGIFY_ENABLED is defined: the build
// defines it with the tests (CMake option MESHRPC_BUGGIFY, default MESHRPC_BUILD_TESTS), so
// release and benchmark builds carry no site at all.
#pragma once

namespace meshrpc::runtime {

inline constexpr double kSiteActivation = 0.25;
inline constexpr double kFireProbability = 0.25;

// Whether the site at file:line fires now (see above). `file` must be a string literal.
bool buggify_fires(const char* file, int line);

}  // namespace meshrpc::runtime

#ifdef MESHRPC_BUGGIFY_ENABLED
#define MESHRPC_BUGGIFY (::meshrpc::runtime::buggify_fires(__FILE__, __LINE__))
#else
#define MESHRPC_BUGGIFY (false)
#endif

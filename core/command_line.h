#pragma once
// Checks shared by echolab's command lines (Boost.Program_options based).
#include <string>
#include <vector>

namespace echolab {

// Boost.Program_options 1.74 builds its error messages by replacing placeholders such as
// %canonical_option% or %value% until none is left, so an argument that itself contains
// one makes error.what() loop forever (found by tests/fuzz/options_fuzz). Arguments holding
// a %word% token are refused up front with a UsageError; a single '%' (an IPv6 zone,
// "fe80::1%eth0") is fine.
void reject_placeholder_tokens(int argc, const char* const* argv);
// The same for arguments without the program name.
void reject_placeholder_tokens(const std::vector<std::string>& args);

// Boost.Program_options drops words that belong to no option ("--workers 8 16" keeps 8 and
// ignores 16) unless a positional option claims them. Give this what is left over,
// po::collect_unrecognized(parsed.options, po::include_positional): any word there is a
// mistake, refused with a UsageError naming the first one.
void reject_stray_arguments(const std::vector<std::string>& leftovers);

}  // namespace echolab

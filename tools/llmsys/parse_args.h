// tools/llmsys/parse_args.h — the command-line parsing every subcommand
// shares. Thread-safety: main thread only.
#ifndef LLMSYS_TOOLS_LLMSYS_PARSE_ARGS_H_
#define LLMSYS_TOOLS_LLMSYS_PARSE_ARGS_H_

#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

namespace llmsys::cli {

// Parses `args` into `vm`, up to `max_positional` (-1: any number) words
// without an option name going to the option `positional`. False, after
// printing "error: ..." to stderr, on bad usage.
inline bool ParseArgs(const std::vector<std::string>& args,
                      const boost::program_options::options_description& desc,
                      const char* positional, int max_positional,
                      boost::program_options::variables_map* vm) {
  namespace po = boost::program_options;
  po::positional_options_description pos;
  pos.add(positional, max_positional);
  try {
    po::store(po::command_line_parser(args).options(desc).positional(pos).run(),
              *vm);
    po::notify(*vm);
  } catch (const po::error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return false;
  }
  return true;
}

}  // namespace llmsys::cli

#endif  // LLMSYS_TOOLS_LLMSYS_PARSE_ARGS_H_

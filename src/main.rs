//! The `crun` command line (and `krun` through argv[0]).

fn main() {
    std::process::exit(crun::log::verbosity());
}

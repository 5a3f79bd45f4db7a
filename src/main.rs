//! The `crun` command line (and `krun` through argv[0]).

fn main() {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(crun::cli::main(argv));
}

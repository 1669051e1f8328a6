//! `cargo crds`: writes `deploy/crds/*.yaml`; `cargo crds --check` fails if they are stale.

use std::process::ExitCode;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo crds [--check | --stdout]";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = sluice_crdgen::default_output_dir();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => {
            for file_name in sluice_crdgen::write(&dir)? {
                println!("wrote deploy/crds/{file_name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        ["--check"] => {
            let stale = sluice_crdgen::stale_files(&dir)?;
            if stale.is_empty() {
                return Ok(ExitCode::SUCCESS);
            }
            for file_name in &stale {
                eprintln!("stale: deploy/crds/{file_name}");
            }
            eprintln!("run `cargo crds` to regenerate");
            Ok(ExitCode::FAILURE)
        }
        ["--stdout"] => {
            for crd in sluice_crdgen::render()? {
                print!("{}", crd.yaml);
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => bail!("unexpected arguments {args:?}\n{USAGE}"),
    }
}

//! Sluice's image-reflector-controller: its ImageRepository and ImagePolicy reconcilers are not built yet.

fn main() -> std::process::ExitCode {
    sluice_runtime::placeholder_main(
        "image-reflector-controller",
        "ImageRepository and ImagePolicy",
    )
}

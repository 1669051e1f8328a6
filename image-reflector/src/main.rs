//! image-reflector-controller binary: accepts the common flags and exits with status 2 until its
//! ImageRepository and ImagePolicy reconcilers are built.

fn main() -> std::process::ExitCode {
    sluice_runtime::placeholder_main(
        image_reflector::CONTROLLER_NAME,
        "ImageRepository and ImagePolicy",
    )
}

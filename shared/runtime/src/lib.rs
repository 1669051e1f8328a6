//! Controller machinery shared by every Sluice controller.

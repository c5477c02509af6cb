//! Other programs on the same segments: Python's `multiprocessing.shared_memory` and the
//! `shared_memory` crate (the C++ reference program plays in `cli::taller`).

mod python;
mod shared_memory;

//! Failures a user meets, through the library and the `shm` binary: crashes, bad input, kernel
//! limits, permissions, races, shrinks, a full /dev/shm and planted symlinks. Each ends in a
//! typed error or one clear line, never a panic, a signal or something left behind.

mod crash;
mod input;
mod limits;
mod permissions;
mod races;
mod shrink;
mod space;
mod symlink;

//! Test support for the shm workspace.

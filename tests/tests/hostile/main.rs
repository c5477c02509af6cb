//! What a hostile neighbour or a careless peer can do: take a name over, mislead a result,
//! shrink a segment under a copy, plant special files, send signals. Nothing may act on what it
//! did not identify, say what did not happen, die of it or hang.

mod identity;
mod results;
mod sigbus;
mod signals;

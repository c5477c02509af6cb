//! The cases, in table order.
//!
//! To add a case: write a type that implements [`Case`] in a module here (a key, a few words
//! for the table, a section, and `run`, which pushes one repetition's samples and returns within
//! about the plan's budget, looking at [`crate::stop::stopping`] in between), push it in
//! [`all`], and, where it is compared, add its ratio and target to `report::RATIOS`. A case that
//! needs a second process starts it with [`crate::child::Child`] (it dies with the bench) and
//! adds the peer's role to [`crate::peer`]; its segment names come from
//! [`crate::case::segment_name`], and are removed as soon as both sides have them mapped.

#[cfg(feature = "bridge")]
pub(crate) mod bridge;
pub(crate) mod channel;
pub(crate) mod copy;
pub(crate) mod cycle;
pub(crate) mod demo;
pub(crate) mod fanout;
pub(crate) mod game;

use anyhow::Result;
use shm_core::wait::WaitStrategy;

use crate::case::{Case, Plan, SLICES};
use crate::host::{Host, Kind};

/// Every case `host` can run, in table order; peers are started here.
pub(crate) fn all(plan: &Plan, host: &Host) -> Result<Vec<Box<dyn Case>>> {
    use WaitStrategy::{Block, Hybrid, Spin};
    let kinds = &host.kinds;
    let default = host.default_kind()?;
    let rounds = game::Rounds::new(plan.budget, plan.rep_limit());
    let slice = game::Rounds::new(plan.budget / SLICES, plan.rep_limit());
    let mut cases: Vec<Box<dyn Case>> = vec![Box::new(game::Game::threads(host, slice)?)];
    for &kind in kinds {
        for strategy in [Spin, Hybrid, Block] {
            let rounds = if strategy == Block { rounds } else { slice };
            cases.push(Box::new(game::Game::processes(
                host, kind, strategy, None, rounds,
            )?));
        }
    }
    cases.push(Box::new(game::Echo::pipe(host, rounds)?));
    cases.push(Box::new(game::Echo::socketpair(host, rounds)?));
    if kinds.contains(&Kind::Posix) {
        cases.push(Box::new(game::BellGame::new(host, rounds)?));
    }
    cases.push(Box::new(channel::Rtt::new(host, plan.budget / SLICES)?));
    cases.push(Box::new(channel::asynch::AsyncRtt::new(
        host,
        plan.budget / SLICES,
    )?));
    for clients in [1, 4] {
        cases.push(Box::new(channel::service::ServiceRtt::new(
            host,
            clients,
            plan.budget / SLICES,
        )?));
    }
    #[cfg(feature = "bridge")]
    for rtt in bridge::Rtt::both(host, plan.budget) {
        cases.push(Box::new(rtt));
    }
    cases.push(Box::new(channel::asynch::AsyncIdle::new(
        host,
        plan.idle.0,
        plan.idle.1,
    )?));
    if let (Some(demo), true) = (host.demo, kinds.contains(&Kind::Posix)) {
        cases.push(Box::new(demo::Demo::new(demo, plan.demo_rounds)));
    }
    if let Some(cpu) = game::one_cpu() {
        cases.push(Box::new(game::Game::processes(
            host,
            default,
            Hybrid,
            Some(cpu),
            rounds,
        )?));
    }
    let [small, _, _] = plan.cycles;
    for &kind in kinds {
        cases.push(Box::new(cycle::Cycle::backend(
            host, kind, None, true, small,
        )?));
        if let Some(raw) = cycle::Cycle::raw(host, kind, small)? {
            cases.push(Box::new(raw));
        }
    }
    if kinds.contains(&Kind::Posix) {
        for (size, per_rep) in cycle::SIZES.into_iter().zip(plan.cycles) {
            for reserve in [true, false] {
                cases.push(Box::new(cycle::Cycle::backend(
                    host,
                    Kind::Posix,
                    Some(size),
                    reserve,
                    per_rep,
                )?));
            }
        }
    }
    cases.push(Box::new(copy::Copy::new(host, plan.copy_bytes)?));
    cases.push(Box::new(copy::Memcpy::new(plan.copy_bytes)));
    for &kind in kinds {
        for way in [copy::SmallWay::Read, copy::SmallWay::Write] {
            cases.push(Box::new(copy::Small::new(host, kind, way)?));
        }
        if kind == Kind::Posix {
            cases.push(Box::new(copy::Small::new(
                host,
                kind,
                copy::SmallWay::FstatThenCopy,
            )?));
        }
    }
    for stream in channel::Stream::all(host, plan.stream_bytes)? {
        cases.push(Box::new(stream));
    }
    // An eighth of the other streams' bytes: over TCP at about 0.5 GB/s, the whole would add
    // minutes to a run.
    #[cfg(feature = "bridge")]
    for stream in bridge::Stream::both(host, plan.stream_bytes / 8) {
        cases.push(Box::new(stream));
    }
    for fanout in fanout::Fanout::both(host, plan.budget)? {
        cases.push(Box::new(fanout));
    }
    Ok(cases)
}

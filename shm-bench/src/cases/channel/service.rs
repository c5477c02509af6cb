//! `service_rtt_1` and `service_rtt_4`: 8 bytes there and back through a shm-channel service
//! (`shm_channel::service`), with 1 and 4 client processes calling at once. The bench is the
//! server: it answers for a slice of time and divides that time by the calls each client made
//! in it (the clients call in a closed loop, so that is each one's mean round trip). Between
//! slices nobody answers, and the clients sleep in their calls. Ratios:
//! `service_rtt_1_vs_channel_rtt` (target <= 1.25: one client at the pair's speed) and
//! `service_rtt_4_vs_1` (target <= 2.5: four clients share two CPUs with the server).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use shm_channel::Error;
use shm_channel::service::{Service, ServiceClient, ServiceOptions};
use shm_core::Backend;

use super::common::{TIMEOUT, batch_for, spawn_peer};
use crate::case::Section;
use crate::case::{Case, Samples, segment_name};
use crate::child::Child;
use crate::host::Host;
use crate::stop::stopping;

fn options(clients: u32) -> ServiceOptions {
    ServiceOptions::new(64).clients(clients)
}

/// The `service-client` peer: calls the service `name` with 8-byte sequence numbers, checking
/// each answer, until the service closes.
pub(crate) fn client_peer<B: Backend>(backend: &B, name: &str) -> Result<()> {
    let mut client = ServiceClient::open(backend, name, &options(1))?;
    let mut seq = 0u64;
    loop {
        seq += 1;
        match client.call(&seq) {
            Ok(s) => {
                let back: u64 = s.read_value()?;
                if back != seq {
                    bail!("the service answered {back} to {seq}");
                }
            }
            Err(Error::Closed | Error::PeerDead { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// `service_rtt_N`: N client processes calling at once, the bench serving.
pub struct ServiceRtt {
    key: &'static str,
    what: &'static str,
    clients: u32,
    // Declared before `peers`: the service closes first, then the clients end and are reaped.
    service: Option<Service>,
    peers: Vec<Child>,
    budget: Duration,
    batch: u64,
}

impl ServiceRtt {
    /// The case with `clients` (1 or 4) client processes, each already seated.
    pub fn new(host: &Host, clients: u32, budget: Duration) -> Result<ServiceRtt> {
        let (key, what) = match clients {
            1 => ("service_rtt_1", "shm-channel service, 1 client process"),
            4 => ("service_rtt_4", "shm-channel service, 4 client processes"),
            n => bail!("no service case for {n} clients"),
        };
        let name = segment_name(key);
        let kind = host.default_kind()?;
        let service = Service::create(&(host.backend)(kind)?, &name, &options(clients))?;
        let peers = (0..clients)
            .map(|_| {
                spawn_peer(
                    host,
                    &["service-client", kind.as_str(), &name],
                    Stdio::null(),
                    Stdio::null(),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let t0 = Instant::now();
        while service.clients().len() < clients as usize {
            if t0.elapsed() > TIMEOUT || stopping() {
                bail!(
                    "{} of {clients} clients joined the service in {TIMEOUT:?}",
                    service.clients().len()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Every client has its seat: the name has done its work (nothing is left however the
        // bench ends, kill -9 included).
        service.remove_name()?;
        Ok(ServiceRtt {
            key,
            what,
            clients,
            service: Some(service),
            peers,
            budget,
            batch: 1,
        })
    }

    /// Answers `n` calls, each with the request's own 8 bytes.
    fn serve(&mut self, n: u64) -> Result<()> {
        let Some(service) = self.service.as_mut() else {
            bail!("the case has finished");
        };
        for _ in 0..n {
            let request = service.recv_timeout(TIMEOUT)?;
            let seq: u64 = request.data().read_value()?;
            request.reply_value(&seq)?;
        }
        Ok(())
    }
}

impl Case for ServiceRtt {
    fn key(&self) -> &str {
        self.key
    }
    fn what(&self) -> &str {
        self.what
    }
    fn section(&self) -> Section {
        Section::RoundTrip
    }
    fn sliced(&self) -> bool {
        true
    }
    fn run(&mut self, out: &mut Samples) -> Result<()> {
        // As channel_rtt: wake the clients and warm the caches, size the batch the first
        // time, then time batches of about 2 us per client.
        let clients = u64::from(self.clients);
        let warm = if self.batch == 1 { 1000 } else { 100 } * clients;
        let t0 = Instant::now();
        self.serve(warm)?;
        if self.batch == 1 {
            self.batch = batch_for(t0.elapsed() * self.clients, u128::from(warm)) * clients;
        }
        let start = Instant::now();
        let (mut calls, mut last) = (0u64, Instant::now());
        while start.elapsed() < self.budget && !stopping() {
            self.serve(self.batch)?;
            calls += self.batch;
            let now = Instant::now();
            // Each client made batch / clients of these calls in this time.
            out.push_batch(
                now.duration_since(last).as_nanos() * u128::from(clients),
                self.batch,
            );
            last = now;
        }
        self.batch = batch_for(start.elapsed() * self.clients, u128::from(calls)) * clients;
        Ok(())
    }
    fn finish(mut self: Box<Self>) -> Result<()> {
        drop(self.service.take()); // closes the service: every client ends
        for p in self.peers.drain(..) {
            p.finish(TIMEOUT)?;
        }
        Ok(())
    }
}

//! Values that belong to one OS process: the tokio runtime and the AWS clients.
//!
//! Salt forks its daemons (and the master forks again for each engine and worker). A forked
//! child inherits the memory of the parent's runtime but none of its threads, and it shares
//! the parent's open sockets. So every process builds its own runtime and clients on first
//! use, and a child never uses or drops what it inherited.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Runtime;

use crate::error::{Error, Result};

/// A value created lazily in the process that uses it. Read in a forked child, it is built
/// anew; the inherited copy is leaked on purpose: dropping a runtime whose worker threads do
/// not exist here would wait for them forever, and dropping a client could write to a socket
/// the parent still uses.
pub struct PerProcess<T> {
    slot: Mutex<Option<(u32, Arc<T>)>>,
}

impl<T> Default for PerProcess<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> PerProcess<T> {
    pub const fn new() -> Self {
        Self {
            slot: Mutex::new(None),
        }
    }

    /// The value of this process, built by `init` the first time this process asks.
    pub fn get_or_try_init(&self, init: impl FnOnce() -> Result<T>) -> Result<Arc<T>> {
        let pid = std::process::id();
        // A poisoned lock only means a panic elsewhere while it was held; the slot itself is
        // always a whole value, so it is safe to keep using it.
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((owner, value)) = slot.as_ref() {
            if *owner == pid {
                return Ok(Arc::clone(value));
            }
        }
        if let Some(inherited) = slot.take() {
            std::mem::forget(inherited);
        }
        let value = Arc::new(init()?);
        *slot = Some((pid, Arc::clone(&value)));
        Ok(value)
    }
}

static RUNTIME: PerProcess<Runtime> = PerProcess::new();

/// The tokio runtime of this process, created on first use.
pub fn runtime() -> Result<Arc<Runtime>> {
    RUNTIME.get_or_try_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            // Salt's processes are many and the machines small: two workers are plenty for
            // I/O-bound AWS calls.
            .worker_threads(2)
            .thread_name("phoenix-worker")
            .enable_all()
            .build()
            .map_err(|err| Error::Internal(format!("cannot start the tokio runtime: {err}")))
    })
}

/// Runs `future` to completion on this process's runtime, from a thread outside it.
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(future))
}

/// Runs `future` on the runtime, waking every `tick` to let the caller check for
/// interruption (Ctrl-C): `should_stop` returning an error aborts the future.
pub fn block_on_interruptible<F, E>(
    future: F,
    tick: Duration,
    mut should_stop: impl FnMut() -> std::result::Result<(), E>,
) -> std::result::Result<Result<F::Output>, E>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(err) => return Ok(Err(err)),
    };
    let mut task = runtime.spawn(future);
    loop {
        let waited = runtime.block_on(async { tokio::time::timeout(tick, &mut task).await });
        match waited {
            Ok(Ok(output)) => return Ok(Ok(output)),
            Ok(Err(join_error)) => {
                return Ok(Err(Error::Internal(format!("task failed: {join_error}"))))
            }
            Err(_elapsed) => {
                if let Err(stop) = should_stop() {
                    task.abort();
                    return Err(stop);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_value_is_built_once_per_process() {
        static BUILDS: AtomicUsize = AtomicUsize::new(0);
        let cell: PerProcess<usize> = PerProcess::new();
        let a = cell
            .get_or_try_init(|| Ok(BUILDS.fetch_add(1, Ordering::SeqCst)))
            .unwrap();
        let b = cell
            .get_or_try_init(|| Ok(BUILDS.fetch_add(1, Ordering::SeqCst)))
            .unwrap();
        assert_eq!(BUILDS.load(Ordering::SeqCst), 1);
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn a_failed_build_is_tried_again() {
        let cell: PerProcess<u8> = PerProcess::new();
        assert!(cell
            .get_or_try_init(|| Err(Error::Internal("no".into())))
            .is_err());
        assert_eq!(*cell.get_or_try_init(|| Ok(7)).unwrap(), 7);
    }

    #[test]
    fn interruption_aborts_a_long_future() {
        let mut ticks = 0;
        let outcome = block_on_interruptible(
            async { tokio::time::sleep(Duration::from_secs(30)).await },
            Duration::from_millis(10),
            || {
                ticks += 1;
                if ticks == 3 {
                    Err("interrupted")
                } else {
                    Ok(())
                }
            },
        );
        assert_eq!(outcome.err(), Some("interrupted"));
    }

    #[test]
    fn a_finished_future_returns_its_value() {
        let outcome = block_on_interruptible(async { 41 + 1 }, Duration::from_millis(10), || {
            Ok::<(), ()>(())
        });
        assert_eq!(outcome.unwrap().unwrap(), 42);
    }
}
